//! Finding and killing every process of a task.
//!
//! Each task's processes run in their own process group, carry an environment tag
//! (`ASIDE_TASK_TAG=<instance>-<id>`) inherited by all their descendants and, where the
//! daemon can make one, sit in a cgroup of their own (`cgroup`). The group catches ordinary
//! children; the tag catches those that left the group with setsid(), including after the
//! daemon itself was killed and restarted; the cgroup catches every descendant, whatever it
//! does. Without a cgroup, a process that both left the group and cleared its environment is
//! found only once it comes back to the daemon (the subreaper of every task) as an orphan
//! that no running task can own: a stray (see [`Reaper::strays`]). Only processes carrying
//! this state directory's tag, in a task's process group or cgroup, and strays are ever
//! signalled. Tags and strays are found in `/proc`, so on Linux only; elsewhere the process
//! group is all there is.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use tokio::time::Instant;

use crate::cgroup::TaskCgroup;
use crate::reaper::{Reaper, Stray};

pub const TAG_VAR: &str = "ASIDE_TASK_TAG";

pub fn tag_value(instance: &str, id: aside_protocol::TaskId) -> String {
    format!("{instance}-{id}")
}

/// Pids of processes whose environment holds exactly `TAG_VAR=tag`.
pub fn tagged(tag: &str) -> BTreeSet<i32> {
    let needle = format!("{TAG_VAR}={tag}");
    let mut found = BTreeSet::new();
    for pid in procs::all() {
        if procs::environ(pid)
            .is_some_and(|env| env.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
        {
            found.insert(pid);
        }
    }
    found
}

/// Every tag starting with `prefix` that some process carries, with those processes: one
/// pass over the process table, for a daemon recovering many tasks at once.
pub fn tags_with_prefix(prefix: &str) -> BTreeMap<String, BTreeSet<i32>> {
    let needle = format!("{TAG_VAR}={prefix}");
    let mut found: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    for pid in procs::all() {
        let Some(env) = procs::environ(pid) else {
            continue;
        };
        for var in env.split(|b| *b == 0) {
            if var.starts_with(needle.as_bytes()) {
                let tag = String::from_utf8_lossy(&var[TAG_VAR.len() + 1..]).into_owned();
                found.entry(tag).or_default().insert(pid);
            }
        }
    }
    found
}

/// Which of `tags` are carried by children of this process, leaving out those `ours` claims
/// (the processes the daemon started itself, each tagged with its own task): only
/// re-parented orphans are read, so the cost does not grow with the number of running tasks.
pub fn tagged_orphans(tags: &BTreeSet<&str>, ours: impl Fn(i32) -> bool) -> BTreeSet<String> {
    let prefix = format!("{TAG_VAR}=");
    let mut found = BTreeSet::new();
    for pid in procs::children().into_iter().filter(|pid| !ours(*pid)) {
        let Some(env) = procs::environ(pid) else {
            continue;
        };
        for var in env.split(|b| *b == 0) {
            let tag = var
                .strip_prefix(prefix.as_bytes())
                .and_then(|t| std::str::from_utf8(t).ok());
            if let Some(tag) = tag.filter(|t| tags.contains(t)) {
                found.insert(tag.to_string());
            }
        }
    }
    found
}

pub fn group_alive(pgid: i32) -> bool {
    killpg(Pid::from_raw(pgid), None).is_ok()
}

/// Everything that finds one task's processes.
pub(crate) struct Tree {
    /// The task's process group; its leader is the task's first process. `None` for a
    /// previous daemon's task, found by its tag only.
    pub pgid: Option<i32>,
    pub tag: String,
    /// Its cgroup, where it has one: then nothing of it can hide.
    pub cgroup: Option<TaskCgroup>,
}

impl Tree {
    /// Whether some of its processes still run: its group, or anything in its cgroup.
    /// (Tagged orphans are looked for by the caller, for many tasks in one pass.)
    pub(crate) fn running(&self) -> bool {
        self.pgid.is_some_and(group_alive)
            || self.cgroup.as_ref().is_some_and(TaskCgroup::populated)
    }
}

/// What is left of a tree at one look.
struct Left {
    group: bool,
    /// The task's first process is not reaped yet: until it is, the orphans it leaves are
    /// not strays.
    first: bool,
    tagged: BTreeSet<i32>,
    /// In its cgroup.
    contained: Vec<i32>,
    /// Orphans of tasks that have ended, this one or another (see [`Reaper::strays`]).
    strays: BTreeSet<Stray>,
}

impl Left {
    fn look(tree: &Tree, reaper: &Reaper) -> Self {
        Self {
            group: tree.pgid.is_some_and(group_alive),
            first: tree.pgid.is_some_and(|p| reaper.started(p)),
            tagged: tagged(&tree.tag),
            contained: tree
                .cgroup
                .as_ref()
                .map(TaskCgroup::pids)
                .unwrap_or_default(),
            strays: reaper.strays(),
        }
    }

    fn is_empty(&self) -> bool {
        !self.group
            && !self.first
            && self.tagged.is_empty()
            && self.contained.is_empty()
            && self.strays.is_empty()
    }

    fn signal(&self, tree: &Tree, reaper: &Reaper, sig: Signal) {
        if let Some(pgid) = tree.pgid.filter(|_| self.group) {
            let _ = killpg(Pid::from_raw(pgid), sig);
        }
        for pid in self.tagged.iter().chain(&self.contained) {
            let _ = kill(Pid::from_raw(*pid), sig);
        }
        reaper.signal_strays(&self.strays, sig);
    }
}

/// How long after SIGKILL a stop waits for the tree to be gone before it gives up on it
/// (a process in uninterruptible sleep dies only when it wakes).
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Stops a task's whole tree: SIGTERM to its process group, its tagged processes, its
/// cgroup and the strays; up to `grace` for them to go, SIGTERM to each stray as it comes
/// back to the daemon; then SIGKILL (`cgroup.kill`) to whatever is left, looked for again
/// until nothing is, since a process may fork, or an orphan come back, meanwhile. Returns
/// once the tree is gone.
pub(crate) async fn terminate(tree: &Tree, reaper: &Reaper, grace: Duration) {
    let deadline = Instant::now() + grace;
    let mut left = Left::look(tree, reaper);
    left.signal(tree, reaper, Signal::SIGTERM);
    // SIGTERM does not wake a stopped process; SIGCONT lets it act on the SIGTERM.
    left.signal(tree, reaper, Signal::SIGCONT);
    let mut told = left.strays.clone();
    let mut pause = Duration::from_millis(5);
    loop {
        left = Left::look(tree, reaper);
        if left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            break;
        }
        let new: BTreeSet<Stray> = left.strays.difference(&told).copied().collect();
        if !new.is_empty() {
            reaper.signal_strays(&new, Signal::SIGTERM);
            reaper.signal_strays(&new, Signal::SIGCONT);
            told.extend(new);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
    let give_up = Instant::now() + KILL_WAIT;
    loop {
        left.signal(tree, reaper, Signal::SIGKILL);
        if let Some(cgroup) = &tree.cgroup {
            cgroup.kill();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = Left::look(tree, reaper);
        if left.is_empty() {
            return;
        }
        if Instant::now() >= give_up {
            tracing::warn!(
                "processes of {} outlived SIGKILL for {KILL_WAIT:?}: {:?}",
                tree.tag,
                left.tagged
                    .iter()
                    .chain(&left.contained)
                    .collect::<Vec<_>>()
            );
            return;
        }
    }
}

/// A process's parent and start time.
// Read from /proc only: never made elsewhere.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) struct Stat {
    pub ppid: i32,
    /// In clock ticks since boot.
    pub start: u64,
}

/// `None` when the process is gone, or elsewhere than Linux.
pub(crate) fn stat(pid: i32) -> Option<Stat> {
    procs::stat(pid)
}

/// This process's children.
pub(crate) fn children() -> Vec<i32> {
    procs::children()
}

/// The process table, as Linux shows it in `/proc`.
#[cfg(target_os = "linux")]
mod procs {
    use super::Stat;

    /// Every process but this one.
    pub fn all() -> Vec<i32> {
        let me = std::process::id() as i32;
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
            .filter(|pid| *pid != me)
            .collect()
    }

    /// A process's environment, NUL-separated; `None` when it is gone or not ours to read.
    pub fn environ(pid: i32) -> Option<Vec<u8>> {
        std::fs::read(format!("/proc/{pid}/environ")).ok()
    }

    pub fn stat(pid: i32) -> Option<Stat> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "PID (COMM) STATE PPID ...": COMM may hold anything, so fields count from its
        // last ')'. The start time is field 22, the 20th after it.
        let mut fields = text.rsplit_once(')')?.1.split_whitespace();
        let ppid = fields.nth(1)?.parse().ok()?;
        let start = fields.nth(17)?.parse().ok()?;
        Some(Stat { ppid, start })
    }

    /// This process's children, from every one of its threads.
    pub fn children() -> Vec<i32> {
        let Ok(threads) = std::fs::read_dir("/proc/self/task") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for t in threads.flatten() {
            if let Ok(list) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(
                    list.split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok()),
                );
            }
        }
        out
    }
}

/// Without `/proc`, no process can be found by its tag: the process group is all there is.
#[cfg(not(target_os = "linux"))]
mod procs {
    pub fn all() -> Vec<i32> {
        Vec::new()
    }

    pub fn environ(_pid: i32) -> Option<Vec<u8>> {
        None
    }

    pub fn children() -> Vec<i32> {
        Vec::new()
    }

    pub fn stat(_pid: i32) -> Option<super::Stat> {
        None
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn a_process_stat_gives_its_parent_and_start() {
        let me = super::stat(std::process::id() as i32).unwrap();
        assert_eq!(me.ppid, nix::unistd::getppid().as_raw());
        assert!(me.start > 0);
        let parent = super::stat(me.ppid).unwrap();
        assert!(parent.start <= me.start, "a parent starts first");
    }
}
