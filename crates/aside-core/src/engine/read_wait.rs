//! Looking at tasks: records, listings, output reads (with an optional long-poll) and waits.
//! Live tasks are read from memory; finished ones from the store, outside the lock.

use std::sync::Arc;
use std::time::Duration;

use aside_protocol::{TaskId, TaskRecord};
use aside_store::{Op, Order};
use tokio::sync::watch;
use tokio::time::Instant;

use super::task::Phase;
use super::{far_future, record_of, Engine, EngineError, MAX_READ_BYTES};
use crate::config::MAX_WAIT;
use crate::output::{self, Output};

/// The most records one page of a listing holds.
pub const MAX_PAGE: usize = 10_000;

/// Which tasks a listing shows, and which page of them.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Finished tasks too (from the store), not just live ones.
    pub all: bool,
    /// Only this owner's tasks.
    pub owner: Option<String>,
    /// Start after this id, in `order`.
    pub cursor: Option<TaskId>,
    pub order: Order,
    /// At most this many (capped at [`MAX_PAGE`]).
    pub limit: usize,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            all: false,
            owner: None,
            cursor: None,
            order: Order::OldestFirst,
            limit: 1000,
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page {
    pub tasks: Vec<TaskRecord>,
    /// Where the next page starts, when there may be one.
    pub next_cursor: Option<TaskId>,
}

/// A slice of a task's output.
#[derive(Debug, Clone)]
pub struct ReadOutput {
    pub offset: u64,
    pub data: Vec<u8>,
    /// The raw offset to read from next: `offset + data.len()`, but for a plain read, whose
    /// escape sequences are left out of `data`.
    pub next: u64,
    pub total: u64,
    pub eof: bool,
    pub task: TaskRecord,
}

impl Engine {
    pub fn get(&self, id: TaskId) -> Result<TaskRecord, EngineError> {
        record_of(self, id)
    }

    /// A page of tasks: live ones from memory, or every stored one with `all`.
    pub fn list(&self, q: &ListQuery) -> Result<Page, EngineError> {
        let limit = q.limit.clamp(1, MAX_PAGE);
        let owned = |t: &TaskRecord| q.owner.as_deref().is_none_or(|o| t.owner == o);
        let mut tasks: Vec<TaskRecord> = if q.all {
            let page =
                self.inner
                    .store
                    .list_page(q.cursor, q.order, q.owner.as_deref(), limit + 1)?;
            // Live tasks are fresher in memory (output so far, progress).
            let mut stale = Vec::new();
            let mut tasks: Vec<TaskRecord> = {
                let st = self.lock();
                page.into_iter()
                    .enumerate()
                    .map(|(i, t)| match st.tasks.get(&t.id) {
                        Some(live) => live.snapshot(),
                        None => {
                            if !t.is_terminal() {
                                stale.push(i);
                            }
                            t
                        }
                    })
                    .collect()
            };
            // Read as live, gone from memory by now: it ended meanwhile, and a task leaves
            // memory only once its end is on disk. Read again, so it is not shown running.
            for i in stale {
                if let Some(fresh) = self.inner.store.get_task(tasks[i].id)? {
                    tasks[i] = fresh;
                }
            }
            tasks
        } else {
            let st = self.lock();
            let live = |(_, t): (&TaskId, &super::task::Task)| {
                (!t.record().is_terminal() && owned(t.record())).then(|| t.snapshot())
            };
            match (q.order, q.cursor) {
                (Order::OldestFirst, None) => {
                    st.tasks.iter().filter_map(live).take(limit + 1).collect()
                }
                (Order::OldestFirst, Some(c)) => st
                    .tasks
                    .range((std::ops::Bound::Excluded(c), std::ops::Bound::Unbounded))
                    .filter_map(live)
                    .take(limit + 1)
                    .collect(),
                (Order::NewestFirst, None) => st
                    .tasks
                    .iter()
                    .rev()
                    .filter_map(live)
                    .take(limit + 1)
                    .collect(),
                (Order::NewestFirst, Some(c)) => st
                    .tasks
                    .range(..c)
                    .rev()
                    .filter_map(live)
                    .take(limit + 1)
                    .collect(),
            }
        };
        let next_cursor = if tasks.len() > limit {
            tasks.truncate(limit);
            tasks.last().map(|t| t.id)
        } else {
            None
        };
        Ok(Page { tasks, next_cursor })
    }

    /// Every live (queued or running) task, oldest first.
    pub fn live_tasks(&self) -> Vec<TaskRecord> {
        self.lock()
            .tasks
            .values()
            .filter(|t| !t.record().is_terminal())
            .map(|t| t.snapshot())
            .collect()
    }

    /// The live (queued or running) tasks of `owner`.
    pub fn live_tasks_of(&self, owner: &str) -> Vec<TaskRecord> {
        self.lock()
            .tasks
            .values()
            .filter(|t| !t.record().is_terminal() && t.record().owner == owner)
            .map(|t| t.snapshot())
            .collect()
    }

    /// The live run of a conversation, if one is running.
    pub fn session_task(&self, session: &str) -> Option<TaskRecord> {
        let st = self.lock();
        let id = st.sessions.get(session)?;
        st.tasks.get(id).map(|t| t.snapshot())
    }

    /// Watches a task's record: the receiver changes whenever the record does. For a task
    /// that has ended and left memory, the receiver is closed at once.
    pub fn watch(&self, id: TaskId) -> Result<watch::Receiver<u64>, EngineError> {
        if let Some(t) = self.lock().tasks.get(&id) {
            return Ok(t.subscribe());
        }
        record_of(self, id)?;
        Ok(watch::channel(0).1)
    }

    /// Waits until every task in `ids` has ended, or `timeout` (capped at 10 minutes) passes.
    /// Returns the records and whether all ended. Never stops a task.
    pub async fn wait(
        &self,
        ids: &[TaskId],
        timeout: Option<Duration>,
    ) -> Result<(Vec<TaskRecord>, bool), EngineError> {
        let limit = timeout.unwrap_or(MAX_WAIT).min(MAX_WAIT);
        let deadline = Instant::now().checked_add(limit).unwrap_or_else(far_future);
        for id in ids {
            loop {
                let mut rx = {
                    let st = self.lock();
                    match st.tasks.get(id) {
                        Some(t) if !t.record().is_terminal() => t.subscribe(),
                        _ => break,
                    }
                };
                rx.borrow_and_update();
                if record_of(self, *id)?.is_terminal() {
                    break;
                }
                if tokio::time::timeout_at(deadline, rx.changed())
                    .await
                    .is_err()
                {
                    return Ok((self.records(ids)?, false));
                }
            }
        }
        Ok((self.records(ids)?, true))
    }

    /// Returns once the end of `id` is durable (at once for a task no longer in memory: its
    /// end was committed before it left). Reads nothing from the store: the supervisors'
    /// acknowledgements wait on this for every task that ends.
    pub(crate) async fn until_ended(&self, id: TaskId) {
        loop {
            let mut rx = {
                let st = self.lock();
                match st.tasks.get(&id) {
                    Some(t) if !t.record().is_terminal() => t.subscribe(),
                    _ => return,
                }
            };
            rx.borrow_and_update();
            let ended = self
                .lock()
                .tasks
                .get(&id)
                .is_none_or(|t| t.record().is_terminal());
            if ended || rx.changed().await.is_err() {
                return;
            }
        }
    }

    fn records(&self, ids: &[TaskId]) -> Result<Vec<TaskRecord>, EngineError> {
        ids.iter().map(|id| record_of(self, *id)).collect()
    }

    /// Reads up to `max` bytes of output from offset `after`. When there is nothing new and
    /// the task has not ended, waits up to `wait` (capped at 10 minutes) for output or the
    /// end, and, for its foreground waiter (`foreground`), for a detach.
    pub async fn read(
        &self,
        id: TaskId,
        after: u64,
        max: usize,
        wait: Option<Duration>,
        foreground: bool,
    ) -> Result<ReadOutput, EngineError> {
        let max = max.clamp(1, MAX_READ_BYTES);
        let deadline = wait.map(|w| Instant::now() + w.min(MAX_WAIT));
        loop {
            let live = {
                let st = self.lock();
                st.tasks
                    .get(&id)
                    .map(|t| (t.snapshot(), t.output().cloned(), t.subscribe()))
            };
            let (record, output, mut status_rx) = match live {
                Some((r, o, rx)) => (r, o, Some(rx)),
                None => (record_of(self, id)?, None, None),
            };
            let mut bytes_rx = output.as_ref().map(|o| o.subscribe());
            if let Some(rx) = &mut bytes_rx {
                rx.borrow_and_update();
            }
            if let Some(rx) = &mut status_rx {
                rx.borrow_and_update();
            }
            let total = output.as_ref().map_or(record.output_bytes, |o| o.total());
            if after < total {
                let data = match &output {
                    Some(o) => o.read(after, max)?,
                    None => self.read_finished(&record, after, max)?,
                };
                let total = output.as_ref().map_or(total, |o| o.total());
                let next = after + data.len() as u64;
                let eof = record.is_terminal() && next >= total;
                return Ok(ReadOutput {
                    offset: after,
                    data,
                    next,
                    total,
                    eof,
                    task: record,
                });
            }
            let done = record.is_terminal() || (foreground && record.detached);
            let expired = deadline.is_none_or(|d| Instant::now() >= d);
            if done || expired || status_rx.is_none() {
                return Ok(ReadOutput {
                    offset: after.min(total),
                    data: Vec::new(),
                    next: after.min(total),
                    total,
                    eof: record.is_terminal(),
                    task: record,
                });
            }
            let deadline = deadline.unwrap_or_else(Instant::now);
            tokio::select! {
                _ = async {
                    if let Some(rx) = &mut status_rx {
                        let _ = rx.changed().await;
                    }
                } => {}
                _ = async {
                    match &mut bytes_rx {
                        Some(rx) => { let _ = rx.changed().await; }
                        None => std::future::pending().await,
                    }
                } => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    fn read_finished(
        &self,
        record: &TaskRecord,
        after: u64,
        max: usize,
    ) -> Result<Vec<u8>, EngineError> {
        match &record.log_path {
            Some(_) => Ok(output::read_log(&self.inner.logs, record.id, after, max)?),
            None => Err(EngineError::NotRetained {
                id: record.id,
                spill: self.inner.config.spill,
            }),
        }
    }

    /// The most recent output of a live or retained task.
    pub fn tail(&self, id: TaskId) -> Result<Vec<u8>, EngineError> {
        let output = {
            let st = self.lock();
            st.tasks.get(&id).map(|t| t.output().cloned())
        };
        match output {
            Some(out) => Ok(out.map(|o| o.tail()).unwrap_or_default()),
            None => record_of(self, id).map(|_| Vec::new()),
        }
    }

    /// Writes the output of a finished foreground task, kept in memory so far, to its log
    /// file and returns the log's path: for callers that show only part of it.
    pub fn keep_log(&self, id: TaskId) -> Result<Option<String>, EngineError> {
        let kept: Option<Arc<Output>> = {
            let st = self.lock();
            match st.tasks.get(&id) {
                Some(t) => match t.phase() {
                    Phase::Ended {
                        retained: Some(out),
                    } if t.record().log_path.is_none() => Some(out.clone()),
                    _ => return Ok(t.record().log_path.clone()),
                },
                None => None,
            }
        };
        let Some(out) = kept else {
            return Ok(record_of(self, id)?.log_path);
        };
        // The file is written outside the lock.
        out.save()?;
        let log = out.path().display().to_string();
        let mut st = self.lock();
        st.retained.remove(id);
        let Some(task) = st.tasks.get_mut(&id) else {
            return Ok(Some(log));
        };
        task.set_saved(log.clone());
        let record = task.record().clone();
        // It leaves memory once the record naming its log is durable.
        self.persist(
            &mut st,
            vec![Op::PutTask {
                record: Box::new(record),
                spec: None,
            }],
            Vec::new(),
            Some(id),
        );
        Ok(Some(log))
    }
}
