//! Slots: a global limit and per-group limits, each group a FIFO queue.
//!
//! Driven by events (a task queued, a task ended), never by a tick. Picking the next task
//! looks only at the head of each group's queue, so it costs O(groups), not O(queued). The
//! scheduler remembers which task holds which slot, so giving a slot back needs only the id
//! and cannot free a slot twice.
//!
//! The limits are the config file's, except where `aside slots` changed one at runtime
//! ([`SlotChanges`], kept in the store).

use std::collections::{BTreeMap, HashMap, VecDeque};

use aside_protocol::rpc::{GroupSlots, SlotsStatus};
use aside_protocol::TaskId;
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// Limits changed at runtime, ahead of the config file's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<usize>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, usize>,
}

impl SlotChanges {
    /// The store's key for them.
    pub const SETTING: &'static str = "slots";

    fn max_running(&self, config: &Config) -> usize {
        self.global.unwrap_or(config.max_running)
    }

    fn group_limit(&self, config: &Config, group: &str) -> Option<usize> {
        match self.groups.get(group) {
            Some(n) => Some(*n),
            None => config.group_limit(group),
        }
    }
}

#[derive(Default)]
pub struct Scheduler {
    changes: SlotChanges,
    /// Queues by group ("" for tasks without a group), each entry `(arrival, id)`.
    queues: HashMap<String, VecDeque<(u64, TaskId)>>,
    /// The group each queued task waits in.
    queued_in: HashMap<TaskId, String>,
    arrivals: u64,
    /// The group of each task holding a slot.
    holding: HashMap<TaskId, String>,
    running_by_group: HashMap<String, usize>,
}

impl Scheduler {
    pub fn enqueue(&mut self, id: TaskId, group: Option<&str>) {
        let group = group.unwrap_or("").to_string();
        self.arrivals += 1;
        self.queues
            .entry(group.clone())
            .or_default()
            .push_back((self.arrivals, id));
        self.queued_in.insert(id, group);
    }

    /// Takes a queued task out of its queue; false if it was not queued.
    pub fn dequeue(&mut self, id: TaskId) -> bool {
        let Some(group) = self.queued_in.remove(&id) else {
            return false;
        };
        if let Some(q) = self.queues.get_mut(&group) {
            q.retain(|(_, t)| *t != id);
        }
        true
    }

    /// The next task to start, if a slot is free for it; its slot is taken.
    pub fn next(&mut self, config: &Config) -> Option<TaskId> {
        if self.holding.len() >= self.changes.max_running(config) {
            return None;
        }
        let mut best: Option<(u64, &str)> = None;
        for (group, q) in &self.queues {
            let Some((arrival, _)) = q.front() else {
                continue;
            };
            let has_room = group.is_empty()
                || self.changes.group_limit(config, group).is_none_or(|limit| {
                    self.running_by_group.get(group).copied().unwrap_or(0) < limit
                });
            if has_room && best.is_none_or(|(a, _)| *arrival < a) {
                best = Some((*arrival, group));
            }
        }
        let group = best?.1.to_string();
        let (_, id) = self.queues.get_mut(&group)?.pop_front()?;
        self.queued_in.remove(&id);
        if !group.is_empty() {
            *self.running_by_group.entry(group.clone()).or_default() += 1;
        }
        self.holding.insert(id, group);
        Some(id)
    }

    /// `id` holds a slot already: a running task adopted from a previous engine. It may
    /// take the count past a limit lowered meanwhile; then no task starts until it is back.
    pub fn adopt(&mut self, id: TaskId, group: Option<&str>) {
        let group = group.unwrap_or("").to_string();
        if !group.is_empty() {
            *self.running_by_group.entry(group.clone()).or_default() += 1;
        }
        self.holding.insert(id, group);
    }

    /// Gives back the slot `id` holds; false if it holds none.
    pub fn release(&mut self, id: TaskId) -> bool {
        let Some(group) = self.holding.remove(&id) else {
            return false;
        };
        if let Some(n) = self.running_by_group.get_mut(&group) {
            *n = n.saturating_sub(1);
        }
        true
    }

    pub fn changes(&self) -> &SlotChanges {
        &self.changes
    }

    /// Sets the global limit (no group) or a group's; `None` goes back to the config's.
    pub fn set_limit(&mut self, group: Option<&str>, limit: Option<usize>) {
        match (group, limit) {
            (None, limit) => self.changes.global = limit,
            (Some(g), Some(n)) => {
                self.changes.groups.insert(g.to_string(), n);
            }
            (Some(g), None) => {
                self.changes.groups.remove(g);
            }
        }
    }

    pub fn set_changes(&mut self, changes: SlotChanges) {
        self.changes = changes;
    }

    /// The limits in force and their use, for `daemon.status`.
    pub fn status(&self, config: &Config) -> SlotsStatus {
        let mut names: std::collections::BTreeSet<&str> =
            config.groups.keys().map(String::as_str).collect();
        names.extend(self.changes.groups.keys().map(String::as_str));
        names.extend(
            self.running_by_group
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(g, _)| g.as_str()),
        );
        names.extend(
            self.queues
                .iter()
                .filter(|(_, q)| !q.is_empty())
                .map(|(g, _)| g.as_str()),
        );
        names.remove("");
        let groups = names
            .into_iter()
            .map(|g| GroupSlots {
                group: g.to_string(),
                limit: self.changes.group_limit(config, g),
                running: self.running_by_group.get(g).copied().unwrap_or(0),
                queued: self.queues.get(g).map_or(0, VecDeque::len),
                changed: self.changes.groups.contains_key(g),
            })
            .collect();
        SlotsStatus {
            limit: self.changes.max_running(config),
            running: self.holding.len(),
            changed: self.changes.global.is_some(),
            groups,
        }
    }

    #[cfg(test)]
    pub fn holds_slot(&self, id: TaskId) -> bool {
        self.holding.contains_key(&id)
    }

    pub fn queued(&self) -> usize {
        self.queued_in.len()
    }

    pub fn running(&self) -> usize {
        self.holding.len()
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
        s.release(id(1));
        assert_eq!(s.next(&config), Some(id(2)));
        assert!(s.dequeue(id(5)));
        s.release(id(3));
        assert_eq!(s.next(&config), None);
        assert_eq!(s.queued(), 0);
    }

    #[test]
    fn a_slot_is_given_back_once() {
        let config = Config::parse("max_running = 1").unwrap();
        let mut s = Scheduler::default();
        s.enqueue(id(1), None);
        s.enqueue(id(2), None);
        assert_eq!(s.next(&config), Some(id(1)));
        assert!(s.release(id(1)));
        assert!(!s.release(id(1)), "released twice");
        assert!(!s.release(id(2)), "a queued task holds no slot");
        assert_eq!(s.running(), 0);
        assert_eq!(s.next(&config), Some(id(2)));
        assert_eq!(s.running(), 1);
    }

    #[test]
    fn a_dequeued_task_never_starts_and_frees_nothing() {
        let config = Config::parse("max_running = 1\n[groups]\nbuild = 1").unwrap();
        let mut s = Scheduler::default();
        s.enqueue(id(1), Some("build"));
        s.enqueue(id(2), Some("build"));
        assert!(s.dequeue(id(1)));
        assert!(!s.dequeue(id(1)));
        assert_eq!(s.next(&config), Some(id(2)));
        assert_eq!(s.queued(), 0);
        assert!(s.holds_slot(id(2)));
    }

    #[test]
    fn limits_changed_at_runtime_win_over_the_configs() {
        let config = Config::parse("max_running = 1\n[groups]\nbuild = 1").unwrap();
        let mut s = Scheduler::default();
        for n in 1..=4 {
            s.enqueue(id(n), Some("build"));
        }
        assert_eq!(s.next(&config), Some(id(1)));
        assert_eq!(s.next(&config), None);
        s.set_limit(None, Some(3));
        assert_eq!(s.next(&config), None, "build still holds one");
        s.set_limit(Some("build"), Some(2));
        assert_eq!(s.next(&config), Some(id(2)));
        assert_eq!(s.next(&config), None);
        let status = s.status(&config);
        assert_eq!((status.limit, status.running, status.changed), (3, 2, true));
        assert_eq!(status.groups[0].limit, Some(2));
        assert_eq!(status.groups[0].queued, 2);
        s.set_limit(Some("build"), None);
        s.set_limit(None, None);
        assert_eq!(s.changes(), &SlotChanges::default());
        assert_eq!(s.status(&config).groups[0].limit, Some(1));
    }
}
