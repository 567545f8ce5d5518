//! What running a task gives back to the engine, whatever its kind: a future that runs it to
//! its end, and how its work ended.

use std::future::Future;
use std::pin::Pin;

use crate::reaper::Exit;

/// How a runner's work ended, before the engine weighs it against any abort reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Exited(Exit),
    /// An agent finished with this answer.
    Answered(String),
    /// An agent could not go on (its model failed, its output was unusable).
    AgentFailed(String),
    /// The runner failed (a panic, an internal error).
    Failed(String),
    /// Whatever held the task's processes is gone (its supervisor was killed): they were
    /// killed, and how they ended is not known.
    Lost(String),
}

pub type RunFuture = Pin<Box<dyn Future<Output = RunOutcome> + Send>>;
