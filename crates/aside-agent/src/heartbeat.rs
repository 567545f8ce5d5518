//! How long an agent has made no progress, for the stall watchdog.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Milliseconds since the runtime started at which the agent last made progress.
pub(crate) struct Heartbeat {
    origin: Instant,
    last: AtomicU64,
    /// Waits on tools and on its own tasks are not stalls: they have their own limits.
    paused: AtomicU64,
}

impl Heartbeat {
    pub(crate) fn new() -> Self {
        Self {
            origin: Instant::now(),
            last: AtomicU64::new(0),
            paused: AtomicU64::new(0),
        }
    }
    /// Not watched until the guard is dropped (then a beat).
    pub(crate) fn pause(self: &Arc<Self>) -> Paused {
        self.paused.fetch_add(1, Ordering::Relaxed);
        Paused(self.clone())
    }
    pub(crate) fn beat(&self) {
        self.last
            .store(self.origin.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    pub(crate) fn idle(&self) -> Duration {
        if self.paused.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.origin.elapsed().saturating_sub(last)
    }
}

pub(crate) struct Paused(Arc<Heartbeat>);

impl Drop for Paused {
    fn drop(&mut self) {
        self.0.beat();
        self.0.paused.fetch_sub(1, Ordering::Relaxed);
    }
}
