//! Finding and killing every process of a task.
//!
//! Each task's processes run in their own process group and carry an environment tag
//! (`ASIDE_TASK_TAG=<instance>-<id>`) inherited by all their descendants. The group catches
//! ordinary children; the tag catches those that left the group with setsid(), including
//! after the daemon itself was killed and restarted. Only processes carrying this state
//! directory's tag, or in a task's own process group, are ever signalled.

use std::collections::BTreeSet;
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
    let me = std::process::id() as i32;
    let mut found = BTreeSet::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid != me && has_tag(pid, &needle) {
            found.insert(pid);
        }
    }
    found
}

fn has_tag(pid: i32, needle: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|b| *b == 0).any(|var| var == needle.as_bytes()))
        .unwrap_or(false)
}

/// Children of this process (re-parented orphans included) that carry `tag`.
pub fn tagged_children(tag: &str) -> BTreeSet<i32> {
    let needle = format!("{TAG_VAR}={tag}");
    let mut found = BTreeSet::new();
    let Ok(threads) = std::fs::read_dir("/proc/self/task") else {
        return found;
    };
    for t in threads.flatten() {
        let Ok(list) = std::fs::read_to_string(t.path().join("children")) else {
            continue;
        };
        for pid in list
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            if has_tag(pid, &needle) {
                found.insert(pid);
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
