//! Opening an engine on what a previous run left: queued tasks are queued again; running
//! tasks whose supervisor answers are adopted (they keep their slot, output, timeout and
//! owner); those that ended while no engine was there get their real end, announced; the
//! rest (their supervisor died, or they ran under the previous engine itself) are marked
//! `lost` and announced, after every process they left is killed: what their cgroups hold
//! at once, before anything starts, and what carries their tag. Agents that were running
//! run again instead, resumed (`resume.rs`). Only live tasks are loaded: finished ones stay
//! on disk.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aside_protocol::{EventKind, TaskId, TaskKind, TaskState, Timestamp};
use aside_store::{Op, Store};
use tokio::sync::{broadcast, oneshot};

use super::lifecycle::{ran_so_far, DriveArgs};
use super::state::State;
use super::task::{RunLink, Task};
use super::{Effects, Engine, EngineError, Inner};
use crate::abort::Abort;
use crate::cgroup::Cgroups;
use crate::config::Config;
use crate::console::Console;
use crate::logs::Logs;
use crate::output::Output;
use crate::proctree::{self, Tree};
use crate::reaper::Reaper;
use crate::run::RunOutcome;
use crate::runner::AgentRunner;
use crate::supervised::{abort_reason, exit_of, Adopted, Following, Found, Supervisors};

pub(super) fn open(
    home: &Path,
    config: Config,
    store: Store,
    logs: Arc<Logs>,
    reaper: Arc<Reaper>,
    agents: Option<Arc<dyn AgentRunner>>,
    supervisors: Option<Arc<Supervisors>>,
) -> Result<Engine, EngineError> {
    let last_seq = store.last_event_seq()?;
    let mut st = State::new(
        store.last_task_id()? + 1,
        last_seq + 1,
        store.last_notification_seq()? + 1,
    );
    st.sched.set_changes(super::slots::stored_changes(&store));
    let (stored, damaged) = store.load_live_tasks()?;
    for (id, why) in damaged {
        tracing::warn!("task {id}: its stored record cannot be read and is skipped: {why}");
    }
    // The supervisors of the tasks that were running, asked before anything is killed.
    let mut found: HashMap<TaskId, Found> = HashMap::new();
    if let Some(sup) = &supervisors {
        for task in &stored {
            let r = &task.record;
            if matches!(r.state, TaskState::Running { .. })
                && matches!(r.kind, TaskKind::Shell { .. })
            {
                found.insert(r.id, sup.find(r.id));
            }
        }
    }
    // The groups the answering supervisors hold, as each names its own.
    let alive: BTreeSet<String> = found
        .values()
        .filter_map(|f| match f {
            Found::Running(a) => Path::new(a.cgroup.as_deref()?).file_name(),
            _ => None,
        })
        .map(|leaf| leaf.to_string_lossy().into_owned())
        .collect();
    let keep = |leaf: &str| alive.contains(leaf);
    // Before any task of this engine starts in a group of the same name.
    let cgroups = Cgroups::open(home, store.instance(), &keep);
    // One look at the process table for every process this state directory's tasks left.
    let leftovers = proctree::tags_with_prefix(&format!("{}-", store.instance()));
    let mut ops = Vec::new();
    let mut queued = Vec::new();
    let mut to_kill = Vec::new();
    let mut adopted = Vec::new();
    let mut cleared = Vec::new();
    let mut resumed = Vec::new();
    for task in stored {
        let mut record = task.record;
        let tag = proctree::tag_value(store.instance(), record.id);
        let found = found.remove(&record.id);
        if leftovers.contains_key(&tag) && !matches!(found, Some(Found::Running(_))) {
            // Running, or started just before its start was recorded: either way its
            // processes belong to a daemon that is gone.
            to_kill.push(tag);
        }
        if found.is_some() {
            cleared.push(record.id);
        }
        match (record.state.clone(), found) {
            (TaskState::Running { .. }, Some(Found::Running(a))) => {
                cleared.pop();
                // Its supervisor knows whether it is paused: a pause (or resume) whose
                // record was not durable yet, or that never reached it, is set right.
                if record.paused != a.paused {
                    record.paused = a.paused;
                    let kind = match a.paused {
                        true => EventKind::Paused,
                        false => EventKind::Resumed,
                    };
                    let event = st.event(&record, kind);
                    ops.push(Op::PutTask {
                        record: Box::new(record.clone()),
                        spec: None,
                    });
                    ops.push(Op::Event(event));
                }
                adopted.push((record, a));
            }
            (TaskState::Running { started_at, .. }, Some(Found::Ended(end))) => {
                // It ended while no daemon was there: its real end, told as any other.
                let ended_at = Timestamp::from_unix_ms(end.ended_at_ms);
                record.output_bytes = end.total;
                record.log_path = Some(logs.path(record.id).display().to_string());
                record.state = super::outcome::classify(
                    abort_reason(end.cause),
                    RunOutcome::Exited(exit_of(end.exit)),
                    Some(started_at),
                    ended_at,
                );
                // Nobody waits for it any more: its owner hears of it.
                record.detached = true;
                ended_ops(&mut st, &store, record, &mut ops)?;
            }
            (TaskState::Running { .. }, None)
                if super::resume::resumable(&record, agents.is_some()) =>
            {
                resumed.push((record, task.spec));
            }
            (TaskState::Running { started_at, pid }, _) => {
                record.state = TaskState::Lost {
                    started_at: Some(started_at),
                    ended_at: Timestamp::now(),
                    reason: format!(
                        "{}{}; its processes were killed on restart",
                        match (&supervisors, &record.kind) {
                            (Some(_), TaskKind::Shell { .. }) => {
                                "its supervisor died while no daemon ran"
                            }
                            _ => "the daemon stopped while the task ran",
                        },
                        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
                    ),
                };
                if let Some(path) = &record.log_path {
                    if let Ok(meta) = std::fs::metadata(path) {
                        record.output_bytes = meta.len();
                    }
                }
                ended_ops(&mut st, &store, record, &mut ops)?;
            }
            (TaskState::Queued, _) => {
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
    if let Some(sup) = &supervisors {
        // Their ends are on disk now.
        for id in cleared {
            sup.clear(id);
        }
    }
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
            supervisors,
            hooks: Default::default(),
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
    let mut waiting = Vec::new();
    for (record, spec) in queued {
        let id = record.id;
        st.claim_names(&record);
        if record.after.is_empty() {
            st.sched.enqueue(id, record.group.as_deref());
        } else {
            // Once every task is back in the map: what it waits for may be among them.
            waiting.push((id, record.group.clone()));
        }
        let (go, rx) = oneshot::channel();
        let abort = Arc::new(Abort::default());
        let timeout = record.timeout_ms.map(Duration::from_millis);
        drives.push((id, rx, timeout, Duration::ZERO, abort.clone()));
        let quiet = engine.has_handle(id);
        let mut task = Task::queued(record, spec, RunLink { abort, go });
        task.quiet = quiet;
        st.tasks.insert(id, task);
    }
    let mut callers = Vec::new();
    for (record, a) in adopted {
        if !record.detached {
            callers.push(record.id);
        }
        // Found through a supervisor: there are supervisors.
        if let Some(sup) = engine.inner.supervisors.clone() {
            drives.push(adopt(&engine, &sup, &mut st, record, a));
        }
    }
    let mut fx = Effects::default();
    for (record, spec) in resumed {
        if !record.detached {
            callers.push(record.id);
        }
        drives.push(super::resume::resume(
            &engine, &mut st, record, spec, &mut fx,
        ));
    }
    for (id, group) in waiting {
        if engine.wait_for_after(&mut st, id, &mut fx) {
            st.sched.enqueue(id, group.as_deref());
        }
    }
    if !drives.is_empty() {
        tracing::info!(
            "{} running tasks adopted, {} queued again",
            st.sched.running(),
            st.sched.queued()
        );
    }
    {
        let mut guard = engine.lock();
        *guard = st;
        for (id, rx, timeout, ran, abort) in drives {
            engine.spawn_drive(id, rx, None, timeout, ran, abort);
        }
        engine.schedule(&mut guard, &mut fx);
    }
    engine.act(fx);
    for id in callers {
        engine.await_caller(id);
    }
    if let Some(sup) = &engine.inner.supervisors {
        // What ended supervisors left (an end told twice, a socket of one killed).
        sup.sweep(|id| engine.lock().tasks.contains_key(&id));
    }
    engine.spawn_retention();
    engine.spawn_hook(last_seq);
    Ok(engine)
}

/// Takes over a running task whose supervisor answered: it keeps its slot, its names and
/// its timeout (counted from its real start), and this engine follows its supervisor.
fn adopt(
    engine: &Engine,
    sup: &Supervisors,
    st: &mut State,
    record: aside_protocol::TaskRecord,
    a: Adopted,
) -> DriveArgs {
    let id = record.id;
    let inner = &engine.inner;
    st.claim_names(&record);
    st.sched.adopt(id, record.group.as_deref());
    let output = Arc::new(Output::supervised(
        inner.logs.clone(),
        id,
        a.total,
        inner.config.tail,
    ));
    let abort = Arc::new(Abort::default());
    let cgroup = a
        .cgroup
        .as_deref()
        .and_then(|dir| inner.cgroups.as_ref()?.adopt(Path::new(dir)));
    let input = record.kind.input();
    // A supervisor of an older aside understands less (only stops, for the oldest).
    let (console, inbox) = Console::new(id, input, a.size, a.input_done, a.version);
    let following = Following {
        engine: engine.clone(),
        console: console.clone(),
        inbox,
        id,
        output: output.clone(),
        abort: abort.clone(),
        tree: Tree {
            pgid: None,
            tag: proctree::tag_value(inner.store.instance(), id),
            cgroup,
        },
        grace: inner.config.kill_grace,
        reaper: inner.reaper.clone(),
    };
    let run = sup.follow_adopted(a, following).unwrap_or_else(|e| {
        Box::pin(
            async move { RunOutcome::Lost(format!("its supervisor could not be followed: {e}")) },
        )
    });
    let ran = ran_so_far(&record.state);
    let timeout = record.timeout_ms.map(Duration::from_millis);
    let quiet = engine.has_handle(id);
    let mut task = Task::adopted(record, abort.clone(), output, console);
    task.quiet = quiet;
    st.tasks.insert(id, task);
    let (go, rx) = oneshot::channel();
    let _ = go.send(run);
    (id, rx, timeout, ran, abort)
}

/// The writes that record a task's end found at the start: its record, its event, and its
/// owner's notice unless a handle follows it.
fn ended_ops(
    st: &mut State,
    store: &Store,
    record: aside_protocol::TaskRecord,
    ops: &mut Vec<Op>,
) -> Result<(), EngineError> {
    let event = st.event(
        &record,
        EventKind::Finished {
            outcome: record.state.clone(),
        },
    );
    let id = record.id;
    // A task given a handle is followed through it, not announced.
    let note =
        (record.detached && !store.has_handle(id)?).then(|| (st.note(), record.owner.clone()));
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
    Ok(())
}
