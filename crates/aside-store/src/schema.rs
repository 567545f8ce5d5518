//! The database's tables, and the high-water marks that keep sequence numbers unique.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use crate::{StoreError, FORMAT_VERSION};

/// Meta keys that remember the highest seq of a table whose rows get deleted, so numbers
/// are never handed out twice (a client resuming after a seq would miss the reused ones).
pub(crate) const EVENT_SEQ: &str = "event_seq";
pub(crate) const NOTE_SEQ: &str = "notification_seq";
/// Meta keys of settings changed at runtime start with this.
pub(crate) const SETTING_PREFIX: &str = "setting.";

/// Opens a connection on the database of `dir` with the settings every connection shares.
pub(crate) fn connect(dir: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(db_path(dir))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // WAL with NORMAL loses nothing when the process is killed; only a power cut may
    // roll back the last transactions.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Checkpoints run on a thread of their own (checkpoint.rs), never inside a commit; the WAL
    // left behind after a burst is cut back to this size.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "journal_size_limit", 64 << 20)?;
    // What a write replaces or deletes is overwritten with zeros, not left in free space.
    conn.pragma_update(None, "secure_delete", "ON")?;
    Ok(conn)
}

pub(crate) fn db_path(dir: &Path) -> PathBuf {
    dir.join("aside.db")
}

/// Creates the tables of a new database, refuses one written by a newer aside, and adds
/// what later builds of the same format use (indexes only: an older build ignores them).
/// Returns the store's instance token.
pub(crate) fn prepare(conn: &Connection, dir: &Path) -> Result<String, StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > FORMAT_VERSION {
        return Err(StoreError::NewerFormat {
            dir: dir.to_path_buf(),
            found: version,
        });
    }
    if version == 0 {
        create(conn)?;
    }
    // Listing live tasks and finding expired ones must not scan the whole history. Handles
    // came later: an older build of the same format ignores the table (and leaves the rows of
    // tasks it removes, which then name no task).
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS tasks_state ON tasks (state);
         CREATE INDEX IF NOT EXISTS tasks_ended ON tasks (ended_ms) WHERE ended_ms IS NOT NULL;
         CREATE INDEX IF NOT EXISTS tasks_owner ON tasks (owner, id);
         CREATE TABLE IF NOT EXISTS handles (
             handle TEXT PRIMARY KEY,
             task_id INTEGER NOT NULL,
             created_ms INTEGER NOT NULL
         );
         CREATE INDEX IF NOT EXISTS handles_task ON handles (task_id);",
    )?;
    let instance: String =
        conn.query_row("SELECT value FROM meta WHERE key = 'instance'", [], |r| {
            r.get(0)
        })?;
    Ok(instance)
}

fn create(conn: &Connection) -> Result<(), StoreError> {
    let instance = random_token().map_err(|e| StoreError::io("/dev/urandom", e))?;
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

/// The highest seq ever handed out in `table`, deleted rows included.
pub(crate) fn high_water(conn: &Connection, table: &str, key: &str) -> Result<u64, StoreError> {
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
pub(crate) fn keep_high_water(conn: &Connection, table: &str, key: &str) -> Result<(), StoreError> {
    let seq = high_water(conn, table, key)?;
    conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
        .execute(params![key, seq.to_string()])?;
    Ok(())
}

fn random_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
