//! Starting the daemon on demand, detached from whoever starts it. A host may kill its MCP
//! server's whole process tree when it exits; the daemon and its tasks must not be in that
//! tree. So the daemon is started by a double fork: the intermediate process makes a
//! session of its own, forks the daemon and exits at once, leaving the daemon to init (or
//! the user's subreaper). The daemon runs in `/`, with stdin on /dev/null, stdout and stderr
//! on its log, and no other descriptor of its starter.
//!
//! Its starter cannot wait for a process that is not its child, so it learns the daemon's
//! pid from the intermediate and watches it: the daemon answering on the socket is success;
//! the daemon gone while the pid file names another live daemon is a lost race (several
//! clients starting one at the same moment: that one serves); gone otherwise is a failure,
//! told with the end of its log.

use std::io::{PipeWriter, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use libc::{c_int, c_uint};
use nix::errno::Errno;
use nix::unistd::{ForkResult, Pid};
use tokio::net::UnixStream;
use tokio::time::Instant;

use crate::{absent, ClientError, Launcher};

/// How long a daemon may take to answer once started.
const START_WITHIN: Duration = Duration::from_secs(10);
/// How long after the daemon it started is gone a starter still looks for the daemon that
/// beat it to the lock in the pid file (written just after the lock is taken).
const WINNER_GRACE: Duration = Duration::from_millis(500);
/// How often the starter looks.
const POLL: Duration = Duration::from_millis(3);

/// Starts the daemon and waits until its socket answers. Several clients may do this at the
/// same moment: the daemon's lock lets one serve, and the others' daemons exit while their
/// clients connect to the winner.
pub(crate) async fn start_daemon(
    socket: &Path,
    launcher: &Launcher,
) -> Result<UnixStream, ClientError> {
    let deadline = Instant::now() + START_WITHIN;
    loop {
        let ours = spawn_detached(launcher)?;
        if let Some(stream) = wait_for(socket, launcher, ours, deadline).await? {
            return Ok(stream);
        }
        // Ours lost to a daemon that ended without serving (one shutting down as ours
        // started): nobody holds the lock now.
    }
}

/// Waits for the socket while daemon `ours`, or the daemon it lost to, runs. `None`: both
/// ended and nothing answers.
async fn wait_for(
    socket: &Path,
    launcher: &Launcher,
    ours: Pid,
    deadline: Instant,
) -> Result<Option<UnixStream>, ClientError> {
    let mut ours_gone: Option<Instant> = None;
    let mut winner_seen = false;
    loop {
        match UnixStream::connect(socket).await {
            Ok(s) => return Ok(Some(s)),
            Err(e) if !absent(&e) => return Err(e.into()),
            Err(_) => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(ClientError::DaemonStart(format!(
                "no socket at {} after {} s; see {}",
                socket.display(),
                START_WITHIN.as_secs(),
                launcher.log.display()
            )));
        }
        if ours_gone.is_none() && !alive(ours) {
            ours_gone = Some(now);
        }
        if let Some(since) = ours_gone {
            let winner = holder(&launcher.pid_file).filter(|p| *p != ours && alive(*p));
            if winner.is_some() {
                winner_seen = true;
            } else if winner_seen {
                return Ok(None);
            } else if now - since >= WINNER_GRACE {
                return Err(ClientError::DaemonStart(format!(
                    "it exited; its log {} says: {}",
                    launcher.log.display(),
                    log_tail(&launcher.log)
                )));
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Starts the daemon by a double fork; its pid.
fn spawn_detached(launcher: &Launcher) -> Result<Pid, ClientError> {
    let failed = |what: &Path, e: &dyn std::fmt::Display| {
        ClientError::DaemonStart(format!("{}: {e}", what.display()))
    };
    if let Some(dir) = launcher.log.parent() {
        std::fs::create_dir_all(dir).map_err(|e| failed(dir, &e))?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&launcher.log)
        .map_err(|e| failed(&launcher.log, &e))?;
    let log2 = log.try_clone().map_err(|e| failed(&launcher.log, &e))?;
    // Both ends close on exec: the daemon keeps neither.
    let (mut report_read, report_write) =
        std::io::pipe().map_err(|e| ClientError::DaemonStart(e.to_string()))?;
    let program = program_path(&launcher.program);
    let fd_limit = fd_limit();
    let mut cmd = Command::new(&program);
    cmd.args(&launcher.args)
        .envs(launcher.env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2));
    // SAFETY: `detach` runs between fork and exec and makes only async-signal-safe calls;
    // see there.
    unsafe {
        cmd.pre_exec(move || detach(&report_write, fd_limit));
    }
    let spawned = cmd.spawn();
    // The closure holds the starter's copy of the write end: reading ends once the
    // intermediate has exited and the daemon has exec'd.
    drop(cmd);
    // `spawn` returns once the daemon has exec'd, or with the error its exec failed with.
    let mut intermediate = spawned.map_err(|e| failed(&program, &e))?;
    let mut report = Vec::new();
    let read = report_read.read_to_end(&mut report);
    // It exits as soon as it has forked: reaped here, it leaves no zombie.
    let _ = intermediate.wait();
    read.map_err(|e| ClientError::DaemonStart(e.to_string()))?;
    let pid: [u8; 4] = report.as_slice().try_into().map_err(|_| {
        ClientError::DaemonStart(format!(
            "its launch did not report its pid; see {}",
            launcher.log.display()
        ))
    })?;
    Ok(Pid::from_raw(i32::from_ne_bytes(pid)))
}

/// Runs in the child between fork and exec, where the starter may have had other threads:
/// only async-signal-safe calls, no allocation, no lock.
fn detach(report: &PipeWriter, fd_limit: c_int) -> std::io::Result<()> {
    // A session of its own: no controlling terminal, out of the starter's process group and
    // its signals.
    nix::unistd::setsid()?;
    // SAFETY: fork is async-signal-safe (POSIX.1-2008), and this process has a single thread
    // (fork copies only the caller), so no lock can be held by a thread that is not here.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => {
            // Tells the starter the daemon's pid, then leaves at once: the daemon, an orphan,
            // goes to init (or the user's subreaper), out of the starter's tree. Not being a
            // session leader, it can never acquire a controlling terminal.
            let _ = nix::unistd::write(report, &child.as_raw().to_ne_bytes());
            // SAFETY: _exit is async-signal-safe and runs no exit handler or destructor of
            // the starter's copied memory.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Child => {}
    }
    close_on_exec_from(3, fd_limit);
    Ok(())
}

/// Marks every descriptor from `first` on close-on-exec, so that the daemon inherits none a
/// starter left open without that flag (stdin, stdout and stderr are already its own).
/// Marked rather than closed: the pipe on which the child reports a failed exec to the
/// starter must stay open until the exec.
fn close_on_exec_from(first: c_int, fd_limit: c_int) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: close_range (Linux 5.11 for this flag) takes plain integers and only sets
        // descriptor flags; a raw system call is async-signal-safe.
        let done = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                first as c_uint,
                c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        } == 0;
        if done {
            return;
        }
    }
    for fd in first..fd_limit {
        // SAFETY: fcntl is async-signal-safe; on a number that is no open descriptor it
        // fails with EBADF and does nothing.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}

/// One more than the highest descriptor number this process can have, for the fallback
/// loop of [`close_on_exec_from`]; read before the fork.
fn fd_limit() -> c_int {
    let open_max = nix::unistd::sysconf(nix::unistd::SysconfVar::OPEN_MAX)
        .ok()
        .flatten()
        .unwrap_or(1024);
    open_max.clamp(1024, 1 << 20) as c_int
}

/// The program as the daemon's exec finds it from `/`: a relative path with a directory in
/// it is made absolute against the starter's directory; a bare name is looked up in PATH.
fn program_path(program: &Path) -> PathBuf {
    if program.is_relative() && program.components().count() > 1 {
        if let Ok(absolute) = std::path::absolute(program) {
            return absolute;
        }
    }
    program.to_path_buf()
}

/// Whether `pid` is a live process; a zombie (ended, not yet reaped by its new parent)
/// counts as gone.
fn alive(pid: Pid) -> bool {
    match nix::sys::signal::kill(pid, None) {
        Ok(()) | Err(Errno::EPERM) => !zombie(pid),
        Err(_) => false,
    }
}

#[cfg(target_os = "linux")]
fn zombie(pid: Pid) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_none_or(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
        })
        .unwrap_or(true)
}

/// Elsewhere a zombie shows as alive until its new parent reaps it, which init does soon.
#[cfg(not(target_os = "linux"))]
fn zombie(_pid: Pid) -> bool {
    false
}

/// The pid the daemon holding the lock wrote in the pid file.
fn holder(pid_file: &Path) -> Option<Pid> {
    let text = std::fs::read_to_string(pid_file).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    (pid > 0).then(|| Pid::from_raw(pid))
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}
