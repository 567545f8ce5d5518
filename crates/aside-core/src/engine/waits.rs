//! Who waits for whom (`after`): the bookkeeping alone; `after.rs` decides what a task's
//! end means for the tasks waiting on it.

use std::collections::{BTreeSet, HashMap};

use aside_protocol::TaskId;

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
    pub(super) fn wait(&mut self, waiter: TaskId, live: Vec<TaskId>, ended: &[TaskId]) {
        for dep in &live {
            self.waiters.entry(*dep).or_default().push(waiter);
        }
        let pending = self.pending.entry(waiter).or_default();
        pending.extend(live);
        pending.extend(ended.iter().copied());
    }

    /// `dep` ended: the tasks that were waiting for it.
    pub(super) fn ended(&mut self, dep: TaskId) -> Vec<TaskId> {
        self.waiters.remove(&dep).unwrap_or_default()
    }

    /// `dep` of `waiter` succeeded; true when that was the last one it waited for.
    pub(super) fn satisfied(&mut self, waiter: TaskId, dep: TaskId) -> bool {
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
