//! Children that leave every trace of their task behind (`env -i` clears the tag, `setsid`
//! leaves the process group) still die with the task: by its cgroup where the daemon can make
//! one, by the subreaper fallback where it cannot. Each test runs twice: with the cgroups the
//! machine offers, and with the daemon in a mount namespace that has no cgroup v2 mount.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::support::*;

/// Which cgroups the test's daemon sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cgroups {
    /// Whatever the machine has: a group per task where cgroup v2 is writable.
    AsIs,
    /// None: the daemon runs where no cgroup v2 is mounted, so only the fallback holds.
    Hidden,
}

/// The test's environment, its daemon started as `mode` asks; `None` (the reason printed)
/// when the machine cannot hide cgroups from a daemon (that needs a mount namespace: root).
pub(crate) fn setup(mode: Cgroups) -> Option<Aside> {
    let a = Aside::new();
    if mode == Cgroups::AsIs {
        return Some(a);
    }
    let mounts = cgroup2_mounts();
    let unmount: Vec<String> = mounts.iter().map(|m| format!("umount -l '{m}'")).collect();
    let unmount = if unmount.is_empty() {
        "true".to_string()
    } else {
        unmount.join(" && ")
    };
    let ns = ["unshare", "-m", "--propagation", "private"];
    let probe = std::process::Command::new(ns[0])
        .args(&ns[1..])
        .args(["sh", "-c", &unmount])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipped: cannot start a daemon without cgroup v2 mounts here (unshare -m)");
        return None;
    }
    a.spawn_daemon_wrapped(&ns, &format!("{unmount} || exit 1"));
    Some(a)
}

/// Where cgroup v2 is mounted, from /proc/self/mountinfo (mount points with escaped
/// characters are left out: the test's own paths have none).
fn cgroup2_mounts() -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let point = before.split_whitespace().nth(4)?;
            (after.split_whitespace().next() == Some("cgroup2") && !point.contains('\\'))
                .then(|| point.to_string())
        })
        .collect()
}

/// Whether `pid` sits in a task group of an aside daemon.
pub(crate) fn in_task_group(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .any(|l| {
            l.starts_with("0::")
                && l.contains("/aside-")
                && (l.contains("/task-") || l.contains("/sup-"))
        })
}

/// A `sleep` the task starts with a duration no other process has (`600.<digits>`), found
/// in /proc by that argument. Whatever is left of it when the test ends is killed by pid.
struct Escapee {
    arg: String,
}

impl Escapee {
    fn new() -> Self {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        Self {
            arg: format!("600.{:09}", h.finish() % 1_000_000_000),
        }
    }

    /// Its live (non-zombie) processes.
    fn pids(&self) -> Vec<i32> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == self.arg.as_bytes()))
            })
            .filter(|pid| !is_dead(*pid))
            .collect()
    }

    /// Waits until it runs; its pid.
    fn running(&self) -> i32 {
        let mut pids = Vec::new();
        let found = eventually(SOON, || {
            pids = self.pids();
            !pids.is_empty()
        });
        assert!(found, "sleep {} never started", self.arg);
        pids[0]
    }

    /// Asserts it is gone, after waiting up to `limit`.
    fn assert_gone(&self, limit: Duration, what: &str) {
        let gone = eventually(limit, || self.pids().is_empty());
        assert!(
            gone,
            "{what}: sleep {} survived: {:?}",
            self.arg,
            self.pids()
        );
    }
}

impl Drop for Escapee {
    fn drop(&mut self) {
        for pid in self.pids() {
            kill(pid, libc::SIGKILL);
        }
    }
}

/// `aside run --bg -- SCRIPT` (one argument: the daemon runs it with `sh -c`): its id.
fn bg(a: &Aside, flags: &[&str], script: &str) -> String {
    let mut args = vec!["run", "--bg"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", script]);
    a.ok(&args).text().trim().to_string()
}

/// The daemon's way of containing tasks shows on an escapee: in a task group, or not where
/// cgroups are hidden from it.
fn check_mode(mode: Cgroups, pid: i32) {
    let contained = in_task_group(pid);
    if mode == Cgroups::Hidden {
        assert!(!contained, "the daemon made a task group without cgroup v2");
    }
    eprintln!("{mode:?}: task group {contained}");
}

fn stop(mode: Cgroups) {
    let Some(a) = setup(mode) else { return };
    let e = Escapee::new();
    // The issue's own command.
    let id = bg(
        &a,
        &[],
        &format!("env -i setsid sleep {} & sleep 600", e.arg),
    );
    check_mode(mode, e.running());
    let rec = a.ok(&["stop", &id, "--json"]).json()[0].clone();
    assert_eq!(rec["state"], "cancelled", "{rec}");
    // stop answers once the whole tree is gone.
    e.assert_gone(Duration::ZERO, "when stop returned");
}

#[test]
fn stop_kills_a_child_with_a_cleared_environment_in_its_own_session() {
    stop(Cgroups::AsIs);
}

#[test]
fn stop_kills_a_child_with_a_cleared_environment_without_cgroups() {
    stop(Cgroups::Hidden);
}

fn timeout(mode: Cgroups) {
    let Some(a) = setup(mode) else { return };
    let e = Escapee::new();
    let gate = a.path("escaped");
    let id = bg(
        &a,
        &["--timeout", "3s"],
        &format!(
            "env -i setsid sh -c 'touch {g}; exec sleep {}' & sleep 600",
            e.arg,
            g = gate.display()
        ),
    );
    let end = a.wait_end(&id);
    assert_eq!(end["state"], "timed_out", "{end}");
    assert!(gate.exists(), "the escapee never started within 3 s");
    e.assert_gone(Duration::ZERO, "when the task timed out");
}

#[test]
fn a_timeout_kills_a_child_with_a_cleared_environment_in_its_own_session() {
    timeout(Cgroups::AsIs);
}

#[test]
fn a_timeout_kills_a_child_with_a_cleared_environment_without_cgroups() {
    timeout(Cgroups::Hidden);
}

fn own_exit(mode: Cgroups) {
    let Some(a) = setup(mode) else { return };
    let e = Escapee::new();
    let gate = a.path("escaped");
    let id = bg(
        &a,
        &[],
        &format!(
            "env -i setsid sh -c 'touch {g}; exec sleep {}' & \
             while [ ! -e {g} ]; do sleep 0.01; done; exit 0",
            e.arg,
            g = gate.display()
        ),
    );
    let end = a.wait_end(&id);
    assert_eq!(end["state"], "succeeded", "{end}");
    // What a task leaves is swept beside its result, not before it.
    e.assert_gone(SOON, "after the task exited");
}

#[test]
fn a_child_with_a_cleared_environment_dies_when_its_task_exits() {
    own_exit(Cgroups::AsIs);
}

#[test]
fn a_child_with_a_cleared_environment_dies_when_its_task_exits_without_cgroups() {
    own_exit(Cgroups::Hidden);
}

/// Another task's end must not kill what a task still running left, even where no trace
/// tells whose it is: the fallback spares an orphan that a running task may have started.
fn neighbours(mode: Cgroups) {
    let Some(a) = setup(mode) else { return };
    let old = Escapee::new();
    let young = Escapee::new();
    // The inner shell exits at once: its child is re-parented to the daemon while A runs.
    let first = bg(
        &a,
        &[],
        &format!(
            "sh -c 'env -i setsid sleep {} >/dev/null 2>&1 &'; sleep 600",
            old.arg
        ),
    );
    let old_pid = old.running();
    check_mode(mode, old_pid);

    // A second task leaves the same kind of child and ends.
    let second = a.run(&[
        "run",
        "--",
        "sh",
        "-c",
        &format!("env -i setsid sleep {} >/dev/null 2>&1 &", young.arg),
    ]);
    assert_eq!(second.code, 0, "{second:?}");
    // Its own supervisor is the subreaper of the second task's tree: the orphan comes back
    // to it, and goes with that task's end, cgroup or not.
    young.assert_gone(SOON, "the second task's end");
    // Give a wrong sweep the time to act.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        old.pids(),
        vec![old_pid],
        "another task's end killed a running task's child"
    );
    assert_eq!(a.state(&first), "running");

    a.ok(&["stop", &first]);
    old.assert_gone(Duration::ZERO, "when stop returned");
    young.assert_gone(Duration::ZERO, "when the last task that may own it stopped");
}

#[test]
fn another_tasks_end_spares_what_a_running_task_left() {
    neighbours(Cgroups::AsIs);
}

#[test]
fn another_tasks_end_spares_what_a_running_task_left_without_cgroups() {
    neighbours(Cgroups::Hidden);
}

/// A cgroup of the test's own (beside the test process's), to start a daemon in; removed on
/// drop. `None` where the test cannot make one or move a process into it.
struct TestCgroup(std::path::PathBuf);

impl TestCgroup {
    fn new() -> Option<Self> {
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let own = own.lines().find_map(|l| l.strip_prefix("0::"))?;
        let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        // A mount of the whole hierarchy (its root "/"), which holds `own` as it is.
        let point = info.lines().find_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let mut f = before.split_whitespace().skip(3);
            let (root, point) = (f.next()?, f.next()?);
            (after.split_whitespace().next() == Some("cgroup2") && root == "/")
                .then(|| point.to_string())
        })?;
        let parent = std::path::Path::new(&point).join(own.trim_start_matches('/'));
        std::fs::OpenOptions::new()
            .write(true)
            .open(parent.join("cgroup.procs"))
            .ok()?;
        let dir = parent.join(format!("aside-it-{}", Escapee::new().arg));
        std::fs::create_dir(&dir).ok()?;
        Some(Self(dir))
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Empty of processes by now (its daemon is dead): the groups in it first, then it.
        fn remove(dir: &std::path::Path) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten().filter(|e| e.path().is_dir()) {
                    remove(&e.path());
                }
            }
            let _ = std::fs::remove_dir(dir);
        }
        remove(&self.0);
    }
}

/// The daemon and a task's supervisor killed while the task's escapee runs: the next daemon
/// kills it from the task's cgroup before it serves, even started in another cgroup (the
/// state directory says where the groups were).
#[test]
fn a_restarted_daemon_kills_what_a_lost_task_left_in_its_cgroup() {
    let elsewhere = TestCgroup::new();
    let a = Aside::new();
    if let Some(g) = &elsewhere {
        a.spawn_daemon(&format!("echo 0 > '{}/cgroup.procs'", g.0.display()));
    }
    let e = Escapee::new();
    let id = bg(
        &a,
        &[],
        &format!("env -i setsid sleep {} & sleep 600", e.arg),
    );
    let pid = e.running();
    if !in_task_group(pid) {
        eprintln!("skipped: the daemon makes no cgroups here; without, a daemon's crash lets this child go");
        return;
    }
    let shim = a.supervisor_of(&id);
    let daemon = a.daemon_pid().expect("daemon pid");
    kill(daemon, libc::SIGKILL);
    kill(shim, libc::SIGKILL);
    assert_all_dead(&[daemon, shim], SOON, "the killed daemon and supervisor");
    assert!(!is_dead(pid), "the child outlives them until the restart");

    // The next CLI call starts a new daemon (in the test's own cgroup), which recovers.
    assert_eq!(a.state(&id), "lost");
    e.assert_gone(SOON, "after the restart");
}

/// The daemon's group for its tasks' groups stays while it runs (made once, not with every
/// task) and goes when it stops, running tasks and all; with `--keep-tasks` the groups of
/// the tasks kept stay for the next daemon, which removes them once they end.
#[test]
fn a_daemon_leaves_no_cgroup_behind_when_it_stops() {
    let a = Aside::new();
    let first = a.bg("sleep 300");
    a.wait_state(&first, "running");
    let Ok(line) = std::fs::read_to_string(a.path("cgroup")) else {
        return; // No cgroups here: nothing to leave.
    };
    let group = std::path::PathBuf::from(line.trim_end());
    let tasks = |g: &std::path::Path| {
        std::fs::read_dir(g).map_or(0, |d| {
            d.flatten()
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.starts_with("task-") || name.starts_with("sup-")
                })
                .count()
        })
    };
    let ended = a.bg("true");
    a.wait_end(&ended);
    assert!(group.is_dir(), "it stays while the daemon runs");
    let second = a.bg("sleep 300");
    a.wait_state(&second, "running");
    a.ok(&["daemon", "stop", "--keep-tasks"]);
    assert_eq!(tasks(&group), 2, "the kept tasks keep their groups");
    a.ok(&["daemon", "start"]);
    assert_eq!(a.state(&first), "running");
    // Many running at the stop: each supervisor removes its task's group just after the
    // stopped task's end is acknowledged, and the daemon waits for them.
    let more: Vec<String> = (0..12).map(|_| a.bg("sleep 300")).collect();
    for id in &more {
        a.wait_state(id, "running");
    }
    a.ok(&["daemon", "stop"]);
    assert!(!group.exists(), "{} is left", group.display());
}
