//! Tasks that run after others (`after`): a task waits, queued but out of the slot queues,
//! until every task it names has succeeded; as soon as one ends any other way, it fails
//! with a `dependency` failure and never runs.
//!
//! A task can only name tasks that exist when it starts (checked against the store), so
//! waits never form a cycle. A task waited for that already ended is looked up outside the
//! lock (it may be in the store only) and settled like one that ends later.

use std::collections::{BTreeSet, HashMap};

use aside_protocol::{Failure, TaskId, TaskState, Timestamp};

use super::state::State;
use super::{record_of, Effects, Engine, EngineError, SpecError};

/// Who waits for whom.
#[derive(Default)]
pub(super) struct Waits {
    /// Each task waited for, and the tasks waiting for it.
    waiters: HashMap<TaskId, Vec<TaskId>>,
    /// Each waiting task, and the tasks it still waits for.
    pending: HashMap<TaskId, BTreeSet<TaskId>>,
}

impl Waits {
    /// `waiter` waits for `deps` (none of them settled yet).
    fn wait(&mut self, waiter: TaskId, live: Vec<TaskId>, ended: &[TaskId]) {
        for dep in &live {
            self.waiters.entry(*dep).or_default().push(waiter);
        }
        let pending = self.pending.entry(waiter).or_default();
        pending.extend(live);
        pending.extend(ended.iter().copied());
    }

    /// `dep` ended: the tasks that were waiting for it.
    fn ended(&mut self, dep: TaskId) -> Vec<TaskId> {
        self.waiters.remove(&dep).unwrap_or_default()
    }

    /// `dep` of `waiter` succeeded; true when that was the last one it waited for.
    fn satisfied(&mut self, waiter: TaskId, dep: TaskId) -> bool {
        let Some(pending) = self.pending.get_mut(&waiter) else {
            return false;
        };
        if !pending.remove(&dep) || !pending.is_empty() {
            return false;
        }
        self.pending.remove(&waiter);
        true
    }

    /// `waiter` ended (stopped, or a dependency failed): it waits no longer. Its entries in
    /// `waiters` are skipped when those tasks end.
    pub(super) fn forget(&mut self, waiter: TaskId) {
        self.pending.remove(&waiter);
    }

    /// Tasks waiting.
    pub(super) fn len(&self) -> usize {
        self.pending.len()
    }

    pub(super) fn is_waiting(&self, waiter: TaskId) -> bool {
        self.pending.contains_key(&waiter)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> TaskId {
        TaskId::new(n).unwrap()
    }

    #[test]
    fn a_waiter_is_ready_once_every_task_it_names_succeeded() {
        let mut w = Waits::default();
        w.wait(id(3), vec![id(1)], &[id(2)]);
        assert_eq!(w.ended(id(1)), [id(3)]);
        assert!(!w.satisfied(id(3), id(1)), "2 is still to be looked up");
        assert!(w.satisfied(id(3), id(2)));
        assert!(!w.is_waiting(id(3)));
        assert!(!w.satisfied(id(3), id(2)), "ready once");
    }

    #[test]
    fn a_forgotten_waiter_is_not_told() {
        let mut w = Waits::default();
        w.wait(id(2), vec![id(1)], &[]);
        w.forget(id(2));
        assert!(!w.is_waiting(id(2)));
        assert!(!w.satisfied(id(2), id(1)));
    }
}
