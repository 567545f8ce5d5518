//! Checkpoints off the commit path. SQLite would copy the WAL back into the database (and
//! sync it) inside whichever commit crosses its threshold, stalling that commit and every
//! write queued behind it; here a thread of its own does it, beside the writer, after
//! commits happened.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Starts the thread; `commits` counts the writer's commits, `scrub` asks for a WAL
    /// emptied to nothing at the next checkpoint.
    pub(crate) fn start(
        conn: Connection,
        commits: Arc<AtomicU64>,
        scrub: Arc<AtomicBool>,
    ) -> Result<Self, StoreError> {
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
                    // PASSIVE copies what no reader still needs and never waits for anyone;
                    // TRUNCATE waits for the writer, copies everything and empties the WAL,
                    // so nothing a scrubbing commit overwrote survives in it.
                    let sql = if scrub.swap(false, Ordering::AcqRel) {
                        "PRAGMA wal_checkpoint(TRUNCATE)"
                    } else {
                        "PRAGMA wal_checkpoint(PASSIVE)"
                    };
                    let r = conn.query_row(sql, [], |_| Ok(()));
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
