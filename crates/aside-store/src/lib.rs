//! Durable state of aside: task records, events and notifications in one SQLite database
//! (WAL mode). Task logs are the engine's (`aside-core`'s `logs.rs`).
//!
//! Writes go to one writer thread ([`Store::submit`]), which commits whatever is waiting in
//! one transaction (group commit): a record, its event and its notification land together
//! or not at all, and many tasks share one commit under load. Reads use a connection of
//! their own and see what is committed. The format is versioned (`PRAGMA user_version`)
//! from the first release; a database written by a newer aside is refused, never rewritten.

mod checkpoint;
mod error;
mod reserve;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use aside_protocol::{Event, Notification, TaskId, TaskRecord, TaskSpec};
use rusqlite::{params, Connection, OptionalExtension};

pub use error::StoreError;
pub use reserve::{free_bytes, RESERVE_BYTES};
pub use writer::Done;

use checkpoint::Checkpointer;
use reserve::Reserve;
use schema::{high_water, EVENT_SEQ, NOTE_SEQ, SETTING_PREFIX};
use writer::{Job, Writer};

/// Version of the on-disk format this build reads and writes.
pub const FORMAT_VERSION: i64 = 1;

/// One change. A write is a list of them, applied together in one transaction.
#[derive(Debug, Clone)]
pub enum Op {
    /// Insert or replace a task's record. The spec is stored on insert only.
    PutTask {
        record: Box<TaskRecord>,
        spec: Option<Box<TaskSpec>>,
    },
    Event(Event),
    /// Queue a notification for the task's owner.
    Notify {
        seq: u64,
        owner: String,
        task: TaskId,
    },
    /// Remove a task with its events, notifications and handles (its log is removed by the
    /// caller).
    Remove(TaskId),
    /// Give out a bearer handle for a task (an MCP task id): whoever holds it may follow and
    /// cancel the task.
    AddHandle {
        handle: String,
        task: TaskId,
        created_ms: u64,
    },
    /// Drop a task's pending notification: its owner saw the result another way.
    DiscardNotification(TaskId),
    /// Drop notifications their owner has acknowledged (by seq; others' are left alone).
    AckNotifications {
        owner: String,
        seqs: Vec<u64>,
    },
    /// Keep a setting changed at runtime (`aside slots`), as JSON under its key; `None`
    /// removes it.
    PutSetting {
        key: &'static str,
        value: Option<String>,
    },
    /// Writes nothing. Once the commit that carries it is durable, the next checkpoint also
    /// empties the WAL, so that what the commit overwrote (a task's environment, which may
    /// hold secrets) leaves no copy in the files; deleted rows are zeroed (`secure_delete`).
    Scrub,
}

/// A stored row that could not be read: its task id and why.
pub type Damaged = (i64, String);

/// A stored task: its record and the spec it was started from.
pub struct StoredTask {
    pub record: TaskRecord,
    pub spec: TaskSpec,
}

/// Which way a page of records runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    OldestFirst,
    NewestFirst,
}

/// How a store behaves beyond its directory.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Held before every commit: makes the disk slow on purpose, for tests of what must
    /// not wait for it.
    pub commit_delay: Duration,
    /// While raised, every commit fails as on a full disk: for tests of what is kept.
    pub full_disk: Arc<AtomicBool>,
}

pub struct Store {
    writer: Writer,
    _checkpointer: Checkpointer,
    /// Reads only; SQLite lets them run beside the writer's transactions.
    reader: Mutex<Connection>,
    /// The reserve was given up to a full disk and there is no room yet to keep it again.
    low_on_space: Arc<AtomicBool>,
    dir: PathBuf,
    instance: String,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, StoreOptions::default())
    }

    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let write_conn = schema::connect(dir)?;
        let instance = schema::prepare(&write_conn, dir)?;
        let low_on_space = Arc::new(AtomicBool::new(false));
        let reserve = Reserve::new(dir, low_on_space.clone());
        let reader = schema::connect(dir)?;
        let commits = Arc::new(AtomicU64::new(0));
        let scrub = Arc::new(AtomicBool::new(false));
        Ok(Self {
            writer: Writer::start(
                write_conn,
                reserve,
                options.commit_delay,
                options.full_disk,
                commits.clone(),
                scrub.clone(),
            )?,
            _checkpointer: Checkpointer::start(schema::connect(dir)?, commits, scrub)?,
            reader: Mutex::new(reader),
            low_on_space,
            dir: dir.to_path_buf(),
            instance,
        })
    }

    /// True while the disk is full: less than twice the space kept back for the store is
    /// free (logs stop at once that space; the margin keeps the answer from flickering as
    /// the store's files shrink and grow), or that space was given up and there is not yet
    /// room to keep it again (known after a commit). New tasks are refused meanwhile; state
    /// changes and removals still go in.
    pub fn low_on_space(&self) -> bool {
        self.low_on_space.load(std::sync::atomic::Ordering::Acquire)
            || !reserve::room_for(&self.dir.join("reserve"), 2 * RESERVE_BYTES)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A random token made when the store was created; it tells this state directory's
    /// processes apart from any other's.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Queues `ops` for the next commit; `done` hears the outcome once it is durable. Never
    /// blocks: safe to call while holding a lock.
    /// A state change already made (a task's end): when the disk is full it is kept, in
    /// order, and committed once there is room; `done` hears of it then.
    pub fn submit(&self, ops: Vec<Op>, done: Option<Done<()>>) {
        self.writer.submit(Job {
            ops,
            done,
            retain: true,
        });
    }

    /// [`Store::submit`] for a write that can be refused (a new task, a removal): when the
    /// disk is full, after the reserve is spent, `done` hears [`StoreError::NoSpace`].
    pub fn submit_or_fail(&self, ops: Vec<Op>, done: Done<()>) {
        self.writer.submit(Job {
            ops,
            done: Some(done),
            retain: false,
        });
    }

    /// Applies `ops` and waits until they are committed. For callers with no runtime
    /// (opening, tests); others use [`Store::submit`].
    pub fn apply(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let (tx, rx) = mpsc::channel();
        self.submit_or_fail(
            ops,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().unwrap_or(Err(StoreError::Closed))
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: it only reads.
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The highest task id ever given out in this state directory.
    pub fn last_task_id(&self) -> Result<u64, StoreError> {
        let n: Option<i64> = self
            .reader()
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'tasks'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    /// A setting kept with [`Op::PutSetting`].
    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .reader()
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [format!("{SETTING_PREFIX}{key}")],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The highest event seq ever handed out, deleted events included.
    pub fn last_event_seq(&self) -> Result<u64, StoreError> {
        high_water(&self.reader(), "events", EVENT_SEQ)
    }

    /// The highest notification seq ever handed out, delivered ones included.
    pub fn last_notification_seq(&self) -> Result<u64, StoreError> {
        high_water(&self.reader(), "notifications", NOTE_SEQ)
    }

    /// The tasks that were queued or running, oldest first, and the rows that could not be
    /// read (id and why): a damaged row is reported and left in place, never allowed to stop
    /// the others loading. Finished tasks are not loaded: they stay on disk.
    pub fn load_live_tasks(&self) -> Result<(Vec<StoredTask>, Vec<Damaged>), StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT id, record, spec FROM tasks WHERE state IN ('queued', 'running') ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        let mut damaged = Vec::new();
        for row in rows {
            let (id, record, spec) = row?;
            let parsed = serde_json::from_str(&record).and_then(|record| {
                Ok(StoredTask {
                    record,
                    spec: serde_json::from_str(&spec)?,
                })
            });
            match parsed {
                Ok(task) => out.push(task),
                Err(e) => damaged.push((id, e.to_string())),
            }
        }
        Ok((out, damaged))
    }

    /// A task's committed record.
    pub fn get_task(&self, id: TaskId) -> Result<Option<TaskRecord>, StoreError> {
        let conn = self.reader();
        let body: Option<String> = conn
            .prepare_cached("SELECT record FROM tasks WHERE id = ?1")?
            .query_row([id.get() as i64], |r| r.get(0))
            .optional()?;
        Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
    }

    /// The spec a task was started from, as stored: without its environment once the task
    /// started.
    pub fn get_spec(&self, id: TaskId) -> Result<Option<TaskSpec>, StoreError> {
        let conn = self.reader();
        let body: Option<String> = conn
            .prepare_cached("SELECT spec FROM tasks WHERE id = ?1")?
            .query_row([id.get() as i64], |r| r.get(0))
            .optional()?;
        Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
    }

    /// Up to `limit` records after `cursor` (exclusive) in `order`, of `owner` only when given.
    pub fn list_page(
        &self,
        cursor: Option<TaskId>,
        order: Order,
        owner: Option<&str>,
        limit: usize,
    ) -> Result<Vec<TaskRecord>, StoreError> {
        let conn = self.reader();
        // One statement per shape, so each uses its index (the id, or owner and id).
        let sql = match (order, owner.is_some()) {
            (Order::OldestFirst, false) => {
                "SELECT record FROM tasks WHERE id > ?1 AND ?2 IS NULL ORDER BY id LIMIT ?3"
            }
            (Order::NewestFirst, false) => {
                "SELECT record FROM tasks WHERE id < ?1 AND ?2 IS NULL ORDER BY id DESC LIMIT ?3"
            }
            (Order::OldestFirst, true) => {
                "SELECT record FROM tasks WHERE owner = ?2 AND id > ?1 ORDER BY id LIMIT ?3"
            }
            (Order::NewestFirst, true) => {
                "SELECT record FROM tasks WHERE owner = ?2 AND id < ?1 ORDER BY id DESC LIMIT ?3"
            }
        };
        let from = match (cursor, order) {
            (Some(id), _) => id.get() as i64,
            (None, Order::OldestFirst) => 0,
            (None, Order::NewestFirst) => i64::MAX,
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params![from, owner, limit as i64], |r| {
            r.get::<_, String>(0)
        })?;
        let mut out = Vec::new();
        for row in rows {
            out.push(serde_json::from_str(&row?)?);
        }
        Ok(out)
    }

    /// Ids of tasks that ended at or before `cutoff_ms` (Unix milliseconds), oldest first, at
    /// most `limit`.
    pub fn ended_before(&self, cutoff_ms: u64, limit: usize) -> Result<Vec<TaskId>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT id FROM tasks WHERE ended_ms IS NOT NULL AND ended_ms <= ?1
             ORDER BY ended_ms LIMIT ?2",
        )?;
        let cutoff = i64::try_from(cutoff_ms).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![cutoff, limit as i64], |r| r.get::<_, i64>(0))?;
        let mut out = Vec::new();
        for row in rows {
            if let Some(id) = u64::try_from(row?).ok().and_then(TaskId::new) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Events after `seq`, oldest first, at most `limit`.
    pub fn events_after(&self, seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let conn = self.reader();
        let mut stmt =
            conn.prepare_cached("SELECT body FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
        let rows = stmt.query_map(params![seq as i64, limit as i64], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(serde_json::from_str(&row?)?);
        }
        Ok(out)
    }

    /// `owner`'s pending notifications, oldest first, at most `limit`. They stay pending
    /// until acknowledged ([`Op::AckNotifications`]). Every notice committed before the call
    /// is seen: a task's end is announced only once its notice is on disk.
    pub fn pending_notifications(
        &self,
        owner: &str,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT n.seq, t.record FROM notifications n JOIN tasks t ON t.id = n.task_id
             WHERE n.owner = ?1 ORDER BY n.seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![owner, limit as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, record) = row?;
            out.push(Notification {
                seq: seq as u64,
                owner: owner.to_string(),
                task: serde_json::from_str(&record)?,
            });
        }
        Ok(out)
    }

    /// The task a handle was given out for, and when (Unix milliseconds).
    pub fn task_of_handle(&self, handle: &str) -> Result<Option<(TaskId, u64)>, StoreError> {
        let row: Option<(i64, i64)> = self
            .reader()
            .prepare_cached("SELECT task_id, created_ms FROM handles WHERE handle = ?1")?
            .query_row([handle], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(row.and_then(|(id, ms)| {
            let id = TaskId::new(u64::try_from(id).ok()?)?;
            Some((id, u64::try_from(ms).unwrap_or(0)))
        }))
    }

    /// Whether a handle was given out for the task.
    pub fn has_handle(&self, task: TaskId) -> Result<bool, StoreError> {
        Ok(self
            .reader()
            .prepare_cached("SELECT 1 FROM handles WHERE task_id = ?1 LIMIT 1")?
            .query_row([task.get() as i64], |_| Ok(()))
            .optional()?
            .is_some())
    }

    pub fn has_notifications(&self, owner: &str) -> Result<bool, StoreError> {
        Ok(self
            .reader()
            .prepare_cached("SELECT 1 FROM notifications WHERE owner = ?1 LIMIT 1")?
            .query_row([owner], |_| Ok(()))
            .optional()?
            .is_some())
    }
}

#[cfg(test)]
mod tests;
