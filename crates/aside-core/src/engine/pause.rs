//! Pausing and resuming running shell tasks, and the spec a task was started from (what
//! starting it again takes).
//!
//! A pause is the supervisor's: it stops (SIGSTOP) every process of the task's tree and
//! remembers it, so a new engine that adopts the task learns from it whether the task is
//! paused. The record's `paused` flag says the same for clients; it is saved with a `paused`
//! or `resumed` event. Nothing else changes: the task keeps its slot, and its timeout runs on.

use std::sync::Arc;

use aside_protocol::{EventKind, TaskId, TaskKind, TaskRecord, TaskSpec};

use super::task::Phase;
use super::{record_of, Engine, EngineError, SpecError};
use crate::console::Console;

impl Engine {
    /// Stops (`paused`) or continues every process of each task; returns their records.
    /// Every task is checked before any is touched: one that cannot be paused (queued,
    /// ended, an agent) fails the whole call and changes nothing. Pausing a paused task, or
    /// resuming one that is not, sends the signals again and changes nothing else.
    pub fn set_paused(&self, ids: &[TaskId], paused: bool) -> Result<Vec<TaskRecord>, EngineError> {
        {
            let mut st = self.lock();
            let mut consoles = Vec::with_capacity(ids.len());
            for &id in ids {
                match st.tasks.get(&id) {
                    Some(task) => consoles.push(pausable(id, task, paused)?),
                    None => {
                        // Not in memory: it ended, or never was. The store says which.
                        drop(st);
                        return Err(ended(record_of(self, id)?));
                    }
                }
            }
            for (&id, console) in ids.iter().zip(consoles) {
                console.pause(paused)?;
                let changed = st.tasks.get_mut(&id).is_some_and(|t| t.set_paused(paused));
                if changed {
                    let kind = match paused {
                        true => EventKind::Paused,
                        false => EventKind::Resumed,
                    };
                    self.record_changed(&mut st, id, kind);
                }
            }
        }
        ids.iter().map(|&id| record_of(self, id)).collect()
    }

    /// The spec task `id` was started from, without its environment: that is kept only
    /// until the task starts, since it may hold secrets.
    pub fn spec(&self, id: TaskId) -> Result<TaskSpec, EngineError> {
        let mut spec = self
            .inner
            .store
            .get_spec(id)?
            .ok_or(EngineError::UnknownTask(id))?;
        spec.env = None;
        spec.env_extra.clear();
        Ok(spec)
    }
}

/// The console through which a task in memory is paused; why it cannot be, otherwise.
fn pausable(
    id: TaskId,
    task: &super::task::Task,
    paused: bool,
) -> Result<Arc<Console>, EngineError> {
    let refuse = |why: &'static str| EngineError::CannotPause {
        id,
        verb: if paused { "paused" } else { "resumed" },
        why,
    };
    if let TaskKind::Agent { .. } = task.record().kind {
        return Err(refuse(
            "it is an agent, which has no processes of its own (stop it, or pause the tasks \
             it started)",
        ));
    }
    match task.phase() {
        Phase::Queued { .. } | Phase::Starting { .. } => {
            Err(refuse("it has not started (it is queued)"))
        }
        // A tree being stopped must act on its SIGTERM; continuing it does no harm.
        Phase::Running { abort, .. } if paused && abort.reason().is_some() => {
            Err(refuse("it is being stopped"))
        }
        Phase::Running { console, .. } => match console {
            Some(c) => c.pauses().map(|()| c.clone()).map_err(EngineError::from),
            // Shell tasks of an engine without a supervisor program.
            None => Err(SpecError::NoSupervisor.into()),
        },
        Phase::Ending { .. } | Phase::Ended { .. } => Err(ended(task.record().clone())),
    }
}

/// Why a task that ended (or is ending: its record still shows it running until its end is
/// durable) cannot be paused.
fn ended(record: TaskRecord) -> EngineError {
    EngineError::AlreadyEnded {
        id: record.id,
        state: match record.is_terminal() {
            true => record.state.name(),
            false => "ending",
        },
    }
}
