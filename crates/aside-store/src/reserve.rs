//! Space kept back for the store: a file of [`RESERVE_BYTES`] in the state directory, given
//! up the moment a commit finds the disk full, so that the writes already owed (a task's end,
//! a removal that frees space) can still be committed; made again once the disk has room.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How much space is kept back.
pub const RESERVE_BYTES: u64 = 4 << 20;

pub(crate) struct Reserve {
    path: PathBuf,
    /// Whether the file is there (as far as this process knows).
    held: bool,
    /// Raised when the reserve was given up to a full disk, lowered once there is room
    /// again: meanwhile new tasks are refused.
    spent: Arc<AtomicBool>,
}

impl Reserve {
    /// Keeps the space back now if the disk has room for it (best effort: under a file-size
    /// limit smaller than the reserve there is none).
    pub(crate) fn new(dir: &Path, spent: Arc<AtomicBool>) -> Self {
        let mut r = Self {
            path: dir.join("reserve"),
            held: false,
            spent,
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
            Ok(()) => self.held = true,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                tracing::debug!("could not reserve space for the store: {e}");
            }
        }
    }
}

/// Whether the file system holding `path` has `bytes` free for this user.
// statvfs's field types differ across platforms (u32 on some): the casts are not useless.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn room_for(path: &Path, bytes: u64) -> bool {
    let dir = path.parent().unwrap_or(Path::new("/"));
    match nix::sys::statvfs::statvfs(dir) {
        Ok(s) => (s.blocks_available() as u64).saturating_mul(s.fragment_size() as u64) >= bytes,
        Err(_) => false,
    }
}
