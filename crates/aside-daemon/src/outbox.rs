//! What the daemon owes one client, bounded: the reply and event lines queued for it, counted
//! in bytes. A client that does not read stops being read itself (past [`SOFT_LIMIT`] the
//! connection reads no more requests and event streams wait); one whose queue still grows
//! past [`HARD_LIMIT`] is dropped. So a client can cost the daemon only so much memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{mpsc, watch, Notify};

/// Queued bytes past which the connection's requests are no longer read and its event
/// streams wait, until the client reads.
pub(crate) const SOFT_LIMIT: usize = 1 << 20;
/// Queued bytes past which the client is dropped: replies to requests already read can
/// overshoot the soft limit, by at most this much.
pub(crate) const HARD_LIMIT: usize = 16 << 20;

pub(crate) struct Outbox {
    lines: mpsc::UnboundedSender<Vec<u8>>,
    counts: Arc<Counts>,
    /// Raised when the connection ends: the client hung up, or was dropped.
    closed: watch::Sender<bool>,
}

/// What the outbox and its writer task share (the writer does not hold the sender, so it
/// ends once the connection's outbox is dropped and the queue is written).
struct Counts {
    queued: AtomicUsize,
    /// The most ever queued at once.
    peak: AtomicUsize,
    drained: Notify,
    /// Raised when the client is dropped for not reading: what is queued is not sent.
    dropped: watch::Sender<bool>,
}

impl Outbox {
    /// The outbox, and the task that writes it to the socket.
    pub(crate) fn start(mut write: OwnedWriteHalf) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let counts = Arc::new(Counts {
            queued: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            drained: Notify::new(),
            dropped: watch::channel(false).0,
        });
        let c = counts.clone();
        let writer = tokio::spawn(async move {
            let mut dropped = c.dropped.subscribe();
            loop {
                let bytes = tokio::select! {
                    b = rx.recv() => match b {
                        Some(b) => b,
                        None => break,
                    },
                    _ = dropped.wait_for(|d| *d) => break,
                };
                let n = bytes.len();
                let sent = write.write_all(&bytes).await;
                drop(bytes);
                c.queued.fetch_sub(n, Ordering::AcqRel);
                c.drained.notify_waiters();
                if sent.is_err() {
                    c.dropped.send_replace(true);
                    break;
                }
            }
            // Nothing more goes out: wake whoever waits for room.
            c.dropped.send_replace(true);
            c.drained.notify_waiters();
        });
        let outbox = Self {
            lines: tx,
            counts,
            closed: watch::channel(false).0,
        };
        (outbox, writer)
    }

    /// Raised once the connection ends.
    pub(crate) fn closed(&self) -> &watch::Sender<bool> {
        &self.closed
    }

    /// Whether the client was dropped, or its socket refused a write.
    pub(crate) fn dropped(&self) -> watch::Receiver<bool> {
        self.counts.dropped.subscribe()
    }

    /// Bytes queued and not yet written to the socket.
    pub(crate) fn queued(&self) -> usize {
        self.counts.queued.load(Ordering::Acquire)
    }

    /// Queues a reply at once. Past the hard limit the client is dropped instead: it has
    /// stopped reading while asking for more.
    pub(crate) fn reply(&self, bytes: Vec<u8>) {
        let n = bytes.len();
        let queued = &self.counts.queued;
        let total = queued.fetch_add(n, Ordering::AcqRel) + n;
        if total > HARD_LIMIT {
            queued.fetch_sub(n, Ordering::AcqRel);
            if !self.counts.dropped.send_replace(true) {
                tracing::warn!("a client stopped reading with {total} bytes owed: dropped");
            }
            self.closed.send_replace(true);
            return;
        }
        self.counts.peak.fetch_max(total, Ordering::AcqRel);
        if self.lines.send(bytes).is_err() {
            queued.fetch_sub(n, Ordering::AcqRel);
        }
    }

    /// Whether this connection ever had more than the soft limit queued.
    pub(crate) fn was_backed_up(&self) -> bool {
        self.counts.peak.load(Ordering::Acquire) > SOFT_LIMIT
    }

    /// Queues a notification once the queue is below the soft limit; false once the
    /// connection is closed.
    pub(crate) async fn notify(&self, bytes: Vec<u8>) -> bool {
        if !self.room().await {
            return false;
        }
        let n = bytes.len();
        self.counts.queued.fetch_add(n, Ordering::AcqRel);
        if self.lines.send(bytes).is_err() {
            self.counts.queued.fetch_sub(n, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Waits until the queue is below the soft limit; false if the client is dropped or its
    /// socket refuses a write first. (A client that has only stopped sending still reads.)
    pub(crate) async fn room(&self) -> bool {
        let mut dropped = self.dropped();
        loop {
            let drained = self.counts.drained.notified();
            tokio::pin!(drained);
            // Registered before the check, so a drain in between is not missed.
            drained.as_mut().enable();
            if *dropped.borrow() {
                return false;
            }
            if self.queued() <= SOFT_LIMIT {
                return true;
            }
            tokio::select! {
                _ = &mut drained => {}
                _ = dropped.wait_for(|d| *d) => return false,
            }
        }
    }
}

/// Hands memory freed after a burst back to the system: glibc's allocator keeps it
/// otherwise, and a daemon that once queued megabytes for a slow client would keep them.
pub(crate) fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}
