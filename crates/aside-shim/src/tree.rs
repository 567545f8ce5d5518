//! The task's processes as the supervisor finds them: its process group, its cgroup (where
//! it has one), and the supervisor's own children. The supervisor is the subreaper of the
//! tree, so anything that leaves the group (setsid, a double fork) comes back to it as a
//! child once its parent dies: nothing of the task can outlive a stop for long. A pause must
//! reach such a process while its parent still lives, so it also looks for the task's tag.

use std::fs;
use std::io::Write;

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// The variable every process of a task inherits, `ASIDE_TASK_TAG=<instance>-<id>` (the
/// engine's `proctree::TAG_VAR`).
pub const TAG_VAR: &str = "ASIDE_TASK_TAG";

pub(crate) struct Tree {
    pub pgid: i32,
    /// The task's cgroup folder.
    pub cgroup: Option<String>,
    /// The value of the task's [`TAG_VAR`], when its environment has one.
    pub tag: Option<String>,
}

impl Tree {
    /// Whether anything of it is left: the supervisor is the subreaper of the tree, so
    /// whatever is left of it is one of its children or below one (asked with one system
    /// call); its group and its cgroup are looked at too.
    pub fn alive(&self) -> bool {
        has_children()
            || killpg(Pid::from_raw(self.pgid), None).is_ok()
            || self.cgroup.as_deref().is_some_and(populated)
    }

    pub fn signal(&self, sig: Signal) {
        let _ = killpg(Pid::from_raw(self.pgid), sig);
        for pid in children() {
            let _ = kill(Pid::from_raw(pid), sig);
        }
        if let Some(dir) = &self.cgroup {
            if sig == Signal::SIGKILL && kill_file(dir) {
                return;
            }
            for pid in pids(dir) {
                let _ = kill(Pid::from_raw(pid), sig);
            }
        }
    }

    /// Stops (`paused`) or continues every process of the task: its group, the supervisor's
    /// children, its cgroup, what carries its tag, and `foreground`, a terminal's foreground
    /// group (a job that a shell on the terminal started in a group of its own). Stopping
    /// goes twice, so that a process forked while the first pass ran is caught by the
    /// second; continuing starts with the foreground job, so that its shell, continued
    /// after it, finds it running rather than stopped.
    pub fn pause(&self, foreground: Option<Pid>, paused: bool) {
        let sig = if paused {
            Signal::SIGSTOP
        } else {
            Signal::SIGCONT
        };
        let job = || {
            if let Some(group) = foreground.filter(|g| g.as_raw() != self.pgid) {
                let _ = killpg(group, sig);
            }
        };
        if !paused {
            job();
        }
        for _ in 0..if paused { 2 } else { 1 } {
            self.signal(sig);
            if let Some(tag) = &self.tag {
                let me = std::process::id() as i32;
                for pid in tagged(tag).into_iter().filter(|p| *p != me) {
                    let _ = kill(Pid::from_raw(pid), sig);
                }
            }
            if paused {
                job();
            }
        }
    }
}

/// Whether the supervisor has a child, running or not yet reaped.
fn has_children() -> bool {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    !matches!(waitid(Id::All, flags), Err(Errno::ECHILD))
}

/// Nothing the last task started is left (not even a zombie): the supervisor is as it was.
pub(crate) fn childless() -> bool {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Err(Errno::ECHILD) => return true,
            Err(Errno::EINTR) => {}
            // A zombie reaped: look again.
            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => {}
            Ok(_) | Err(_) => return false,
        }
    }
}

/// The supervisor's children (it has one thread).
fn children() -> Vec<i32> {
    let me = std::process::id();
    fs::read_to_string(format!("/proc/{me}/task/{me}/children"))
        .map(|t| {
            t.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Processes whose environment holds exactly `TAG_VAR=tag` (those of other users cannot be
/// read, and are not the task's).
fn tagged(tag: &str) -> Vec<i32> {
    let needle = format!("{TAG_VAR}={tag}");
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
        })
        .collect()
}

fn pids(dir: &str) -> Vec<i32> {
    fs::read_to_string(format!("{dir}/cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

fn populated(dir: &str) -> bool {
    fs::read_to_string(format!("{dir}/cgroup.events"))
        .is_ok_and(|t| t.lines().any(|l| l == "populated 1"))
}

/// `cgroup.kill` (Linux 5.14 and later); `false` where there is none.
fn kill_file(dir: &str) -> bool {
    fs::OpenOptions::new()
        .write(true)
        .open(format!("{dir}/cgroup.kill"))
        .and_then(|mut f| f.write_all(b"1"))
        .is_ok()
}
