//! Giving free slots to queued tasks, and starting them. The decision (which task gets a
//! slot) is made under the lock; the process is started after it is released, and the
//! result recorded under the lock again.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use aside_protocol::{EventKind, Failure, TaskKind, TaskRecord, TaskSpec, TaskState, Timestamp};
use aside_store::Op;

use super::state::State;
use super::{Effects, Engine};
use crate::abort::Abort;
use crate::console::Console;
use crate::output::Output;
use crate::proctree;
use crate::run::RunFuture;
use crate::runner::Launch;
use crate::shell;

/// A task that got a slot, to be started outside the lock.
pub(crate) struct Launching {
    record: TaskRecord,
    spec: Box<TaskSpec>,
    output: Arc<Output>,
    abort: Arc<Abort>,
    /// A run again of a task a previous engine was running (see `resume.rs`).
    resumed: bool,
}

impl Launching {
    /// The launch of a task that runs again after its engine went away.
    pub(super) fn resumed(
        record: TaskRecord,
        spec: TaskSpec,
        output: Arc<Output>,
        abort: Arc<Abort>,
    ) -> Self {
        Self {
            record,
            spec: Box::new(spec),
            output,
            abort,
            resumed: true,
        }
    }
}

type LaunchResult = Result<Spawned, Failure>;

/// A task whose process (or agent) runs.
pub(super) struct Spawned {
    pid: Option<u32>,
    run: RunFuture,
    /// Its way in, for a shell task under a supervisor.
    console: Option<Arc<Console>>,
}

impl Engine {
    /// Gives free slots to queued tasks, oldest first within the limits.
    pub(super) fn schedule(&self, st: &mut State, fx: &mut Effects) {
        if st.shutting_down {
            return;
        }
        let cfg = &self.inner.config;
        while let Some(id) = st.sched.next(cfg) {
            let Some(task) = st.tasks.get_mut(&id) else {
                st.sched.release(id);
                continue;
            };
            let supervised = self.inner.supervisors.is_some()
                && matches!(task.record().kind, TaskKind::Shell { .. });
            let output = Arc::new(if supervised {
                Output::supervised(self.inner.logs.clone(), id, 0, cfg.tail)
            } else {
                Output::new(
                    self.inner.logs.clone(),
                    id,
                    task.record().detached,
                    cfg.output_cap,
                    cfg.spill,
                    cfg.tail,
                )
            });
            match task.begin_start(output.clone()) {
                Some((spec, abort)) => fx.launches.push(Launching {
                    record: task.record().clone(),
                    spec,
                    output,
                    abort,
                    resumed: false,
                }),
                None => {
                    st.sched.release(id);
                }
            }
        }
    }

    /// Starts a task's process (or its agent). Runs outside the lock: it forks and execs.
    pub(super) fn launch(&self, job: &Launching) -> LaunchResult {
        let cfg = &self.inner.config;
        let id = job.record.id;
        let tag = proctree::tag_value(self.inner.store.instance(), id);
        let started = std::panic::catch_unwind(AssertUnwindSafe(|| match &job.spec.kind {
            TaskKind::Agent { .. } => {
                let Some(runner) = &self.inner.agents else {
                    return Err(Failure::Agent {
                        error: "this engine has no agent runtime".into(),
                    });
                };
                runner
                    .launch(Launch {
                        engine: self.clone(),
                        record: job.record.clone(),
                        spec: (*job.spec).clone(),
                        output: job.output.clone(),
                        abort: job.abort.clone(),
                        reaper: self.inner.reaper.clone(),
                        cgroups: self.inner.cgroups.clone(),
                        tag,
                        kill_grace: cfg.kill_grace,
                        drain: cfg.drain,
                        hidden: self.inner.key_vars.clone(),
                        resumed: job.resumed,
                    })
                    .map(|run| Spawned {
                        pid: None,
                        run,
                        console: None,
                    })
            }
            TaskKind::Shell { command, input } => {
                let launch = shell::ShellLaunch {
                    command,
                    cwd: &job.record.cwd,
                    env: job.spec.env.as_ref(),
                    env_extra: &job.spec.env_extra,
                    hidden: &self.inner.key_vars,
                    task_id: id.to_string(),
                    tag,
                    cgroups: self.inner.cgroups.as_ref(),
                    output: job.output.clone(),
                    abort: job.abort.clone(),
                    kill_grace: cfg.kill_grace,
                    drain: cfg.drain,
                };
                match &self.inner.supervisors {
                    Some(s) => s
                        .launch(&self.inner.reaper, self, id, launch, *input, cfg.output_cap)
                        .map(|l| Spawned {
                            pid: Some(l.pid),
                            run: l.run,
                            console: Some(l.console),
                        }),
                    // Refused at the start: tasks with input need a supervisor.
                    None => shell::launch(&self.inner.reaper, launch).map(|(pid, run)| Spawned {
                        pid: Some(pid),
                        run,
                        console: None,
                    }),
                }
            }
        }));
        started.unwrap_or_else(|_| {
            Err(Failure::Worker {
                error: "starting the task panicked".into(),
            })
        })
    }

    /// Records how a start went: the task runs, or it failed and gives its slot back.
    pub(super) fn launched(
        &self,
        st: &mut State,
        job: Launching,
        result: LaunchResult,
        fx: &mut Effects,
    ) {
        let id = job.record.id;
        match result {
            Ok(Spawned { pid, run, console }) => {
                let Some(task) = st.tasks.get_mut(&id) else {
                    return;
                };
                let Some(go) = task.started(Timestamp::now(), pid, console) else {
                    return;
                };
                // A stop that came while it started is in its abort signal already: the
                // runner acts on it at once.
                let _ = go.send(run);
                let record = task.record().clone();
                let event = st.event(&record, EventKind::Started { pid });
                // The environment was needed only to start it: it may hold secrets, so the
                // stored spec keeps everything but that. A spec without one stays as stored.
                let spec = (job.spec.env.is_some() || !job.spec.env_extra.is_empty()).then(|| {
                    let mut kept = job.spec;
                    kept.env = None;
                    kept.env_extra.clear();
                    kept
                });
                let scrub = spec.is_some();
                let mut ops = vec![
                    Op::PutTask {
                        record: Box::new(record),
                        spec,
                    },
                    Op::Event(event.clone()),
                ];
                if scrub {
                    // No copy of the environment may stay behind in the store's files.
                    ops.push(Op::Scrub);
                }
                self.persist(st, ops, vec![event], None);
            }
            Err(failure) => {
                let now = Timestamp::now();
                let state = TaskState::Failed {
                    started_at: Some(now),
                    ended_at: now,
                    failure,
                };
                self.settle(st, id, state, fx);
            }
        }
    }
}
