//! Admitting a task: checked (outside the lock), numbered and recorded (under it), durable
//! (waited for outside it) before its id is returned, then queued for a slot.

use std::sync::Arc;
use std::time::Duration;

use aside_protocol::{
    EventKind, StartMode, TaskId, TaskKind, TaskRecord, TaskSpec, TaskState, Timestamp,
};
use aside_store::Op;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::state::State;
use super::task::{RunLink, Task};
use super::validate::validate;
use super::{far_future, record_of, Effects, Engine, EngineError, SpecError, MAX_LIVE_TASKS};
use crate::abort::Abort;
use crate::config;
use crate::run::RunFuture;

/// The answer to a start request.
#[derive(Debug, Clone)]
pub struct Started {
    pub task: TaskRecord,
    /// A live task with the same dedupe key was returned instead of a new one.
    pub deduplicated: bool,
}

/// What the drive future of an admitted task needs once its start is durable.
struct Drive {
    go: oneshot::Receiver<RunFuture>,
    abort: Arc<Abort>,
    /// When a foreground caller stops waiting (the task moves to the background).
    budget: Option<Instant>,
    timeout: Option<Duration>,
}

enum Admission {
    /// A live task holds the dedupe key.
    Existing(TaskId, Box<TaskSpec>),
    New {
        id: TaskId,
        committed:
            std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), EngineError>> + Send>>,
        drive: Drive,
    },
}

impl Engine {
    /// Starts a task for `owner`. Returns once the task is on disk.
    pub async fn start(&self, owner: &str, spec: TaskSpec) -> Result<Started, EngineError> {
        validate(&spec)?;
        if let TaskKind::Shell { input, .. } = &spec.kind {
            if !input.is_none() && self.inner.supervisors.is_none() {
                return Err(SpecError::NoSupervisor.into());
            }
        }
        if let (
            TaskKind::Agent {
                session_id: Some(s),
                ..
            },
            Some(agents),
        ) = (&spec.kind, &self.inner.agents)
        {
            // Looked up on disk, before the lock is taken.
            if !agents.session_exists(self.home(), s) {
                return Err(SpecError::UnknownSession(s.clone()).into());
            }
        }
        self.check_after(&spec.after)?;
        if self.inner.store.low_on_space() {
            // A commit tells whether room came back (the reserve is kept again).
            self.flush().await?;
            if self.inner.store.low_on_space() {
                return Err(aside_store::StoreError::LowOnSpace.into());
            }
        }
        let mut spec = spec;
        if spec.cwd.is_none() {
            let here = std::env::current_dir().map(|d| d.display().to_string());
            spec.cwd = Some(here.unwrap_or_else(|_| "/".into()));
        }
        loop {
            let admission = {
                let mut st = self.lock();
                self.admit(&mut st, owner, spec)?
            };
            match admission {
                Admission::Existing(id, returned) => {
                    // Its own start may still be on its way to the disk.
                    self.flush().await?;
                    match record_of(self, id) {
                        Ok(task) if !task.is_terminal() => {
                            return Ok(Started {
                                task,
                                deduplicated: true,
                            })
                        }
                        // Ended or never stored meanwhile: the key is free again.
                        Ok(_) | Err(EngineError::UnknownTask(_)) => spec = *returned,
                        Err(e) => return Err(e),
                    }
                }
                Admission::New {
                    id,
                    committed,
                    drive,
                } => {
                    if let Err(e) = committed.await {
                        let mut st = self.lock();
                        forget(&mut st, id);
                        return Err(e);
                    }
                    let mut fx = Effects::default();
                    {
                        let mut st = self.lock();
                        self.admitted(&mut st, id, drive, &mut fx);
                    }
                    self.act(fx);
                    // A task whose start failed at once is over, and its record says so once
                    // that is durable: the answer waits for it, rather than calling it queued.
                    let over = self.lock().tasks.get(&id).is_some_and(|t| t.is_over());
                    if over {
                        self.flush().await?;
                    }
                    return Ok(Started {
                        task: record_of(self, id)?,
                        deduplicated: false,
                    });
                }
            }
        }
    }

    /// Numbers the task and submits its record; it is not queued until that is durable.
    fn admit(
        &self,
        st: &mut State,
        owner: &str,
        mut spec: TaskSpec,
    ) -> Result<Admission, EngineError> {
        let cfg = &self.inner.config;
        if st.shutting_down {
            return Err(EngineError::ShuttingDown);
        }
        if let Some(key) = &spec.dedupe_key {
            if let Some(&id) = st.dedupe.get(key) {
                return Ok(Admission::Existing(id, Box::new(spec)));
            }
        }
        if st.live_count() >= MAX_LIVE_TASKS {
            return Err(EngineError::TooManyTasks {
                limit: MAX_LIVE_TASKS,
            });
        }
        let id = TaskId::new(st.next_id).ok_or(SpecError::IdsExhausted)?;
        if let TaskKind::Agent {
            session_id, depth, ..
        } = &mut spec.kind
        {
            if let Some(s) = session_id.as_deref() {
                // One run of a conversation at a time: two would share its owner and file.
                if let Some(&task) = st.sessions.get(s) {
                    return Err(SpecError::SessionRunning {
                        session: s.to_string(),
                        task,
                    }
                    .into());
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
        let limit = |l: Option<aside_protocol::Limit>, default: Option<Duration>| match l {
            Some(l) => l.millis().map(Duration::from_millis),
            None => default,
        };
        let timeout = limit(spec.timeout, cfg.timeout);
        let wait = limit(spec.wait, cfg.wait);
        let background = spec.mode == StartMode::Background;
        let cwd = spec.cwd.clone().unwrap_or_else(|| "/".into());
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
            paused: false,
            labels: spec.labels.clone(),
            after: spec.after.clone(),
            timeout_ms: timeout.map(|d| d.as_millis() as u64),
            created_at: Timestamp::now(),
            state: TaskState::Queued,
            output_bytes: 0,
            log_path: background.then(|| self.inner.logs.path(id).display().to_string()),
            progress: None,
            answer: None,
        };
        st.next_id += 1;
        st.claim_names(&record);
        let event = st.event(&record, EventKind::Queued);
        let ops = vec![
            Op::PutTask {
                record: Box::new(record.clone()),
                spec: Some(Box::new(spec.clone())),
            },
            Op::Event(event.clone()),
        ];
        let committed = Box::pin(self.persist_waiting(st, ops, vec![event]));
        let (go_tx, go_rx) = oneshot::channel();
        let abort = Arc::new(Abort::default());
        let run = RunLink {
            abort: abort.clone(),
            go: go_tx,
        };
        st.tasks.insert(id, Task::queued(record, spec, run));
        let budget = if background {
            None
        } else {
            wait.map(|w| Instant::now().checked_add(w).unwrap_or_else(far_future))
        };
        Ok(Admission::New {
            id,
            committed,
            drive: Drive {
                go: go_rx,
                abort,
                budget,
                timeout,
            },
        })
    }

    /// The task's record is durable: it waits for a slot, its timers run.
    fn admitted(&self, st: &mut State, id: TaskId, drive: Drive, fx: &mut Effects) {
        let Some(task) = st.tasks.get(&id) else {
            return;
        };
        if task.is_over() {
            // Stopped before its record was even durable.
            return;
        }
        let group = task.record().group.clone();
        if self.wait_for_after(st, id, fx) {
            st.sched.enqueue(id, group.as_deref());
        }
        self.spawn_drive(
            id,
            drive.go,
            drive.budget,
            drive.timeout,
            Duration::ZERO,
            drive.abort,
        );
        self.schedule(st, fx);
    }
}

/// A task whose record could not be stored: it never existed.
fn forget(st: &mut State, id: TaskId) {
    if let Some(task) = st.tasks.remove(&id) {
        st.release_names(task.record());
    }
}
