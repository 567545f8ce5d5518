//! The daemon's JSON-RPC 2.0 methods: newline-delimited JSON on a Unix socket.
//!
//! A request is `{"jsonrpc":"2.0","id":N,"method":M,"params":P}`; [`Request`] lists every
//! method with its params, and each params type names its result type.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Event, Notification, OutputChunk, TaskId, TaskRecord, TaskSpec, Timestamp};

/// The largest request line the daemon reads, in bytes.
pub const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

/// Every request, tagged by method name.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "method", content = "params")]
pub enum Request {
    /// Must be the first request on a connection. Result: [`HelloResult`].
    #[serde(rename = "hello")]
    Hello(HelloParams),
    /// Result: [`DaemonStatus`].
    #[serde(rename = "daemon.status")]
    DaemonStatus(Empty),
    /// Stops running tasks (cancelled, reason shutdown) and exits. Result: [`Empty`].
    #[serde(rename = "daemon.shutdown")]
    DaemonShutdown(Empty),
    /// Result: [`StartResult`].
    #[serde(rename = "task.start")]
    Start(Box<StartParams>),
    /// Result: [`TaskRecord`].
    #[serde(rename = "task.get")]
    Get(IdParams),
    /// Result: [`ListResult`].
    #[serde(rename = "task.list")]
    List(ListParams),
    /// Result: [`ReadResult`].
    #[serde(rename = "task.read")]
    Read(ReadParams),
    /// Result: [`WaitResult`].
    #[serde(rename = "task.wait")]
    Wait(WaitParams),
    /// Result: [`ListResult`] with the terminal records.
    #[serde(rename = "task.stop")]
    Stop(StopParams),
    /// Result: [`TaskRecord`].
    #[serde(rename = "task.detach")]
    Detach(IdParams),
    /// Result: [`CleanResult`].
    #[serde(rename = "task.clean")]
    Clean(CleanParams),
    /// Result: [`SubscribeResult`]; then `event` notifications carrying an [`Event`].
    #[serde(rename = "events.subscribe")]
    Subscribe(SubscribeParams),
    /// Result: [`NotificationsResult`].
    #[serde(rename = "notifications.take")]
    TakeNotifications(Empty),
    /// The agent tool registry's tools, with descriptions from the effective settings.
    /// Result: [`ToolsListResult`].
    #[serde(rename = "tools.list")]
    ToolsList(ToolsListParams),
    /// Calls a tool for this connection's owner; the result ends with the owner's pending
    /// notifications. Result: [`ToolCallResult`].
    #[serde(rename = "tools.call")]
    ToolsCall(Box<ToolCallParams>),
    /// Cancels a running `tools.call`: a task it waits on in the foreground is stopped with
    /// the reason. Result: [`Empty`].
    #[serde(rename = "tools.cancel")]
    ToolsCancel(ToolCancelParams),
}

impl Request {
    /// Every method name, to tell an unknown method from bad params.
    pub const METHODS: &'static [&'static str] = &[
        "hello",
        "daemon.status",
        "daemon.shutdown",
        "task.start",
        "task.get",
        "task.list",
        "task.read",
        "task.wait",
        "task.stop",
        "task.detach",
        "task.clean",
        "events.subscribe",
        "notifications.take",
        "tools.list",
        "tools.call",
        "tools.cancel",
    ];
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
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
pub struct DaemonStatus {
    pub pid: u32,
    pub socket: String,
    pub home: String,
    pub version: String,
    pub protocol_version: String,
    pub started_at: Timestamp,
    pub queued: usize,
    pub running: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StartParams {
    #[serde(flatten)]
    pub spec: TaskSpec,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StartResult {
    pub task: TaskRecord,
    /// True when a live task with the same dedupe key was returned instead.
    pub deduplicated: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct IdParams {
    pub id: TaskId,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
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
}

fn default_read_bytes() -> u64 {
    64 * 1024
}

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
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
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
pub struct StopParams {
    pub ids: Vec<TaskId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
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
pub struct ToolsListParams {
    /// Only these tools (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
    /// The working directory whose project settings shape the descriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
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
    /// The owner's pending notifications, taken (so shown nowhere else), as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notices: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ToolCancelParams {
    pub call_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct NotificationsResult {
    pub notifications: Vec<Notification>,
}

/// The `params` of an `event` notification pushed to subscribers.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EventMessage {
    pub event: Event,
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

/// Error codes beyond JSON-RPC's own.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL: i64 = -32603;
    /// No task has that id.
    pub const UNKNOWN_TASK: i64 = -32001;
    /// The task is not in a state that allows the request.
    pub const INVALID_STATE: i64 = -32002;
    /// The task spec was refused (missing cwd, unknown group limit, bad duration, ...).
    pub const BAD_SPEC: i64 = -32003;
    /// The output asked for is not kept.
    pub const NOT_RETAINED: i64 = -32004;
    /// The client's protocol version is not supported.
    pub const VERSION_MISMATCH: i64 = -32005;
    /// Storage failed (disk full, ...).
    pub const STORAGE: i64 = -32006;
    /// The daemon is shutting down.
    pub const SHUTTING_DOWN: i64 = -32007;
}

/// Root of the published JSON Schema.
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct Protocol {
    pub protocol_version: String,
    pub request: Request,
    pub results: Results,
    pub error: RpcError,
    /// `params` of the `event` notification.
    pub event: EventMessage,
}

/// Every result type, for the schema.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum Results {
    Hello(HelloResult),
    Status(DaemonStatus),
    Start(StartResult),
    Record(TaskRecord),
    List(ListResult),
    Read(ReadResult),
    Wait(WaitResult),
    Clean(CleanResult),
    Subscribe(SubscribeResult),
    Notifications(NotificationsResult),
    Tools(ToolsListResult),
    ToolCall(ToolCallResult),
    Empty(Empty),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_list_matches_enum() {
        for m in Request::METHODS {
            let v = serde_json::json!({"method": m, "params": {}});
            let err = serde_json::from_value::<Request>(v)
                .err()
                .map(|e| e.to_string());
            if let Some(e) = err {
                assert!(!e.contains("unknown variant"), "{m}: {e}");
            }
        }
    }

    #[test]
    fn schema_mentions_every_method() {
        let s = crate::schema().to_string();
        for m in Request::METHODS {
            assert!(s.contains(&format!("\"{m}\"")), "{m} missing from schema");
        }
    }
}
