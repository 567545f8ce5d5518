//! The runner of `shell` tasks: a command in its own process group (and cgroup, where there
//! are), stdout and stderr on one pipe (so the log keeps their arrival order), stdin from
//! /dev/null.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use aside_protocol::{Failure, ShellCommand};
use tokio::net::unix::pipe;
use tokio::time::Instant;

use crate::abort::{Abort, AbortReason};
use crate::cgroup::Cgroups;
use crate::output::{Appended, Output};
use crate::proctree::{self, Tree};
use crate::program;
use crate::reaper::{Exit, Leftover, Reaper};
use crate::run::{RunFuture, RunOutcome};

/// Bytes read from the pipe before yielding to other tasks.
const PUMP_BUDGET: usize = 4 << 20;
const READ_CHUNK: usize = 128 << 10;

pub struct ShellLaunch<'a> {
    pub command: &'a ShellCommand,
    pub cwd: &'a str,
    pub env: Option<&'a BTreeMap<String, String>>,
    pub env_extra: &'a BTreeMap<String, String>,
    /// Taken out of the daemon's own environment when the task brings none (the model keys):
    /// a task must not inherit what the daemon holds for itself.
    pub hidden: &'a [String],
    pub task_id: String,
    pub tag: String,
    /// Where the task's cgroup is made; `None` where there are none.
    pub cgroups: Option<&'a Arc<Cgroups>>,
    pub output: Arc<Output>,
    pub abort: Arc<Abort>,
    pub kill_grace: Duration,
    pub drain: Duration,
}

/// Starts the process; the returned future supervises it to its end.
pub fn launch(reaper: &Arc<Reaper>, l: ShellLaunch<'_>) -> Result<(u32, RunFuture), Failure> {
    let (program, args) = program_and_args(l.command)?;
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| spawn_failure(format!("cannot create a pipe: {e}"), false))?;
    grow_pipe(&read_end);
    let stderr_end = write_end
        .try_clone()
        .map_err(|e| spawn_failure(format!("cannot duplicate a pipe: {e}"), false))?;

    // Found here in the task's own PATH, so std can start it with posix_spawn (a vfork) rather
    // than fork the whole daemon, which it does for a bare name when the environment sets PATH.
    let Some(path) = program::resolve(program, l.env, l.env_extra, Path::new(l.cwd)) else {
        return Err(spawn_failure(format!("{program}: command not found"), true));
    };
    let mut cmd = Command::new(path);
    cmd.args(&args)
        .current_dir(l.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::from(stderr_end))
        .process_group(0);
    task_env(&mut cmd, &l);
    let mut cgroup = l.cgroups.and_then(|c| c.create(&l.task_id));

    let spawned = reaper.spawn(&mut cmd, cgroup.as_mut());
    // Dropping the command closes the parent's copies of the pipe's write end, so the read
    // end sees EOF once the task's processes are gone.
    drop(cmd);
    let (pid, exit_rx) = spawned.map_err(|e| {
        let not_found = e.kind() == std::io::ErrorKind::NotFound;
        let msg = if not_found {
            format!("{program}: command not found")
        } else {
            format!("{program}: {e}")
        };
        spawn_failure(msg, not_found)
    })?;
    let reader = pipe::Receiver::from_owned_fd(read_end);
    let fut = supervise(Supervision {
        exit_rx,
        reader,
        output: l.output,
        abort: l.abort,
        tree: Arc::new(Tree {
            pgid: Some(pid as i32),
            tag: l.tag,
            cgroup,
        }),
        kill_grace: l.kill_grace,
        drain: l.drain,
        reaper: reaper.clone(),
    });
    Ok((pid, Box::pin(fut)))
}

/// The program a task names and its arguments (a script runs under `sh -c`).
pub(crate) fn program_and_args(command: &ShellCommand) -> Result<(&str, Vec<&str>), Failure> {
    match command {
        ShellCommand::Argv(argv) => match argv.split_first() {
            Some((p, rest)) => Ok((p.as_str(), rest.iter().map(String::as_str).collect())),
            None => Err(spawn_failure("empty command".into(), false)),
        },
        ShellCommand::Script(s) => Ok(("sh", vec!["-c", s.as_str()])),
    }
}

/// The task's environment: its own when it brings one, else the daemon's without what the
/// daemon holds for itself; then its extra variables, its id and its tag.
pub(crate) fn task_env(cmd: &mut Command, l: &ShellLaunch<'_>) {
    match l.env {
        Some(env) => {
            cmd.env_clear().envs(env);
        }
        None => {
            for k in l.hidden {
                cmd.env_remove(k);
            }
        }
    }
    cmd.envs(l.env_extra)
        .env("ASIDE_TASK_ID", &l.task_id)
        .env(proctree::TAG_VAR, &l.tag);
}

/// An environment as pairs, shared: the base of many tasks' environments.
pub(crate) type Env = Arc<Vec<(String, String)>>;

/// The task's environment as [`task_env`] makes it, in two parts: its base (the one it
/// brings, else the daemon's without what the daemon holds for itself, `daemon_base`), and
/// its own variables set over that (its extra ones, its id and its tag).
pub(crate) fn task_env_parts(
    l: &ShellLaunch<'_>,
    daemon_base: impl FnOnce() -> Env,
) -> (Env, Vec<(String, String)>) {
    let base = match l.env {
        Some(env) => Arc::new(env.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        None => daemon_base(),
    };
    let mut own = l.env_extra.clone();
    own.insert("ASIDE_TASK_ID".into(), l.task_id.clone());
    own.insert(proctree::TAG_VAR.into(), l.tag.clone());
    (base, own.into_iter().collect())
}

/// The daemon's environment without `hidden` (a variable that is not UTF-8 is left out, as
/// the CLI leaves out its own).
pub(crate) fn daemon_env(hidden: &[String]) -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| !hidden.contains(k))
        .collect()
}

fn spawn_failure(error: String, not_found: bool) -> Failure {
    Failure::Spawn { error, not_found }
}

/// A larger pipe means fewer wake-ups for chatty commands; failing to grow it is harmless.
#[cfg(target_os = "linux")]
fn grow_pipe(fd: &OwnedFd) {
    let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
}

#[cfg(not(target_os = "linux"))]
fn grow_pipe(_fd: &OwnedFd) {}

struct Supervision {
    exit_rx: tokio::sync::oneshot::Receiver<Exit>,
    reader: std::io::Result<pipe::Receiver>,
    output: Arc<Output>,
    abort: Arc<Abort>,
    /// What finds the task's processes: shared by the stop, or by the sweep after its end.
    tree: Arc<Tree>,
    kill_grace: Duration,
    drain: Duration,
    /// Tells the task's own processes from orphans when looking for what it left behind.
    reaper: Arc<Reaper>,
}

enum Pump {
    /// Nothing more to read now.
    Pending,
    /// Read a lot; yield, then read again.
    More,
    Eof,
    Cap,
    Failed(String),
}

fn pump(rx: &pipe::Receiver, output: &Output) -> Pump {
    let mut buf = [0u8; READ_CHUNK];
    let mut moved = 0;
    loop {
        match rx.try_read(&mut buf) {
            Ok(0) => return Pump::Eof,
            Ok(n) => match output.append(&buf[..n]) {
                Ok(Appended::All) => {
                    moved += n;
                    if moved >= PUMP_BUDGET {
                        return Pump::More;
                    }
                }
                Ok(Appended::CapReached) => return Pump::Cap,
                Err(e) => return Pump::Failed(e.to_string()),
            },
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Pump::Pending,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Pump::Failed(format!("reading the output: {e}")),
        }
    }
}

async fn readable(rx: &Option<pipe::Receiver>) -> std::io::Result<()> {
    match rx {
        Some(rx) => rx.readable().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn supervise(s: Supervision) -> RunOutcome {
    let mut reader = match s.reader {
        Ok(r) => Some(r),
        Err(e) => {
            s.abort.abort(AbortReason::Capture(format!(
                "cannot watch the output pipe: {e}"
            )));
            None
        }
    };
    let mut exit_rx = s.exit_rx;
    let mut exit: Option<Exit> = None;
    let mut abort_rx = s.abort.subscribe();
    let mut killer: Option<tokio::task::JoinHandle<()>> = None;
    let mut drain_until: Option<Instant> = None;
    let start_killer = |killer: &mut Option<tokio::task::JoinHandle<()>>| {
        if killer.is_none() {
            let tree = s.tree.clone();
            let reaper = s.reaper.clone();
            let grace = s.kill_grace;
            *killer = Some(tokio::spawn(async move {
                proctree::terminate(&tree, &reaper, grace).await;
            }));
        }
    };
    if abort_rx.borrow_and_update().is_some() {
        start_killer(&mut killer);
    }
    let mut abort_open = true;

    while exit.is_none() || reader.is_some() {
        tokio::select! {
            r = readable(&reader) => {
                let step = match (&r, &reader) {
                    (Err(e), _) => Pump::Failed(format!("reading the output: {e}")),
                    (Ok(()), Some(rx)) => pump(rx, &s.output),
                    (Ok(()), None) => Pump::Pending,
                };
                match step {
                    Pump::Pending => {}
                    Pump::More => tokio::task::yield_now().await,
                    Pump::Eof => reader = None,
                    Pump::Cap => {
                        s.abort.abort(AbortReason::OutputCap(s.output.total()));
                        reader = None;
                    }
                    Pump::Failed(e) => {
                        s.abort.abort(AbortReason::Capture(e));
                        reader = None;
                    }
                }
            }
            e = &mut exit_rx, if exit.is_none() => {
                // A dropped sender means the reaper is gone; treat the process as killed.
                exit = Some(e.unwrap_or(Exit::Signal(libc::SIGKILL)));
                drain_until = Instant::now().checked_add(s.drain);
            }
            changed = abort_rx.changed(), if abort_open => {
                match changed {
                    Ok(()) => start_killer(&mut killer),
                    Err(_) => abort_open = false,
                }
            }
            _ = sleep_until(drain_until), if reader.is_some() && drain_until.is_some() => {
                // Descendants still hold the pipe after the process exited: stop reading.
                reader = None;
            }
        }
    }

    match killer {
        // A stop or timeout returns once the whole tree is gone.
        Some(k) => {
            let _ = k.await;
        }
        None => {
            // The task ended by itself; whatever it left behind goes too. Looking for it
            // reads /proc, so it happens beside the result, for many tasks at once.
            s.reaper.sweep(Leftover {
                tree: s.tree.clone(),
                grace: s.kill_grace,
            });
        }
    }
    RunOutcome::Exited(exit.unwrap_or(Exit::Signal(libc::SIGKILL)))
}
