use std::path::PathBuf;
use std::sync::Arc;

use crate::FORMAT_VERSION;

/// A storage failure. Cheap to clone: one failed group commit fails every write in it, and
/// each writer gets its own copy of the error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[source] Arc<rusqlite::Error>),
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

    /// True when the disk (or a file-size limit) is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Sqlite(e) => matches!(
                e.as_ref(),
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull
            ),
            StoreError::Io { source, .. } => source.raw_os_error() == Some(libc_enospc()),
            _ => false,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(Arc::new(e))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Json(Arc::new(e))
    }
}

/// ENOSPC, the same number on every Linux architecture.
fn libc_enospc() -> i32 {
    28
}
