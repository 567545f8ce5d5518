//! Slots: a global limit and per-group limits, each group a FIFO queue.
//!
//! Driven by events (a task queued, a task ended), never by a tick. Picking the next task
//! looks only at the head of each group's queue, so it costs O(groups), not O(queued).

use std::collections::{HashMap, VecDeque};

use aside_protocol::TaskId;

use crate::config::Config;

#[derive(Default)]
pub struct Scheduler {
    /// Queues by group ("" for tasks without a group), each entry `(arrival, id)`.
    queues: HashMap<String, VecDeque<(u64, TaskId)>>,
    arrivals: u64,
    running: usize,
    running_by_group: HashMap<String, usize>,
}

impl Scheduler {
    pub fn enqueue(&mut self, id: TaskId, group: Option<&str>) {
        self.arrivals += 1;
        self.queues
            .entry(group.unwrap_or("").to_string())
            .or_default()
            .push_back((self.arrivals, id));
    }

    /// Takes a queued task out of its queue; false if it was not queued.
    pub fn dequeue(&mut self, id: TaskId, group: Option<&str>) -> bool {
        let Some(q) = self.queues.get_mut(group.unwrap_or("")) else {
            return false;
        };
        let before = q.len();
        q.retain(|(_, t)| *t != id);
        before != q.len()
    }

    /// The next task to start, if a slot is free for it; its slot is taken.
    pub fn next(&mut self, config: &Config) -> Option<TaskId> {
        if self.running >= config.max_running {
            return None;
        }
        let mut best: Option<(u64, &str)> = None;
        for (group, q) in &self.queues {
            let Some((arrival, _)) = q.front() else {
                continue;
            };
            let has_room = group.is_empty()
                || config.group_limit(group).is_none_or(|limit| {
                    self.running_by_group.get(group).copied().unwrap_or(0) < limit
                });
            if has_room && best.is_none_or(|(a, _)| *arrival < a) {
                best = Some((*arrival, group));
            }
        }
        let group = best?.1.to_string();
        let (_, id) = self.queues.get_mut(&group)?.pop_front()?;
        self.occupy(&group);
        Some(id)
    }

    fn occupy(&mut self, group: &str) {
        self.running += 1;
        if !group.is_empty() {
            *self.running_by_group.entry(group.to_string()).or_default() += 1;
        }
    }

    /// Gives back the slot of a task that ran.
    pub fn release(&mut self, group: Option<&str>) {
        self.running = self.running.saturating_sub(1);
        if let Some(g) = group {
            if let Some(n) = self.running_by_group.get_mut(g) {
                *n = n.saturating_sub(1);
            }
        }
    }

    pub fn queued(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }

    pub fn running(&self) -> usize {
        self.running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> TaskId {
        TaskId::new(n).unwrap()
    }

    #[test]
    fn fifo_within_limits() {
        let config = Config::parse("max_running = 3\n[groups]\nbuild = 1").unwrap();
        let mut s = Scheduler::default();
        s.enqueue(id(1), Some("build"));
        s.enqueue(id(2), Some("build"));
        s.enqueue(id(3), None);
        s.enqueue(id(4), None);
        s.enqueue(id(5), None);
        assert_eq!(s.next(&config), Some(id(1)));
        assert_eq!(s.next(&config), Some(id(3)), "build is full");
        assert_eq!(s.next(&config), Some(id(4)));
        assert_eq!(s.next(&config), None, "global limit");
        s.release(Some("build"));
        assert_eq!(s.next(&config), Some(id(2)));
        assert!(s.dequeue(id(5), None));
        s.release(None);
        assert_eq!(s.next(&config), None);
        assert_eq!(s.queued(), 0);
    }
}
