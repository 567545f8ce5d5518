//! The task's first process started by std's spawn (glibc's `posix_spawn`, a vfork), where
//! `clone3` is not to be had: std cannot name a cgroup, so the supervisor steps into the
//! task's group for the moment of the spawn, and back out.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::sys::signal::{killpg, pthread_sigmask, signal, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;

use super::{dup, fail, spawn_error};
use crate::env::TaskEnv;
use crate::wire::{FromShim, Launch};

/// Starts the task with std's spawn (glibc's posix_spawn), where `clone3` is not to be had:
/// the supervisor steps into the task's group for it (see [`Join`]). Its pid.
/// `stdout` is its stderr too.
pub(super) fn with_std(
    l: &Launch,
    env: TaskEnv<'_>,
    stdin: OwnedFd,
    stdout: OwnedFd,
    session: bool,
) -> Result<i32, FromShim> {
    let mut cmd = Command::new(&l.program);
    cmd.env_clear()
        .envs(env.pairs())
        .args(&l.args)
        .current_dir(&l.cwd);
    let stderr = dup(&stdout)?;
    cmd.stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr));
    if session {
        // SAFETY: between fork and exec the hook makes async-signal-safe calls only
        // (setsid, ioctl) on the descriptors std has just put in place; it allocates
        // nothing and takes no lock.
        unsafe {
            cmd.pre_exec(|| {
                // A session of its own, led by the task's first process, with the terminal
                // as its controlling terminal: Ctrl+C, job control and SIGWINCH work.
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    } else {
        cmd.process_group(0);
    }
    // Where the cgroup cannot be entered the task runs without one, as the daemon's tasks do
    // where there are none.
    let join = Join::open(l);
    if let Join::BeforeExec(procs) = &join {
        let fd = procs.as_raw_fd();
        // SAFETY: between fork and exec the hook calls write(2) only, which is
        // async-signal-safe, on a descriptor opened before the fork; it allocates nothing
        // and takes no lock.
        unsafe {
            cmd.pre_exec(move || {
                // "0" is the writing process: the task's first process joins its group.
                libc::write(fd, b"0".as_ptr().cast(), 1);
                Ok(())
            });
        }
    }
    let inside = join.step_in();
    let spawned = with_no_signal_blocked(|| cmd.spawn());
    if let Some(Err(error)) = inside.map(Inside::leave) {
        // A supervisor left inside would be killed with the task's group: the task does not
        // run, and this supervisor serves no other (its start fails, and it exits).
        if let Ok(child) = &spawned {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
        }
        return Err(fail(error));
    }
    let child = spawned.map_err(|e| spawn_error(l, e))?;
    // Reaped through SIGCHLD, not through the Child. Dropping the command closes this
    // process's copies of the task's ends.
    Ok(child.id() as i32)
}

/// Runs `spawn` with no signal blocked, so that the process it starts has none blocked
/// either: the supervisor blocks SIGCHLD (it reads it from a signalfd) and SIGXFSZ, and a
/// spawn hands the caller's mask on to the child. A SIGCHLD that comes meanwhile may be
/// taken by its default action rather than the signalfd: the supervisor looks for ended
/// children once after the start (see `Shim::run`), so none goes unseen.
fn with_no_signal_blocked<T>(spawn: impl FnOnce() -> T) -> T {
    // A SIGXFSZ left pending by a log write past a file-size limit (during an earlier task of
    // this supervisor) would kill it once unblocked: setting a signal to be ignored discards
    // it, and the default comes back before anything can raise another.
    // SAFETY: SIG_IGN and SIG_DFL install no handler code.
    unsafe {
        let _ = signal(Signal::SIGXFSZ, SigHandler::SigIgn);
        let _ = signal(Signal::SIGXFSZ, SigHandler::SigDfl);
    }
    let mut was = SigSet::empty();
    let unblocked = pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::empty()),
        Some(&mut was),
    )
    .is_ok();
    let spawned = spawn();
    if unblocked {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&was), None);
    }
    spawned
}

/// How the task's first process comes to be born in its cgroup.
enum Join {
    /// It has none (or the group cannot be entered).
    None,
    /// The supervisor steps into the group for the spawn, then back out to `home`: the
    /// spawn can then be a `vfork` (std's `posix_spawn`), not a copy of the supervisor.
    StepIn { task: File, home: File },
    /// The child joins between fork and exec (where the supervisor's own group is unknown).
    BeforeExec(File),
}

impl Join {
    fn open(l: &Launch) -> Self {
        let procs = |dir: &str| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(format!("{dir}/cgroup.procs"))
                .ok()
        };
        let Some(task) = l.cgroup.as_deref().and_then(procs) else {
            return Join::None;
        };
        match l.home_cgroup.as_deref().and_then(procs) {
            Some(home) => Join::StepIn { task, home },
            None => Join::BeforeExec(task),
        }
    }

    /// Moves the supervisor into the task's group, if it has one to step into.
    fn step_in(&self) -> Option<Inside<'_>> {
        let Join::StepIn { task, home } = self else {
            return None;
        };
        // "0" is the writing process (the supervisor has one thread). Where it cannot go
        // in, the task starts without a group.
        let mut task = task;
        task.write_all(b"0").ok()?;
        Some(Inside { home })
    }
}

/// The supervisor inside a task's group, for a spawn.
struct Inside<'a> {
    home: &'a File,
}

impl Inside<'_> {
    /// Back to the supervisor's own group (tried twice).
    fn leave(self) -> Result<(), String> {
        let mut home = self.home;
        home.write_all(b"0")
            .or_else(|_| home.write_all(b"0"))
            .map_err(|e| format!("cannot step out of the task's cgroup: {e}"))
    }
}
