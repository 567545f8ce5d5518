//! Durable state of aside: task records, events and notifications in one SQLite database
//! (WAL mode) and one log file per task.
//!
//! Writes come in small batches, each one transaction, so a record, its event and its
//! notification land together or not at all. The format is versioned (`PRAGMA user_version`)
//! from the first release; a database written by a newer aside is refused, never rewritten.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aside_protocol::{Event, Notification, TaskId, TaskRecord, TaskSpec};
use rusqlite::{params, Connection, OptionalExtension};

/// Version of the on-disk format this build reads and writes.
pub const FORMAT_VERSION: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("corrupt record: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the state in {0} was written by a newer aside (format {1}, this build reads {FORMAT_VERSION}); upgrade aside or use another ASIDE_HOME"
    )]
    NewerFormat(PathBuf, i64),
}

impl StoreError {
    /// True when the disk (or a file-size limit) is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            StoreError::Io { source, .. } => source.raw_os_error() == Some(libc_enospc()),
            _ => false,
        }
    }
}

fn libc_enospc() -> i32 {
    28
}

/// One change, applied with others in a single transaction by [`Store::apply`].
#[derive(Debug)]
pub enum Op<'a> {
    /// Insert or replace a task's record. The spec is stored on insert only.
    PutTask {
        record: &'a TaskRecord,
        spec: Option<&'a TaskSpec>,
    },
    Event(&'a Event),
    /// Queue a notification for the task's owner.
    Notify {
        seq: u64,
        owner: &'a str,
        task: TaskId,
    },
    /// Remove a task with its events and notifications (its log is removed by the caller).
    Remove(TaskId),
}

/// A stored row that could not be read: its task id and why.
pub type Damaged = (i64, String);

/// A stored task: its record and the spec it was started from.
pub struct StoredTask {
    pub record: TaskRecord,
    pub spec: TaskSpec,
}

pub struct Store {
    conn: Mutex<Connection>,
    dir: PathBuf,
    logs: PathBuf,
    instance: String,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|source| StoreError::Io {
            path: logs.clone(),
            source,
        })?;
        let conn = Connection::open(dir.join("aside.db"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // WAL with NORMAL loses nothing when the process is killed; only a power cut may
        // roll back the last transactions.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > FORMAT_VERSION {
            return Err(StoreError::NewerFormat(dir.to_path_buf(), version));
        }
        if version == 0 {
            create_schema(&conn)?;
        }
        let instance: String =
            conn.query_row("SELECT value FROM meta WHERE key = 'instance'", [], |r| {
                r.get(0)
            })?;
        Ok(Self {
            conn: Mutex::new(conn),
            dir: dir.to_path_buf(),
            logs,
            instance,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A random token made when the store was created; it tells this state directory's
    /// processes apart from any other's.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The log file of a task. Task ids are digits only, so the path stays in the logs folder.
    pub fn log_path(&self, id: TaskId) -> PathBuf {
        self.logs.join(format!("{id}.log"))
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: SQLite rolls back
        // an unfinished transaction when the next one begins.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The highest task id ever given out in this state directory.
    pub fn last_task_id(&self) -> Result<u64, StoreError> {
        let n: Option<i64> = self
            .conn()
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'tasks'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    /// The highest event seq ever handed out, deleted events included.
    pub fn last_event_seq(&self) -> Result<u64, StoreError> {
        high_water(&self.conn(), "events", EVENT_SEQ)
    }

    /// The highest notification seq ever handed out, delivered ones included.
    pub fn last_notification_seq(&self) -> Result<u64, StoreError> {
        high_water(&self.conn(), "notifications", NOTE_SEQ)
    }

    /// Applies `ops` in one transaction.
    pub fn apply(&self, ops: &[Op<'_>]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for op in ops {
            match op {
                Op::PutTask { record, spec } => {
                    let body = serde_json::to_string(record)?;
                    let ended = record.state.ended_at().map(|t| t.unix_ms() as i64);
                    let id = record.id.get() as i64;
                    match spec {
                        Some(spec) => {
                            // An upsert updates an existing row in place (REPLACE would
                            // delete and insert it again).
                            tx.prepare_cached(
                                "INSERT INTO tasks (id, state, owner, ended_ms, record, spec)
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                                 ON CONFLICT(id) DO UPDATE SET state = excluded.state,
                                   ended_ms = excluded.ended_ms, record = excluded.record,
                                   spec = excluded.spec",
                            )?
                            .execute(params![
                                id,
                                record.state.name(),
                                record.owner,
                                ended,
                                body,
                                serde_json::to_string(spec)?,
                            ])?;
                        }
                        None => {
                            tx.prepare_cached(
                                "UPDATE tasks SET state = ?2, ended_ms = ?3, record = ?4 WHERE id = ?1",
                            )?
                            .execute(params![id, record.state.name(), ended, body])?;
                        }
                    }
                }
                Op::Event(ev) => {
                    tx.prepare_cached(
                        "INSERT INTO events (seq, task_id, body) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![
                        ev.seq as i64,
                        ev.task_id.get() as i64,
                        serde_json::to_string(ev)?
                    ])?;
                }
                Op::Notify { seq, owner, task } => {
                    tx.prepare_cached(
                        "INSERT INTO notifications (seq, owner, task_id) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![
                        *seq as i64,
                        owner,
                        task.get() as i64
                    ])?;
                }
                Op::Remove(id) => {
                    let id = id.get() as i64;
                    keep_high_water(&tx, "events", EVENT_SEQ)?;
                    keep_high_water(&tx, "notifications", NOTE_SEQ)?;
                    tx.execute("DELETE FROM tasks WHERE id = ?1", [id])?;
                    tx.execute("DELETE FROM events WHERE task_id = ?1", [id])?;
                    tx.execute("DELETE FROM notifications WHERE task_id = ?1", [id])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every stored task, oldest first, and the rows that could not be read (id and why):
    /// a damaged row is reported and left in place, never allowed to stop the others loading.
    pub fn load_tasks(&self) -> Result<(Vec<StoredTask>, Vec<Damaged>), StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT id, record, spec FROM tasks ORDER BY id")?;
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

    /// Events after `seq`, oldest first, at most `limit`.
    pub fn events_after(&self, seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT body FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
        let rows = stmt.query_map(params![seq as i64, limit as i64], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(serde_json::from_str(&row?)?);
        }
        Ok(out)
    }

    /// Pending notifications of `owner` with their task records, removed in the same
    /// transaction so each is handed out once.
    pub fn take_notifications(&self, owner: &str) -> Result<Vec<Notification>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut out = Vec::new();
        {
            let mut stmt = tx.prepare_cached(
                "SELECT n.seq, t.record FROM notifications n JOIN tasks t ON t.id = n.task_id
                 WHERE n.owner = ?1 ORDER BY n.seq",
            )?;
            let rows = stmt.query_map([owner], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (seq, record) = row?;
                out.push(Notification {
                    seq: seq as u64,
                    owner: owner.to_string(),
                    task: serde_json::from_str(&record)?,
                });
            }
        }
        keep_high_water(&tx, "notifications", NOTE_SEQ)?;
        tx.execute("DELETE FROM notifications WHERE owner = ?1", [owner])?;
        tx.commit()?;
        Ok(out)
    }

    pub fn has_notifications(&self, owner: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM notifications WHERE owner = ?1 LIMIT 1",
                [owner],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Drops a pending notification without delivering it (its owner already saw the result).
    pub fn discard_notification(&self, task: TaskId) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        keep_high_water(&tx, "notifications", NOTE_SEQ)?;
        tx.execute(
            "DELETE FROM notifications WHERE task_id = ?1",
            [task.get() as i64],
        )?;
        tx.commit()?;
        Ok(())
    }
}

/// Meta keys that remember the highest seq of a table whose rows get deleted, so numbers
/// are never handed out twice (a client resuming after a seq would miss the reused ones).
const EVENT_SEQ: &str = "event_seq";
const NOTE_SEQ: &str = "notification_seq";

fn high_water(conn: &Connection, table: &str, key: &str) -> Result<u64, StoreError> {
    let live: Option<i64> =
        conn.query_row(&format!("SELECT MAX(seq) FROM {table}"), [], |r| r.get(0))?;
    let kept: Option<i64> = conn
        .query_row(
            "SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?1",
            [key],
            |r| r.get(0),
        )
        .optional()?;
    Ok(live.unwrap_or(0).max(kept.unwrap_or(0)).max(0) as u64)
}

/// Records the table's current highest seq before rows are deleted from it.
fn keep_high_water(conn: &Connection, table: &str, key: &str) -> Result<(), StoreError> {
    let seq = high_water(conn, table, key)?;
    conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
        .execute(params![key, seq.to_string()])?;
    Ok(())
}

fn create_schema(conn: &Connection) -> Result<(), StoreError> {
    let instance = random_token().map_err(|source| StoreError::Io {
        path: PathBuf::from("/dev/urandom"),
        source,
    })?;
    conn.execute_batch(
        "BEGIN;
         CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE tasks (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             state TEXT NOT NULL,
             owner TEXT NOT NULL,
             ended_ms INTEGER,
             record TEXT NOT NULL,
             spec TEXT NOT NULL
         );
         CREATE TABLE events (seq INTEGER PRIMARY KEY, task_id INTEGER NOT NULL, body TEXT NOT NULL);
         CREATE INDEX events_task ON events (task_id);
         CREATE TABLE notifications (seq INTEGER PRIMARY KEY, owner TEXT NOT NULL, task_id INTEGER NOT NULL);
         CREATE INDEX notifications_owner ON notifications (owner);
         COMMIT;",
    )?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('instance', ?1)",
        [&instance],
    )?;
    conn.pragma_update(None, "user_version", FORMAT_VERSION)?;
    Ok(())
}

fn random_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests;
