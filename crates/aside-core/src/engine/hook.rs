//! The completion hook (`on_end` in the config): a command run when a task ends, with the
//! task's record as JSON on its stdin and a few variables in its environment.
//!
//! It never holds up the engine: ends are read from the event stream (from the first event
//! this engine recorded, so tasks that ended while no daemon ran count too), queued in a
//! bounded queue, and run beside everything else, a few at once, each killed past its time.
//! What goes wrong with a hook (it cannot start, fails, runs too long, the queue is full) is
//! logged, and costs nothing else.

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use aside_protocol::{EventKind, TaskId, TaskRecord};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::sync::{broadcast, mpsc, Semaphore};

use super::{Engine, Inner};
use crate::reaper::Exit;

/// Hooks running at once.
const AT_ONCE: usize = 4;
/// Ends waiting for a hook; past this, an end gets none (and that is logged).
const QUEUE: usize = 1024;
/// A hook still running after this is killed, with its process group.
const TIME_LIMIT: Duration = Duration::from_secs(60);

/// The process groups of the hooks running now: they are the daemon's, and stop with it.
#[derive(Default)]
pub(super) struct RunningHooks(Mutex<Running>);

#[derive(Default)]
struct Running {
    pgids: HashSet<u32>,
    /// The engine is going away: no hook starts any more.
    closed: bool,
}

impl RunningHooks {
    fn set(&self) -> std::sync::MutexGuard<'_, Running> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a hook with `spawn` unless the engine is going away (then `None`).
    fn start(
        &self,
        spawn: impl FnOnce() -> std::io::Result<(u32, tokio::sync::oneshot::Receiver<Exit>)>,
    ) -> Option<std::io::Result<(u32, tokio::sync::oneshot::Receiver<Exit>)>> {
        let mut running = self.set();
        if running.closed {
            return None;
        }
        let started = spawn();
        if let Ok((pid, _)) = &started {
            running.pgids.insert(*pid);
        }
        Some(started)
    }

    /// Whether `pgid` was still running, taking it out.
    fn ended(&self, pgid: u32) -> bool {
        self.set().pgids.remove(&pgid)
    }

    /// Kills every hook still running, and starts none after (the engine is going away).
    pub(super) fn stop_all(&self) {
        let running: Vec<u32> = {
            let mut set = self.set();
            set.closed = true;
            set.pgids.drain().collect()
        };
        if !running.is_empty() {
            tracing::warn!(
                "{} completion hooks still running are stopped",
                running.len()
            );
        }
        for pgid in running {
            let _ = killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL);
        }
    }
}

impl Engine {
    /// Starts following ends for the hook, if the config names one. `first_seq`: the last
    /// event recorded before this engine opened.
    pub(super) fn spawn_hook(&self, first_seq: u64) {
        let Some(command) = self.inner.config.on_end.clone() else {
            return;
        };
        let (backlog, live, _) = match self.subscribe(Some(first_seq)) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("the completion hook cannot follow task ends: {e}");
                return;
            }
        };
        let (tx, queue) = mpsc::channel(QUEUE);
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(run_queue(weak, Arc::from(command), queue));
        tokio::spawn(async move {
            let mut after = first_seq;
            for event in backlog {
                after = event.seq;
                offer(&tx, &event);
            }
            follow(live, &tx, after).await;
        });
    }
}

async fn follow(
    mut live: broadcast::Receiver<aside_protocol::Event>,
    tx: &mpsc::Sender<TaskId>,
    after: u64,
) {
    loop {
        match live.recv().await {
            // The backlog came from the store: the stream may repeat its last events.
            Ok(event) if event.seq <= after => {}
            Ok(event) => offer(tx, &event),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!("the completion hook missed {n} events: some ends get no hook");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

fn offer(tx: &mpsc::Sender<TaskId>, event: &aside_protocol::Event) {
    if let EventKind::Finished { .. } = event.kind {
        if tx.try_send(event.task_id).is_err() {
            tracing::warn!(
                "the completion hook has {QUEUE} task ends waiting: task {} gets none",
                event.task_id
            );
        }
    }
}

async fn run_queue(engine: Weak<Inner>, command: Arc<str>, mut queue: mpsc::Receiver<TaskId>) {
    let slots = Arc::new(Semaphore::new(AT_ONCE));
    while let Some(id) = queue.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(inner) = engine.upgrade() else {
            return;
        };
        let engine = Engine { inner };
        let record = match engine.get(id) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("completion hook for task {id}: cannot read its record: {e}");
                continue;
            }
        };
        let inner = engine.inner.clone();
        drop(engine);
        let command = command.clone();
        tokio::spawn(async move {
            if let Err(e) = run_one(&inner, &command, &record).await {
                tracing::warn!("completion hook for task {}: `{command}` {e}", record.id);
            }
            drop(permit);
        });
    }
}

/// Why a hook did not succeed; the log line names the command before it.
#[derive(Debug, thiserror::Error)]
enum HookError {
    #[error("cannot be started: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("exited with code {0}")]
    Exit(i32),
    #[error("was killed by signal {0}")]
    Signal(i32),
    #[error(
        "ran past {} and was killed",
        aside_protocol::format_duration(TIME_LIMIT)
    )]
    TooLong,
    #[error("was not run: cannot encode the record: {0}")]
    Encode(#[from] serde_json::Error),
}

async fn run_one(inner: &Inner, command: &str, record: &TaskRecord) -> Result<(), HookError> {
    let input = serde_json::to_vec(record)?;
    let (stdin_read, mut stdin_write) = std::io::pipe().map_err(HookError::Spawn)?;
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(command);
    let cwd = std::path::Path::new(&record.cwd);
    cmd.current_dir(if cwd.is_dir() {
        cwd
    } else {
        std::path::Path::new("/")
    });
    for k in &inner.key_vars {
        cmd.env_remove(k);
    }
    cmd.env("ASIDE_TASK_ID", record.id.to_string())
        .env("ASIDE_TASK_STATE", record.state.name())
        .env("ASIDE_TASK_OWNER", &record.owner)
        .env("ASIDE_TASK_NAME", record.name.as_deref().unwrap_or(""))
        .env("ASIDE_TASK_GROUP", record.group.as_deref().unwrap_or(""));
    match record.state.exit_code() {
        Some(code) => cmd.env("ASIDE_TASK_EXIT_CODE", code.to_string()),
        None => cmd.env_remove("ASIDE_TASK_EXIT_CODE"),
    };
    // Output goes where the daemon's does (its log); a group of its own, to kill it whole.
    cmd.stdin(Stdio::from(stdin_read))
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let Some(started) = inner.hooks.start(|| inner.reaper.spawn(&mut cmd, None)) else {
        return Ok(());
    };
    let (pid, exit) = started.map_err(HookError::Spawn)?;
    drop(cmd);
    // A hook that does not read its input must not hold a thread forever: the write ends
    // when the hook does (a closed pipe), and the hook ends within its time limit.
    tokio::task::spawn_blocking(move || {
        let _ = stdin_write.write_all(&input);
    });
    let exit = tokio::time::timeout(TIME_LIMIT, exit).await;
    // Taken out under the lock before it is killed: a hook stopped with the engine is
    // killed once, and never after its group could be another's.
    if inner.hooks.ended(pid) && exit.is_err() {
        let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    let Ok(exit) = exit else {
        return Err(HookError::TooLong);
    };
    match exit {
        Ok(Exit::Code(0)) => Ok(()),
        Ok(Exit::Code(code)) => Err(HookError::Exit(code)),
        Ok(Exit::Signal(signal)) => Err(HookError::Signal(signal)),
        // The reaper went away: the process is gone with it.
        Err(_) => Ok(()),
    }
}
