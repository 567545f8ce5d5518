//! `tools.task_get` and `tools.task_cancel`: following, by handle, the work a `tools.call`
//! left in the background (what `aside mcp` serves as MCP Tasks). A handle is a bearer name:
//! any connection that holds it may follow or cancel its task, across restarts of either
//! side.

use aside_agent::tools::{self, ToolContext};
use aside_core::config::fmt_size;
use aside_core::EngineError;
use aside_protocol::rpc::{
    Empty, ErrorCode, HandleCancelParams, HandleParams, RpcError, ToolTask, ToolTaskStatus,
};
use aside_protocol::{CancelReason, TaskId, TaskRecord, TaskState};

use crate::connection::Conn;
use crate::engine_err;
use crate::Shared;

/// Gives out a handle for `id`, stored before this returns, with the task's status now.
pub(crate) async fn issue(ctx: &ToolContext, id: TaskId) -> Result<ToolTask, RpcError> {
    let handle = ctx.engine.issue_handle(id).await.map_err(engine_err)?;
    let record = ctx.engine.get(id).map_err(engine_err)?;
    Ok(ToolTask {
        handle: handle.handle,
        task_id: id,
        created_at: handle.created_at,
        updated_at: updated_at(&record).max(handle.created_at),
        // However quickly it ended, the holder asks for the end (then it gets the result).
        status: ToolTaskStatus::Working {
            message: working_message(&record),
        },
    })
}

/// The task a handle names and its record, or the error for a handle nobody gave out (or
/// whose task is gone).
fn lookup(shared: &Shared, handle: &str) -> Result<(aside_core::Handle, TaskRecord), RpcError> {
    let unknown = || {
        RpcError::new(
            ErrorCode::UnknownTask,
            format!(
                "no task has the handle {handle:?} (it was never given out here, or its task \
                 was removed)"
            ),
        )
    };
    let found = shared.engine.task_of_handle(handle).map_err(engine_err)?;
    let found = found.ok_or_else(unknown)?;
    match shared.engine.get(found.task) {
        Ok(record) => Ok((found, record)),
        Err(EngineError::UnknownTask(_)) => Err(unknown()),
        Err(e) => Err(engine_err(e)),
    }
}

pub(crate) async fn get(
    shared: &Shared,
    conn: &Conn,
    p: HandleParams,
) -> Result<ToolTask, RpcError> {
    let (handle, record) = lookup(shared, &p.handle)?;
    let status = match &record.state {
        TaskState::Queued | TaskState::Running { .. } => ToolTaskStatus::Working {
            message: working_message(&record),
        },
        TaskState::Cancelled { .. } => ToolTaskStatus::Cancelled {
            message: tools::describe_outcome(&record),
        },
        TaskState::Lost { .. } => ToolTaskStatus::Failed {
            message: tools::describe_outcome(&record),
        },
        TaskState::Succeeded { .. } | TaskState::Failed { .. } | TaskState::TimedOut { .. } => {
            // Only the settings shape a result (its cap): the agents are not read.
            let ctx = crate::context::settings_context(shared, conn, p.cwd)?;
            let out = tools::ended_result(&ctx, record.clone()).await;
            ToolTaskStatus::Completed {
                message: tools::describe_outcome(&record),
                text: out.render(ctx.config.agent.tool_output),
                is_error: out.is_error,
            }
        }
    };
    Ok(ToolTask {
        handle: handle.handle,
        task_id: handle.task,
        created_at: handle.created_at,
        updated_at: updated_at(&record).max(handle.created_at),
        status,
    })
}

pub(crate) async fn cancel(
    shared: &Shared,
    conn: &Conn,
    p: HandleCancelParams,
) -> Result<Empty, RpcError> {
    let (handle, _) = lookup(shared, &p.handle)?;
    let message = p
        .reason
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| "cancelled by the client".into());
    // A task that ended meanwhile keeps its end: cancelling is a wish, not a new outcome.
    shared
        .engine
        .stop(
            &[handle.task],
            &conn.owner(),
            CancelReason::UserStop {
                message: Some(message),
            },
        )
        .await
        .map_err(engine_err)?;
    Ok(Empty {})
}

/// A line on where a live task is: its state (a subagent's turn and tools), how long it has
/// run and how much it wrote.
fn working_message(t: &TaskRecord) -> String {
    let mut line = tools::describe_outcome(t);
    if let Some(started) = t.state.started_at() {
        let secs = started.until(aside_protocol::Timestamp::now()).as_secs();
        line.push_str(&format!(
            "; running for {}",
            aside_protocol::format_duration(std::time::Duration::from_secs(secs))
        ));
    }
    if t.output_bytes > 0 {
        line.push_str(&format!("; {} of output", fmt_size(t.output_bytes)));
    }
    line
}

/// When the task last changed; a handle given out later reports its own creation instead (an
/// update never precedes the creation it follows).
fn updated_at(t: &TaskRecord) -> aside_protocol::Timestamp {
    t.state
        .ended_at()
        .or_else(|| t.state.started_at())
        .unwrap_or(t.created_at)
}
