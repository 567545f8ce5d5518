//! Why a task is being aborted, recorded before anything is killed.
//!
//! The first reason wins: a task that times out while being stopped stays timed out. The
//! task's final state is classified from this reason, whatever its process returns.

use std::time::Duration;

use aside_protocol::CancelReason;
use tokio::sync::watch;

/// Serializable: a task's supervisor keeps it across a daemon restart.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AbortReason {
    Cancel(CancelReason),
    Timeout(Duration),
    OutputCap(u64),
    Capture(String),
}

pub struct Abort {
    reason: watch::Sender<Option<AbortReason>>,
}

impl Default for Abort {
    fn default() -> Self {
        Self {
            reason: watch::channel(None).0,
        }
    }
}

impl Abort {
    /// Records `reason` unless one is recorded already; returns whether it was recorded.
    pub fn abort(&self, reason: AbortReason) -> bool {
        self.reason.send_if_modified(|cur| {
            if cur.is_none() {
                *cur = Some(reason);
                true
            } else {
                false
            }
        })
    }

    pub fn reason(&self) -> Option<AbortReason> {
        self.reason.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Option<AbortReason>> {
        self.reason.subscribe()
    }
}
