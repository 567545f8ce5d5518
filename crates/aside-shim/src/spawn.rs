//! Starting the task's first process: its output on a pipe or a terminal, its input from
//! `/dev/null`, a pipe or that terminal, its own process group (a session of its own on a
//! terminal), and born in its cgroup. By `clone3` where the kernel has it (see `clone`),
//! else by std's spawn (see `with_std`).

use std::fs::File;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::OnceLock;

use nix::fcntl::{fcntl, FcntlArg, OFlag};

use crate::env::TaskEnv;
use crate::input::InputEnd;
use crate::wire::{FromShim, Input, Launch};

mod clone;
mod with_std;

/// The task's first process, started.
pub(crate) struct Spawned {
    pub pid: i32,
    /// Where its output comes out: a pipe's read end or the terminal's master side,
    /// non-blocking.
    pub output: OwnedFd,
    pub input: Option<InputEnd>,
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
const STD_SPAWN_VAR: &str = "ASIDE_SHIM_STD_SPAWN";

fn clone_allowed() -> bool {
    static ALLOWED: OnceLock<bool> = OnceLock::new();
    *ALLOWED.get_or_init(|| std::env::var_os(STD_SPAWN_VAR).is_none())
}

/// Starts the task's first process, with environment `env`.
pub(crate) fn spawn(l: &Launch, env: TaskEnv<'_>) -> Result<Spawned, FromShim> {
    let ends = Ends::open(l)?;
    let plan = clone_allowed().then(|| {
        clone::Plan::new(
            &l.program,
            &l.args,
            env,
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
        clone::Started::Unsupported => with_std::with_std(l, env, stdin, stdout, session)?,
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
