//! Opening an engine on what a previous run left: queued tasks are queued again; tasks that
//! were running (their daemon died with them) are marked `lost` and announced, after every
//! process they left is killed: what their cgroups hold at once, before anything starts,
//! and what carries their tag. Only live tasks are loaded: finished ones stay on disk.

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use aside_protocol::{EventKind, TaskState, Timestamp};
use aside_store::{Op, Store};
use tokio::sync::{broadcast, oneshot};

use super::state::State;
use super::task::{RunLink, Task};
use super::{Effects, Engine, EngineError, Inner};
use crate::abort::Abort;
use crate::cgroup::Cgroups;
use crate::config::Config;
use crate::logs::Logs;
use crate::proctree::{self, Tree};
use crate::reaper::Reaper;
use crate::runner::AgentRunner;

pub(super) fn open(
    home: &Path,
    config: Config,
    store: Store,
    logs: Arc<Logs>,
    reaper: Arc<Reaper>,
    agents: Option<Arc<dyn AgentRunner>>,
) -> Result<Engine, EngineError> {
    let last_seq = store.last_event_seq()?;
    let mut st = State::new(
        store.last_task_id()? + 1,
        last_seq + 1,
        store.last_notification_seq()? + 1,
    );
    let (stored, damaged) = store.load_live_tasks()?;
    for (id, why) in damaged {
        tracing::warn!("task {id}: its stored record cannot be read and is skipped: {why}");
    }
    // Before any task of this engine starts in a group of the same name.
    let cgroups = Cgroups::open(home, store.instance());
    // One look at the process table for every process this state directory's tasks left.
    let leftovers = proctree::tags_with_prefix(&format!("{}-", store.instance()));
    let mut ops = Vec::new();
    let mut queued = Vec::new();
    let mut to_kill = Vec::new();
    for task in stored {
        let mut record = task.record;
        let tag = proctree::tag_value(store.instance(), record.id);
        if leftovers.contains_key(&tag) {
            // Running, or started just before its start was recorded: either way its
            // processes belong to a daemon that is gone.
            to_kill.push(tag);
        }
        match record.state.clone() {
            TaskState::Running { started_at, pid } => {
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
                let event = st.event(
                    &record,
                    EventKind::Finished {
                        outcome: record.state.clone(),
                    },
                );
                let id = record.id;
                // A task given a handle is followed through it, not announced.
                let note = (record.detached && !store.has_handle(id)?)
                    .then(|| (st.note(), record.owner.clone()));
                ops.push(Op::PutTask {
                    record: Box::new(record),
                    spec: None,
                });
                ops.push(Op::Event(event));
                if let Some((seq, owner)) = note {
                    ops.push(Op::Notify {
                        seq,
                        owner,
                        task: id,
                    });
                }
            }
            TaskState::Queued => {
                // Nobody waits for it any more: it runs in the background.
                record.detached = true;
                ops.push(Op::PutTask {
                    record: Box::new(record.clone()),
                    spec: None,
                });
                queued.push((record, task.spec));
            }
            _ => {}
        }
    }
    store.apply(ops)?;
    let engine = Engine {
        inner: Arc::new(Inner {
            key_vars: config.key_vars(),
            config,
            store,
            reaper,
            cgroups,
            state: Mutex::new(State::default()),
            events: broadcast::channel(4096).0,
            published: AtomicU64::new(st.last_seq().max(last_seq)),
            started_at: Timestamp::now(),
            agents,
            logs,
            leases: Mutex::default(),
        }),
    };
    let grace = engine.inner.config.kill_grace;
    for tag in to_kill {
        let reaper = engine.inner.reaper.clone();
        let tree = Tree {
            pgid: None,
            tag,
            cgroup: None,
        };
        tokio::spawn(async move { proctree::terminate(&tree, &reaper, grace).await });
    }
    let mut drives = Vec::new();
    for (record, spec) in queued {
        let id = record.id;
        st.claim_names(&record);
        st.sched.enqueue(id, record.group.as_deref());
        let (go, rx) = oneshot::channel();
        let abort = Arc::new(Abort::default());
        let timeout = record.timeout_ms.map(std::time::Duration::from_millis);
        drives.push((id, rx, timeout, abort.clone()));
        let quiet = store_has_handle(&engine, id);
        let mut task = Task::queued(record, spec, RunLink { abort, go });
        task.quiet = quiet;
        st.tasks.insert(id, task);
    }
    let mut fx = Effects::default();
    {
        let mut guard = engine.lock();
        *guard = st;
        for (id, rx, timeout, abort) in drives {
            engine.spawn_drive(id, rx, None, timeout, abort);
        }
        engine.schedule(&mut guard, &mut fx);
    }
    engine.act(fx);
    engine.spawn_retention();
    Ok(engine)
}

/// Whether a handle was given out for the task (then its end is not announced).
fn store_has_handle(engine: &Engine, id: aside_protocol::TaskId) -> bool {
    engine.inner.store.has_handle(id).unwrap_or(false)
}
