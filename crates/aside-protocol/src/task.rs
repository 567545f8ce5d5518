use std::collections::BTreeMap;

use base64::Engine as _;

use crate::Input;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{TaskId, Timestamp};

/// A duration limit that may be switched off: a number of milliseconds, or `"none"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Limit {
    Millis(u64),
    Unlimited(Unlimited),
}

/// The word `"none"`: no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Unlimited {
    #[serde(rename = "none")]
    None,
}

impl Limit {
    pub const NONE: Limit = Limit::Unlimited(Unlimited::None);

    pub fn millis(self) -> Option<u64> {
        match self {
            Limit::Millis(ms) => Some(ms),
            Limit::Unlimited(_) => None,
        }
    }

    pub fn from_millis(ms: Option<u64>) -> Self {
        ms.map_or(Self::NONE, Limit::Millis)
    }
}

/// What a shell task runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShellCommand {
    /// A program and its arguments, executed directly.
    Argv(Vec<String>),
    /// A script run by `sh -c`.
    Script(String),
}

impl ShellCommand {
    /// The command as a person would type it, for listings.
    pub fn display(&self) -> String {
        match self {
            ShellCommand::Script(s) => s.clone(),
            ShellCommand::Argv(argv) => argv
                .iter()
                .map(|a| quote_arg(a))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

fn quote_arg(a: &str) -> String {
    let plain = !a.is_empty()
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

/// The kind of a task and what it runs. Each kind is a variant; the engine has one runner per
/// kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskKind {
    /// A command in its own process group.
    Shell {
        command: ShellCommand,
        /// Its standard input: none (`/dev/null`), a pipe, or a terminal.
        #[serde(default, skip_serializing_if = "Input::is_none")]
        input: Input,
    },
    /// A subagent: a conversation with a model and tools, or an external agent command, named
    /// by its definition.
    Agent {
        /// The agent definition's name (`general`, `explore`, or one from an agents directory).
        agent: String,
        /// The task given to the agent.
        prompt: String,
        /// The conversation this task continues or starts (`s` and the id of the task that
        /// started it). Given on start to resume a finished conversation; filled in otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<String>,
        /// How many agents up the chain started this one: 0 for a top-level agent.
        #[serde(default)]
        depth: u32,
    },
}

impl TaskKind {
    pub fn name(&self) -> &'static str {
        match self {
            TaskKind::Shell { .. } => "shell",
            TaskKind::Agent { .. } => "agent",
        }
    }

    pub fn display(&self) -> String {
        match self {
            TaskKind::Shell { command, .. } => command.display(),
            TaskKind::Agent { agent, prompt, .. } => {
                let line = prompt.lines().next().unwrap_or_default();
                let short: String = line.chars().take(80).collect();
                let more = if short.len() < prompt.len() {
                    "…"
                } else {
                    ""
                };
                format!("{agent}: {short}{more}")
            }
        }
    }

    /// A shell task's input; an agent takes none.
    pub fn input(&self) -> Input {
        match self {
            TaskKind::Shell { input, .. } => *input,
            TaskKind::Agent { .. } => Input::None,
        }
    }

    /// The session of an agent task.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            TaskKind::Agent { session_id, .. } => session_id.as_deref(),
            TaskKind::Shell { .. } => None,
        }
    }
}

/// Checks a session id against its strict pattern (`s` and a task id) before it names a file.
pub fn valid_session_id(s: &str) -> bool {
    s.strip_prefix('s')
        .is_some_and(|n| n.parse::<crate::TaskId>().is_ok())
}

/// A running agent's progress, updated as it works.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentProgress {
    /// Model requests made so far.
    pub turns: u32,
    /// Tool calls made so far.
    pub tool_calls: u32,
    /// The tool called last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tool: Option<String>,
    /// Tokens used (prompt and completion) as the model reported them.
    pub tokens: u64,
    /// The model in use.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
}

impl AgentProgress {
    /// One line on how far it is: `turn 3, 2 tools, last bash, 1200 tokens`.
    pub fn describe(&self) -> String {
        let mut s = format!("turn {}, {} tools", self.turns, self.tool_calls);
        if let Some(t) = &self.last_tool {
            s.push_str(&format!(", last {t}"));
        }
        if self.tokens > 0 {
            s.push_str(&format!(", {} tokens", self.tokens));
        }
        s
    }
}

/// Whether the caller waits for the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum StartMode {
    /// The caller waits, up to its wait budget; then the task moves to the background.
    #[default]
    Foreground,
    /// The caller gets the id at once.
    Background,
}

/// Everything needed to start a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TaskSpec {
    #[serde(flatten)]
    pub kind: TaskKind,
    /// A label for listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Absolute working directory. Defaults to the daemon's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The whole environment of the process. When absent, the daemon's environment is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// Variables set on top of `env`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env_extra: BTreeMap<String, String>,
    /// The concurrency group; tasks without one share only the global limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Hard limit after which the task is killed; absent means the configured default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Limit>,
    /// Foreground wait budget; absent means the configured default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<Limit>,
    /// A live task holding the same key is returned instead of starting a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedupe_key: Option<String>,
    #[serde(default)]
    pub mode: StartMode,
    /// Key=value pairs of the caller's own, shown in listings and filtered on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Tasks that must succeed first: the task waits, queued, until they have, and fails
    /// (`dependency`) as soon as one ends otherwise. Each must exist when this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<TaskId>,
}

impl TaskSpec {
    /// Every key a spec may have on the wire, whatever its kind (a test holds this list to
    /// the schema).
    pub const FIELDS: &'static [&'static str] = &[
        "kind",
        "command",
        "input",
        "agent",
        "prompt",
        "session_id",
        "depth",
        "name",
        "cwd",
        "env",
        "env_extra",
        "group",
        "timeout",
        "wait",
        "dedupe_key",
        "mode",
        "labels",
        "after",
    ];

    pub fn shell(command: ShellCommand) -> Self {
        Self::new(TaskKind::Shell {
            command,
            input: Input::None,
        })
    }

    /// A spec of any kind, everything else left to the defaults.
    pub fn new(kind: TaskKind) -> Self {
        Self {
            kind,
            name: None,
            cwd: None,
            env: None,
            env_extra: BTreeMap::new(),
            group: None,
            timeout: None,
            wait: None,
            dedupe_key: None,
            mode: StartMode::Foreground,
            labels: BTreeMap::new(),
            after: Vec::new(),
        }
    }
}

/// Why a task was cancelled. Recorded before the task is aborted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum CancelReason {
    /// Someone stopped it, with an optional message.
    UserStop {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// The foreground caller went away before the task was detached.
    OwnerGone,
    /// The daemon shut down.
    Shutdown,
    /// An agent made no progress for this long.
    Stalled { idle_ms: u64 },
}

impl std::fmt::Display for CancelReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CancelReason::UserStop { message: Some(m) } => write!(f, "stopped: {m}"),
            CancelReason::UserStop { message: None } => write!(f, "stopped"),
            CancelReason::OwnerGone => write!(f, "its foreground caller went away"),
            CancelReason::Shutdown => write!(f, "the daemon shut down"),
            CancelReason::Stalled { idle_ms } => write!(
                f,
                "no progress for {}",
                crate::format_duration(std::time::Duration::from_millis(*idle_ms))
            ),
        }
    }
}

/// Why a task failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "failure", rename_all = "snake_case")]
pub enum Failure {
    /// The process exited with a non-zero code.
    Exit { exit_code: i32 },
    /// The process was killed by a signal aside did not send.
    Signal { signal: i32 },
    /// The process could not be started.
    Spawn { error: String, not_found: bool },
    /// Reading the output or writing the log failed.
    Capture { error: String },
    /// The output passed the task's cap and the task was stopped.
    OutputCap { limit_bytes: u64 },
    /// The task's runner failed.
    Worker { error: String },
    /// An agent could not go on: its model failed, or answered with something unusable.
    Agent { error: String },
    /// A task it was to run after (`after`) did not succeed; it never started.
    Dependency {
        task_id: TaskId,
        /// How that task ended, for people.
        outcome: String,
    },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Exit { exit_code } => write!(f, "exited with code {exit_code}"),
            Failure::Signal { signal } => write!(f, "killed by signal {signal}"),
            Failure::Spawn { error, .. } => write!(f, "could not start: {error}"),
            Failure::Capture { error } => write!(f, "output capture failed: {error}"),
            Failure::OutputCap { limit_bytes } => {
                write!(f, "output passed the cap of {limit_bytes} bytes")
            }
            Failure::Worker { error } => write!(f, "{error}"),
            Failure::Agent { error } => write!(f, "the agent failed: {error}"),
            Failure::Dependency { task_id, outcome } => {
                write!(f, "dependency failed: task {task_id} {outcome}")
            }
        }
    }
}

/// A task's state with the data that belongs to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting for a slot.
    Queued,
    Running {
        started_at: Timestamp,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
    },
    Succeeded {
        started_at: Timestamp,
        ended_at: Timestamp,
        /// Absent for an agent that answered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
    },
    Failed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        started_at: Option<Timestamp>,
        ended_at: Timestamp,
        #[serde(flatten)]
        failure: Failure,
    },
    Cancelled {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        started_at: Option<Timestamp>,
        ended_at: Timestamp,
        reason: CancelReason,
    },
    TimedOut {
        started_at: Timestamp,
        ended_at: Timestamp,
        limit_ms: u64,
    },
    /// The daemon stopped while the task ran and could not follow it to its end.
    Lost {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        started_at: Option<Timestamp>,
        ended_at: Timestamp,
        reason: String,
    },
}

impl TaskState {
    pub fn name(&self) -> &'static str {
        match self {
            TaskState::Queued => "queued",
            TaskState::Running { .. } => "running",
            TaskState::Succeeded { .. } => "succeeded",
            TaskState::Failed { .. } => "failed",
            TaskState::Cancelled { .. } => "cancelled",
            TaskState::TimedOut { .. } => "timed_out",
            TaskState::Lost { .. } => "lost",
        }
    }

    pub fn is_terminal(&self) -> bool {
        !matches!(self, TaskState::Queued | TaskState::Running { .. })
    }

    pub fn started_at(&self) -> Option<Timestamp> {
        match self {
            TaskState::Queued => None,
            TaskState::Running { started_at, .. }
            | TaskState::Succeeded { started_at, .. }
            | TaskState::TimedOut { started_at, .. } => Some(*started_at),
            TaskState::Failed { started_at, .. }
            | TaskState::Cancelled { started_at, .. }
            | TaskState::Lost { started_at, .. } => *started_at,
        }
    }

    pub fn ended_at(&self) -> Option<Timestamp> {
        match self {
            TaskState::Queued | TaskState::Running { .. } => None,
            TaskState::Succeeded { ended_at, .. }
            | TaskState::Failed { ended_at, .. }
            | TaskState::Cancelled { ended_at, .. }
            | TaskState::TimedOut { ended_at, .. }
            | TaskState::Lost { ended_at, .. } => Some(*ended_at),
        }
    }

    /// The process's exit code, where it exited by itself.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            TaskState::Succeeded { exit_code, .. } => *exit_code,
            TaskState::Failed {
                failure: Failure::Exit { exit_code },
                ..
            } => Some(*exit_code),
            _ => None,
        }
    }

    /// A one-line description of the outcome, for people.
    pub fn describe(&self) -> String {
        match self {
            TaskState::Queued => "queued".into(),
            TaskState::Running { pid: Some(pid), .. } => format!("running (pid {pid})"),
            TaskState::Running { pid: None, .. } => "running".into(),
            TaskState::Succeeded { .. } => "succeeded".into(),
            TaskState::Failed { failure, .. } => format!("failed: {failure}"),
            TaskState::Cancelled { reason, .. } => format!("cancelled: {reason}"),
            TaskState::TimedOut { limit_ms, .. } => format!(
                "timed out after {}",
                crate::format_duration(std::time::Duration::from_millis(*limit_ms))
            ),
            TaskState::Lost { reason, .. } => format!("lost: {reason}"),
        }
    }
}

/// The whole record of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TaskRecord {
    pub id: TaskId,
    #[serde(flatten)]
    pub kind: TaskKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Who started the task; notifications go to it.
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub cwd: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedupe_key: Option<String>,
    /// How it was started.
    pub mode: StartMode,
    /// True when a foreground task was moved to the background (or it started there).
    pub detached: bool,
    /// A running task whose processes are stopped (`task.pause`) until `task.resume`; its
    /// timeout keeps running. Present only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// The spec's labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The tasks it runs after (the spec's `after`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<TaskId>,
    /// The effective hard limit in milliseconds; absent for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    pub created_at: Timestamp,
    #[serde(flatten)]
    pub state: TaskState,
    /// Bytes of output so far.
    pub output_bytes: u64,
    /// The log file, when the output is on disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_path: Option<String>,
    /// An agent's progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<AgentProgress>,
    /// An agent's final answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
}

impl TaskRecord {
    pub fn is_terminal(&self) -> bool {
        self.state.is_terminal()
    }
}

/// Bytes of output, sent as UTF-8 text where they are valid UTF-8 and as base64 otherwise,
/// so binary output survives byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "encoding", content = "data", rename_all = "snake_case")]
pub enum OutputChunk {
    Utf8(String),
    Base64(String),
}

impl OutputChunk {
    pub fn encode(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(s) => OutputChunk::Utf8(s.to_string()),
            Err(_) => OutputChunk::Base64(base64::engine::general_purpose::STANDARD.encode(bytes)),
        }
    }

    pub fn decode(&self) -> Result<Vec<u8>, base64::DecodeError> {
        match self {
            OutputChunk::Utf8(s) => Ok(s.as_bytes().to_vec()),
            OutputChunk::Base64(b) => base64::engine::general_purpose::STANDARD.decode(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_json_is_flat() {
        let rec = TaskRecord {
            id: TaskId::new(3).unwrap(),
            kind: TaskKind::Shell {
                command: ShellCommand::Argv(vec!["false".into()]),
                input: Input::None,
            },
            name: None,
            owner: "cli".into(),
            group: None,
            cwd: "/".into(),
            dedupe_key: None,
            mode: StartMode::Background,
            detached: true,
            paused: false,
            labels: Default::default(),
            after: Vec::new(),
            timeout_ms: None,
            created_at: Timestamp::from_unix_ms(1000),
            state: TaskState::Failed {
                started_at: Some(Timestamp::from_unix_ms(1000)),
                ended_at: Timestamp::from_unix_ms(2000),
                failure: Failure::Exit { exit_code: 1 },
            },
            output_bytes: 0,
            log_path: None,
            progress: None,
            answer: None,
        };
        let v = serde_json::to_value(&rec).unwrap();
        assert_eq!(v["state"], "failed");
        assert_eq!(v["failure"], "exit");
        assert_eq!(v["exit_code"], 1);
        assert_eq!(v["kind"], "shell");
        assert_eq!(v["id"], "3");
        assert!(v.get("paused").is_none(), "absent unless paused: {v}");
        let back: TaskRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, rec);
        let paused = TaskRecord {
            paused: true,
            ..rec
        };
        let v = serde_json::to_value(&paused).unwrap();
        assert_eq!(v["paused"], true);
        assert_eq!(serde_json::from_value::<TaskRecord>(v).unwrap(), paused);
    }

    #[test]
    fn chunks_keep_bytes() {
        let bytes = [0u8, 159, 146, 150, b'a', 0xff];
        let chunk = OutputChunk::encode(&bytes);
        assert!(matches!(chunk, OutputChunk::Base64(_)));
        assert_eq!(chunk.decode().unwrap(), bytes);
        assert_eq!(OutputChunk::encode(b"hi"), OutputChunk::Utf8("hi".into()));
    }

    #[test]
    fn limit_reads_none() {
        assert_eq!(
            serde_json::from_str::<Limit>("\"none\"").unwrap(),
            Limit::NONE
        );
        assert_eq!(
            serde_json::from_str::<Limit>("5").unwrap(),
            Limit::Millis(5)
        );
        assert!(serde_json::from_str::<Limit>("\"never\"").is_err());
    }
}
