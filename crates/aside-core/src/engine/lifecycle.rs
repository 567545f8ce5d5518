//! A task's life after admission: its timers (the `drive` future), its end (`finish` when
//! the runner returns, `settle` on every path), detaching, stopping, progress, shutdown.

use std::sync::Arc;
use std::time::Duration;

use aside_protocol::{
    AgentProgress, CancelReason, DetachCause, EventKind, TaskId, TaskRecord, TaskState, Timestamp,
};
use aside_store::Op;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::after::DepEnd;
use super::outcome::classify;
use super::state::State;
use super::task::Phase;
use super::{far_future, record_of, Effects, Engine, EngineError};
use crate::abort::{Abort, AbortReason};
use crate::run::{Guarded, RunFuture, RunOutcome};

/// What [`Engine::spawn_drive`] takes for a task found running when the engine opened (an
/// adopted or resumed one).
pub(super) type DriveArgs = (
    TaskId,
    oneshot::Receiver<RunFuture>,
    Option<Duration>,
    Duration,
    Arc<Abort>,
);

/// How long a task recorded as running has run already: its timeout counts from its real
/// start, not from this engine's.
pub(super) fn ran_so_far(state: &TaskState) -> Duration {
    match state {
        TaskState::Running { started_at, .. } => Duration::from_millis(
            Timestamp::now()
                .unix_ms()
                .saturating_sub(started_at.unix_ms()),
        ),
        _ => Duration::ZERO,
    }
}

impl Engine {
    pub(super) fn spawn_drive(
        &self,
        id: TaskId,
        go: oneshot::Receiver<RunFuture>,
        budget: Option<Instant>,
        timeout: Option<Duration>,
        ran: Duration,
        abort: Arc<Abort>,
    ) {
        let engine = self.clone();
        tokio::spawn(async move { engine.drive(id, go, budget, timeout, ran, abort).await });
    }

    /// The one owner of a task's timers: the wait budget (detach) while it waits for a slot
    /// and while it runs, and the hard timeout (kill) from the moment it starts. `ran` is how
    /// long an adopted task ran before this engine: its timeout counts from its real start.
    async fn drive(
        self,
        id: TaskId,
        mut go: oneshot::Receiver<RunFuture>,
        mut budget: Option<Instant>,
        timeout: Option<Duration>,
        ran: Duration,
        abort: Arc<Abort>,
    ) {
        let run = loop {
            tokio::select! {
                r = &mut go => match r {
                    Ok(run) => break run,
                    // Settled without running (stopped while queued, failed to start).
                    Err(_) => return,
                },
                _ = sleep_until(budget) => {
                    budget = None;
                    self.detach_task(id, DetachCause::WaitBudget);
                }
            }
        };
        let mut deadline = timeout.map(|t| {
            Instant::now()
                .checked_add(t.saturating_sub(ran))
                .unwrap_or_else(far_future)
        });
        let mut run = Guarded(run);
        let outcome = loop {
            tokio::select! {
                r = &mut run => break r,
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

    /// The runner is done: the outcome, weighed against any abort reason, ends the task.
    fn finish(&self, id: TaskId, outcome: RunOutcome) {
        let mut fx = Effects::default();
        {
            let mut st = self.lock();
            let Some(task) = st.tasks.get_mut(&id) else {
                return;
            };
            let Phase::Running { abort, .. } = task.phase() else {
                return;
            };
            let reason = abort.reason();
            let started = task.record().state.started_at();
            if let RunOutcome::Answered(answer) = &outcome {
                task.set_answer(answer.clone());
            }
            let state = classify(reason, outcome, started, Timestamp::now());
            self.settle(&mut st, id, state, &mut fx);
        }
        self.act(fx);
    }

    /// Ends a task, on every path (finished, stopped while queued, failed to start): gives
    /// its slot back, decides what is kept of its output, and records the end with its event
    /// and its owner's notification in one write. Waiters learn of it once that is durable.
    pub(super) fn settle(&self, st: &mut State, id: TaskId, state: TaskState, fx: &mut Effects) {
        // Tasks that waited for this one and cannot run now end too, each in turn.
        let mut work = vec![(id, state)];
        while let Some((id, state)) = work.pop() {
            self.settle_one(st, id, state, fx, &mut work);
        }
        self.schedule(st, fx);
    }

    fn settle_one(
        &self,
        st: &mut State,
        id: TaskId,
        state: TaskState,
        fx: &mut Effects,
        failed_waiters: &mut Vec<(TaskId, TaskState)>,
    ) {
        let Some(task) = st.tasks.get_mut(&id) else {
            return;
        };
        let quiet = task.quiet;
        let Some(ended) = task.end(state) else {
            return;
        };
        if ended.held_slot {
            st.sched.release(id);
        }
        fx.close.extend(ended.output);
        let record = ended.record;
        let dep_end = DepEnd::of(&record.state);
        st.release_names(&record);
        if let Some(bytes) = ended.retained_bytes {
            let budget = self.inner.config.retained_memory;
            for old in st.retained.add(id, bytes, budget) {
                if st.tasks.get_mut(&old).is_some_and(|t| t.forget_output()) {
                    st.tasks.remove(&old);
                }
            }
        }
        let event = st.event(
            &record,
            EventKind::Finished {
                outcome: record.state.clone(),
            },
        );
        let notify = (record.detached && !quiet).then(|| (st.note(), record.owner.clone()));
        let mut ops = vec![
            Op::PutTask {
                record: Box::new(record),
                spec: None,
            },
            Op::Event(event.clone()),
        ];
        if let Some((seq, owner)) = notify {
            ops.push(Op::Notify {
                seq,
                owner,
                task: id,
            });
        }
        self.persist(st, ops, vec![event], Some(id));
        st.waits.forget(id);
        self.release_waiters(st, id, &dep_end, failed_waiters);
    }

    /// Moves a foreground task to the background. The caller waiting on it is released; the
    /// task itself is not touched.
    pub fn detach(&self, id: TaskId) -> Result<TaskRecord, EngineError> {
        let record = record_of(self, id)?;
        if record.is_terminal() {
            return Err(EngineError::AlreadyEnded {
                id,
                state: record.state.name(),
            });
        }
        self.detach_task(id, DetachCause::Request);
        record_of(self, id)
    }

    pub(super) fn detach_task(&self, id: TaskId, cause: DetachCause) {
        let mut fx = Effects::default();
        {
            let mut st = self.lock();
            let log = self.inner.logs.path(id).display().to_string();
            let Some(task) = st.tasks.get_mut(&id) else {
                return;
            };
            if task.record().detached || task.is_over() {
                return;
            }
            task.set_detached(log);
            if let (Some(out), Some(abort)) = (task.output(), task.abort()) {
                fx.to_disk.push((out.clone(), abort.clone()));
            }
            self.record_changed(&mut st, id, EventKind::Detached { cause });
        }
        self.act(fx);
    }

    /// After a change to a live task's record: saves it with the event that says what
    /// changed; the event is announced once saved.
    pub(super) fn record_changed(&self, st: &mut State, id: TaskId, kind: EventKind) {
        let Some(task) = st.tasks.get(&id) else {
            return;
        };
        let record = task.record().clone();
        let event = st.event(&record, kind);
        let ops = vec![
            Op::PutTask {
                record: Box::new(record),
                spec: None,
            },
            Op::Event(event.clone()),
        ];
        self.persist(st, ops, vec![event], None);
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
        for id in ids {
            record_of(self, *id)?;
        }
        let mut fx = Effects::default();
        {
            let mut st = self.lock();
            for id in ids {
                self.cancel(&mut st, *id, Some(requester), reason.clone(), &mut fx);
            }
        }
        self.act(fx);
        let cap = self.inner.config.kill_grace + self.inner.config.drain + Duration::from_secs(10);
        self.wait(ids, Some(cap)).await.map(|(records, _)| records)
    }

    fn cancel(
        &self,
        st: &mut State,
        id: TaskId,
        requester: Option<&str>,
        reason: CancelReason,
        fx: &mut Effects,
    ) {
        let Some(task) = st.tasks.get_mut(&id) else {
            return;
        };
        if task.is_over() {
            return;
        }
        if requester == Some(task.record().owner.as_str()) {
            task.quiet = true;
        }
        if let Phase::Queued { .. } = task.phase() {
            // A task stopped while queued never starts.
            st.sched.dequeue(id);
            let state = TaskState::Cancelled {
                started_at: None,
                ended_at: Timestamp::now(),
                reason,
            };
            self.settle(st, id, state, fx);
        } else if let Some(abort) = task.abort() {
            abort.abort(AbortReason::Cancel(reason));
        }
    }

    /// The foreground caller of `id` went away: the task is stopped unless it was detached.
    /// Not while the engine lets go of its tasks: the caller comes back to the next one.
    pub fn abandon(&self, id: TaskId) {
        let mut fx = Effects::default();
        {
            let mut st = self.lock();
            if st.shutting_down {
                return;
            }
            let attended = st
                .tasks
                .get(&id)
                .is_some_and(|t| !t.record().detached && !t.is_over());
            if attended {
                self.cancel(&mut st, id, None, CancelReason::OwnerGone, &mut fx);
            }
        }
        self.act(fx);
    }

    /// Records an agent's progress and announces it.
    pub fn set_progress(&self, id: TaskId, progress: AgentProgress) -> Result<(), EngineError> {
        {
            let mut st = self.lock();
            if let Some(task) = st.tasks.get_mut(&id) {
                if !task.is_over() {
                    task.set_progress(progress.clone());
                    self.record_changed(&mut st, id, EventKind::Progress { progress });
                }
                return Ok(());
            }
        }
        // Not in memory: it ended (progress no longer matters) or never was.
        record_of(self, id).map(|_| ())
    }

    /// Stops every running task (cancelled, reason shutdown) and waits for them, for what
    /// tasks that ended by themselves left to be stopped, and for every write to be durable.
    /// Queued tasks stay queued and run when the engine is opened again.
    pub async fn shutdown(&self) {
        let running: Vec<TaskId> = {
            let mut st = self.lock();
            st.shutting_down = true;
            st.tasks
                .iter()
                .filter(|(_, t)| {
                    matches!(t.phase(), Phase::Starting { .. } | Phase::Running { .. })
                })
                .map(|(id, t)| {
                    if let Some(abort) = t.abort() {
                        abort.abort(AbortReason::Cancel(CancelReason::Shutdown));
                    }
                    *id
                })
                .collect()
        };
        let cap = self.inner.config.kill_grace + self.inner.config.drain + Duration::from_secs(2);
        let _ = self.wait(&running, Some(cap)).await;
        let _ = tokio::time::timeout(cap, self.inner.reaper.swept()).await;
        self.inner.hooks.stop_all();
        if let Err(e) = self.flush().await {
            tracing::error!("could not save the last task states: {e}");
        }
        if let Some(s) = &self.inner.supervisors {
            // Idle supervisors hold their (empty) groups: they go first.
            s.dismiss_idle();
        }
        if let Some(c) = &self.inner.cgroups {
            let c = c.clone();
            let _ = tokio::task::spawn_blocking(move || c.leave(Duration::from_secs(1))).await;
        }
    }
}

/// How long a foreground task adopted after a daemon restart waits for its caller to come
/// back before it moves to the background.
pub(super) const REATTACH_GRACE: Duration = Duration::from_secs(15);

impl Engine {
    /// A foreground read of `id` came in: when the task was waiting for its caller to come
    /// back after a daemon restart, this is it. Returns whether it was.
    pub fn attend(&self, id: TaskId) -> bool {
        let mut st = self.lock();
        match st.tasks.get_mut(&id) {
            Some(t) if t.unattended && !t.is_over() => {
                t.unattended = false;
                true
            }
            _ => false,
        }
    }

    /// Moves an adopted foreground task to the background unless its caller came back.
    pub(super) fn await_caller(&self, id: TaskId) {
        let engine = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(REATTACH_GRACE).await;
            let gone = engine
                .lock()
                .tasks
                .get(&id)
                .is_some_and(|t| t.unattended && !t.is_over());
            if gone {
                engine.detach_task(id, DetachCause::CallerGone);
            }
        });
    }

    /// Lets go of the tasks without stopping them, for the next engine to adopt: nothing new
    /// starts, every write is made durable. Shell tasks under a supervisor run on; what runs
    /// in this process (agents, shell tasks without a supervisor) ends with it.
    pub async fn release(&self) {
        self.lock().shutting_down = true;
        self.inner.hooks.stop_all();
        if let Err(e) = self.flush().await {
            tracing::error!("could not save the last task states: {e}");
        }
        if let Some(s) = &self.inner.supervisors {
            s.dismiss_idle();
        }
        // Refused while a task kept running holds its group.
        if let Some(c) = &self.inner.cgroups {
            c.leave(Duration::ZERO);
        }
    }
}

pub(super) async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
