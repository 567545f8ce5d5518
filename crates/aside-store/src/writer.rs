//! Group commit: one thread owns the writing connection, takes every write that is waiting
//! when it wakes, and applies them in one transaction.
//!
//! Under load many tasks' records, events and notifications share one commit; when idle a
//! write is committed as soon as it arrives, with no timer. Writes are applied, committed and
//! answered in the order they were submitted. One that fails (a damaged row) fails alone: its
//! group is applied again, each write in a savepoint of its own. A commit that fails fails
//! the whole group.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{params, Connection, Transaction};

use crate::reserve::Reserve;
use crate::schema::{keep_high_water, EVENT_SEQ, NOTE_SEQ, SETTING_PREFIX};
use crate::{Op, StoreError};

/// The most writes committed together; more wait for the next commit.
const MAX_GROUP: usize = 1024;

/// Called with the outcome once the write is committed (or has failed), on the writer's
/// thread: keep it short.
pub type Done<T> = Box<dyn FnOnce(Result<T, StoreError>) + Send>;

/// One write: its changes, applied together, and who hears the outcome.
pub(crate) struct Job {
    pub ops: Vec<Op>,
    pub done: Option<Done<()>>,
    /// Kept and committed once there is room when the disk is full (a state change the
    /// engine has already made), rather than failed (a new task, which can be refused).
    pub retain: bool,
}

/// Checkpoints tried, a few milliseconds apart, to empty a WAL that hit a file-size limit
/// (half a second at most: readers finish well within that, even on a busy machine).
const TRUNCATE_TRIES: usize = 100;
/// How often writes held back by a full disk are tried again.
const RETRY_EVERY: Duration = Duration::from_millis(500);

/// The handle on the writer thread; dropping it lets the thread finish what is queued and
/// waits for it.
pub(crate) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread; it counts its commits in `commits` and raises `scrub` after a
    /// commit that carried [`Op::Scrub`].
    pub(crate) fn start(
        conn: Connection,
        reserve: Reserve,
        delay: Duration,
        full_disk: Arc<AtomicBool>,
        commits: Arc<AtomicU64>,
        scrub: Arc<AtomicBool>,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("aside-store".into())
            .spawn(move || {
                Committer {
                    conn,
                    reserve,
                    held: Vec::new(),
                    full_disk,
                }
                .run(rx, delay, &commits, &scrub)
            })
            .map_err(|e| StoreError::io("aside-store thread", e))?;
        Ok(Self {
            jobs: Some(tx),
            thread: Some(thread),
        })
    }

    pub(crate) fn submit(&self, job: Job) {
        let Some(jobs) = &self.jobs else {
            return fail(job, StoreError::Closed);
        };
        if let Err(mpsc::SendError(job)) = jobs.send(job) {
            fail(job, StoreError::Closed);
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the thread once the queue is empty: nothing queued is lost.
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            // The last handle may go inside a completion, on the writer's own thread: it
            // finishes by itself then, and cannot wait for itself.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

fn fail(job: Job, error: StoreError) {
    if let Some(done) = job.done {
        done(Err(error));
    }
}

/// The writer thread's side: its connection, the space kept back, and the writes a full
/// disk holds back (in order; they go first in every later commit).
struct Committer {
    conn: Connection,
    reserve: Reserve,
    held: Vec<Job>,
    /// Raised by tests: commits fail as on a full disk.
    full_disk: Arc<AtomicBool>,
}

impl Committer {
    fn run(
        mut self,
        jobs: mpsc::Receiver<Job>,
        delay: Duration,
        commits: &AtomicU64,
        scrub: &AtomicBool,
    ) {
        loop {
            let first = if self.held.is_empty() {
                match jobs.recv() {
                    Ok(job) => Some(job),
                    Err(_) => return,
                }
            } else {
                match jobs.recv_timeout(RETRY_EVERY) {
                    Ok(job) => Some(job),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        // Closing: one last try, then what cannot be written is reported.
                        let group = std::mem::take(&mut self.held);
                        let outcomes = self.commit_group(&group);
                        for (job, outcome) in group.into_iter().zip(outcomes) {
                            deliver(job, outcome);
                        }
                        return;
                    }
                }
            };
            let mut group = std::mem::take(&mut self.held);
            group.extend(first);
            while group.len() < MAX_GROUP {
                match jobs.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
            if !delay.is_zero() {
                // Only tests set a delay: a slow disk, made on purpose.
                std::thread::sleep(delay);
            }
            let outcomes = self.commit_group(&group);
            let scrubbed = group.iter().zip(&outcomes).any(|(job, outcome)| {
                outcome.is_ok() && job.ops.iter().any(|op| matches!(op, Op::Scrub))
            });
            // Raised before the count moves, so the checkpointer that sees this commit sees it.
            if scrubbed {
                scrub.store(true, Ordering::Release);
            }
            commits.fetch_add(1, Ordering::Release);
            for (job, outcome) in group.into_iter().zip(outcomes) {
                match outcome {
                    Err(e) if e.is_out_of_space() && job.retain => {
                        if self.held.is_empty() {
                            tracing::warn!("state changes are held until there is room: {e}");
                        }
                        self.held.push(job);
                    }
                    outcome => deliver(job, outcome),
                }
            }
            if self.held.is_empty() {
                self.reserve.refill();
            }
        }
    }

    /// Commits the group; when the disk (or a file-size limit) is full, gives up the
    /// reserve and empties the WAL and tries again, and then tries the writes that can be
    /// refused on their own, so a removal that frees space is not stuck behind the rest.
    fn commit(&mut self, group: &[Job]) -> Vec<Result<(), StoreError>> {
        let refs: Vec<&Job> = group.iter().collect();
        self.commit_refs(&refs)
    }

    fn commit_refs(&mut self, group: &[&Job]) -> Vec<Result<(), StoreError>> {
        if self.full_disk.load(Ordering::Acquire) {
            let full = rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                None,
            );
            let e = StoreError::from(full);
            return group.iter().map(|_| Err(e.clone())).collect();
        }
        commit_refs(&mut self.conn, group)
    }

    fn commit_group(&mut self, group: &[Job]) -> Vec<Result<(), StoreError>> {
        let outcomes = self.commit(group);
        if !outcomes
            .iter()
            .any(|o| o.as_ref().is_err_and(StoreError::is_out_of_space))
        {
            return outcomes;
        }
        let mut released = self.reserve.release();
        let mut outcomes = outcomes;
        // A WAL that reached a file-size limit starts again from its first byte once a
        // checkpoint empties it, which readers can hold up for a moment.
        for _ in 0..TRUNCATE_TRIES {
            let truncated = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    r.get::<_, i64>(0)
                })
                .is_ok_and(|busy| busy == 0);
            if !(truncated || released) {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            released = false;
            outcomes = self.commit(group);
            if truncated
                || !outcomes
                    .iter()
                    .any(|o| o.as_ref().is_err_and(StoreError::is_out_of_space))
            {
                break;
            }
        }
        if outcomes.iter().all(Result::is_ok) || group.iter().all(|j| j.retain) {
            return outcomes;
        }
        let alone: Vec<usize> = (0..group.len()).filter(|&i| !group[i].retain).collect();
        let refs: Vec<&Job> = alone.iter().map(|&i| &group[i]).collect();
        let mut retried = self.commit_refs(&refs).into_iter();
        let mut outcomes = outcomes;
        for i in alone {
            if let Some(o) = retried.next() {
                outcomes[i] = o;
            }
        }
        // The rest did not go in with them: they are held, or failed, as they were.
        outcomes
    }
}

fn deliver(job: Job, outcome: Result<(), StoreError>) {
    match (job.done, outcome) {
        (Some(done), r) => done(r),
        (None, Err(e)) => tracing::error!("could not save task state: {e}"),
        (None, Ok(())) => {}
    }
}

/// Applies the group in one transaction; one outcome per job. Most groups apply whole, and
/// go in without a savepoint per job (two statements and a copy of every page a job
/// changes); a group where a job fails is applied again with one savepoint per job, so that
/// the failing job fails alone.
fn commit_refs(conn: &mut Connection, group: &[&Job]) -> Vec<Result<(), StoreError>> {
    match apply_whole(conn, group) {
        Some(outcomes) => outcomes,
        None => apply_each(conn, group),
    }
}

/// IMMEDIATE: the write lock is taken at BEGIN, where SQLite waits for it (busy_timeout).
/// A deferred transaction that reads first and then writes is refused at once, without
/// waiting, if the checkpointer holds that lock at that moment ("database is locked").
fn begin(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    Ok(conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?)
}

/// Every job of the group in one go; `None`, with nothing written, when one fails.
fn apply_whole(conn: &mut Connection, group: &[&Job]) -> Option<Vec<Result<(), StoreError>>> {
    let tx = match begin(conn) {
        Ok(tx) => tx,
        Err(e) => return Some(group.iter().map(|_| Err(e.clone())).collect()),
    };
    let mut marks_kept = false;
    for job in group {
        // Dropping the transaction rolls it back.
        apply_keeping_marks(&tx, job, &mut marks_kept).ok()?;
    }
    Some(finish(tx, group, vec![Ok(()); group.len()]))
}

/// Each job of the group in a savepoint of its own: one that fails leaves nothing behind.
fn apply_each(conn: &mut Connection, group: &[&Job]) -> Vec<Result<(), StoreError>> {
    let mut tx = match begin(conn) {
        Ok(tx) => tx,
        Err(e) => return group.iter().map(|_| Err(e.clone())).collect(),
    };
    let mut marks_kept = false;
    let mut outcomes = Vec::with_capacity(group.len());
    for job in group {
        // Marks kept in a savepoint that is rolled back are gone with it: the next job that
        // deletes keeps them again.
        let mut kept_here = marks_kept;
        let outcome = in_savepoint(&mut tx, |tx| apply_keeping_marks(tx, job, &mut kept_here));
        if outcome.is_ok() {
            marks_kept = kept_here;
        }
        outcomes.push(outcome);
    }
    finish(tx, group, outcomes)
}

/// Applies one job; before the transaction's first deletion (`marks_kept` false), keeps the
/// highest seqs, so that they survive their rows.
fn apply_keeping_marks(
    tx: &Connection,
    job: &Job,
    marks_kept: &mut bool,
) -> Result<(), StoreError> {
    if !*marks_kept && deletes(job) {
        keep_high_water(tx, "events", EVENT_SEQ)?;
        keep_high_water(tx, "notifications", NOTE_SEQ)?;
        *marks_kept = true;
    }
    apply(tx, job)
}

/// Commits: the jobs' outcomes, or the commit's error for every job.
fn finish(
    tx: Transaction<'_>,
    group: &[&Job],
    outcomes: Vec<Result<(), StoreError>>,
) -> Vec<Result<(), StoreError>> {
    match tx.commit() {
        Ok(()) => outcomes,
        Err(e) => {
            let e = StoreError::from(e);
            group.iter().map(|_| Err(e.clone())).collect()
        }
    }
}

fn in_savepoint(
    tx: &mut Transaction<'_>,
    f: impl FnOnce(&Connection) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let sp = tx.savepoint()?;
    match f(&sp) {
        Ok(p) => {
            sp.commit()?;
            Ok(p)
        }
        // Dropping the savepoint rolls it back: the job leaves nothing behind.
        Err(e) => Err(e),
    }
}

fn deletes(job: &Job) -> bool {
    job.ops.iter().any(|op| {
        matches!(
            op,
            Op::Remove(_) | Op::DiscardNotification(_) | Op::AckNotifications { .. }
        )
    })
}

fn apply(conn: &Connection, job: &Job) -> Result<(), StoreError> {
    for op in &job.ops {
        apply_op(conn, op)?;
    }
    Ok(())
}

fn apply_op(conn: &Connection, op: &Op) -> Result<(), StoreError> {
    match op {
        Op::PutTask { record, spec } => {
            let body = serde_json::to_string(record)?;
            let ended = record.state.ended_at().map(|t| t.unix_ms() as i64);
            let id = record.id.get() as i64;
            match spec {
                Some(spec) => {
                    // An upsert updates an existing row in place (REPLACE would delete and
                    // insert it again).
                    conn.prepare_cached(
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
                    conn.prepare_cached(
                        "UPDATE tasks SET state = ?2, ended_ms = ?3, record = ?4 WHERE id = ?1",
                    )?
                    .execute(params![id, record.state.name(), ended, body])?;
                }
            }
        }
        Op::Event(ev) => {
            conn.prepare_cached("INSERT INTO events (seq, task_id, body) VALUES (?1, ?2, ?3)")?
                .execute(params![
                    ev.seq as i64,
                    ev.task_id.get() as i64,
                    serde_json::to_string(ev)?
                ])?;
        }
        Op::Notify { seq, owner, task } => {
            conn.prepare_cached(
                "INSERT INTO notifications (seq, owner, task_id) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![*seq as i64, owner, task.get() as i64])?;
        }
        Op::Remove(id) => {
            let id = id.get() as i64;
            conn.prepare_cached("DELETE FROM tasks WHERE id = ?1")?
                .execute([id])?;
            conn.prepare_cached("DELETE FROM events WHERE task_id = ?1")?
                .execute([id])?;
            conn.prepare_cached("DELETE FROM notifications WHERE task_id = ?1")?
                .execute([id])?;
            conn.prepare_cached("DELETE FROM handles WHERE task_id = ?1")?
                .execute([id])?;
        }
        Op::AddHandle {
            handle,
            task,
            created_ms,
        } => {
            conn.prepare_cached(
                "INSERT INTO handles (handle, task_id, created_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                handle,
                task.get() as i64,
                i64::try_from(*created_ms).unwrap_or(i64::MAX)
            ])?;
        }
        Op::Scrub => {}
        Op::PutSetting { key, value } => {
            let key = format!("{SETTING_PREFIX}{key}");
            match value {
                Some(v) => conn
                    .prepare_cached(
                        "INSERT INTO meta (key, value) VALUES (?1, ?2)
                         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    )?
                    .execute(params![key, v])?,
                None => conn
                    .prepare_cached("DELETE FROM meta WHERE key = ?1")?
                    .execute([key])?,
            };
        }
        Op::DiscardNotification(task) => {
            conn.prepare_cached("DELETE FROM notifications WHERE task_id = ?1")?
                .execute([task.get() as i64])?;
        }
        Op::AckNotifications { owner, seqs } => {
            let mut delete =
                conn.prepare_cached("DELETE FROM notifications WHERE seq = ?1 AND owner = ?2")?;
            for seq in seqs {
                delete.execute(params![*seq as i64, owner])?;
            }
        }
    }
    Ok(())
}
