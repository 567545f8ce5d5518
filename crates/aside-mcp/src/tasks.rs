//! MCP Tasks (the `io.modelcontextprotocol/tasks` extension) on aside's own store: a call
//! whose work goes on in the background answers a client that declared the extension with a
//! task handle the daemon stored first; `tasks/get` and `tasks/cancel` go to the daemon, so
//! any `aside mcp` process answers for any handle, across restarts of either side.
//!
//! aside's end states map onto the extension's: an ended task is `completed` with the tool
//! result a foreground call would have returned (`isError` when it failed or timed out); one
//! stopped before it finished is `cancelled`; one lost with its daemon is `failed`, with a
//! JSON-RPC internal error.

use aside_client::ClientError;
use aside_protocol::rpc::{ErrorCode, ToolTask, ToolTaskStatus};
use rmcp::model::{
    CallToolResult, ContentBlock, CreateTaskResult, DetailedTask, JsonObject, Task, TaskPayload,
    TaskStatus,
};
use rmcp::ErrorData as McpError;

/// How often a client should ask: an end is seen within about a second.
pub const POLL_INTERVAL_MS: u64 = 1_000;

fn base(t: &ToolTask, status: TaskStatus, message: &str) -> Task {
    // `ttlMs` stays null: a handle lasts as long as its task's record (the retention
    // setting), and a task may run for longer than any fixed figure.
    Task::new(
        t.handle.clone(),
        status,
        t.created_at.to_string(),
        t.updated_at.to_string(),
    )
    .with_status_message(message)
    .with_poll_interval_ms(POLL_INTERVAL_MS)
}

/// The answer to the `tools/call` that left `t` running.
pub fn created(t: &ToolTask) -> CreateTaskResult {
    let message = match &t.status {
        ToolTaskStatus::Working { message }
        | ToolTaskStatus::Completed { message, .. }
        | ToolTaskStatus::Cancelled { message }
        | ToolTaskStatus::Failed { message } => message.as_str(),
    };
    CreateTaskResult::new(base(t, TaskStatus::Working, message))
}

/// The answer to `tasks/get`.
pub fn detailed(t: &ToolTask) -> DetailedTask {
    match &t.status {
        ToolTaskStatus::Working { message } => {
            DetailedTask::new(base(t, TaskStatus::Working, message), TaskPayload::Working)
        }
        ToolTaskStatus::Completed {
            message,
            text,
            is_error,
        } => {
            let content = vec![ContentBlock::text(text.clone())];
            let result = if *is_error {
                CallToolResult::error(content)
            } else {
                CallToolResult::success(content)
            };
            let mut result = match serde_json::to_value(result) {
                Ok(serde_json::Value::Object(o)) => o,
                _ => JsonObject::new(),
            };
            // The discriminator belongs to the answer to `tasks/get`, not to the result
            // carried inside it.
            result.remove("resultType");
            DetailedTask::new(
                base(t, TaskStatus::Completed, message),
                TaskPayload::Completed { result },
            )
        }
        ToolTaskStatus::Cancelled { message } => DetailedTask::new(
            base(t, TaskStatus::Cancelled, message),
            TaskPayload::Cancelled,
        ),
        ToolTaskStatus::Failed { message } => {
            let mut error = JsonObject::new();
            error.insert("code".into(), (-32603).into());
            error.insert("message".into(), message.clone().into());
            DetailedTask::new(
                base(t, TaskStatus::Failed, message),
                TaskPayload::Failed { error },
            )
        }
    }
}

/// A daemon error as the extension wants it: an unknown handle is invalid params.
pub fn error(e: ClientError) -> McpError {
    match e.code() {
        Some(ErrorCode::UnknownTask | ErrorCode::InvalidParams) => {
            McpError::invalid_params(format!("Failed to retrieve task: {e}"), None)
        }
        _ => McpError::internal_error(e.to_string(), None),
    }
}
