//! A task's output: one byte stream, in memory or in a log file, with a bounded tail.
//!
//! A foreground task's output stays in memory until it passes the spill size; a background
//! or detached task writes everything to its log. Writes go straight to the file without a
//! user-space buffer, so a killed daemon leaves the log intact up to its last write.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aside_protocol::TaskId;
use tokio::sync::watch;

use crate::logs::Logs;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

enum Sink {
    Memory(Vec<u8>),
    /// On disk, but the file is made with the first byte: a task that prints nothing costs
    /// no file (creating inodes was most of the daemon's time for trivial tasks).
    Pending,
    File(File),
    /// Written by the task's supervisor, which tells how far; read from the log.
    Supervised,
    /// The task ended; the file (if any) is closed.
    Closed(Option<Vec<u8>>),
}

/// What [`Output::append`] did with the bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Appended {
    All,
    /// The cap was reached: only part (or none) of the bytes were kept.
    CapReached,
}

/// Bytes of log written between two looks at the disk's free space.
const ROOM_CHECK: u64 = 1 << 20;

struct Inner {
    sink: Sink,
    /// Bytes written to the log since the disk's free space was last looked at.
    unchecked: u64,
    total: u64,
    tail: VecDeque<u8>,
}

pub struct Output {
    inner: Mutex<Inner>,
    logs: Arc<Logs>,
    id: TaskId,
    path: PathBuf,
    cap: u64,
    spill: u64,
    tail_max: usize,
    bytes: watch::Sender<u64>,
}

impl Output {
    /// A new output for task `id`, whose log would be in `logs`. With `to_disk`, the log is
    /// created with the first byte; otherwise output stays in memory until `spill` bytes.
    /// Touches no file.
    pub fn new(
        logs: Arc<Logs>,
        id: TaskId,
        to_disk: bool,
        cap: u64,
        spill: u64,
        tail: u64,
    ) -> Self {
        let sink = if to_disk {
            Sink::Pending
        } else {
            Sink::Memory(Vec::new())
        };
        Self {
            inner: Mutex::new(Inner {
                sink,
                // The first byte written to the log looks.
                unchecked: ROOM_CHECK,
                total: 0,
                tail: VecDeque::new(),
            }),
            path: logs.path(id),
            logs,
            id,
            cap,
            spill,
            tail_max: tail as usize,
            bytes: watch::channel(0).0,
        }
    }

    /// The output of a task whose supervisor writes its log ([`Output::advance`] follows it).
    pub fn supervised(logs: Arc<Logs>, id: TaskId, total: u64, tail: u64) -> Self {
        Self::new(logs, id, true, u64::MAX, u64::MAX, tail).starting_at(Sink::Supervised, total)
    }

    /// The output of a task that runs again after its engine went away: it goes on at the
    /// end of the log the task already has; without one, as [`Output::new`].
    pub fn continued(
        logs: Arc<Logs>,
        id: TaskId,
        to_disk: bool,
        cap: u64,
        spill: u64,
        tail: u64,
    ) -> Self {
        let out = Self::new(logs, id, to_disk, cap, spill, tail);
        match out.logs.open_append(id) {
            Ok(file) => {
                let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                out.starting_at(Sink::File(file), len)
            }
            Err(_) => out,
        }
    }

    /// This output with `sink`, `total` bytes already in it.
    fn starting_at(self, sink: Sink, total: u64) -> Self {
        {
            let mut inner = self.inner();
            inner.sink = sink;
            inner.total = total;
        }
        self.bytes.send_replace(total);
        self
    }

    /// The supervisor wrote the log up to `total` bytes.
    pub fn advance(&self, total: u64) {
        let mut inner = self.inner();
        if !matches!(inner.sink, Sink::Supervised) || total <= inner.total {
            return;
        }
        inner.total = total;
        drop(inner);
        self.bytes.send_replace(total);
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn total(&self) -> u64 {
        self.inner().total
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the output is (or was) written to the log file.
    pub fn on_disk(&self) -> bool {
        matches!(
            self.inner().sink,
            Sink::Pending | Sink::File(_) | Sink::Supervised | Sink::Closed(None)
        )
    }

    /// Size in memory of a finished output kept for later reads.
    pub fn retained_bytes(&self) -> usize {
        match &self.inner().sink {
            Sink::Closed(Some(buf)) | Sink::Memory(buf) => buf.len(),
            _ => 0,
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.bytes.subscribe()
    }

    pub fn append(&self, data: &[u8]) -> Result<Appended, OutputError> {
        let mut inner = self.inner();
        let room = self.cap.saturating_sub(inner.total);
        let (data, result) = if (data.len() as u64) > room {
            (&data[..room as usize], Appended::CapReached)
        } else {
            (data, Appended::All)
        };
        if data.is_empty() || matches!(inner.sink, Sink::Supervised) {
            // A supervised task's log is its supervisor's to write.
            return Ok(result);
        }
        let spill_now = matches!(&inner.sink, Sink::Memory(buf) if (buf.len() + data.len()) as u64 > self.spill);
        if spill_now {
            self.move_to_disk(&mut inner)?;
        }
        if matches!(inner.sink, Sink::Pending) {
            inner.sink = Sink::File(self.create_log()?);
        }
        if matches!(inner.sink, Sink::File(_)) {
            // The disk's free space is looked at once per ROOM_CHECK bytes written.
            inner.unchecked += data.len() as u64;
            if inner.unchecked >= ROOM_CHECK {
                inner.unchecked = 0;
                self.logs.check_room().map_err(|source| OutputError::Io {
                    path: self.path.clone(),
                    source,
                })?;
            }
        }
        match &mut inner.sink {
            Sink::Memory(buf) => buf.extend_from_slice(data),
            Sink::File(f) => f.write_all(data).map_err(|source| OutputError::Io {
                path: self.path.clone(),
                source,
            })?,
            Sink::Closed(_) | Sink::Pending | Sink::Supervised => return Ok(result),
        }
        inner.total += data.len() as u64;
        push_tail(&mut inner.tail, data, self.tail_max);
        let total = inner.total;
        drop(inner);
        self.bytes.send_replace(total);
        Ok(result)
    }

    /// Moves the output to its log file (on detach, or past the spill size), also when the
    /// task has just ended with its output in memory.
    pub fn to_disk(&self) -> Result<(), OutputError> {
        let mut inner = self.inner();
        if let Sink::Closed(Some(_)) = inner.sink {
            drop(inner);
            return self.save();
        }
        self.move_to_disk(&mut inner)
    }

    fn create_log(&self) -> Result<File, OutputError> {
        self.logs.create(self.id).map_err(|source| OutputError::Io {
            path: self.path.clone(),
            source,
        })
    }

    fn move_to_disk(&self, inner: &mut Inner) -> Result<(), OutputError> {
        if matches!(&inner.sink, Sink::Memory(buf) if buf.is_empty()) {
            inner.sink = Sink::Pending;
        } else if let Sink::Memory(buf) = &inner.sink {
            let mut file = self.create_log()?;
            file.write_all(buf).map_err(|source| OutputError::Io {
                path: self.path.clone(),
                source,
            })?;
            inner.sink = Sink::File(file);
        }
        Ok(())
    }

    /// Writes a closed output that was kept in memory to its log file, so it is kept.
    /// The task has ended, so its output may not be closed yet (that happens after the
    /// engine's lock is released): a memory sink is written all the same.
    pub fn save(&self) -> Result<(), OutputError> {
        let mut inner = self.inner();
        if let Sink::Closed(Some(buf)) | Sink::Memory(buf) = &inner.sink {
            let mut file = self.create_log()?;
            file.write_all(buf).map_err(|source| OutputError::Io {
                path: self.path.clone(),
                source,
            })?;
            inner.sink = Sink::Closed(None);
        }
        Ok(())
    }

    /// Closes the log; a memory output is kept for reads until dropped.
    pub fn close(&self) {
        let mut inner = self.inner();
        let sink = std::mem::replace(&mut inner.sink, Sink::Closed(None));
        inner.sink = match sink {
            Sink::Memory(buf) => Sink::Closed(Some(buf)),
            Sink::Pending | Sink::File(_) | Sink::Supervised | Sink::Closed(None) => {
                Sink::Closed(None)
            }
            Sink::Closed(Some(buf)) => Sink::Closed(Some(buf)),
        };
    }

    /// The last bytes of output, at most the tail size.
    pub fn tail(&self) -> Vec<u8> {
        let inner = self.inner();
        if matches!(inner.sink, Sink::Supervised) || (inner.tail.is_empty() && inner.total > 0) {
            // Written by the supervisor (or before this engine): read from the log.
            let total = inner.total;
            drop(inner);
            let from = total.saturating_sub(self.tail_max as u64);
            return read_log(&self.logs, self.id, from, self.tail_max).unwrap_or_default();
        }
        inner.tail.iter().copied().collect()
    }

    /// Up to `max` bytes from offset `after`.
    pub fn read(&self, after: u64, max: usize) -> Result<Vec<u8>, OutputError> {
        let inner = self.inner();
        let end = inner.total.min(after.saturating_add(max as u64));
        if after >= end {
            return Ok(Vec::new());
        }
        match &inner.sink {
            Sink::Memory(buf) | Sink::Closed(Some(buf)) => {
                Ok(buf[after as usize..end as usize].to_vec())
            }
            Sink::File(f) => read_at(f, &self.path, after, (end - after) as usize),
            Sink::Pending => Ok(Vec::new()),
            Sink::Supervised | Sink::Closed(None) => {
                drop(inner);
                read_log(&self.logs, self.id, after, (end - after) as usize)
            }
        }
    }
}

fn push_tail(tail: &mut VecDeque<u8>, data: &[u8], max: usize) {
    if data.len() >= max {
        tail.clear();
        tail.extend(&data[data.len() - max..]);
        return;
    }
    let overflow = (tail.len() + data.len()).saturating_sub(max);
    tail.drain(..overflow);
    tail.extend(data);
}

fn read_at(f: &File, path: &Path, offset: u64, len: usize) -> Result<Vec<u8>, OutputError> {
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match f.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(OutputError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Reads a finished task's log file.
pub fn read_log(logs: &Logs, id: TaskId, after: u64, max: usize) -> Result<Vec<u8>, OutputError> {
    let path = logs.path(id);
    let f = logs.open_log(id).map_err(|source| OutputError::Io {
        path: path.clone(),
        source,
    })?;
    read_at(&f, &path, after, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output for task `n` in a logs folder inside `dir`, and its log's path.
    fn output(
        dir: &tempfile::TempDir,
        n: u64,
        to_disk: bool,
        cap: u64,
        spill: u64,
        tail: u64,
    ) -> (Output, PathBuf) {
        let logs = Arc::new(Logs::open(&dir.path().join("logs")).unwrap());
        let id = TaskId::new(n).unwrap();
        let path = logs.path(id);
        (Output::new(logs, id, to_disk, cap, spill, tail), path)
    }

    #[test]
    fn spills_past_the_limit_and_keeps_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let (out, path) = output(&dir, 1, false, 1 << 20, 10, 4);
        out.append(b"hello").unwrap();
        assert!(!path.exists());
        out.append(b" world\xff").unwrap();
        assert!(path.exists());
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world\xff");
        assert_eq!(out.read(6, 100).unwrap(), b"world\xff");
        assert_eq!(out.tail(), b"rld\xff");
    }

    #[test]
    fn a_log_is_made_with_the_first_byte() {
        let dir = tempfile::tempdir().unwrap();
        let (out, quiet) = output(&dir, 3, true, 1 << 20, 1 << 20, 64);
        assert!(out.on_disk());
        out.close();
        assert!(!quiet.exists(), "no output, no file");
        let (out, chatty) = output(&dir, 4, true, 1 << 20, 1 << 20, 64);
        out.append(b"x").unwrap();
        assert_eq!(std::fs::read(&chatty).unwrap(), b"x");
    }

    #[test]
    fn cap_stops_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let (out, _) = output(&dir, 2, true, 8, 1 << 20, 64);
        assert_eq!(out.append(b"12345").unwrap(), Appended::All);
        assert_eq!(out.append(b"67890").unwrap(), Appended::CapReached);
        assert_eq!(out.total(), 8);
        out.close();
        assert_eq!(out.read(0, 100).unwrap(), b"12345678");
    }

    #[test]
    fn an_output_that_ended_in_memory_still_moves_to_disk() {
        let dir = tempfile::tempdir().unwrap();
        let (out, path) = output(&dir, 5, false, 1 << 20, 1 << 20, 64);
        out.append(b"kept").unwrap();
        out.close();
        assert!(!path.exists());
        out.to_disk().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"kept");
        assert_eq!(out.retained_bytes(), 0);
        assert_eq!(out.read(0, 10).unwrap(), b"kept");
    }

    #[test]
    fn saving_an_ended_output_not_yet_closed_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let (out, path) = output(&dir, 6, false, 1 << 20, 1 << 20, 64);
        out.append(b"all of it").unwrap();
        out.save().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"all of it");
        out.close();
        assert_eq!(out.read(0, 100).unwrap(), b"all of it");
    }
}
