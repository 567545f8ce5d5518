//! Everything behind the engine's one lock: the tasks in memory, the counters that number
//! ids, events and notices, the slots, and the indexes for dedupe keys and sessions.
//!
//! Only live tasks (and finished ones whose output is kept in memory, or whose end is still
//! being written) are here; every other record lives in the store alone, so the lock's work
//! does not grow with history.

use std::collections::{BTreeMap, HashMap};

use aside_protocol::{Event, EventKind, TaskId, TaskRecord, Timestamp};

use super::retention::Retained;
use super::task::Task;
use super::waits::Waits;
use crate::scheduler::Scheduler;

#[derive(Default)]
pub(super) struct State {
    pub tasks: BTreeMap<TaskId, Task>,
    pub next_id: u64,
    next_seq: u64,
    next_note: u64,
    pub sched: Scheduler,
    /// Tasks waiting for others to succeed first (`after`).
    pub waits: Waits,
    /// Dedupe keys of live tasks.
    pub dedupe: HashMap<String, TaskId>,
    /// The live run of each conversation: one at a time.
    pub sessions: HashMap<String, TaskId>,
    /// Finished foreground outputs kept in memory.
    pub retained: Retained,
    pub shutting_down: bool,
}

impl State {
    pub fn new(next_id: u64, next_seq: u64, next_note: u64) -> Self {
        Self {
            next_id,
            next_seq,
            next_note,
            ..Self::default()
        }
    }

    /// The next event of `task`, numbered. Submit it to the store under the same lock, so
    /// events reach the store, and then subscribers, in the order of their numbers.
    pub fn event(&mut self, task: &TaskRecord, kind: EventKind) -> Event {
        let seq = self.next_seq;
        self.next_seq += 1;
        Event {
            seq,
            at: Timestamp::now(),
            task_id: task.id,
            detached: task.detached,
            kind,
        }
    }

    /// The seq of the newest event numbered so far.
    pub fn last_seq(&self) -> u64 {
        self.next_seq.saturating_sub(1)
    }

    /// The number of the next notification.
    pub fn note(&mut self) -> u64 {
        self.next_note += 1;
        self.next_note - 1
    }

    /// Records that live task `record` holds its dedupe key and its conversation.
    pub fn claim_names(&mut self, record: &TaskRecord) {
        if let Some(key) = &record.dedupe_key {
            self.dedupe.insert(key.clone(), record.id);
        }
        if let Some(s) = record.kind.session_id() {
            self.sessions.insert(s.to_string(), record.id);
        }
    }

    /// Frees the dedupe key and conversation `record` held, unless another task holds them
    /// now.
    pub fn release_names(&mut self, record: &TaskRecord) {
        if let Some(key) = &record.dedupe_key {
            if self.dedupe.get(key) == Some(&record.id) {
                self.dedupe.remove(key);
            }
        }
        if let Some(s) = record.kind.session_id() {
            if self.sessions.get(s) == Some(&record.id) {
                self.sessions.remove(s);
            }
        }
    }

    pub fn live_count(&self) -> usize {
        self.sched.queued() + self.waits.len() + self.sched.running()
    }
}
