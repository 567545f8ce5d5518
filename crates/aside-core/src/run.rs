//! What running a task gives back to the engine, whatever its kind: a future that runs it to
//! its end, and how its work ended.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

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

/// Polls a runner's future in the task that drives it (not as a task of its own, which
/// costs a spawn and a wake-up between two tasks at every end), with what it panics with
/// turned into its outcome, as a task of its own would have it.
pub struct Guarded(pub RunFuture);

impl Future for Guarded {
    type Output = RunOutcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<RunOutcome> {
        match catch_unwind(AssertUnwindSafe(|| self.0.as_mut().poll(cx))) {
            Ok(polled) => polled,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                Poll::Ready(RunOutcome::Failed(format!(
                    "the task's runner failed: {what}"
                )))
            }
        }
    }
}
