//! What the engine tells: lifecycle events for subscribers (numbered, published once
//! durable, resumable from the store) and notifications for owners.
//!
//! A notification is delivered with an acknowledgement: a [`NoticeConsumer`] takes its
//! owner's pending notices, which stay in the store, leased to that consumer so no other
//! consumer is handed them meanwhile; the consumer acknowledges them once it has handed them
//! on (written its output, saved its transcript) and only then are they removed. A consumer
//! that goes away unacknowledged (a client that crashed or hung up, a broken pipe) releases
//! its leases, and a daemon that is killed holds none: either way the notices are handed out
//! again. An owner that keeps the seqs it has handled and acknowledges them with its next take
//! sees each notice exactly once, whatever fails in between.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use aside_protocol::{Event, Notification, TaskId};
use aside_store::{Op, StoreError};
use tokio::sync::{broadcast, oneshot};

use super::{Engine, EngineError};

/// The most notices one take hands out; the rest wait for the next.
pub const MAX_TAKE: usize = 1_000;

/// Which consumer holds each handed-out, unacknowledged notice.
#[derive(Default)]
pub(crate) struct Leases {
    holders: HashMap<u64, Lease>,
    next_consumer: u64,
    /// Raised each time acknowledged notices leave the store and their leases with them: a
    /// take that read the store before such a change reads it again.
    acks: u64,
}

/// A notice handed out and not yet acknowledged.
struct Lease {
    consumer: u64,
    owner: String,
}

/// One consumer of notifications (a client connection, an agent session). Dropping it
/// releases the notices it took and did not acknowledge.
pub struct NoticeConsumer {
    engine: Engine,
    id: u64,
}

/// The most events one catch-up from the store returns.
pub const MAX_BACKLOG: usize = 100_000;

impl Engine {
    /// Whether a handle was given out for the task (then its end is not announced).
    pub(super) fn has_handle(&self, id: TaskId) -> bool {
        self.inner.store.has_handle(id).unwrap_or(false)
    }
}

impl Engine {
    /// Events after `after` from the store, then a receiver for new ones, and the seq of the
    /// newest event published when subscribing. Events may appear in both; skip those with
    /// `seq` at or below the last one seen.
    pub fn subscribe(
        &self,
        after: Option<u64>,
    ) -> Result<(Vec<Event>, broadcast::Receiver<Event>, u64), EngineError> {
        let rx = self.inner.events.subscribe();
        let latest = self.inner.published();
        let backlog = match after {
            Some(seq) => self.inner.store.events_after(seq, MAX_BACKLOG)?,
            None => Vec::new(),
        };
        Ok((backlog, rx, latest))
    }

    /// Events after `seq` from the store (for a subscriber that fell behind).
    pub fn events_after(&self, seq: u64, limit: usize) -> Result<Vec<Event>, EngineError> {
        Ok(self.inner.store.events_after(seq, limit)?)
    }

    /// Whether `owner` has notifications waiting.
    pub fn has_notifications(&self, owner: &str) -> bool {
        self.inner.store.has_notifications(owner).unwrap_or(false)
    }

    /// Drops the pending notification of a task whose result its owner has already seen;
    /// returns once that is on disk, so a take that follows does not hand it out.
    pub async fn discard_notification(&self, id: TaskId) {
        // After the notice's own write, which was submitted before its task's end was shown.
        let (tx, rx) = oneshot::channel();
        self.inner.store.submit_or_fail(
            vec![Op::DiscardNotification(id)],
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        if let Ok(Err(e)) = rx.await {
            tracing::warn!("cannot drop the notification of task {id}: {e}");
        }
    }

    /// A new consumer of notifications.
    pub fn notice_consumer(&self) -> NoticeConsumer {
        let id = {
            let mut l = self.inner.leases();
            l.next_consumer += 1;
            l.next_consumer
        };
        NoticeConsumer {
            engine: self.clone(),
            id,
        }
    }
}

impl super::Inner {
    fn leases(&self) -> std::sync::MutexGuard<'_, Leases> {
        // Every change to the leases is a single insert or remove: a panic leaves them whole.
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl NoticeConsumer {
    /// Acknowledges `ack` (seqs this consumer handed on), then hands out `owner`'s pending
    /// notices that no consumer holds (this one included: each is handed out once while
    /// held), oldest first, at most [`MAX_TAKE`]. A notice whose
    /// task's end was announced (its event published, its waiters woken) before the call is
    /// in the answer: both happen once the notice is on disk.
    pub async fn take(&self, owner: &str, ack: &[u64]) -> Result<Vec<Notification>, EngineError> {
        if !ack.is_empty() {
            self.ack(owner, ack).await?;
        }
        let inner = &self.engine.inner;
        loop {
            let acks = inner.leases().acks;
            // Owners poll this: with nothing waiting, the answer is one indexed read.
            let pending = inner.store.pending_notifications(owner, MAX_TAKE)?;
            if pending.is_empty() {
                return Ok(pending);
            }
            let mut leases = inner.leases();
            if leases.acks != acks {
                // Notices acknowledged meanwhile may be in what was read, their leases gone.
                continue;
            }
            // Each notice is handed out once while held: not again to this consumer either
            // (two calls at once on one connection must not both show it).
            let mine: Vec<Notification> = pending
                .into_iter()
                .filter(|n| match leases.holders.entry(n.seq) {
                    Entry::Occupied(_) => false,
                    Entry::Vacant(v) => {
                        v.insert(Lease {
                            consumer: self.id,
                            owner: owner.to_string(),
                        });
                        true
                    }
                })
                .collect();
            return Ok(mine);
        }
    }

    /// Acknowledges notices `owner` handed on: they are removed, durably, before this
    /// returns. The ack is the owner's word, whichever of its consumers holds a notice: a
    /// client that handled a notice on a connection it then lost acknowledges it on the next,
    /// possibly before the daemon has seen the old one go. Seqs of another owner are left
    /// alone; seqs no consumer holds (taken before a daemon restart) are removed.
    pub async fn ack(&self, owner: &str, seqs: &[u64]) -> Result<(), EngineError> {
        let inner = &self.engine.inner;
        let mine: Vec<u64> = {
            let leases = inner.leases();
            seqs.iter()
                .copied()
                .filter(|s| leases.holders.get(s).is_none_or(|l| l.owner == owner))
                .collect()
        };
        if mine.is_empty() {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        inner.store.submit_or_fail(
            vec![Op::AckNotifications {
                owner: owner.to_string(),
                seqs: mine.clone(),
            }],
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.await.unwrap_or(Err(StoreError::Closed))?;
        let mut leases = inner.leases();
        for seq in &mine {
            if leases.holders.get(seq).is_some_and(|l| l.owner == owner) {
                leases.holders.remove(seq);
            }
        }
        leases.acks += 1;
        Ok(())
    }
}

impl NoticeConsumer {
    /// Releases every notice this consumer holds: they are handed out again. For a consumer
    /// whose client is gone while work of its own still runs (dropping does the same).
    pub fn release(&self) {
        let id = self.id;
        self.engine
            .inner
            .leases()
            .holders
            .retain(|_, l| l.consumer != id);
    }
}

impl Drop for NoticeConsumer {
    fn drop(&mut self) {
        self.release();
    }
}
