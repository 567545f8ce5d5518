//! What the engine tells: lifecycle events for subscribers (numbered, published once
//! durable, resumable from the store) and notifications for owners (each handed out once).

use aside_protocol::{Event, Notification, TaskId};
use aside_store::{Op, StoreError};
use tokio::sync::{broadcast, oneshot};

use super::{Engine, EngineError};

/// The most events one catch-up from the store returns.
pub const MAX_BACKLOG: usize = 100_000;

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

    /// Hands out the owner's pending notifications; each is handed out once. A notice whose
    /// task's end was announced (its event published, its waiters woken) before the call is
    /// in the answer: both happen once the notice is on disk.
    pub async fn take_notifications(&self, owner: &str) -> Result<Vec<Notification>, EngineError> {
        // Owners poll this: with nothing waiting, answer from a read, without a write.
        if !self.inner.store.has_notifications(owner)? {
            return Ok(Vec::new());
        }
        let (tx, rx) = oneshot::channel();
        self.inner.store.submit_take(
            owner.to_string(),
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        Ok(rx.await.unwrap_or(Err(StoreError::Closed))?)
    }

    /// Whether `owner` has notifications waiting.
    pub fn has_notifications(&self, owner: &str) -> bool {
        self.inner.store.has_notifications(owner).unwrap_or(false)
    }

    /// Drops the pending notification of a task whose result its owner has already seen.
    pub fn discard_notification(&self, id: TaskId) {
        // After the notice's own write, which was submitted before its task's end was shown.
        self.inner
            .store
            .submit(vec![Op::DiscardNotification(id)], None);
    }
}
