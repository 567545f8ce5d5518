//! The task's processes as the supervisor finds them: its process group, its cgroup (where
//! it has one), and the supervisor's own children. The supervisor is the subreaper of the
//! tree, so anything that leaves the group (setsid, a double fork) comes back to it as a
//! child once its parent dies: nothing of the task can outlive a stop for long.

use std::fs;
use std::io::Write;

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

pub(crate) struct Tree {
    pub pgid: i32,
    /// The task's cgroup folder.
    pub cgroup: Option<String>,
}

impl Tree {
    /// Whether anything of it is left.
    pub fn alive(&self) -> bool {
        killpg(Pid::from_raw(self.pgid), None).is_ok()
            || !children().is_empty()
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

    /// Removes the (empty) cgroup; refused while anything is left in it.
    pub fn remove_cgroup(&self) {
        if let Some(dir) = &self.cgroup {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// The supervisor's children (it has one thread).
fn children() -> Vec<i32> {
    let me = std::process::id();
    fs::read_to_string(format!("/proc/{me}/task/{me}/children"))
        .map(|t| t.split_whitespace().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default()
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
