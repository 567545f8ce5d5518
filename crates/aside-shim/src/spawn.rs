//! Starting the task's first process: its output on a pipe or a terminal, its input from
//! `/dev/null`, a pipe or that terminal, its own process group (a session of its own on a
//! terminal), and born in its cgroup. By `clone3` where the kernel has it (`clone`), else by
//! std's spawn.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{killpg, pthread_sigmask, signal, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;

use crate::input::InputEnd;
use crate::wire::{FromShim, Input, Launch};

mod clone;

/// The task's first process, started.
pub(crate) struct Spawned {
    pub pid: i32,
    /// Where its output comes out: a pipe's read end or the terminal's master side,
    /// non-blocking.
    pub output: OwnedFd,
    pub input: Option<InputEnd>,
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

fn fail(error: String) -> FromShim {
    FromShim::SpawnFailed {
        error,
        not_found: false,
    }
}

/// The task's ends of its standard input, output and error, and the supervisor's.
struct Ends {
    /// The child's stdin, and its stdout, which is its stderr too.
    stdin: OwnedFd,
    stdout: OwnedFd,
    /// Where its output comes out.
    output: OwnedFd,
    input: Option<InputEnd>,
    /// A terminal task leads a session of its own (its terminal is its stdin too).
    session: bool,
}

impl Ends {
    fn open(l: &Launch) -> Result<Self, FromShim> {
        match l.input {
            Input::Pty { cols, rows } => {
                let (master, slave) = open_pty(cols, rows)?;
                let input = InputEnd::new(dup(&master)?, true);
                Ok(Self {
                    stdin: dup(&slave)?,
                    stdout: slave,
                    output: master,
                    input: Some(input),
                    session: true,
                })
            }
            Input::Pipe | Input::None => {
                let (read_end, write_end) = pipe()?;
                // A larger pipe means fewer wake-ups for chatty commands; failing to grow it
                // is harmless.
                let _ = fcntl(&read_end, FcntlArg::F_SETPIPE_SZ(1 << 20));
                let (stdin, input) = match l.input {
                    Input::Pipe => {
                        let (stdin, ours) = pipe()?;
                        (stdin, Some(InputEnd::new(ours, false)))
                    }
                    _ => {
                        let null = File::open("/dev/null")
                            .map_err(|e| fail(format!("cannot open /dev/null: {e}")))?;
                        (OwnedFd::from(null), None)
                    }
                };
                Ok(Self {
                    stdin,
                    stdout: write_end,
                    output: read_end,
                    input,
                    session: false,
                })
            }
        }
    }
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd, FromShim> {
    fd.try_clone()
        .map_err(|e| fail(format!("cannot duplicate a descriptor: {e}")))
}

/// Set (to anything) in a supervisor's environment, it starts tasks with std's spawn only:
/// how the tests reach the path taken where `clone3` is refused.
pub const STD_SPAWN_VAR: &str = "ASIDE_SHIM_STD_SPAWN";

fn clone_allowed() -> bool {
    static ALLOWED: OnceLock<bool> = OnceLock::new();
    *ALLOWED.get_or_init(|| std::env::var_os(STD_SPAWN_VAR).is_none())
}

pub(crate) fn spawn(l: &Launch) -> Result<Spawned, FromShim> {
    let ends = Ends::open(l)?;
    let plan = clone_allowed().then(|| {
        clone::Plan::new(
            &l.program,
            &l.args,
            &l.env,
            &l.cwd,
            [&ends.stdin, &ends.stdout, &ends.stdout].map(|fd| fd.as_raw_fd()),
            ends.session,
        )
    });
    let started = match plan.flatten() {
        Some(plan) => {
            let group = l.cgroup.as_deref().and_then(|dir| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_DIRECTORY)
                    .open(dir)
                    .ok()
            });
            clone::start(&plan, group.as_ref())
        }
        // A NUL byte in an argument or a variable (std's spawn says so), or no clone3 asked.
        None => clone::Started::Unsupported,
    };
    let Ends {
        stdin,
        stdout,
        output,
        input,
        session,
    } = ends;
    let pid = match started {
        clone::Started::Running(pid) => pid,
        clone::Started::Failed(e) => return Err(spawn_error(l, e)),
        clone::Started::Unsupported => with_std(l, stdin, stdout, session)?,
    };
    // Closing this process's copies of the task's ends (the pipe's write end, the terminal's
    // slave side) here means the output ends once the task's processes are gone.
    let _ = fcntl(&output, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
    if let Some(i) = &input {
        let _ = fcntl(i.fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
    }
    Ok(Spawned { pid, output, input })
}

fn spawn_error(l: &Launch, e: std::io::Error) -> FromShim {
    let not_found = e.kind() == ErrorKind::NotFound;
    let error = match not_found {
        true => format!("{}: command not found", l.program),
        false => format!("{}: {e}", l.program),
    };
    FromShim::SpawnFailed { error, not_found }
}

/// Starts the task with std's spawn (glibc's posix_spawn), where `clone3` is not to be had:
/// the supervisor steps into the task's group for it (see [`Join`]). Its pid.
/// `stdout` is its stderr too.
fn with_std(l: &Launch, stdin: OwnedFd, stdout: OwnedFd, session: bool) -> Result<i32, FromShim> {
    let mut cmd = Command::new(&l.program);
    cmd.env_clear()
        .envs(l.env.iter().map(|(k, v)| (k, v)))
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

fn pipe() -> Result<(OwnedFd, OwnedFd), FromShim> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| fail(format!("cannot create a pipe: {e}")))
}

/// A new terminal of this size: (master, slave), both close-on-exec.
fn open_pty(cols: u16, rows: u16) -> Result<(OwnedFd, OwnedFd), FromShim> {
    let size = nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None)
        .map_err(|e| fail(format!("cannot open a terminal: {e}")))?;
    for fd in [&pty.master, &pty.slave] {
        fcntl(fd, FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))
            .map_err(|e| fail(format!("cannot set up a terminal: {e}")))?;
    }
    Ok((pty.master, pty.slave))
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
