//! The hook through which kinds of task other than `shell` (agents) are run without the
//! engine knowing how, and what such a runner is given.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use aside_protocol::{CancelReason, Failure, ShellCommand, TaskRecord, TaskSpec};
use tokio::sync::watch;

use crate::abort::{Abort, AbortReason};
use crate::cgroup::Cgroups;
use crate::output::Output;
use crate::reaper::Reaper;
use crate::run::RunFuture;
use crate::shell;
use crate::Engine;

/// Runs the tasks of kind `agent`. The daemon plugs the agent runtime in here; an engine
/// without one fails agent tasks with a clear reason.
pub trait AgentRunner: Send + Sync + 'static {
    /// Starts the task; the returned future runs it to its end. Called outside the engine's
    /// lock, on the thread that gave the task its slot: keep it short, do the work in the
    /// future.
    fn launch(&self, task: Launch) -> Result<RunFuture, Failure>;

    /// Whether the conversation `session` exists in the state directory `home`, to be
    /// resumed. Asked before a task that resumes one is created, so that an unknown session
    /// is refused instead of started to fail. A runner without conversations says yes.
    fn session_exists(&self, _home: &Path, _session: &str) -> bool {
        true
    }
}

/// Everything a runner needs to run one task.
pub struct Launch {
    pub engine: Engine,
    pub record: TaskRecord,
    pub spec: TaskSpec,
    /// The task's output log; the runner writes what people should see there.
    pub output: Arc<Output>,
    pub(crate) abort: Arc<Abort>,
    pub(crate) reaper: Arc<Reaper>,
    pub(crate) cgroups: Option<Arc<Cgroups>>,
    pub(crate) tag: String,
    pub(crate) kill_grace: std::time::Duration,
    pub(crate) drain: std::time::Duration,
    /// Variables (the model keys) kept out of commands that bring no environment of their own.
    pub(crate) hidden: Vec<String>,
    /// This run takes over a task a previous engine was running when it went away (killed,
    /// or restarted): the runner goes on from where the task got to (an agent from its
    /// transcript) instead of starting it anew. The record still shows its first start.
    pub resumed: bool,
}

impl Launch {
    /// Resolves with the reason once the task is being stopped (stop, owner gone, shutdown,
    /// stall); the runner must then wind down, stopping what it started.
    pub fn stopping(&self) -> Stopping {
        Stopping {
            rx: self.abort.subscribe(),
        }
    }

    /// Stops the task from inside, recording `reason` first (the stall watchdog uses it).
    pub fn stop(&self, reason: CancelReason) {
        self.abort.abort(AbortReason::Cancel(reason));
    }

    /// Runs a command as this task's process tree, its output going to the task's log: for
    /// agents that are external commands. Stopping the task stops the tree.
    pub fn spawn_command(
        &self,
        command: &ShellCommand,
        env_extra: &BTreeMap<String, String>,
    ) -> Result<(u32, RunFuture), Failure> {
        shell::launch(
            &self.reaper,
            shell::ShellLaunch {
                command,
                cwd: &self.record.cwd,
                env: self.spec.env.as_ref(),
                env_extra,
                hidden: &self.hidden,
                task_id: self.record.id.to_string(),
                tag: self.tag.clone(),
                cgroups: self.cgroups.as_ref(),
                output: self.output.clone(),
                abort: self.abort.clone(),
                kill_grace: self.kill_grace,
                drain: self.drain,
            },
        )
    }
}

/// A handle on a task's stop signal.
#[derive(Clone)]
pub struct Stopping {
    rx: watch::Receiver<Option<AbortReason>>,
}

impl Stopping {
    /// The reason, once the task is being stopped or has hit a limit.
    pub fn reason(&self) -> Option<CancelReason> {
        self.rx.borrow().as_ref().map(to_cancel)
    }

    /// Waits until the task is being stopped; returns why.
    pub async fn wait(&mut self) -> CancelReason {
        loop {
            if let Some(r) = self.rx.borrow_and_update().as_ref() {
                return to_cancel(r);
            }
            if self.rx.changed().await.is_err() {
                // The engine dropped the task: it is going away.
                return CancelReason::Shutdown;
            }
        }
    }
}

/// Limits (timeout, output cap) reach a runner's children as a stop with a message.
fn to_cancel(r: &AbortReason) -> CancelReason {
    match r {
        AbortReason::Cancel(c) => c.clone(),
        AbortReason::Timeout(d) => CancelReason::UserStop {
            message: Some(format!(
                "its parent timed out after {}",
                aside_protocol::format_duration(*d)
            )),
        },
        AbortReason::OutputCap(_) | AbortReason::Capture(_) => CancelReason::UserStop {
            message: Some("its parent's output failed".into()),
        },
    }
}
