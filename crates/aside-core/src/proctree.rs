//! Finding and killing every process of a task.
//!
//! Each task's processes run in their own process group and carry an environment tag
//! (`ASIDE_TASK_TAG=<instance>-<id>`) inherited by all their descendants. The group catches
//! ordinary children; the tag catches those that left the group with setsid(), including
//! after the daemon itself was killed and restarted. Only processes carrying this state
//! directory's tag, or in a task's own process group, are ever signalled. Finding tagged
//! processes reads `/proc`, so it works on Linux only; elsewhere the group is all there is.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

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

fn signal_all(pgid: Option<i32>, pids: &BTreeSet<i32>, sig: Signal) {
    if let Some(pgid) = pgid {
        let _ = killpg(Pid::from_raw(pgid), sig);
    }
    for pid in pids {
        let _ = kill(Pid::from_raw(*pid), sig);
    }
}

/// Sends SIGTERM to the group and every tagged process, waits up to `grace` for them to go,
/// then SIGKILLs whatever is left (found again, since some may have forked meanwhile).
pub async fn terminate(pgid: Option<i32>, tag: &str, grace: Duration) {
    let tagged_now = tagged(tag);
    signal_all(pgid, &tagged_now, Signal::SIGTERM);
    // SIGTERM does not wake a stopped process; SIGCONT lets it act on the SIGTERM.
    signal_all(pgid, &tagged_now, Signal::SIGCONT);
    let deadline = tokio::time::Instant::now() + grace;
    let mut pause = Duration::from_millis(5);
    loop {
        let left = tagged(tag);
        let group = pgid.is_some_and(group_alive);
        if left.is_empty() && !group {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            signal_all(pgid.filter(|_| group), &left, Signal::SIGKILL);
            // A process may fork between the scan and the kill; one more sweep catches it.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let again = tagged(tag);
            signal_all(pgid, &again, Signal::SIGKILL);
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// The process table, as Linux shows it in `/proc`.
#[cfg(target_os = "linux")]
mod procs {
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
}
