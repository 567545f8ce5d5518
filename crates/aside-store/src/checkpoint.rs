//! Checkpoints off the commit path. SQLite would copy the WAL back into the database (and
//! sync it) inside whichever commit crosses its threshold, stalling that commit and every
//! write queued behind it; here a thread of its own does it, beside the writer, after
//! commits happened.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use crate::StoreError;

/// How often the WAL is copied back, when anything was committed since.
const EVERY: Duration = Duration::from_millis(250);

pub(crate) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread; `commits` counts the writer's commits.
    pub(crate) fn start(conn: Connection, commits: Arc<AtomicU64>) -> Result<Self, StoreError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("aside-checkpoint".into())
            .spawn(move || {
                let mut seen = 0;
                // Wakes every period, or at once when the store closes.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                    let now = commits.load(Ordering::Acquire);
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    // PASSIVE: copies what no reader still needs, never waits for anyone.
                    let r = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    if let Err(e) = r {
                        tracing::debug!("checkpoint: {e}");
                    }
                }
            })
            .map_err(|e| StoreError::io("aside-checkpoint thread", e))?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop = None;
        if let Some(t) = self.thread.take() {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}
