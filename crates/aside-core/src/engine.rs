//! The engine: one record and one lifecycle owner per task, for foreground and background
//! alike.
//!
//! All task state sits behind one mutex, held only for short, non-blocking sections. Each
//! task has one `drive` future that owns its timers (wait budget, hard timeout) and awaits its
//! runner; when the runner's join handle resolves, `finish` classifies the outcome from the
//! recorded abort reason and settles the record. Every path (spawn failure, panic, stop while
//! queued, shutdown) ends in `settle`, which releases the slot and schedules the next task.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aside_protocol::{
    CancelReason, DetachCause, Event, EventKind, Failure, Limit, Notification, StartMode, TaskId,
    TaskKind, TaskRecord, TaskSpec, TaskState, Timestamp,
};
use aside_store::{Op, Store, StoreError};
use tokio::sync::{broadcast, oneshot, watch};
use tokio::time::Instant;

use crate::abort::{Abort, AbortReason};
use crate::config::{self, Config, MAX_DURATION, MAX_WAIT};
use crate::output::{self, Output, OutputError};
use crate::proctree;
use crate::reaper::{Exit, Reaper};
use crate::runner::{AgentRunner, Launch, RunFuture, RunOutcome};
use crate::shell;

/// Live tasks (queued or running) at most; past this, starting one is refused.
pub const MAX_LIVE_TASKS: usize = 100_000;
/// The most one read returns.
pub const MAX_READ_BYTES: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no task with id {0}")]
    UnknownTask(TaskId),
    #[error("{0}")]
    InvalidState(String),
    #[error("{0}")]
    BadSpec(String),
    #[error("{0}")]
    NotRetained(String),
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Output(#[from] OutputError),
    #[error("aside is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The answer to a start request.
#[derive(Debug, Clone)]
pub struct Started {
    pub task: TaskRecord,
    /// A live task with the same dedupe key was returned instead of a new one.
    pub deduplicated: bool,
}

/// A slice of a task's output.
#[derive(Debug, Clone)]
pub struct ReadOutput {
    pub offset: u64,
    pub data: Vec<u8>,
    pub total: u64,
    pub eof: bool,
    pub task: TaskRecord,
}

struct Entry {
    record: TaskRecord,
    /// Kept until the task starts.
    spec: Option<TaskSpec>,
    output: Option<Arc<Output>>,
    /// Bumped on every change of the record, for waiters.
    status: watch::Sender<u64>,
    live: Option<Live>,
    /// The owner stopped it itself: no notification.
    quiet: bool,
}

impl Entry {
    /// The record as it is now, with the output counted so far for a running task.
    fn snapshot(&self) -> TaskRecord {
        let mut record = self.record.clone();
        if let (Some(out), false) = (&self.output, record.is_terminal()) {
            record.output_bytes = out.total();
        }
        record
    }
}

struct Live {
    abort: Arc<Abort>,
    /// Hands the started runner to the task's drive future.
    go: Option<oneshot::Sender<RunFuture>>,
}

#[derive(Default)]
struct State {
    tasks: BTreeMap<TaskId, Entry>,
    next_id: u64,
    next_seq: u64,
    next_note: u64,
    sched: crate::scheduler::Scheduler,
    dedupe: HashMap<String, TaskId>,
    /// Finished foreground outputs kept in memory, oldest first.
    retained: VecDeque<TaskId>,
    retained_bytes: u64,
    shutting_down: bool,
}

impl State {
    fn event(&mut self, task: &TaskRecord, kind: EventKind) -> Event {
        let seq = self.next_seq;
        self.next_seq += 1;
        Event {
            seq,
            at: Timestamp::now(),
            task_id: task.id,
            detached: task.detached,
            kind,
        }
    }

    fn entry(&mut self, id: TaskId) -> Result<&mut Entry, EngineError> {
        self.tasks.get_mut(&id).ok_or(EngineError::UnknownTask(id))
    }
}

struct Inner {
    config: Config,
    store: Store,
    reaper: Arc<Reaper>,
    state: Mutex<State>,
    events: broadcast::Sender<Event>,
    started_at: Timestamp,
    agents: Option<Arc<dyn AgentRunner>>,
}

/// The task engine. Cheap to clone; all clones share one engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Opens the engine on a state directory, recovering what a previous run left: queued
    /// tasks are queued again, and tasks that were running when it stopped are marked `lost`
    /// after their processes are killed. Must be called inside a tokio runtime.
    pub fn open(home: PathBuf, config: Config) -> Result<Self, EngineError> {
        Self::open_with(home, config, None)
    }

    /// [`Engine::open`], with a runner for agent tasks.
    pub fn open_with(
        home: PathBuf,
        config: Config,
        agents: Option<Arc<dyn AgentRunner>>,
    ) -> Result<Self, EngineError> {
        let store = Store::open(&home)?;
        let reaper = Reaper::start()?;
        let mut state = State {
            next_id: store.last_task_id()? + 1,
            next_seq: store.last_event_seq()? + 1,
            next_note: store.last_notification_seq()? + 1,
            ..State::default()
        };
        let (stored, damaged) = store.load_tasks()?;
        for (id, why) in damaged {
            tracing::warn!("task {id}: its stored record cannot be read and is skipped: {why}");
        }
        let engine = Self {
            inner: Arc::new(Inner {
                config,
                store,
                reaper,
                state: Mutex::new(State::default()),
                events: broadcast::channel(4096).0,
                started_at: Timestamp::now(),
                agents,
            }),
        };
        let mut ops_records = Vec::new();
        for task in stored {
            let mut record = task.record;
            let status = watch::channel(0).0;
            match record.state.clone() {
                TaskState::Queued => {
                    // Nobody waits for it any more: it runs in the background.
                    record.detached = true;
                    if let Some(key) = &record.dedupe_key {
                        state.dedupe.insert(key.clone(), record.id);
                    }
                    let abort = Arc::new(Abort::default());
                    let (go_tx, go_rx) = oneshot::channel();
                    state.sched.enqueue(record.id, record.group.as_deref());
                    let timeout = record.timeout_ms.map(Duration::from_millis);
                    engine.spawn_drive(record.id, go_rx, None, timeout, abort.clone());
                    state.tasks.insert(
                        record.id,
                        Entry {
                            record: record.clone(),
                            spec: Some(task.spec),
                            output: None,
                            status,
                            live: Some(Live {
                                abort,
                                go: Some(go_tx),
                            }),
                            quiet: false,
                        },
                    );
                    ops_records.push((record, None));
                }
                TaskState::Running { started_at, pid } => {
                    let tag = proctree::tag_value(engine.inner.store.instance(), record.id);
                    let grace = engine.inner.config.kill_grace;
                    tokio::spawn(async move { proctree::terminate(None, &tag, grace).await });
                    record.state = TaskState::Lost {
                        started_at: Some(started_at),
                        ended_at: Timestamp::now(),
                        reason: format!(
                            "the daemon stopped while the task ran{}; its processes were killed on restart",
                            pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
                        ),
                    };
                    if let Some(path) = &record.log_path {
                        if let Ok(meta) = std::fs::metadata(path) {
                            record.output_bytes = meta.len();
                        }
                    }
                    let event = state.event(
                        &record,
                        EventKind::Finished {
                            outcome: record.state.clone(),
                        },
                    );
                    let note = record.detached.then(|| {
                        state.next_note += 1;
                        state.next_note - 1
                    });
                    state.tasks.insert(
                        record.id,
                        Entry {
                            record: record.clone(),
                            spec: None,
                            output: None,
                            status,
                            live: None,
                            quiet: false,
                        },
                    );
                    ops_records.push((record, Some((event, note))));
                }
                _ => {
                    state.tasks.insert(
                        record.id,
                        Entry {
                            record,
                            spec: None,
                            output: None,
                            status,
                            live: None,
                            quiet: false,
                        },
                    );
                }
            }
        }
        let mut ops = Vec::new();
        for (record, finished) in &ops_records {
            ops.push(Op::PutTask { record, spec: None });
            if let Some((event, note)) = finished {
                ops.push(Op::Event(event));
                if let Some(seq) = note {
                    ops.push(Op::Notify {
                        seq: *seq,
                        owner: &record.owner,
                        task: record.id,
                    });
                }
            }
        }
        engine.inner.store.apply(&ops)?;
        {
            let mut st = engine.lock();
            *st = state;
            engine.schedule(&mut st);
        }
        engine.spawn_retention();
        Ok(engine)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn home(&self) -> &std::path::Path {
        self.inner.store.dir()
    }

    pub fn started_at(&self) -> Timestamp {
        self.inner.started_at
    }

    /// (queued, running) counts.
    pub fn counts(&self) -> (usize, usize) {
        let st = self.lock();
        (st.sched.queued(), st.sched.running())
    }

    fn persist(&self, ops: &[Op<'_>]) {
        if let Err(e) = self.inner.store.apply(ops) {
            tracing::error!("could not save task state: {e}");
        }
    }

    fn publish(&self, events: Vec<Event>) {
        for e in events {
            let _ = self.inner.events.send(e);
        }
    }

    /// Starts a task for `owner`.
    pub fn start(&self, owner: &str, mut spec: TaskSpec) -> Result<Started, EngineError> {
        let cfg = &self.inner.config;
        validate(&mut spec)?;
        let timeout = match spec.timeout {
            Some(l) => l.millis().map(Duration::from_millis),
            None => cfg.timeout,
        };
        let wait = match spec.wait {
            Some(l) => l.millis().map(Duration::from_millis),
            None => cfg.wait,
        };
        let cwd = match &spec.cwd {
            Some(c) => c.clone(),
            None => std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| "/".into()),
        };
        let background = spec.mode == StartMode::Background;

        let mut st = self.lock();
        if st.shutting_down {
            return Err(EngineError::ShuttingDown);
        }
        if let Some(key) = &spec.dedupe_key {
            if let Some(existing) = st.dedupe.get(key).and_then(|id| st.tasks.get(id)) {
                return Ok(Started {
                    task: existing.record.clone(),
                    deduplicated: true,
                });
            }
        }
        if st.sched.queued() + st.sched.running() >= MAX_LIVE_TASKS {
            return Err(EngineError::BadSpec(format!(
                "too many tasks: {MAX_LIVE_TASKS} are queued or running already"
            )));
        }
        let id = TaskId::new(st.next_id)
            .ok_or_else(|| EngineError::BadSpec("task ids are used up".into()))?;
        if let TaskKind::Agent {
            session_id, depth, ..
        } = &mut spec.kind
        {
            if let Some(s) = session_id.as_deref() {
                // One run of a conversation at a time: two would share its owner and file.
                if let Some(live) = st
                    .tasks
                    .values()
                    .find(|e| !e.record.is_terminal() && e.record.kind.session_id() == Some(s))
                {
                    return Err(EngineError::BadSpec(format!(
                        "session {s} is still running in task {}",
                        live.record.id
                    )));
                }
            }
            // A new conversation is named after the task that starts it.
            session_id.get_or_insert_with(|| format!("s{id}"));
            if spec.group.is_none() {
                // Subagents queue apart from the agents waiting on them, so parents holding
                // every slot cannot starve their own children.
                let group = if *depth == 0 {
                    config::AGENT_GROUP
                } else {
                    config::SUBAGENT_GROUP
                };
                spec.group = Some(group.to_string());
            }
        }
        let log_path = self.inner.store.log_path(id);
        let record = TaskRecord {
            id,
            kind: spec.kind.clone(),
            name: spec.name.clone(),
            owner: owner.to_string(),
            group: spec.group.clone(),
            cwd,
            dedupe_key: spec.dedupe_key.clone(),
            mode: spec.mode,
            detached: background,
            timeout_ms: timeout.map(|d| d.as_millis() as u64),
            created_at: Timestamp::now(),
            state: TaskState::Queued,
            output_bytes: 0,
            log_path: background.then(|| log_path.display().to_string()),
            progress: None,
            answer: None,
        };
        let event = st.event(&record, EventKind::Queued);
        self.inner.store.apply(&[
            Op::PutTask {
                record: &record,
                spec: Some(&spec),
            },
            Op::Event(&event),
        ])?;
        st.next_id += 1;
        if let Some(key) = &record.dedupe_key {
            st.dedupe.insert(key.clone(), id);
        }
        let abort = Arc::new(Abort::default());
        let (go_tx, go_rx) = oneshot::channel();
        let budget = if background {
            None
        } else {
            wait.map(|w| Instant::now().checked_add(w).unwrap_or_else(far_future))
        };
        st.sched.enqueue(id, record.group.as_deref());
        st.tasks.insert(
            id,
            Entry {
                record,
                spec: Some(spec),
                output: None,
                status: watch::channel(0).0,
                live: Some(Live {
                    abort: abort.clone(),
                    go: Some(go_tx),
                }),
                quiet: false,
            },
        );
        self.spawn_drive(id, go_rx, budget, timeout, abort);
        self.publish(vec![event]);
        self.schedule(&mut st);
        let task = st.entry(id)?.record.clone();
        Ok(Started {
            task,
            deduplicated: false,
        })
    }

    fn spawn_drive(
        &self,
        id: TaskId,
        go: oneshot::Receiver<RunFuture>,
        budget: Option<Instant>,
        timeout: Option<Duration>,
        abort: Arc<Abort>,
    ) {
        let engine = self.clone();
        tokio::spawn(async move { engine.drive(id, go, budget, timeout, abort).await });
    }

    /// The one owner of a task's timers: the wait budget (detach) while it waits for a slot
    /// and while it runs, and the hard timeout (kill) from the moment it starts.
    async fn drive(
        self,
        id: TaskId,
        mut go: oneshot::Receiver<RunFuture>,
        mut budget: Option<Instant>,
        timeout: Option<Duration>,
        abort: Arc<Abort>,
    ) {
        let run = loop {
            tokio::select! {
                r = &mut go => match r {
                    Ok(run) => break run,
                    // Settled without running (stopped while queued, failed to spawn).
                    Err(_) => return,
                },
                _ = sleep_until(budget) => {
                    budget = None;
                    self.detach_task(id, DetachCause::WaitBudget);
                }
            }
        };
        let mut deadline =
            timeout.map(|t| Instant::now().checked_add(t).unwrap_or_else(far_future));
        let mut handle = tokio::spawn(run);
        let outcome = loop {
            tokio::select! {
                r = &mut handle => break r.unwrap_or_else(|e| {
                    RunOutcome::Failed(format!("the task's runner failed: {e}"))
                }),
                _ = sleep_until(deadline) => {
                    deadline = None;
                    if let Some(t) = timeout {
                        abort.abort(AbortReason::Timeout(t));
                    }
                }
                _ = sleep_until(budget) => {
                    budget = None;
                    self.detach_task(id, DetachCause::WaitBudget);
                }
            }
        };
        self.finish(id, outcome);
    }

    /// Starts queued tasks while slots are free.
    fn schedule(&self, st: &mut State) {
        if st.shutting_down {
            return;
        }
        while let Some(id) = st.sched.next(&self.inner.config) {
            self.launch(st, id);
        }
    }

    fn launch(&self, st: &mut State, id: TaskId) {
        let cfg = &self.inner.config;
        let Some(entry) = st.tasks.get_mut(&id) else {
            return;
        };
        let (Some(spec), Some(live)) = (entry.spec.take(), entry.live.as_mut()) else {
            return;
        };
        let path = self.inner.store.log_path(id);
        let output = Output::new(
            path,
            entry.record.detached,
            cfg.output_cap,
            cfg.spill,
            cfg.tail,
        );
        let started = output
            .map_err(|e| Failure::Capture {
                error: e.to_string(),
            })
            .and_then(|output| {
                let output = Arc::new(output);
                entry.output = Some(output.clone());
                let task_id = id.to_string();
                match &spec.kind {
                    TaskKind::Agent { .. } => {
                        let Some(runner) = &self.inner.agents else {
                            return Err(Failure::Agent {
                                error: "this engine has no agent runtime".into(),
                            });
                        };
                        runner
                            .launch(Launch {
                                engine: self.clone(),
                                record: entry.record.clone(),
                                spec: spec.clone(),
                                output,
                                abort: live.abort.clone(),
                                reaper: self.inner.reaper.clone(),
                                tag: proctree::tag_value(self.inner.store.instance(), id),
                                kill_grace: cfg.kill_grace,
                                drain: cfg.drain,
                            })
                            .map(|run| (None, run))
                    }
                    TaskKind::Shell { command } => shell::launch(
                        &self.inner.reaper,
                        shell::ShellLaunch {
                            command,
                            cwd: &entry.record.cwd,
                            env: spec.env.as_ref(),
                            env_extra: &spec.env_extra,
                            task_id,
                            tag: proctree::tag_value(self.inner.store.instance(), id),
                            output,
                            abort: live.abort.clone(),
                            kill_grace: cfg.kill_grace,
                            drain: cfg.drain,
                        },
                    )
                    .map(|(pid, run)| (Some(pid), run)),
                }
            });
        match started {
            Ok((pid, run)) => {
                if let Some(go) = live.go.take() {
                    let _ = go.send(run);
                }
                entry.record.state = TaskState::Running {
                    started_at: Timestamp::now(),
                    pid,
                };
                entry.status.send_modify(|v| *v += 1);
                let record = entry.record.clone();
                let event = st.event(&record, EventKind::Started { pid });
                // The environment was needed only to start it: it may hold secrets, so the
                // stored spec keeps everything but that.
                let mut kept = spec.clone();
                kept.env = None;
                kept.env_extra.clear();
                self.persist(&[
                    Op::PutTask {
                        record: &record,
                        spec: Some(&kept),
                    },
                    Op::Event(&event),
                ]);
                self.publish(vec![event]);
            }
            Err(failure) => {
                // Started and ended at once; the slot taken by `next` is given back.
                let now = Timestamp::now();
                entry.record.state = TaskState::Running {
                    started_at: now,
                    pid: None,
                };
                self.settle(
                    st,
                    id,
                    TaskState::Failed {
                        started_at: Some(now),
                        ended_at: now,
                        failure,
                    },
                );
            }
        }
    }

    /// Called by the drive future when the runner is done.
    fn finish(&self, id: TaskId, outcome: RunOutcome) {
        let mut st = self.lock();
        let Ok(entry) = st.entry(id) else { return };
        let Some(live) = entry.live.take() else {
            return;
        };
        let now = Timestamp::now();
        let started = entry.record.state.started_at();
        if let RunOutcome::Answered(answer) = &outcome {
            entry.record.answer = Some(answer.clone());
        }
        let state = classify(live.abort.reason(), outcome, started, now);
        // Keep the live part until settle has run, so nothing sees a half-finished task.
        drop(live);
        self.settle(&mut st, id, state);
    }

    /// Moves a task to its terminal state: releases its slot, closes its output, records the
    /// event and the owner's notification in one transaction, wakes waiters, and schedules.
    fn settle(&self, st: &mut State, id: TaskId, state: TaskState) {
        let cfg = &self.inner.config;
        let Some(entry) = st.tasks.get_mut(&id) else {
            return;
        };
        let held_slot = matches!(entry.record.state, TaskState::Running { .. });
        entry.live = None;
        entry.spec = None;
        entry.record.state = state;
        let mut retain = None;
        if let Some(out) = &entry.output {
            out.close();
            entry.record.output_bytes = out.total();
            if out.on_disk() {
                entry.record.log_path = Some(out.path().display().to_string());
                entry.output = None;
            } else if out.total() > 0 {
                retain = Some(out.retained_bytes() as u64);
            } else {
                entry.output = None;
            }
        }
        entry.status.send_modify(|v| *v += 1);
        let record = entry.record.clone();
        let notify = record.detached && !entry.quiet;
        if held_slot {
            st.sched.release(record.group.as_deref());
        }
        if let Some(key) = &record.dedupe_key {
            if st.dedupe.get(key) == Some(&id) {
                st.dedupe.remove(key);
            }
        }
        if let Some(bytes) = retain {
            st.retained.push_back(id);
            st.retained_bytes += bytes;
            while st.retained_bytes > cfg.retained_memory {
                let Some(old) = st.retained.pop_front() else {
                    break;
                };
                if let Some(e) = st.tasks.get_mut(&old) {
                    if let Some(out) = e.output.take() {
                        st.retained_bytes = st
                            .retained_bytes
                            .saturating_sub(out.retained_bytes() as u64);
                    }
                }
            }
        }
        let event = st.event(
            &record,
            EventKind::Finished {
                outcome: record.state.clone(),
            },
        );
        let note = notify.then(|| {
            st.next_note += 1;
            st.next_note - 1
        });
        let mut ops = vec![
            Op::PutTask {
                record: &record,
                spec: None,
            },
            Op::Event(&event),
        ];
        if let Some(seq) = note {
            ops.push(Op::Notify {
                seq,
                owner: &record.owner,
                task: id,
            });
        }
        self.persist(&ops);
        self.publish(vec![event]);
        self.schedule(st);
    }

    /// Moves a foreground task to the background. The caller waiting on it is released; the
    /// task itself is not touched.
    pub fn detach(&self, id: TaskId) -> Result<TaskRecord, EngineError> {
        let record = self.lock().entry(id)?.record.clone();
        if record.is_terminal() {
            return Err(EngineError::InvalidState(format!(
                "task {id} has already ended ({})",
                record.state.name()
            )));
        }
        self.detach_task(id, DetachCause::Request);
        Ok(self.lock().entry(id)?.record.clone())
    }

    fn detach_task(&self, id: TaskId, cause: DetachCause) {
        let mut st = self.lock();
        let Ok(entry) = st.entry(id) else { return };
        if entry.record.detached || entry.record.is_terminal() {
            return;
        }
        entry.record.detached = true;
        let path = self.inner.store.log_path(id);
        entry.record.log_path = Some(path.display().to_string());
        if let (Some(out), Some(live)) = (&entry.output, &entry.live) {
            // A detached task has its whole output on disk.
            if let Err(e) = out.to_disk() {
                live.abort.abort(AbortReason::Capture(e.to_string()));
            }
        }
        self.record_changed(&mut st, id, EventKind::Detached { cause });
    }

    /// After a change to a live task's record: wakes its watchers, then saves the record with
    /// the event that says what changed, and announces the event.
    fn record_changed(&self, st: &mut State, id: TaskId, kind: EventKind) {
        let Some(entry) = st.tasks.get_mut(&id) else {
            return;
        };
        entry.status.send_modify(|v| *v += 1);
        let record = entry.record.clone();
        let event = st.event(&record, kind);
        self.persist(&[
            Op::PutTask {
                record: &record,
                spec: None,
            },
            Op::Event(&event),
        ]);
        self.publish(vec![event]);
    }

    /// Stops tasks (SIGTERM, grace, SIGKILL to the whole tree) and returns their terminal
    /// records. Stopping a finished task just returns its record. When `requester` owns the
    /// task, no notification is sent for it: the requester knows.
    pub async fn stop(
        &self,
        ids: &[TaskId],
        requester: &str,
        reason: CancelReason,
    ) -> Result<Vec<TaskRecord>, EngineError> {
        {
            let mut st = self.lock();
            for id in ids {
                st.entry(*id)?;
            }
            for id in ids {
                self.cancel_locked(&mut st, *id, Some(requester), reason.clone());
            }
        }
        let cap = self.inner.config.kill_grace + self.inner.config.drain + Duration::from_secs(10);
        self.wait(ids, Some(cap)).await.map(|(records, _)| records)
    }

    fn cancel_locked(
        &self,
        st: &mut State,
        id: TaskId,
        requester: Option<&str>,
        reason: CancelReason,
    ) {
        let Some(entry) = st.tasks.get_mut(&id) else {
            return;
        };
        if entry.record.is_terminal() {
            return;
        }
        if requester == Some(entry.record.owner.as_str()) {
            entry.quiet = true;
        }
        if matches!(entry.record.state, TaskState::Queued) {
            // A task stopped while queued never starts.
            let group = entry.record.group.clone();
            st.sched.dequeue(id, group.as_deref());
            self.settle(
                st,
                id,
                TaskState::Cancelled {
                    started_at: None,
                    ended_at: Timestamp::now(),
                    reason,
                },
            );
        } else if let Some(live) = &entry.live {
            live.abort.abort(AbortReason::Cancel(reason));
        }
    }

    /// The foreground caller of `id` went away: the task is stopped unless it was detached.
    pub fn abandon(&self, id: TaskId) {
        let mut st = self.lock();
        let detached = st.tasks.get(&id).is_none_or(|e| e.record.detached);
        if !detached {
            self.cancel_locked(&mut st, id, None, CancelReason::OwnerGone);
        }
    }

    /// Records an agent's progress and announces it.
    pub fn set_progress(
        &self,
        id: TaskId,
        progress: aside_protocol::AgentProgress,
    ) -> Result<(), EngineError> {
        let mut st = self.lock();
        let entry = st.entry(id)?;
        if entry.record.is_terminal() {
            return Ok(());
        }
        entry.record.progress = Some(progress.clone());
        self.record_changed(&mut st, id, EventKind::Progress { progress });
        Ok(())
    }

    /// The live (queued or running) tasks of `owner`.
    pub fn live_tasks_of(&self, owner: &str) -> Vec<TaskRecord> {
        self.lock()
            .tasks
            .values()
            .filter(|e| !e.record.is_terminal() && e.record.owner == owner)
            .map(Entry::snapshot)
            .collect()
    }

    /// Writes the output of a finished foreground task, kept in memory so far, to its log
    /// file and returns the log's path: for callers that show only part of it.
    pub fn keep_log(&self, id: TaskId) -> Result<Option<String>, EngineError> {
        let mut st = self.lock();
        let entry = st.entry(id)?;
        if entry.record.log_path.is_some() || !entry.record.is_terminal() {
            return Ok(entry.record.log_path.clone());
        }
        let Some(out) = entry.output.clone() else {
            return Ok(None);
        };
        let bytes = out.retained_bytes() as u64;
        out.save()?;
        entry.output = None;
        entry.record.log_path = Some(out.path().display().to_string());
        let record = entry.record.clone();
        st.retained.retain(|r| *r != id);
        st.retained_bytes = st.retained_bytes.saturating_sub(bytes);
        self.persist(&[Op::PutTask {
            record: &record,
            spec: None,
        }]);
        Ok(record.log_path)
    }

    /// Whether `owner` has notifications waiting.
    pub fn has_notifications(&self, owner: &str) -> bool {
        self.inner.store.has_notifications(owner).unwrap_or(false)
    }

    /// Drops the pending notification of a task whose result its owner has already seen.
    pub fn discard_notification(&self, id: TaskId) -> Result<(), EngineError> {
        Ok(self.inner.store.discard_notification(id)?)
    }

    /// Watches a task's record: the receiver changes whenever the record does.
    pub fn watch(&self, id: TaskId) -> Result<watch::Receiver<u64>, EngineError> {
        Ok(self.lock().entry(id)?.status.subscribe())
    }

    pub fn get(&self, id: TaskId) -> Result<TaskRecord, EngineError> {
        Ok(self.lock().entry(id)?.snapshot())
    }

    /// Tasks in id order: live ones, or all with `all`.
    pub fn list(&self, all: bool) -> Vec<TaskRecord> {
        self.lock()
            .tasks
            .values()
            .filter(|e| all || !e.record.is_terminal())
            .map(Entry::snapshot)
            .collect()
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
                    let mut st = self.lock();
                    let entry = st.entry(*id)?;
                    if entry.record.is_terminal() {
                        break;
                    }
                    entry.status.subscribe()
                };
                rx.borrow_and_update();
                if self.get(*id)?.is_terminal() {
                    break;
                }
                if tokio::time::timeout_at(deadline, rx.changed())
                    .await
                    .is_err()
                {
                    let records = self.records(ids)?;
                    return Ok((records, false));
                }
            }
        }
        Ok((self.records(ids)?, true))
    }

    fn records(&self, ids: &[TaskId]) -> Result<Vec<TaskRecord>, EngineError> {
        let mut st = self.lock();
        ids.iter()
            .map(|id| st.entry(*id).map(|e| e.snapshot()))
            .collect()
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
            let (record, output, mut status_rx) = {
                let mut st = self.lock();
                let e = st.entry(id)?;
                (e.record.clone(), e.output.clone(), e.status.subscribe())
            };
            let mut bytes_rx = output.as_ref().map(|o| o.subscribe());
            if let Some(rx) = &mut bytes_rx {
                rx.borrow_and_update();
            }
            status_rx.borrow_and_update();
            let total = output.as_ref().map_or(record.output_bytes, |o| o.total());
            if after < total {
                let data = match &output {
                    Some(o) => o.read(after, max)?,
                    None => self.read_finished(&record, after, max)?,
                };
                let total = output.as_ref().map_or(total, |o| o.total());
                let eof = record.is_terminal() && after + data.len() as u64 >= total;
                return Ok(ReadOutput {
                    offset: after,
                    data,
                    total,
                    eof,
                    task: record,
                });
            }
            let done = record.is_terminal() || (foreground && record.detached);
            let expired = deadline.is_none_or(|d| Instant::now() >= d);
            if done || expired {
                return Ok(ReadOutput {
                    offset: after.min(total),
                    data: Vec::new(),
                    total,
                    eof: record.is_terminal(),
                    task: record,
                });
            }
            let deadline = deadline.unwrap_or_else(Instant::now);
            tokio::select! {
                _ = status_rx.changed() => {}
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
            Some(path) => Ok(output::read_log(std::path::Path::new(path), after, max)?),
            None => Err(EngineError::NotRetained(format!(
                "the output of task {} went to its foreground caller and is no longer kept (output under {} stays in memory only)",
                record.id,
                config::fmt_size(self.inner.config.spill)
            ))),
        }
    }

    /// The most recent output of a live or retained task.
    pub fn tail(&self, id: TaskId) -> Result<Vec<u8>, EngineError> {
        let mut st = self.lock();
        Ok(st
            .entry(id)?
            .output
            .as_ref()
            .map(|o| o.tail())
            .unwrap_or_default())
    }

    /// Removes finished tasks that ended at least `older_than` ago (all finished tasks when
    /// `None`) with their logs and events.
    pub fn clean(&self, older_than: Option<Duration>) -> Result<Vec<TaskId>, EngineError> {
        let now = Timestamp::now();
        let mut st = self.lock();
        let ids: Vec<TaskId> = st
            .tasks
            .values()
            .filter(|e| {
                e.record
                    .state
                    .ended_at()
                    .is_some_and(|end| older_than.is_none_or(|age| end.until(now) >= age))
            })
            .map(|e| e.record.id)
            .collect();
        if ids.is_empty() {
            return Ok(ids);
        }
        let mut events = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(e) = st.tasks.get(id) {
                let record = e.record.clone();
                events.push(st.event(&record, EventKind::Removed));
            }
        }
        // Each task's rows go, then its `removed` event is kept so subscribers resuming
        // later learn of it too.
        let mut ops: Vec<Op<'_>> = Vec::with_capacity(ids.len() * 2);
        for (id, event) in ids.iter().zip(&events) {
            ops.push(Op::Remove(*id));
            ops.push(Op::Event(event));
        }
        self.inner.store.apply(&ops)?;
        drop(ops);
        self.publish(events);
        for id in &ids {
            if let Some(e) = st.tasks.remove(id) {
                if let Some(out) = &e.output {
                    st.retained_bytes = st
                        .retained_bytes
                        .saturating_sub(out.retained_bytes() as u64);
                }
            }
            st.retained.retain(|r| r != id);
            let _ = std::fs::remove_file(self.inner.store.log_path(*id));
        }
        Ok(ids)
    }

    fn spawn_retention(&self) {
        let Some(retention) = self.inner.config.retention else {
            return;
        };
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let engine = Engine { inner };
                match engine.clean(Some(retention)) {
                    Ok(ids) if !ids.is_empty() => {
                        tracing::info!("removed {} finished tasks past retention", ids.len())
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("retention clean-up failed: {e}"),
                }
                drop(engine);
                tokio::time::sleep(Duration::from_secs(600)).await;
            }
        });
    }

    /// Events after `after` from the store, then a receiver for new ones. Events may appear
    /// in both; skip those with `seq` at or below the last one seen.
    pub fn subscribe(
        &self,
        after: Option<u64>,
    ) -> Result<(Vec<Event>, broadcast::Receiver<Event>, u64), EngineError> {
        let rx = self.inner.events.subscribe();
        let latest = self.lock().next_seq - 1;
        let backlog = match after {
            Some(seq) => self.inner.store.events_after(seq, 100_000)?,
            None => Vec::new(),
        };
        Ok((backlog, rx, latest))
    }

    /// Events after `seq` from the store (for a subscriber that fell behind).
    pub fn events_after(&self, seq: u64, limit: usize) -> Result<Vec<Event>, EngineError> {
        Ok(self.inner.store.events_after(seq, limit)?)
    }

    /// Hands out the owner's pending notifications; each is handed out once.
    pub fn take_notifications(&self, owner: &str) -> Result<Vec<Notification>, EngineError> {
        Ok(self.inner.store.take_notifications(owner)?)
    }

    /// Stops every running task (cancelled, reason shutdown) and waits for them. Queued tasks
    /// stay queued and run when the engine is opened again.
    pub async fn shutdown(&self) {
        let running: Vec<TaskId> = {
            let mut st = self.lock();
            st.shutting_down = true;
            let ids: Vec<TaskId> = st
                .tasks
                .values()
                .filter(|e| matches!(e.record.state, TaskState::Running { .. }))
                .map(|e| e.record.id)
                .collect();
            for id in &ids {
                if let Some(live) = st.tasks.get(id).and_then(|e| e.live.as_ref()) {
                    live.abort
                        .abort(AbortReason::Cancel(CancelReason::Shutdown));
                }
            }
            ids
        };
        let cap = self.inner.config.kill_grace + self.inner.config.drain + Duration::from_secs(2);
        let _ = self.wait(&running, Some(cap)).await;
    }
}

fn validate(spec: &mut TaskSpec) -> Result<(), EngineError> {
    let bad = |m: String| Err(EngineError::BadSpec(m));
    match &spec.kind {
        TaskKind::Shell { command } => match command {
            aside_protocol::ShellCommand::Argv(a) if a.is_empty() || a[0].is_empty() => {
                return bad("the command is empty".into())
            }
            aside_protocol::ShellCommand::Script(s) if s.trim().is_empty() => {
                return bad("the command is empty".into())
            }
            _ => {}
        },
        TaskKind::Agent {
            agent,
            prompt,
            session_id,
            ..
        } => {
            if agent.trim().is_empty() {
                return bad("the agent's name is empty".into());
            }
            if prompt.trim().is_empty() {
                return bad("the prompt is empty".into());
            }
            if let Some(s) = session_id {
                if !aside_protocol::valid_session_id(s) {
                    return bad(format!("{s:?} is not a session id (they look like s12)"));
                }
            }
        }
    }
    if let Some(cwd) = &spec.cwd {
        let p = std::path::Path::new(cwd);
        if !p.is_absolute() {
            return bad(format!(
                "the working directory {cwd:?} is not an absolute path"
            ));
        }
        if !p.is_dir() {
            return bad(format!(
                "the working directory {cwd} does not exist or is not a directory"
            ));
        }
    }
    if let Some(group) = &spec.group {
        config::validate_group(group).map_err(EngineError::BadSpec)?;
    }
    for (what, limit) in [("timeout", spec.timeout), ("wait", spec.wait)] {
        if let Some(Limit::Millis(ms)) = limit {
            if Duration::from_millis(ms) > MAX_DURATION {
                return bad(format!(
                    "the {what} of {ms} ms is longer than the limit of 10 years"
                ));
            }
        }
    }
    if spec.timeout == Some(Limit::Millis(0)) {
        return bad("a timeout of 0 would kill the task at once; use none for no timeout".into());
    }
    if let Some(env) = &spec.env {
        check_env(env)?;
    }
    check_env(&spec.env_extra)?;
    Ok(())
}

fn check_env(env: &BTreeMap<String, String>) -> Result<(), EngineError> {
    for (k, v) in env {
        if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
            return Err(EngineError::BadSpec(format!(
                "invalid environment variable {k:?}"
            )));
        }
    }
    Ok(())
}

/// The terminal state, from the recorded abort reason first and the runner's outcome second.
fn classify(
    reason: Option<AbortReason>,
    outcome: RunOutcome,
    started: Option<Timestamp>,
    now: Timestamp,
) -> TaskState {
    let started_at = started.unwrap_or(now);
    match reason {
        Some(AbortReason::Cancel(reason)) => TaskState::Cancelled {
            started_at: Some(started_at),
            ended_at: now,
            reason,
        },
        Some(AbortReason::Timeout(t)) => TaskState::TimedOut {
            started_at,
            ended_at: now,
            limit_ms: t.as_millis() as u64,
        },
        Some(AbortReason::OutputCap(limit)) => TaskState::Failed {
            started_at: Some(started_at),
            ended_at: now,
            failure: Failure::OutputCap { limit_bytes: limit },
        },
        Some(AbortReason::Capture(error)) => TaskState::Failed {
            started_at: Some(started_at),
            ended_at: now,
            failure: Failure::Capture { error },
        },
        None => match outcome {
            RunOutcome::Exited(Exit::Code(0)) => TaskState::Succeeded {
                started_at,
                ended_at: now,
                exit_code: Some(0),
            },
            RunOutcome::Answered(_) => TaskState::Succeeded {
                started_at,
                ended_at: now,
                exit_code: None,
            },
            RunOutcome::AgentFailed(error) => TaskState::Failed {
                started_at: Some(started_at),
                ended_at: now,
                failure: Failure::Agent { error },
            },
            RunOutcome::Exited(Exit::Code(exit_code)) => TaskState::Failed {
                started_at: Some(started_at),
                ended_at: now,
                failure: Failure::Exit { exit_code },
            },
            RunOutcome::Exited(Exit::Signal(signal)) => TaskState::Failed {
                started_at: Some(started_at),
                ended_at: now,
                failure: Failure::Signal { signal },
            },
            RunOutcome::Failed(error) => TaskState::Failed {
                started_at: Some(started_at),
                ended_at: now,
                failure: Failure::Worker { error },
            },
        },
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}
