use std::path::PathBuf;
use std::sync::Arc;

use crate::FORMAT_VERSION;

/// A storage failure. Cheap to clone: one failed group commit fails every write in it, and
/// each writer gets its own copy of the error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[source] Arc<rusqlite::Error>),
    /// The disk holding the state directory is full, a file-size limit was reached, or the
    /// disk refused a write.
    #[error("no space left to save aside's state (the disk is full or a file-size limit was reached; `aside clean` frees space): {0}")]
    NoSpace(#[source] Arc<rusqlite::Error>),
    /// The disk is full: what the store keeps back for state changes is not for new tasks.
    #[error("no space left on the disk of the state directory: new tasks are refused until there is room (`aside clean` removes finished tasks and their logs)")]
    LowOnSpace,
    #[error("corrupt record: {0}")]
    Json(#[source] Arc<serde_json::Error>),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error(
        "the state in {} was written by a newer aside (format {found}, this build reads {FORMAT_VERSION}); upgrade aside or use another ASIDE_HOME",
        dir.display()
    )]
    NewerFormat { dir: PathBuf, found: i64 },
    /// The writer thread is gone (the store is closing).
    #[error("the store is closed")]
    Closed,
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source: Arc::new(source),
        }
    }

    /// True when the disk (or a file-size limit) is full, or refused a write: the write
    /// may go through later, once there is room.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            StoreError::NoSpace(_) | StoreError::LowOnSpace => true,
            StoreError::Io { source, .. } => {
                matches!(source.raw_os_error(), Some(ENOSPC | EFBIG))
            }
            _ => false,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::{DiskFull, SystemIoFailure};
        match &e {
            // A write past a file-size limit (EFBIG) is reported as an I/O error.
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(f.code, DiskFull | SystemIoFailure) =>
            {
                StoreError::NoSpace(Arc::new(e))
            }
            _ => StoreError::Sqlite(Arc::new(e)),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Json(Arc::new(e))
    }
}

/// ENOSPC and EFBIG, the same numbers on every Linux architecture.
const ENOSPC: i32 = 28;
const EFBIG: i32 = 27;
