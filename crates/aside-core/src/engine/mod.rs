//! The engine: one record and one lifecycle owner per task, for foreground and background
//! alike.
//!
//! - [`task`]: one task's phases (queued, starting, running, ending, ended) and the only
//!   code that changes its state;
//! - [`state`]: everything behind the engine's one lock;
//! - [`start`]: admitting a task (checked, numbered, durably recorded);
//! - [`schedule`]: giving free slots to queued tasks and starting their processes;
//! - [`lifecycle`]: a task's timers (`drive`), its end (`finish`, `settle`), detach, stop;
//! - [`read_wait`]: records, listings, output reads and waits;
//! - [`until`]: reads without escape sequences, and reads that wait for a pattern;
//! - [`terminal`]: input, signals and screens, through a running task's console;
//! - [`pause`]: pausing and resuming a task's processes, and the spec it was started from;
//! - [`notices`]: events for subscribers and notifications for owners;
//! - [`handles`]: bearer names for tasks whose holder fetches their end (MCP task ids);
//! - [`recover`]: what a previous run left behind ([`resume`]: agents that run again);
//!   [`retention`]: what is kept, how long.
//!
//! Lock discipline: the lock is held only to decide. SQLite writes go to the store's writer
//! thread (submitted under the lock, so they stay in order, never waited for under it);
//! starting processes, closing and moving logs happen after the lock is released, from the
//! [`Effects`] the decision left. Events are published, and waiters of an ending task woken,
//! only once the store has committed them.

mod after;
mod error;
mod handles;
mod hook;
mod lifecycle;
mod notices;
mod outcome;
mod pause;
mod read_wait;
mod recover;
mod resume;
mod retention;
mod schedule;
mod slots;
mod start;
mod state;
mod task;
mod terminal;
mod until;
mod validate;
mod waits;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aside_protocol::{Event, TaskId, TaskRecord, Timestamp};
use aside_store::{Op, Store, StoreError, StoreOptions};
use tokio::sync::{broadcast, oneshot};

pub use error::{EngineError, SpecError};
pub use handles::Handle;
pub use notices::{NoticeConsumer, MAX_TAKE};
pub use read_wait::{ListQuery, Page, ReadOutput};
pub use start::Started;
pub use until::{Pattern, PatternError, UntilOutput, MATCH_CARRY};

use crate::abort::{Abort, AbortReason};
use crate::cgroup::Cgroups;
use crate::config::Config;
use crate::logs::Logs;
use crate::output::Output;
use crate::reaper::Reaper;
use crate::runner::AgentRunner;
use crate::supervised::Supervisors;
use schedule::Launching;
use state::State;

/// Live tasks (queued or running) at most; past this, starting one is refused.
pub const MAX_LIVE_TASKS: usize = 100_000;
/// The most one read returns.
pub const MAX_READ_BYTES: usize = 4 << 20;

pub(crate) struct Inner {
    config: Config,
    store: Store,
    reaper: Arc<Reaper>,
    /// Where tasks' cgroups are made; `None` where they cannot be.
    cgroups: Option<Arc<Cgroups>>,
    state: Mutex<State>,
    events: broadcast::Sender<Event>,
    /// The seq of the last event published (committed, then sent to subscribers).
    published: AtomicU64,
    started_at: Timestamp,
    agents: Option<Arc<dyn AgentRunner>>,
    /// The logs folder, held open: every log is opened relative to it.
    logs: Arc<Logs>,
    /// The model key variables (from the config), kept out of the environments tasks
    /// inherit from the daemon; worked out once, not at every start.
    key_vars: Vec<String>,
    /// Which consumer holds each notification handed out and not yet acknowledged.
    leases: Mutex<notices::Leases>,
    /// Where shell tasks get a supervisor of their own, so that they outlive the engine;
    /// `None`: they run under the engine's process and end with it.
    supervisors: Option<Arc<Supervisors>>,
    /// Completion hooks running now.
    hooks: hook::RunningHooks,
}

/// The task engine. Cheap to clone; all clones share one engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// Opens an engine with more than the defaults.
pub struct EngineBuilder {
    home: PathBuf,
    config: Config,
    agents: Option<Arc<dyn AgentRunner>>,
    store: StoreOptions,
    supervisor: Option<PathBuf>,
}

impl EngineBuilder {
    /// The runner of agent tasks; without one they fail with a clear reason.
    pub fn agents(mut self, runner: Arc<dyn AgentRunner>) -> Self {
        self.agents = Some(runner);
        self
    }

    /// Runs each shell task under `program` (`aside-shim`), a supervisor of its own, so that
    /// running tasks outlive the engine and are adopted by the next one. Without it they
    /// run under the engine's own process and end with it.
    pub fn supervisor(mut self, program: PathBuf) -> Self {
        self.supervisor = Some(program);
        self
    }

    /// Holds every store commit this long: a slow disk, for tests of what must not wait.
    #[doc(hidden)]
    pub fn commit_delay(mut self, delay: Duration) -> Self {
        self.store.commit_delay = delay;
        self
    }

    /// Opens the engine on its state directory, recovering what a previous run left: queued
    /// tasks are queued again, and tasks that were running when it stopped are marked `lost`
    /// after their processes are killed. Must be called inside a tokio runtime.
    pub fn open(self) -> Result<Engine, EngineError> {
        let store = Store::open_with(&self.home, self.store)?;
        let logs = Arc::new(Logs::open(&self.home.join("logs"))?);
        let reaper = Reaper::start().map_err(EngineError::Setup)?;
        if let Some(program) = &self.supervisor {
            reaper.spare(program.clone());
        }
        let supervisors = match self.supervisor {
            Some(program) => Some(Arc::new(
                Supervisors::open(program, &self.home).map_err(EngineError::Setup)?,
            )),
            None => None,
        };
        recover::open(
            &self.home,
            self.config,
            store,
            logs,
            reaper,
            self.agents,
            supervisors,
        )
    }
}

/// What a decision made under the lock leaves to do after it is released.
#[derive(Default)]
pub(crate) struct Effects {
    /// Tasks given a slot, whose processes are to be started.
    launches: Vec<Launching>,
    /// Outputs of ended tasks, to close (their files with them).
    close: Vec<Arc<Output>>,
    /// Outputs of detached tasks, to move to their log files.
    to_disk: Vec<(Arc<Output>, Arc<Abort>)>,
    /// `(waiter, task)`: a task named in `after` that had already ended, to look up.
    after_ended: Vec<(TaskId, TaskId)>,
}

impl Engine {
    pub fn builder(home: PathBuf, config: Config) -> EngineBuilder {
        EngineBuilder {
            home,
            config,
            agents: None,
            store: StoreOptions::default(),
            supervisor: None,
        }
    }

    /// [`EngineBuilder::open`] with the defaults and no agent runtime.
    pub fn open(home: PathBuf, config: Config) -> Result<Self, EngineError> {
        Self::builder(home, config).open()
    }

    /// [`EngineBuilder::open`] with a runner for agent tasks.
    pub fn open_with(
        home: PathBuf,
        config: Config,
        agents: Option<Arc<dyn AgentRunner>>,
    ) -> Result<Self, EngineError> {
        let mut b = Self::builder(home, config);
        b.agents = agents;
        b.open()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock()
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
        (st.sched.queued() + st.waits.len(), st.sched.running())
    }

    /// Submits a write. `_st` is the lock's guard: writes are submitted under it, so the
    /// store commits events in the order of their numbers. Once committed, `settled` (a
    /// task whose end, or last change, this write records) becomes ended and leaves memory
    /// unless its output is kept there, and `events` are published.
    fn persist(&self, _st: &mut State, ops: Vec<Op>, events: Vec<Event>, settled: Option<TaskId>) {
        let weak = Arc::downgrade(&self.inner);
        self.inner.store.submit(
            ops,
            Some(Box::new(move |result| {
                if let Err(e) = &result {
                    tracing::error!("could not save task state: {e}");
                }
                if let Some(inner) = weak.upgrade() {
                    inner.committed(events, settled);
                }
            })),
        );
    }

    /// [`Engine::persist`], with a future that resolves once the write is committed.
    fn persist_waiting(
        &self,
        _st: &mut State,
        ops: Vec<Op>,
        events: Vec<Event>,
    ) -> impl std::future::Future<Output = Result<(), EngineError>> + use<> {
        let (tx, rx) = oneshot::channel();
        let weak = Arc::downgrade(&self.inner);
        self.inner.store.submit_or_fail(
            ops,
            Box::new(move |result: Result<(), StoreError>| {
                if result.is_ok() {
                    if let Some(inner) = weak.upgrade() {
                        inner.committed(events, None);
                    }
                }
                let _ = tx.send(result);
            }),
        );
        async move {
            rx.await
                .unwrap_or(Err(StoreError::Closed))
                .map_err(EngineError::from)
        }
    }

    /// Resolves once every write submitted before is committed.
    fn flush(&self) -> impl std::future::Future<Output = Result<(), EngineError>> + use<> {
        let (tx, rx) = oneshot::channel();
        self.inner.store.submit_or_fail(
            Vec::new(),
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        );
        async move {
            rx.await
                .unwrap_or(Err(StoreError::Closed))
                .map_err(EngineError::from)
        }
    }

    /// Does what decisions left to do, outside the lock: closes outputs, moves detached ones
    /// to disk, starts processes (which may free or take more slots, and so on).
    fn act(&self, mut fx: Effects) {
        loop {
            self.resolve_after(&mut fx);
            for out in fx.close.drain(..) {
                out.close();
            }
            for (out, abort) in fx.to_disk.drain(..) {
                // A detached task has its whole output on disk.
                if let Err(e) = out.to_disk() {
                    abort.abort(AbortReason::Capture(e.to_string()));
                }
            }
            if fx.launches.is_empty() && fx.after_ended.is_empty() {
                return;
            }
            for job in std::mem::take(&mut fx.launches) {
                let result = self.launch(&job);
                let mut st = self.lock();
                self.launched(&mut st, job, result, &mut fx);
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After a commit, on the store's thread: let a settled task become ended, then announce
    /// the events, in order.
    fn committed(&self, events: Vec<Event>, settled: Option<TaskId>) {
        // The record first, so a subscriber that hears of the end and asks sees it.
        if let Some(id) = settled {
            let mut st = self.lock();
            let keep = st.tasks.get_mut(&id).map(|t| t.ended());
            if keep == Some(false) {
                st.tasks.remove(&id);
            }
        }
        for event in events {
            self.published.store(event.seq, Ordering::Release);
            let _ = self.events.send(event);
        }
    }

    fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }
}

/// The record of a task in memory, or else from the store.
fn record_of(engine: &Engine, id: TaskId) -> Result<TaskRecord, EngineError> {
    if let Some(t) = engine.lock().tasks.get(&id) {
        return Ok(t.snapshot());
    }
    engine
        .inner
        .store
        .get_task(id)?
        .ok_or(EngineError::UnknownTask(id))
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

#[cfg(test)]
mod tests;
