//! The task's log: made with the first byte (a task that prints nothing costs no file),
//! written straight through (no buffer to lose), never past the cap or into the space kept
//! for aside's own state.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{unlinkat, UnlinkatFlags};

/// Bytes written between two looks at the disk's free space.
const ROOM_CHECK: u64 = 1 << 20;

pub(crate) struct Log {
    dir: OwnedFd,
    name: String,
    /// For messages.
    path: String,
    file: Option<File>,
    pub total: u64,
    cap: u64,
    reserve: u64,
    unchecked: u64,
}

pub(crate) enum Written {
    All,
    /// The cap is reached: only part of the bytes was kept.
    Cap,
}

impl Log {
    pub fn open(dir: &str, name: &str, cap: u64, reserve: u64) -> std::io::Result<Self> {
        let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
        let fd = nix::fcntl::open(dir, flags, Mode::empty())?;
        Ok(Self {
            dir: fd,
            name: name.to_string(),
            path: format!("{dir}/{name}"),
            file: None,
            total: 0,
            cap,
            reserve,
            // The first byte looks.
            unchecked: ROOM_CHECK,
        })
    }

    /// Appends `data`, up to the cap. An error is the message to record.
    pub fn write(&mut self, data: &[u8]) -> Result<Written, String> {
        let room = self.cap.saturating_sub(self.total);
        let (data, result) = if data.len() as u64 > room {
            (&data[..room as usize], Written::Cap)
        } else {
            (data, Written::All)
        };
        if data.is_empty() {
            return Ok(result);
        }
        self.unchecked += data.len() as u64;
        if self.unchecked >= ROOM_CHECK {
            self.unchecked = 0;
            self.check_room()?;
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(self.create().map_err(|e| self.error(e))?),
        };
        if let Err(e) = file.write_all(data) {
            return Err(self.error(e));
        }
        self.total += data.len() as u64;
        Ok(result)
    }

    fn error(&self, e: impl std::fmt::Display) -> String {
        format!("{}: {e}", self.path)
    }

    fn check_room(&self) -> Result<(), String> {
        let free = nix::sys::statvfs::fstatvfs(&self.dir)
            .map(|s| s.blocks_available().saturating_mul(s.fragment_size()))
            .unwrap_or(u64::MAX);
        if free < self.reserve {
            return Err(self.error(format!(
                "No space left on device (the last {} MiB are kept for aside's own state)",
                self.reserve >> 20
            )));
        }
        Ok(())
    }

    /// New and private; whatever is at its name already is removed, never written through.
    fn create(&self) -> std::io::Result<File> {
        let flags = OFlag::O_WRONLY
            | OFlag::O_CREAT
            | OFlag::O_EXCL
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(0o600);
        match openat(&self.dir, self.name.as_str(), flags, mode) {
            Ok(fd) => Ok(File::from(fd)),
            Err(nix::errno::Errno::EEXIST) => {
                unlinkat(&self.dir, self.name.as_str(), UnlinkatFlags::NoRemoveDir)?;
                Ok(File::from(openat(&self.dir, self.name.as_str(), flags, mode)?))
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_made_with_the_first_byte_and_stops_at_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let mut log = Log::open(d, "1.log", 8, 0).unwrap();
        assert!(!dir.path().join("1.log").exists());
        assert!(matches!(log.write(b"12345"), Ok(Written::All)));
        assert!(matches!(log.write(b"67890"), Ok(Written::Cap)));
        assert_eq!(log.total, 8);
        assert_eq!(std::fs::read(dir.path().join("1.log")).unwrap(), b"12345678");
    }

    #[test]
    fn a_planted_link_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("2.log")).unwrap();
        let mut log = Log::open(dir.path().to_str().unwrap(), "2.log", 100, 0).unwrap();
        log.write(b"log").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("2.log")).unwrap(),
            "log"
        );
    }

    #[test]
    fn no_byte_goes_into_the_reserve() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path().to_str().unwrap(), "3.log", 100, u64::MAX).unwrap();
        let err = log.write(b"x").err().unwrap();
        assert!(err.contains("No space left on device"), "{err}");
        assert_eq!(log.total, 0);
    }
}
