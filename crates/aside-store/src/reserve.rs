//! Space kept back for the store: a file of [`RESERVE_BYTES`] in the state directory, given
//! up the moment a commit finds the disk full, so that the writes already owed (a task's end,
//! a removal that frees space) can still be committed; made again once the disk has room.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How much space is kept back.
pub const RESERVE_BYTES: u64 = 4 << 20;

pub(crate) struct Reserve {
    path: PathBuf,
    /// Whether the file is there (as far as this process knows).
    held: bool,
    /// Raised when the reserve was given up to a full disk, lowered once there is room
    /// again: meanwhile new tasks are refused.
    spent: Arc<AtomicBool>,
    /// After a failed attempt to make the file (a file-size limit smaller than it, say),
    /// when to try again: not at every commit.
    retry_at: Option<Instant>,
}

/// How long after a failed attempt the reserve is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(60);

impl Reserve {
    /// Keeps the space back now if the disk has room for it (best effort: under a file-size
    /// limit smaller than the reserve there is none).
    pub(crate) fn new(dir: &Path, spent: Arc<AtomicBool>) -> Self {
        let mut r = Self {
            path: dir.join("reserve"),
            held: false,
            spent,
            retry_at: None,
        };
        r.held = r.path.metadata().is_ok_and(|m| m.len() >= RESERVE_BYTES);
        if !r.held {
            r.refill();
        }
        r
    }

    /// Gives the space up; true if there was any to give.
    pub(crate) fn release(&mut self) -> bool {
        if !self.held {
            return false;
        }
        self.held = false;
        self.spent.store(true, Ordering::Release);
        match std::fs::remove_file(&self.path) {
            Ok(()) => {
                tracing::warn!("the disk is full: the store's reserved space was released");
                true
            }
            Err(_) => false,
        }
    }

    /// Keeps the space back again once the disk has room for the reserve and as much again.
    pub(crate) fn refill(&mut self) {
        if self.held || !room_for(&self.path, 2 * RESERVE_BYTES) {
            return;
        }
        // Room again, whether or not the file can be made (a file-size limit may forbid it).
        self.spent.store(false, Ordering::Release);
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let tmp = self.path.with_extension("tmp");
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..RESERVE_BYTES / zeros.len() as u64 {
                f.write_all(&zeros)?;
            }
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        match written {
            Ok(()) => {
                self.held = true;
                self.retry_at = None;
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                self.retry_at = Some(Instant::now() + RETRY_AFTER);
                tracing::debug!("could not reserve space for the store: {e}");
            }
        }
    }
}

/// Whether the file system holding `path` has `bytes` free for this user.
pub(crate) fn room_for(path: &Path, bytes: u64) -> bool {
    let dir = path.parent().unwrap_or(Path::new("/"));
    nix::sys::statvfs::statvfs(dir).is_ok_and(|s| free_bytes(&s) >= bytes)
}

/// The bytes a file system has free for an unprivileged user.
// statvfs's field types differ across platforms (u32 on some): the casts are not useless.
#[allow(clippy::unnecessary_cast)]
pub fn free_bytes(s: &nix::sys::statvfs::Statvfs) -> u64 {
    (s.blocks_available() as u64).saturating_mul(s.fragment_size() as u64)
}
