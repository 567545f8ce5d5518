//! The params and results of the daemon's methods.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    Event, Match, Notification, OutputChunk, Screen, ScreenFormat, TaskId, TaskRecord, TaskSignal,
    TaskSpec, Timestamp,
};

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShutdownParams {
    /// Leave running tasks running (under their supervisors) for the next daemon to adopt,
    /// instead of stopping them.
    #[serde(default)]
    pub keep_tasks: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HelloParams {
    pub protocol_version: String,
    /// The owner this connection acts for; notifications for it are delivered here.
    /// Defaults to `cli`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct HelloResult {
    pub protocol_version: String,
    pub daemon_version: String,
    pub pid: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DaemonStatusResult {
    pub pid: u32,
    pub socket: String,
    pub home: String,
    pub version: String,
    pub protocol_version: String,
    pub started_at: Timestamp,
    pub queued: usize,
    pub running: usize,
    /// The slot limits in force and their use.
    pub slots: SlotsStatus,
}

/// `slots.set`: changes the global limit (no `group`) or a group's, at runtime. Kept across
/// daemon restarts, ahead of the config file, until set back with `limit` absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotsParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Tasks at once, at least 1; absent: back to the config file's limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// How many tasks may run at once, and how many do: over all, and per group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SlotsStatus {
    pub limit: usize,
    pub running: usize,
    /// Set with `slots.set` rather than taken from the config file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changed: bool,
    /// Groups with a limit, or with tasks running or queued; by name.
    pub groups: Vec<GroupSlots>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GroupSlots {
    pub group: String,
    /// Absent: only the global limit applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    pub running: usize,
    pub queued: usize,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changed: bool,
}

/// A task spec as `task.start` takes it. Unknown fields are refused (a misspelt
/// `dedupe_key` must not start a task without one); serde cannot do that for a struct that
/// flattens its kind, so the keys are checked against [`TaskSpec::FIELDS`] first.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StartParams {
    #[serde(flatten)]
    pub spec: TaskSpec,
}

impl<'de> Deserialize<'de> for StartParams {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        if let Some(key) = map.keys().find(|k| !TaskSpec::FIELDS.contains(&k.as_str())) {
            return Err(D::Error::unknown_field(key, TaskSpec::FIELDS));
        }
        let spec =
            TaskSpec::deserialize(serde_json::Value::Object(map)).map_err(D::Error::custom)?;
        Ok(Self { spec })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StartResult {
    pub task: TaskRecord,
    /// True when a live task with the same dedupe key was returned instead.
    pub deduplicated: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdParams {
    pub id: TaskId,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Include finished tasks.
    #[serde(default)]
    pub all: bool,
    /// At most this many tasks (default 1000, at most 10000); `next_cursor` says where the
    /// next page starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Start after this task, in `order` (the `next_cursor` of the page before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<TaskId>,
    #[serde(default)]
    pub order: ListOrder,
}

/// Which way a listing runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListOrder {
    #[default]
    OldestFirst,
    NewestFirst,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ListResult {
    pub tasks: Vec<TaskRecord>,
    /// Present when there may be more: pass it as `cursor` for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<TaskId>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadParams {
    pub id: TaskId,
    /// Byte offset to read from.
    #[serde(default)]
    pub after: u64,
    /// At most this many bytes (capped by the daemon at 4 MiB).
    #[serde(default = "default_read_bytes")]
    pub max_bytes: u64,
    /// When nothing is there yet, wait up to this long for output or the end (capped at 10
    /// minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    /// The caller is the task's foreground waiter: the wait also ends when the task is
    /// detached (then `detached` is true and `task` is set).
    #[serde(default)]
    pub foreground: bool,
    /// Wait (up to `wait_ms`, 30 seconds without it: [`UNTIL_WAIT_MS`]) until the output
    /// from `after` on matches this regular expression, escape sequences left out; the
    /// answer carries the match, and its bytes end with it (the last `max_bytes` of them
    /// when more lead there). The task ending first is its own answer (`eof`, no match);
    /// time running out, an answer with neither. `^` and `$` match at line ends, `$` also
    /// at the end of the output so far; a match longer than 64 KiB may be missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Leave terminal escape sequences (colours, cursor moves) out of the bytes returned.
    /// `next` stays an offset in the output as written; a sequence cut by the end of what is
    /// there is left for the next read.
    #[serde(default)]
    pub plain: bool,
    /// A terminal task's screen as its output so far drew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<ScreenFormat>,
}

fn default_read_bytes() -> u64 {
    64 * 1024
}

impl ReadParams {
    /// A plain read of up to `max_bytes` from `after`, answered at once; set the other
    /// fields with struct update syntax.
    pub fn new(id: TaskId, after: u64, max_bytes: u64) -> Self {
        Self {
            id,
            after,
            max_bytes,
            wait_ms: None,
            foreground: false,
            until: None,
            plain: false,
            screen: None,
        }
    }
}

/// How long a read with `until` and no `wait_ms` waits for its match.
pub const UNTIL_WAIT_MS: u64 = 30_000;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ReadResult {
    /// Offset of the first byte returned (later than `after` if earlier output is gone).
    pub offset: u64,
    #[serde(flatten)]
    pub chunk: OutputChunk,
    /// Offset to read from next.
    pub next: u64,
    /// Bytes of output so far.
    pub total: u64,
    /// The task ended and everything up to `total` was read.
    pub eof: bool,
    pub detached: bool,
    /// The record, when the task has ended or was detached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskRecord>,
    /// With `until`: where the pattern matched (the bytes returned end with the match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<Match>,
    /// With `screen`: the terminal's screen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<Screen>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteParams {
    pub id: TaskId,
    /// The bytes to write, base64 (at most 64 KiB once decoded).
    #[serde(default)]
    pub data: String,
    /// Then close the input (a pipe's end of file; a terminal is left open).
    #[serde(default)]
    pub eof: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WriteResult {
    /// Bytes taken (all of them).
    pub written: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SignalParams {
    pub id: TaskId,
    #[serde(flatten)]
    pub signal: TaskSignal,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitParams {
    pub ids: Vec<TaskId>,
    /// Give up after this long (capped at 10 minutes); the tasks keep running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WaitResult {
    /// Every requested task, in request order.
    pub tasks: Vec<TaskRecord>,
    /// True when every task is terminal; false when the wait timed out first.
    pub done: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StopResult {
    /// The terminal records, in request order.
    pub tasks: Vec<TaskRecord>,
}

/// Tasks named by id, for methods that act on several at once.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdsParams {
    pub ids: Vec<TaskId>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TasksResult {
    /// The records, in request order.
    pub tasks: Vec<TaskRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopParams {
    pub ids: Vec<TaskId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CleanParams {
    /// Only tasks that ended at least this long ago; all finished tasks when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub older_than_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CleanResult {
    pub removed: Vec<TaskId>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeParams {
    /// Replay events after this sequence number first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SubscribeResult {
    /// The sequence number of the newest event at the time of subscribing.
    pub latest_seq: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolsListParams {
    /// Only these tools (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
    /// The working directory whose project settings shape the descriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The foreground wait budget the client's calls will pass (`ToolCallParams::wait_ms`),
    /// for the descriptions to state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ToolInfo {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments.
    pub input_schema: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ToolsListResult {
    pub tools: Vec<ToolInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolCallParams {
    pub name: String,
    #[serde(default)]
    pub arguments: serde_json::Value,
    /// Chosen by the client, to cancel the call with `tools.cancel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// Absolute working directory of the tools (default: the daemon's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Environment of the commands the tools start (default: the daemon's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<std::collections::BTreeMap<String, String>>,
    /// The client follows work that goes on in the background by handle (MCP Tasks): such a
    /// call answers with `handle` (stored before the answer) and takes no notices, and the
    /// task's end is fetched with `tools.task_get` instead of announced.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub as_task: bool,
    /// How long a foreground `bash` or `task` call waits before its work moves to the
    /// background, in milliseconds (default: the settings' `wait`, `agent.wait` for
    /// subagents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ToolCallResult {
    /// The result as a model should see it: ids and log path first, then the capped body.
    pub text: String,
    pub is_error: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_path: Option<String>,
    /// The owner's pending notifications, as text; held for this connection until it
    /// acknowledges `notice_seqs` (`notifications.ack`) or goes away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notices: Option<String>,
    /// The seqs of the notices in `notices`, to acknowledge once they are handed on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notice_seqs: Vec<u64>,
    /// With `as_task`, for a call whose work goes on in the background: the handle to follow
    /// it by (then `text` is not for the model, and `notices` is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<ToolTask>,
}

/// Work a tool call left running in the background, as its handle's holder sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolTask {
    /// Unguessable; whoever holds it may follow and cancel the task.
    pub handle: String,
    pub task_id: TaskId,
    /// When the handle was given out.
    pub created_at: Timestamp,
    /// When the task last changed (started, ended).
    pub updated_at: Timestamp,
    #[serde(flatten)]
    pub status: ToolTaskStatus,
}

/// Where a handle's task is. A task that ended has the tool result a foreground call would
/// have returned; one stopped before it finished is `cancelled`; one that no result could be
/// made for (its daemon died with it) has `failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ToolTaskStatus {
    /// Still running (or queued); `message` says how far it is.
    Working { message: String },
    /// It ended: the tool result, with its ids and log path outside the capped part.
    Completed {
        message: String,
        text: String,
        is_error: bool,
    },
    /// Stopped before it finished; `message` says by whom and why.
    Cancelled { message: String },
    /// No result can be made: `message` says why.
    Failed { message: String },
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandleParams {
    pub handle: String,
    /// The working directory whose project settings shape the result (default: the
    /// daemon's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandleCancelParams {
    pub handle: String,
    /// Recorded with the task (default: "cancelled by the client").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolCancelParams {
    pub call_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The `params` of `notifications.take`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TakeParams {
    /// Seqs of notices this owner has handled, acknowledged before the take: a client that
    /// keeps them until its next take sees each notice once across any crash or restart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ack: Vec<u64>,
}

/// The `params` of `notifications.ack`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AckParams {
    /// Seqs of notices this owner has handled; they are removed once this is answered.
    pub seqs: Vec<u64>,
}

/// The most seqs one acknowledgement may name.
pub const MAX_ACK: usize = 10_000;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct NotificationsResult {
    /// Pending notices, oldest first (at most 1,000 per take). They are held for this
    /// connection until it acknowledges them or goes away; unacknowledged, they are handed
    /// out again.
    pub notifications: Vec<Notification>,
}

/// The `params` of an `event` notification pushed to subscribers.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EventMessage {
    pub event: Event,
}
