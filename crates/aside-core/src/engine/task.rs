//! One task as the engine holds it: its record and the phase it is in, each phase carrying
//! exactly what exists in it. The record's `state` is changed here only, by the transitions
//! below, so it always agrees with the phase.
//!
//! ```text
//! Queued ──begin_start──> Starting ──started──> Running ──end──> Ending ──ended──> Ended
//!    │                       │                                     ▲
//!    └───────────────────────┴───────────────── end ───────────────┘
//! ```
//!
//! `Starting` and `Running` hold a slot. `Ending` means the end is decided and its record is
//! being written; the record still shows the running state until the write is durable, so
//! nobody is told of an end that a crash could undo.

use std::sync::Arc;

use aside_protocol::{TaskRecord, TaskSpec, TaskState, Timestamp};
use tokio::sync::{oneshot, watch};

use crate::abort::Abort;
use crate::console::Console;
use crate::output::Output;
use crate::run::RunFuture;

/// The link between a task and its drive future: the stop signal, and the channel that hands
/// the started runner over.
pub(super) struct RunLink {
    pub abort: Arc<Abort>,
    pub go: oneshot::Sender<RunFuture>,
}

pub(super) enum Phase {
    /// Waiting for a slot.
    Queued { spec: Box<TaskSpec>, run: RunLink },
    /// Holds a slot; its process is being started outside the engine's lock.
    Starting { run: RunLink, output: Arc<Output> },
    /// Holds a slot.
    Running {
        abort: Arc<Abort>,
        output: Arc<Output>,
        /// Its way in: a shell task under a supervisor has one.
        console: Option<Arc<Console>>,
    },
    /// The end is decided; its record is being written.
    Ending {
        outcome: TaskState,
        retained: Option<Arc<Output>>,
    },
    /// Over. Kept in memory only while its output is (a foreground task's output that never
    /// reached the disk); otherwise its record lives in the store alone.
    Ended { retained: Option<Arc<Output>> },
}

pub(super) struct Task {
    record: TaskRecord,
    phase: Phase,
    /// Bumped on every change of the record, for waiters.
    status: watch::Sender<u64>,
    /// The owner stopped it itself: no notification.
    pub quiet: bool,
    /// A foreground task adopted after a daemon restart whose caller has not come back.
    pub unattended: bool,
}

/// What [`Task::end`] hands back to the engine.
pub(super) struct Ended {
    /// The record as it will be stored.
    pub record: TaskRecord,
    /// The task gave up a slot.
    pub held_slot: bool,
    /// The output to close (outside the lock).
    pub output: Option<Arc<Output>>,
    /// Bytes of output now kept in memory for later reads.
    pub retained_bytes: Option<u64>,
}

impl Task {
    pub fn queued(record: TaskRecord, spec: TaskSpec, run: RunLink) -> Self {
        debug_assert!(matches!(record.state, TaskState::Queued));
        Self {
            record,
            phase: Phase::Queued {
                spec: Box::new(spec),
                run,
            },
            status: watch::channel(0).0,
            quiet: false,
            unattended: false,
        }
    }

    /// A task a previous engine started, still running under its supervisor.
    pub fn adopted(
        record: TaskRecord,
        abort: Arc<Abort>,
        output: Arc<Output>,
        console: Arc<Console>,
    ) -> Self {
        let console = Some(console);
        Self::running_again(
            record,
            Phase::Running {
                abort,
                output,
                console,
            },
        )
    }

    /// A task a previous engine was running in its own process (an agent), given its slot
    /// again to run once more: it starts at once, keeping its record (and its start time).
    pub fn resuming(record: TaskRecord, run: RunLink, output: Arc<Output>) -> Self {
        Self::running_again(record, Phase::Starting { run, output })
    }

    /// A task recorded as running by a previous engine, in `phase` in this one. A
    /// foreground one waits for its caller to come back.
    fn running_again(record: TaskRecord, phase: Phase) -> Self {
        debug_assert!(matches!(record.state, TaskState::Running { .. }));
        Self {
            unattended: !record.detached,
            record,
            phase,
            status: watch::channel(0).0,
            quiet: false,
        }
    }

    pub fn record(&self) -> &TaskRecord {
        &self.record
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// Its end is decided (or done): stops and detaches no longer apply.
    pub fn is_over(&self) -> bool {
        matches!(self.phase, Phase::Ending { .. } | Phase::Ended { .. })
    }

    /// The record as it is now, with the output counted so far for a running task.
    pub fn snapshot(&self) -> TaskRecord {
        let mut record = self.record.clone();
        if let Phase::Starting { output, .. } | Phase::Running { output, .. } = &self.phase {
            record.output_bytes = output.total();
        }
        record
    }

    pub fn abort(&self) -> Option<&Arc<Abort>> {
        match &self.phase {
            Phase::Queued { run, .. } | Phase::Starting { run, .. } => Some(&run.abort),
            Phase::Running { abort, .. } => Some(abort),
            Phase::Ending { .. } | Phase::Ended { .. } => None,
        }
    }

    /// The console of a running task that has one, with its output.
    pub fn console(&self) -> Option<(&Arc<Console>, &Arc<Output>)> {
        match &self.phase {
            Phase::Running {
                console: Some(c),
                output,
                ..
            } => Some((c, output)),
            _ => None,
        }
    }

    /// The output, live or kept after the end.
    pub fn output(&self) -> Option<&Arc<Output>> {
        match &self.phase {
            Phase::Queued { .. } => None,
            Phase::Starting { output, .. } | Phase::Running { output, .. } => Some(output),
            Phase::Ending { retained, .. } | Phase::Ended { retained } => retained.as_ref(),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.status.subscribe()
    }

    /// Wakes everyone watching the record.
    pub fn bump(&self) {
        self.status.send_modify(|v| *v += 1);
    }

    /// Queued → Starting: the task got a slot. Returns its spec and stop signal.
    pub fn begin_start(&mut self, output: Arc<Output>) -> Option<(Box<TaskSpec>, Arc<Abort>)> {
        let Phase::Queued { .. } = self.phase else {
            return None;
        };
        let Phase::Queued { spec, run } =
            std::mem::replace(&mut self.phase, Phase::Ended { retained: None })
        else {
            return None;
        };
        let abort = run.abort.clone();
        self.phase = Phase::Starting { run, output };
        Some((spec, abort))
    }

    /// Starting → Running: its process runs. Returns the channel to its drive future.
    pub fn started(
        &mut self,
        at: Timestamp,
        pid: Option<u32>,
        console: Option<Arc<Console>>,
    ) -> Option<oneshot::Sender<RunFuture>> {
        let Phase::Starting { .. } = self.phase else {
            return None;
        };
        let Phase::Starting { run, output } =
            std::mem::replace(&mut self.phase, Phase::Ended { retained: None })
        else {
            return None;
        };
        self.phase = Phase::Running {
            abort: run.abort,
            output,
            console,
        };
        // A resumed task keeps the start of its first run: its timeout counts from there.
        let started_at = self.record.state.started_at().unwrap_or(at);
        self.record.state = TaskState::Running { started_at, pid };
        self.bump();
        Some(run.go)
    }

    /// Any live phase → Ending with `outcome`. Decides where the output goes (its log when it
    /// reached the disk, memory when it did not) and returns the record to store. `None` when
    /// the end is decided already.
    pub fn end(&mut self, outcome: TaskState) -> Option<Ended> {
        debug_assert!(outcome.is_terminal());
        let previous = std::mem::replace(&mut self.phase, Phase::Ended { retained: None });
        let (held_slot, output) = match previous {
            Phase::Queued { .. } => (false, None),
            Phase::Starting { output, .. } | Phase::Running { output, .. } => (true, Some(output)),
            over @ (Phase::Ending { .. } | Phase::Ended { .. }) => {
                self.phase = over;
                return None;
            }
        };
        let mut retained = None;
        if let Some(out) = &output {
            self.record.output_bytes = out.total();
            if out.on_disk() {
                self.record.log_path = Some(out.path().display().to_string());
            } else if out.total() > 0 {
                retained = Some(out.clone());
            }
        }
        let retained_bytes = retained.as_ref().map(|o| o.retained_bytes() as u64);
        // A task that ended runs no more, paused or not.
        self.record.paused = false;
        let mut record = self.record.clone();
        record.state = outcome.clone();
        self.phase = Phase::Ending { outcome, retained };
        Some(Ended {
            record,
            held_slot,
            output,
            retained_bytes,
        })
    }

    /// Ending → Ended, once the end is durable: the record shows it and waiters wake.
    /// Returns whether the task must stay in memory (its output is kept there).
    pub fn ended(&mut self) -> bool {
        let Phase::Ending { .. } = self.phase else {
            return matches!(self.phase, Phase::Ended { retained: Some(_) });
        };
        let Phase::Ending { outcome, retained } =
            std::mem::replace(&mut self.phase, Phase::Ended { retained: None })
        else {
            return false;
        };
        self.record.state = outcome;
        let keep = retained.is_some();
        self.phase = Phase::Ended { retained };
        self.bump();
        keep
    }

    /// Drops the output kept in memory (retention evicted it); returns whether the task may
    /// now leave memory.
    pub fn forget_output(&mut self) -> bool {
        match &mut self.phase {
            Phase::Ending { retained, .. } => {
                *retained = None;
                false
            }
            Phase::Ended { retained } => {
                *retained = None;
                true
            }
            _ => false,
        }
    }

    /// A foreground task moves to the background: its whole output goes to `log`.
    pub fn set_detached(&mut self, log: String) {
        self.record.detached = true;
        self.record.log_path = Some(log);
        self.bump();
    }

    /// Its processes were stopped or continued. Returns whether that changed the record.
    pub fn set_paused(&mut self, paused: bool) -> bool {
        if self.record.paused == paused {
            return false;
        }
        self.record.paused = paused;
        self.bump();
        true
    }

    pub fn set_progress(&mut self, progress: aside_protocol::AgentProgress) {
        self.record.progress = Some(progress);
        self.bump();
    }

    pub fn set_answer(&mut self, answer: String) {
        self.record.answer = Some(answer);
    }

    /// The output kept in memory was written to `log`.
    pub fn set_saved(&mut self, log: String) {
        self.record.log_path = Some(log);
        if let Phase::Ended { retained } = &mut self.phase {
            *retained = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use aside_protocol::{CancelReason, ShellCommand, StartMode, TaskId, TaskKind};

    use super::*;

    fn task(detached: bool) -> (Task, oneshot::Receiver<RunFuture>) {
        let record = TaskRecord {
            id: TaskId::new(1).unwrap(),
            kind: TaskKind::Shell {
                command: ShellCommand::Argv(vec!["true".into()]),
                input: aside_protocol::Input::None,
            },
            name: None,
            owner: "cli".into(),
            group: None,
            cwd: "/".into(),
            dedupe_key: None,
            mode: StartMode::Background,
            detached,
            paused: false,
            labels: Default::default(),
            after: Vec::new(),
            timeout_ms: None,
            created_at: Timestamp::from_unix_ms(1),
            state: TaskState::Queued,
            output_bytes: 0,
            log_path: None,
            progress: None,
            answer: None,
        };
        let (go, rx) = oneshot::channel();
        let spec = TaskSpec::shell(ShellCommand::Argv(vec!["true".into()]));
        let run = RunLink {
            abort: Arc::new(Abort::default()),
            go,
        };
        (Task::queued(record, spec, run), rx)
    }

    fn cancelled() -> TaskState {
        TaskState::Cancelled {
            started_at: None,
            ended_at: Timestamp::from_unix_ms(5),
            reason: CancelReason::Shutdown,
        }
    }

    fn output(dir: &tempfile::TempDir, to_disk: bool) -> Arc<Output> {
        let logs = crate::logs::Logs::open(&dir.path().join("logs")).unwrap();
        Arc::new(Output::new(
            Arc::new(logs),
            TaskId::new(1).unwrap(),
            to_disk,
            1 << 20,
            1 << 20,
            64,
        ))
    }

    #[test]
    fn a_task_stopped_while_queued_held_no_slot_and_ends_after_its_write() {
        let (mut t, _go) = task(true);
        let ended = t.end(cancelled()).unwrap();
        assert!(!ended.held_slot);
        assert_eq!(ended.record.state, cancelled());
        assert_eq!(
            t.record().state,
            TaskState::Queued,
            "not shown before it is durable"
        );
        assert!(t.end(cancelled()).is_none(), "an end is decided once");
        let mut rx = t.subscribe();
        rx.borrow_and_update();
        assert!(!t.ended(), "nothing kept in memory");
        assert_eq!(t.record().state, cancelled());
        assert!(rx.has_changed().unwrap(), "waiters wake when it is durable");
    }

    #[test]
    fn a_started_task_holds_a_slot_until_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let (mut t, _go) = task(true);
        let out = output(&dir, true);
        assert!(t.begin_start(out.clone()).is_some());
        assert!(t.begin_start(out.clone()).is_none(), "started once");
        assert!(t
            .started(Timestamp::from_unix_ms(2), Some(42), None)
            .is_some());
        assert_eq!(t.record().state.name(), "running");
        out.append(b"hi").unwrap();
        assert_eq!(t.snapshot().output_bytes, 2);
        let ended = t.end(cancelled()).unwrap();
        assert!(ended.held_slot);
        assert!(
            ended.retained_bytes.is_none(),
            "logged output is not kept in memory"
        );
        assert!(ended.record.log_path.is_some());
        assert!(!t.ended());
    }

    #[test]
    fn a_paused_task_is_no_longer_paused_once_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let (mut t, _go) = task(true);
        t.begin_start(output(&dir, true)).unwrap();
        t.started(Timestamp::from_unix_ms(2), Some(42), None)
            .unwrap();
        assert!(t.set_paused(true));
        assert!(!t.set_paused(true), "paused once");
        assert!(t.snapshot().paused);
        let ended = t.end(cancelled()).unwrap();
        assert!(!ended.record.paused, "the record stored at the end");
        assert!(!t.ended());
        assert!(!t.record().paused);
    }

    #[test]
    fn a_failed_start_gives_its_slot_back_without_ever_running() {
        let dir = tempfile::tempdir().unwrap();
        let (mut t, _go) = task(false);
        t.begin_start(output(&dir, false)).unwrap();
        let ended = t.end(cancelled()).unwrap();
        assert!(ended.held_slot, "the slot taken for starting is given back");
        assert_eq!(ended.record.state.started_at(), None);
    }

    #[test]
    fn foreground_output_stays_in_memory_until_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let (mut t, _go) = task(false);
        let out = output(&dir, false);
        t.begin_start(out.clone()).unwrap();
        t.started(Timestamp::from_unix_ms(2), None, None).unwrap();
        out.append(b"hello").unwrap();
        let ended = t.end(cancelled()).unwrap();
        assert_eq!(ended.retained_bytes, Some(5));
        assert!(t.output().is_some());
        assert!(!t.forget_output(), "still being written: stays");
        assert!(!t.ended(), "forgotten while ending: nothing to keep");
        let (mut t, _go) = task(false);
        let out = output(&dir, false);
        t.begin_start(out.clone()).unwrap();
        out.append(b"x").unwrap();
        t.end(cancelled()).unwrap();
        assert!(t.ended(), "kept for reads");
        assert!(t.forget_output(), "may leave memory once its output goes");
    }
}
