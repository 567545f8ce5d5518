//! Agent tasks that were running when the previous engine went away (killed, or restarted)
//! run again as a *resumed* run of the same task: same id, record, owner, group, names and
//! notice rules. Their runner is told ([`crate::Launch::resumed`]) and goes on from where the
//! task got to (an agent: from its transcript), instead of the task being marked `lost`.
//!
//! A resumed task gets its slot back directly, as an adopted shell task keeps its own: it
//! held one when the engine went away, so it runs before anything queued, even if a limit
//! was lowered meanwhile. Its timeout counts from its first start.

use std::sync::Arc;
use std::time::Duration;

use aside_protocol::{TaskKind, TaskRecord, TaskSpec, TaskState};
use tokio::sync::oneshot;

use super::lifecycle::{ran_so_far, DriveArgs};
use super::schedule::Launching;
use super::state::State;
use super::task::{RunLink, Task};
use super::{Effects, Engine};
use crate::abort::Abort;
use crate::output::Output;

/// Whether a task found running at the start runs again instead of being marked `lost`:
/// an agent, when there is a runtime to run it.
pub(super) fn resumable(record: &TaskRecord, has_runner: bool) -> bool {
    has_runner
        && matches!(record.kind, TaskKind::Agent { .. })
        && matches!(record.state, TaskState::Running { .. })
}

/// Gives the task its slot, and leaves its launch (as a resumed run) to `fx`. Returns what
/// its drive future needs, as `recover::open` starts them.
pub(super) fn resume(
    engine: &Engine,
    st: &mut State,
    record: TaskRecord,
    spec: TaskSpec,
    fx: &mut Effects,
) -> DriveArgs {
    let id = record.id;
    let cfg = &engine.inner.config;
    st.claim_names(&record);
    st.sched.adopt(id, record.group.as_deref());
    // Its log goes on where the previous run left it.
    let output = Arc::new(Output::continued(
        engine.inner.logs.clone(),
        id,
        record.detached,
        cfg.output_cap,
        cfg.spill,
        cfg.tail,
    ));
    let ran = ran_so_far(&record.state);
    let timeout = record.timeout_ms.map(Duration::from_millis);
    let abort = Arc::new(Abort::default());
    let (go, rx) = oneshot::channel();
    let run = RunLink {
        abort: abort.clone(),
        go,
    };
    let quiet = engine.has_handle(id);
    let mut task = Task::resuming(record.clone(), run, output.clone());
    task.quiet = quiet;
    st.tasks.insert(id, task);
    fx.launches
        .push(Launching::resumed(record, spec, output, abort.clone()));
    (id, rx, timeout, ran, abort)
}
