//! Shell tasks under a supervisor of their own (`aside-shim`), so that they outlive the
//! engine: the supervisor holds the task's processes and writes its log; the engine tells it
//! to stop, hears the output grow and the task end, and acknowledges the end once it is
//! durable. A new engine finds the supervisors of the tasks it recorded as running through
//! their sockets in the state directory's private `run` folder, and adopts them.
//!
//! A supervisor is known by a connection on its socket: the kernel gives the peer's user
//! and the supervisor names its task in its hello. No stored pid is ever signalled. How a
//! launch reaches a supervisor (an idle one, or one the keeper forks) is in `handoff`.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aside_protocol::{Failure, Input, TaskId, TermSize};
use aside_shim::wire::{self, Cause, End, FromShim, Launch, ToShim};
use nix::errno::Errno;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::abort::{Abort, AbortReason};
use crate::cgroup::TaskCgroup;
use crate::console::Console;
use crate::output::Output;
use crate::proctree::{self, Tree};
use crate::program;
use crate::reaper::{Exit, Reaper};
use crate::run::{RunFuture, RunOutcome};
use crate::shell::{self, Env, ShellLaunch};
use crate::Engine;

mod handoff;
mod line;

use line::By;

/// How long a supervisor may take to answer: its start, or its hello to a new engine.
const ANSWER_WAIT: Duration = Duration::from_secs(10);
/// A supervisor that took the connection answers at once; one on a thrashing machine may
/// take long, and is not given up on lightly: giving up kills its task.
const HELLO_WAIT: Duration = Duration::from_secs(10);
/// The longest line a supervisor sends.
const MAX_LINE: usize = 64 << 10;

/// Where the supervisors of one state directory are, the program that is one, and the
/// keeper that forks them.
pub(crate) struct Supervisors {
    program: PathBuf,
    run: PathBuf,
    /// The daemon's end of its keeper's socket; started with the first task.
    keeper: Mutex<Option<OwnedFd>>,
    /// Supervisors whose last task is over, newest last: the next launch goes to one of them
    /// on its connection, without the keeper.
    idle: Mutex<Vec<handoff::Resting>>,
    /// The daemon's environment without what it holds for itself: the base of every task
    /// that brings none. Read once: the daemon's environment does not change.
    daemon_env: OnceLock<Env>,
}

/// What a new engine finds of a task it recorded as running.
pub(crate) enum Found {
    /// Its supervisor answered: the task runs on.
    Running(Adopted),
    /// It ended while no engine was there.
    Ended(End),
    /// Its supervisor is gone without a word: the task is lost.
    Gone,
}

pub(crate) struct Adopted {
    stream: UnixStream,
    pub total: u64,
    pub cgroup: Option<String>,
    /// A terminal task's size now.
    pub size: Option<TermSize>,
    /// Input the supervisor wrote to the task so far.
    pub input_done: u64,
    /// The supervisor's wire version: older ones take no input or signals, or do not pause.
    pub version: u32,
    /// The supervisor paused the task (and did not resume it).
    pub paused: bool,
}

/// A supervised task, started: its first process's pid, the future that follows it, and its
/// console.
pub(crate) struct Launched {
    pub pid: u32,
    pub run: RunFuture,
    pub console: Arc<Console>,
}

impl Supervisors {
    /// The `run` folder in `home` is made private (0700).
    pub fn open(program: PathBuf, home: &Path) -> std::io::Result<Self> {
        let run = home.join("run");
        match std::fs::create_dir(&run) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700))?;
        Ok(Self {
            program,
            run,
            keeper: Mutex::new(None),
            idle: Mutex::new(Vec::new()),
            daemon_env: OnceLock::new(),
        })
    }

    pub fn socket(&self, id: TaskId) -> PathBuf {
        self.run.join(format!("{id}.sock"))
    }

    fn status(&self, id: TaskId) -> PathBuf {
        self.run.join(format!("{id}.end"))
    }

    /// Forgets what a supervisor left once its end is recorded.
    pub fn clear(&self, id: TaskId) {
        let _ = std::fs::remove_file(self.status(id));
        let _ = std::fs::remove_file(self.socket(id));
    }

    /// Removes what supervisors left for tasks that are not `live`.
    pub fn sweep(&self, live: impl Fn(TaskId) -> bool) {
        let Ok(entries) = std::fs::read_dir(&self.run) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            // An idle supervisor's socket under the name earlier versions set it aside as, left
            // by one that was killed. (Now an idle one keeps its last task's name: swept below
            // with the other tasks that are not live.)
            if let Some(pid) = name.to_str().and_then(aside_shim::listen::idle_owner) {
                if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                    == Err(Errno::ESRCH)
                {
                    let _ = std::fs::remove_file(e.path());
                }
                continue;
            }
            let Some(id) = name
                .to_str()
                .and_then(|n| n.split('.').next())
                .and_then(|n| n.parse::<TaskId>().ok())
            else {
                continue;
            };
            if !live(id) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Starts `l`'s task under a new supervisor. Blocks until the task's first process runs
    /// (or could not be started): about as long as starting it directly.
    pub fn launch(
        self: &Arc<Self>,
        reaper: &Arc<Reaper>,
        engine: &Engine,
        id: TaskId,
        l: ShellLaunch<'_>,
        input: Input,
        cap: u64,
    ) -> Result<Launched, Failure> {
        let (program, args) = shell::program_and_args(l.command)?;
        let Some(path) = program::resolve(program, l.env, l.env_extra, Path::new(l.cwd)) else {
            return Err(spawn_failure(format!("{program}: command not found"), true));
        };
        let (base, mut own) = shell::task_env_parts(&l, || {
            let env = || Arc::new(shell::daemon_env(l.hidden));
            self.daemon_env.get_or_init(env).clone()
        });
        with_term(&mut own, input);
        let mut launch = Launch {
            version: wire::LAUNCH,
            task: id.get(),
            program: path.display().to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            // Set for the supervisor that takes it (`line_for`).
            base: wire::Base::Kept,
            own,
            cwd: l.cwd.to_string(),
            // Set for the supervisor that takes it (`line_for`).
            cgroup: None,
            home_cgroup: None,
            logs: l
                .output
                .path()
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            log: l
                .output
                .path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            socket: self.socket(id).display().to_string(),
            status: self.status(id).display().to_string(),
            cap,
            reserve: aside_store::RESERVE_BYTES,
            drain_ms: l.drain.as_millis() as u64,
            grace_ms: l.kill_grace.as_millis() as u64,
            input: match input {
                Input::None => wire::Input::None,
                Input::Pipe => wire::Input::Pipe,
                Input::Pty(size) => wire::Input::Pty {
                    cols: size.cols,
                    rows: size.rows,
                },
            },
        };
        let home = l.cgroups.map(|c| c.home_dir().display().to_string());
        let mut line_for = |group: Option<&TaskCgroup>, has_base: bool| {
            launch.cgroup = group.map(|g| g.dir().display().to_string());
            launch.home_cgroup = group.and(home.clone());
            launch.base = match has_base {
                true => wire::Base::Kept,
                false => wire::Base::Given(base.to_vec()),
            };
            wire::line(&launch)
        };
        let (ours, cgroup) = match self.hand_to_idle(l.cgroups, &base, &mut line_for) {
            Some(taken) => taken,
            None => {
                let group = l.cgroups.and_then(|c| c.create_for_supervisor());
                let line = line_for(group.as_ref(), false);
                (self.hand_to_new(reaper, &line)?, group)
            }
        };
        let pid = started(&ours).map_err(|(error, not_found)| spawn_failure(error, not_found))?;
        let stream = ours
            .set_nonblocking(true)
            .and_then(|()| tokio::net::UnixStream::from_std(ours))
            .map_err(|e| {
                spawn_failure(format!("cannot follow the task's supervisor: {e}"), false)
            })?;
        let (console, inbox) = Console::new(id, input, None, 0, wire::VERSION);
        let fut = follow(
            stream,
            Following {
                console: console.clone(),
                inbox,
                engine: engine.clone(),
                id,
                output: l.output,
                abort: l.abort,
                tree: Tree {
                    pgid: None,
                    tag: l.tag,
                    cgroup,
                },
                grace: l.kill_grace,
                reaper: reaper.clone(),
            },
            Some(handoff::Reuse {
                supervisors: self.clone(),
                base,
            }),
        );
        Ok(Launched {
            pid,
            run: Box::pin(fut),
            console,
        })
    }

    /// Looks for the supervisor of task `id`, recorded as running by a previous engine.
    pub fn find(&self, id: TaskId) -> Found {
        if let Some(adopted) = self.hello(id) {
            return Found::Running(adopted);
        }
        // Written before its socket goes: a supervisor that is gone and left no end died.
        match std::fs::read(self.status(id)) {
            Ok(bytes) => match serde_json::from_slice::<End>(&bytes) {
                Ok(end) => Found::Ended(end),
                Err(e) => {
                    tracing::warn!("task {id}: its supervisor's end cannot be read: {e}");
                    Found::Gone
                }
            },
            Err(_) => Found::Gone,
        }
    }

    fn hello(&self, id: TaskId) -> Option<Adopted> {
        let stream = UnixStream::connect(self.socket(id)).ok()?;
        let me = nix::unistd::getuid().as_raw();
        let peer =
            nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
                .ok()?;
        if peer.uid() != me {
            tracing::warn!(
                "task {id}: its socket is held by uid {}, not by this user",
                peer.uid()
            );
            return None;
        }
        let line = match By::new(&stream, HELLO_WAIT).line(MAX_LINE) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(
                    "task {id}: its supervisor took the connection but said nothing: {e}"
                );
                return None;
            }
        };
        match serde_json::from_slice::<FromShim>(&line).ok()? {
            FromShim::Hello {
                version,
                task,
                pid,
                total,
                cgroup,
                size,
                input_done,
                paused,
            } if (wire::OLDEST..=wire::VERSION).contains(&version) && task == id.get() => {
                tracing::debug!("task {id}: adopted (its first process is {pid})");
                Some(Adopted {
                    stream,
                    total,
                    cgroup,
                    size: size.map(|(cols, rows)| TermSize { cols, rows }),
                    input_done,
                    version,
                    paused,
                })
            }
            other => {
                tracing::warn!("task {id}: its supervisor said {other:?} instead of hello");
                None
            }
        }
    }

    /// Follows an adopted supervisor as if this engine had started it, but gives it no other
    /// task after this one: it may be of the aside before an upgrade.
    pub fn follow_adopted(&self, a: Adopted, f: Following) -> std::io::Result<RunFuture> {
        a.stream.set_nonblocking(true)?;
        a.stream.set_read_timeout(None)?;
        let stream = tokio::net::UnixStream::from_std(a.stream)?;
        Ok(Box::pin(follow(stream, f, None)))
    }
}

fn spawn_failure(error: String, not_found: bool) -> Failure {
    Failure::Spawn { error, not_found }
}

/// Waits for the supervisor to say that the task's first process runs.
fn started(stream: &UnixStream) -> Result<u32, (String, bool)> {
    let broke = |e: std::io::Error| {
        // Given up: should it start the command after all, it is told to stop it at once.
        let stop = ToShim::Stop {
            grace_ms: 0,
            reason: String::new(),
        };
        let _ = (&*stream).write_all(&wire::line(&stop));
        (format!("the task's supervisor failed: {e}"), false)
    };
    // What follows the answer is the follower's to read.
    let line = By::new(stream, ANSWER_WAIT).line(MAX_LINE).map_err(broke)?;
    stream.set_read_timeout(None).map_err(broke)?;
    match serde_json::from_slice::<FromShim>(&line) {
        Ok(FromShim::Started { pid }) => Ok(pid),
        Ok(FromShim::SpawnFailed { error, not_found }) => Err((error, not_found)),
        Ok(other) => Err((format!("the task's supervisor said {other:?}"), false)),
        Err(_) if line.is_empty() => Err((
            "the task's supervisor exited before starting it (see daemon.log)".into(),
            false,
        )),
        Err(e) => Err((
            format!("the task's supervisor said something unreadable: {e}"),
            false,
        )),
    }
}

/// What following one supervised task takes.
pub(crate) struct Following {
    pub engine: Engine,
    pub console: Arc<Console>,
    /// What the console sends to the supervisor.
    pub inbox: mpsc::Receiver<ToShim>,
    pub id: TaskId,
    pub output: Arc<Output>,
    pub abort: Arc<Abort>,
    /// What finds the task's processes should its supervisor die.
    pub tree: Tree,
    pub grace: Duration,
    pub reaper: Arc<Reaper>,
}

/// The engine's side of one supervised task, to its end.
async fn follow(
    stream: tokio::net::UnixStream,
    mut f: Following,
    reuse: Option<handoff::Reuse>,
) -> RunOutcome {
    let (read, mut write) = stream.into_split();
    let mut inbox_open = true;
    let mut lines = tokio::io::BufReader::new(read).lines();
    let mut abort_rx = f.abort.subscribe();
    let mut abort_open = true;
    let mut told_stop = false;
    loop {
        if !told_stop {
            let reason = abort_rx.borrow_and_update().clone();
            if let Some(reason) = reason {
                told_stop = true;
                let stop = ToShim::Stop {
                    grace_ms: f.grace.as_millis() as u64,
                    reason: serde_json::to_string(&reason).unwrap_or_default(),
                };
                // A supervisor that cannot be told is gone: its EOF comes next.
                let _ = write.write_all(&wire::line(&stop)).await;
            }
        }
        tokio::select! {
            line = lines.next_line() => {
                let msg = match line {
                    Ok(Some(l)) => serde_json::from_str::<FromShim>(&l).ok(),
                    Ok(None) | Err(_) => break,
                };
                match msg {
                    Some(FromShim::Output { total }) => f.output.advance(total),
                    Some(FromShim::Input { done }) => f.console.set_done(done),
                    Some(FromShim::Exited { end, reusable }) => {
                        // The supervisor keeps its group for its next task, if it gets one.
                        let group = f.tree.cgroup.take();
                        f.output.advance(end.total);
                        if let Some(reason) = abort_reason(end.cause) {
                            f.abort.abort(reason);
                        }
                        // Acknowledged once the end is durable: until then the supervisor
                        // keeps it for whichever engine comes next. Then, if nothing of the
                        // task is left, it may serve another task.
                        let (engine, id) = (f.engine.clone(), f.id);
                        tokio::spawn(async move {
                            engine.until_ended(id).await;
                            let acked = write.write_all(&wire::line(&ToShim::Ack)).await;
                            if let (Ok(()), true, Some(reuse)) = (acked, reusable, reuse) {
                                if let Some(stream) = handoff::reunite(lines, write) {
                                    reuse.rest(stream, group);
                                    return;
                                }
                            }
                            // Not serving another task: it removes its group as it exits.
                            if let Some(group) = group {
                                group.leave_to_supervisor();
                            }
                        });
                        return RunOutcome::Exited(exit_of(end.exit));
                    }
                    _ => {}
                }
            }
            changed = abort_rx.changed(), if abort_open && !told_stop => {
                if changed.is_err() {
                    abort_open = false;
                }
            }
            msg = f.inbox.recv(), if inbox_open => match msg {
                // A supervisor that cannot be told is gone: its EOF comes next.
                Some(msg) => { let _ = write.write_all(&wire::line(&msg)).await; }
                None => inbox_open = false,
            },
        }
    }
    // The supervisor died without telling the end (killed): what it held goes too.
    proctree::terminate(&f.tree, &f.reaper, f.grace).await;
    RunOutcome::Lost("the task's supervisor died; its processes were killed".into())
}

/// The engine's reason for a stop the supervisor reports.
pub(crate) fn abort_reason(cause: Option<Cause>) -> Option<AbortReason> {
    match cause? {
        Cause::OutputCap { total } => Some(AbortReason::OutputCap(total)),
        Cause::Capture { error } => Some(AbortReason::Capture(error)),
        Cause::Stopped { reason } => serde_json::from_str(&reason).ok(),
    }
}

pub(crate) fn exit_of(e: wire::Exit) -> Exit {
    match e {
        wire::Exit::Code(c) => Exit::Code(c),
        wire::Exit::Signal(s) => Exit::Signal(s),
    }
}

/// A terminal task's environment names its terminal (over the base's `TERM`).
fn with_term(own: &mut Vec<(String, String)>, input: Input) {
    if let Input::Pty(_) = input {
        own.retain(|(k, _)| k != "TERM");
        own.push(("TERM".into(), "xterm-256color".into()));
    }
}

/// The program the daemon starts as a supervisor: `aside-shim` beside its own binary.
pub fn default_program() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let shim = exe.with_file_name("aside-shim");
    shim.is_file().then_some(shim)
}
