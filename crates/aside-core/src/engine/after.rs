//! Tasks that run after others (`after`): a task waits, queued but out of the slot queues,
//! until every task it names has succeeded; as soon as one ends any other way, it fails
//! with a `dependency` failure and never runs.
//!
//! A task can only name tasks that exist when it starts (checked against the store), so
//! waits never form a cycle. A task waited for that already ended is looked up outside the
//! lock (it may be in the store only) and settled like one that ends later.

use std::collections::BTreeSet;

use aside_protocol::{Failure, TaskId, TaskState, Timestamp};

use super::state::State;
use super::{record_of, Effects, Engine, EngineError, SpecError};

/// How a task waited for ended, as far as its waiters care.
pub(super) enum DepEnd {
    Succeeded,
    /// It did not succeed: how it ended, for people.
    Not(String),
}

impl DepEnd {
    pub(super) fn of(state: &TaskState) -> Self {
        match state {
            TaskState::Succeeded { .. } => DepEnd::Succeeded,
            other => DepEnd::Not(other.describe()),
        }
    }
}

impl Engine {
    /// Every task of `after` exists. Outside the lock: it may read the store.
    pub(super) fn check_after(&self, after: &[TaskId]) -> Result<(), EngineError> {
        for &dep in after {
            match record_of(self, dep) {
                Ok(_) => {}
                Err(EngineError::UnknownTask(_)) => {
                    return Err(SpecError::UnknownDependency(dep).into())
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// A task just admitted (or found queued after a restart) that names tasks to run
    /// after: it waits for the live ones; those already ended are looked up outside the
    /// lock. Returns false when it waits (so it is not queued for a slot yet).
    pub(super) fn wait_for_after(&self, st: &mut State, id: TaskId, fx: &mut Effects) -> bool {
        let Some(task) = st.tasks.get(&id) else {
            return false;
        };
        let after: BTreeSet<TaskId> = task.record().after.iter().copied().collect();
        if after.is_empty() {
            return true;
        }
        let mut live = Vec::new();
        let mut ended = Vec::new();
        for dep in after {
            match st.tasks.get(&dep) {
                Some(t) if !t.is_over() => live.push(dep),
                _ => ended.push(dep),
            }
        }
        for &dep in &ended {
            fx.after_ended.push((id, dep));
        }
        st.waits.wait(id, live, &ended);
        false
    }

    /// Settles the lookups `wait_for_after` left: outside the lock, each ended task's record
    /// is read, then its waiter is told under the lock.
    pub(super) fn resolve_after(&self, fx: &mut Effects) {
        for (waiter, dep) in std::mem::take(&mut fx.after_ended) {
            let end = match record_of(self, dep) {
                Ok(r) if r.is_terminal() => DepEnd::of(&r.state),
                // Live again cannot be: only ended tasks leave the lock's map.
                Ok(r) => DepEnd::Not(r.state.describe()),
                Err(EngineError::UnknownTask(_)) => DepEnd::Not("was removed".into()),
                Err(e) => DepEnd::Not(format!("could not be read: {e}")),
            };
            let mut st = self.lock();
            let mut failed = Vec::new();
            self.dependency_ended(&mut st, waiter, dep, &end, &mut failed);
            for (id, state) in failed {
                self.settle(&mut st, id, state, fx);
            }
            self.schedule(&mut st, fx);
        }
    }

    /// `dep` ended: its waiters are told. Called from `settle`, which settles the failed ones
    /// it collects in `failed` (a worklist, so a long chain does not deepen the stack).
    pub(super) fn release_waiters(
        &self,
        st: &mut State,
        dep: TaskId,
        end: &DepEnd,
        failed: &mut Vec<(TaskId, TaskState)>,
    ) {
        for waiter in st.waits.ended(dep) {
            self.dependency_ended(st, waiter, dep, end, failed);
        }
    }

    fn dependency_ended(
        &self,
        st: &mut State,
        waiter: TaskId,
        dep: TaskId,
        end: &DepEnd,
        failed: &mut Vec<(TaskId, TaskState)>,
    ) {
        if !st.waits.is_waiting(waiter) {
            return;
        }
        match end {
            DepEnd::Succeeded => {
                if st.waits.satisfied(waiter, dep) {
                    if let Some(task) = st.tasks.get(&waiter).filter(|t| !t.is_over()) {
                        let group = task.record().group.clone();
                        st.sched.enqueue(waiter, group.as_deref());
                    }
                }
            }
            DepEnd::Not(outcome) => {
                st.waits.forget(waiter);
                failed.push((
                    waiter,
                    TaskState::Failed {
                        started_at: None,
                        ended_at: Timestamp::now(),
                        failure: Failure::Dependency {
                            task_id: dep,
                            outcome: outcome.clone(),
                        },
                    },
                ));
            }
        }
    }
}
