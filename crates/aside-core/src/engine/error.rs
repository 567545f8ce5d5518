//! What can go wrong with a request to the engine, as data: the daemon turns each variant
//! into its JSON-RPC code, and the message says what to do.

use std::time::Duration;

use aside_protocol::TaskId;
use aside_store::StoreError;

use crate::config::NameError;
use crate::output::OutputError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no task with id {0}")]
    UnknownTask(TaskId),
    #[error("task {id} has already ended ({state})")]
    AlreadyEnded { id: TaskId, state: &'static str },
    #[error(transparent)]
    BadSpec(#[from] SpecError),
    #[error(
        "the output of task {id} went to its foreground caller and is no longer kept (output under {} stays in memory only)",
        crate::config::fmt_size(*spill)
    )]
    NotRetained { id: TaskId, spill: u64 },
    #[error("too many tasks: {limit} are queued or running already")]
    TooManyTasks { limit: usize },
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Output(#[from] OutputError),
    #[error("aside is shutting down")]
    ShuttingDown,
    #[error("cannot start the engine: {0}")]
    Setup(#[source] std::io::Error),
    #[error("cannot use the logs folder: {0}")]
    Logs(#[from] crate::logs::LogsError),
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    #[error("task {id} has not started yet")]
    NotStarted { id: TaskId },
    #[error("task {id} is an agent: it has no input, terminal or processes of its own to signal")]
    Agent { id: TaskId },
    #[error("task {id} cannot be {verb}: {why}")]
    CannotPause {
        id: TaskId,
        verb: &'static str,
        why: &'static str,
    },
    #[error(transparent)]
    Pattern(#[from] super::PatternError),
    #[error("a slot limit is 1 to {max}; {0} is not", max = super::slots::MAX_SLOTS)]
    BadSlotLimit(u32),
    #[error("cannot record the slot limits: {0}")]
    SlotRecord(#[source] serde_json::Error),
}

/// Why a task spec was refused.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("the command is empty")]
    EmptyCommand,
    #[error("the agent's name is empty")]
    EmptyAgent,
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("{0:?} is not a session id (they look like s12)")]
    BadSessionId(String),
    #[error("no conversation {0} to resume (sessions are named after the task that began them, such as s12)")]
    UnknownSession(String),
    #[error("session {session} is still running in task {task}")]
    SessionRunning { session: String, task: TaskId },
    #[error("a terminal is 1 to {max} cells each way; {size} is not", max = aside_protocol::TermSize::MAX)]
    BadSize { size: aside_protocol::TermSize },
    #[error(
        "this engine runs tasks without a supervisor program (aside-shim): input (--stdin, \
         --pty), terminals and signals need one"
    )]
    NoSupervisor,
    #[error("the working directory {0:?} is not an absolute path")]
    RelativeCwd(String),
    #[error("the working directory {0} does not exist or is not a directory")]
    MissingCwd(String),
    #[error(transparent)]
    Group(#[from] NameError),
    #[error(
        "the {what} of {} is longer than the limit of 10 years",
        aside_protocol::format_duration(*limit)
    )]
    TooLong { what: &'static str, limit: Duration },
    #[error("a timeout of 0 would kill the task at once; use none for no timeout")]
    ZeroTimeout,
    #[error("the {what} is {len} bytes, more than the limit of {max}")]
    TooBig {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("invalid environment variable {0:?}")]
    BadEnv(String),
    #[error("task ids are used up")]
    IdsExhausted,
    #[error(
        "label {0:?}: a key is 1 to {max} letters, digits or . _ - /, and a value has no \
         control characters",
        max = super::validate::MAX_LABEL_KEY
    )]
    BadLabel(String),
    #[error("{count} labels, more than the limit of {max}", max = super::validate::MAX_LABELS)]
    TooManyLabels { count: usize },
    #[error(
        "{count} tasks to run after, more than the limit of {max}",
        max = super::validate::MAX_AFTER
    )]
    TooManyDependencies { count: usize },
    /// Checked against the store: a task can only wait for one that exists, so waits never
    /// form a cycle.
    #[error("no task {0} to run after (a task can only wait for one that already exists)")]
    UnknownDependency(TaskId),
}
