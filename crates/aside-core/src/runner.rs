//! What every kind of task's runner gives back to the engine.

use std::future::Future;
use std::pin::Pin;

use crate::reaper::Exit;

/// How a runner's work ended, before the engine weighs it against any abort reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Exited(Exit),
    /// The runner failed (an agent's model error, a panic).
    Failed(String),
}

pub type RunFuture = Pin<Box<dyn Future<Output = RunOutcome> + Send>>;
