//! The folder of task logs, held open. Every log is opened relative to it and never through
//! a symbolic link, so a link planted at `logs/ID.log` (or the folder swapped for a link
//! after the start) cannot redirect a write or a read elsewhere. At the start the folder
//! must be a real directory owned by this user; it is made private (0700).

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aside_protocol::TaskId;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{unlinkat, UnlinkatFlags};

/// Why the logs folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{0} is not a directory (a symbolic link or a file is refused): remove it")]
    NotADirectory(PathBuf),
    #[error("{path} belongs to uid {owner}, not to this user ({me})")]
    NotOwned { path: PathBuf, owner: u32, me: u32 },
}

pub struct Logs {
    dir: OwnedFd,
    path: PathBuf,
}

impl Logs {
    /// Opens the folder at `path`, creating it if needed.
    pub fn open(path: &Path) -> Result<Self, LogsError> {
        let io_err = |source| LogsError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Err(e) = std::fs::create_dir(path) {
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(io_err(e));
            }
        }
        let meta = std::fs::symlink_metadata(path).map_err(io_err)?;
        if !meta.file_type().is_dir() {
            return Err(LogsError::NotADirectory(path.to_path_buf()));
        }
        let me = nix::unistd::getuid().as_raw();
        if meta.uid() != me {
            return Err(LogsError::NotOwned {
                path: path.to_path_buf(),
                owner: meta.uid(),
                me,
            });
        }
        if meta.mode() & 0o777 != 0o700 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
                .map_err(io_err)?;
        }
        let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
        let dir =
            nix::fcntl::open(path, flags, Mode::empty()).map_err(|e| io_err(io::Error::from(e)))?;
        Ok(Self {
            dir,
            path: path.to_path_buf(),
        })
    }

    fn name(id: TaskId) -> String {
        format!("{id}.log")
    }

    /// Where a task's log is, for people and records.
    /// Refuses more log once the disk is down to the space kept for aside's own state: a
    /// task filling the disk fails with this, and the state of every task can still be
    /// written.
    pub fn check_room(&self) -> io::Result<()> {
        let free = nix::sys::statvfs::fstatvfs(&self.dir)
            .map(|s| aside_store::free_bytes(&s))
            .unwrap_or(u64::MAX);
        if free < aside_store::RESERVE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "No space left on device (the last {} MiB are kept for aside's own state)",
                    aside_store::RESERVE_BYTES >> 20
                ),
            ));
        }
        Ok(())
    }

    pub fn path(&self, id: TaskId) -> PathBuf {
        self.path.join(Self::name(id))
    }

    /// Creates a task's log, new and private. Whatever is at its name already (a stale
    /// file, a planted link) is removed first, never written through.
    pub fn create(&self, id: TaskId) -> io::Result<File> {
        let name = Self::name(id);
        let flags =
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(0o600);
        match openat(&self.dir, name.as_str(), flags, mode) {
            Ok(fd) => Ok(File::from(fd)),
            Err(nix::errno::Errno::EEXIST) => {
                unlinkat(&self.dir, name.as_str(), UnlinkatFlags::NoRemoveDir)?;
                Ok(File::from(openat(&self.dir, name.as_str(), flags, mode)?))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Opens a task's existing log to write on at its end (and read back); a link in its
    /// place is refused. For a task that runs again after its engine went away.
    pub fn open_append(&self, id: TaskId) -> io::Result<File> {
        self.open_existing(id, OFlag::O_RDWR | OFlag::O_APPEND)
    }

    /// Opens a task's log to read it; a link in its place is refused.
    pub fn open_log(&self, id: TaskId) -> io::Result<File> {
        self.open_existing(id, OFlag::O_RDONLY)
    }

    fn open_existing(&self, id: TaskId, access: OFlag) -> io::Result<File> {
        let flags = access | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        Ok(File::from(openat(
            &self.dir,
            Self::name(id).as_str(),
            flags,
            Mode::empty(),
        )?))
    }

    /// Removes a task's log (a link in its place is removed, not what it points to). A log
    /// that was never made is fine.
    pub fn remove(&self, id: TaskId) -> io::Result<()> {
        match unlinkat(
            &self.dir,
            Self::name(id).as_str(),
            UnlinkatFlags::NoRemoveDir,
        ) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> TaskId {
        TaskId::new(n).unwrap()
    }

    #[test]
    fn a_planted_link_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Logs::open(&dir.path().join("logs")).unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, "keep me").unwrap();
        std::os::unix::fs::symlink(&target, logs.path(id(7))).unwrap();
        use std::io::Write;
        logs.create(id(7)).unwrap().write_all(b"log").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        assert_eq!(std::fs::read_to_string(logs.path(id(7))).unwrap(), "log");
        // A link swapped in afterwards is refused on read.
        std::fs::remove_file(logs.path(id(7))).unwrap();
        std::os::unix::fs::symlink(&target, logs.path(id(7))).unwrap();
        assert!(logs.open_log(id(7)).is_err());
        logs.remove(id(7)).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    }

    #[test]
    fn a_folder_that_is_a_link_is_refused_and_a_real_one_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let link = dir.path().join("logs");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        assert!(matches!(
            Logs::open(&link),
            Err(LogsError::NotADirectory(_))
        ));
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
        Logs::open(&real).unwrap();
        let mode = std::fs::metadata(&real).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
