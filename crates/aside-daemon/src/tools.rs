//! `tools.*`: the agent tool registry served to clients such as `aside mcp`, which holds no
//! task state of its own. Each call runs for the connection's owner; its result ends with
//! that owner's pending notifications, held for the connection until it acknowledges them.

use std::sync::Arc;
use std::time::Duration;

use aside_agent::project::{project_config, project_root};
use aside_agent::tools::{self, Tool};
use aside_core::config::Config;
use aside_protocol::rpc::{
    Empty, ErrorCode, RpcError, ToolCallParams, ToolCallResult, ToolCancelParams, ToolInfo,
    ToolsListParams, ToolsListResult,
};
use aside_protocol::CancelReason;
use tokio::sync::watch;

use crate::connection::Conn;
use crate::Shared;

/// The longest foreground wait a client may ask for (as long as a task may be waited on).
const MAX_WAIT_MS: u64 = aside_core::config::MAX_WAIT.as_millis() as u64;

/// The client's foreground wait budget, checked.
fn wait_budget(wait_ms: Option<u64>) -> Result<Option<Duration>, RpcError> {
    match wait_ms {
        Some(ms) if ms > MAX_WAIT_MS => Err(RpcError::new(
            ErrorCode::InvalidParams,
            format!("wait_ms is {ms}, more than the limit of {MAX_WAIT_MS}"),
        )),
        other => Ok(other.map(Duration::from_millis)),
    }
}

/// The settings with the client's wait budget in place of the configured ones, so the tools'
/// descriptions state the budget their calls get.
fn with_wait(mut config: Config, wait: Option<Duration>) -> Config {
    if let Some(w) = wait {
        config.wait = Some(w);
        config.agent.wait = Some(w);
    }
    config
}

pub(crate) fn list(shared: &Shared, p: ToolsListParams) -> Result<ToolsListResult, RpcError> {
    let cwd = crate::context::workdir(p.cwd)?;
    let wait = wait_budget(p.wait_ms)?;
    let config = project_config(shared.engine.config(), &project_root(&cwd))
        .map_err(|e| RpcError::new(ErrorCode::BadSpec, e.to_string()))?;
    let config = with_wait(config, wait);
    let listed: Vec<Tool> = match &p.names {
        Some(n) => n
            .iter()
            .map(|name| name.parse::<Tool>())
            .collect::<Result<_, _>>()
            .map_err(|unknown| RpcError::new(ErrorCode::InvalidParams, unknown.to_string()))?,
        None => Tool::ALL.to_vec(),
    };
    Ok(ToolsListResult {
        tools: tools::specs(&config, &listed)
            .into_iter()
            .map(|s| ToolInfo {
                name: s.name,
                description: s.description,
                input_schema: s.parameters,
            })
            .collect(),
    })
}

pub(crate) async fn call(
    shared: &Shared,
    conn: &Arc<Conn>,
    p: ToolCallParams,
) -> Result<ToolCallResult, RpcError> {
    let engine = shared.engine.clone();
    // Registered first, so a cancel that arrives at once is not lost.
    let (cancel_tx, cancel_rx) = watch::channel(None);
    let _registered = Registered::new(conn, p.call_id.clone(), cancel_tx.clone());
    let wait = wait_budget(p.wait_ms)?;
    let mut ctx = crate::context::context(shared, conn, p.cwd).await?;
    ctx.config = Arc::new(with_wait((*ctx.config).clone(), wait));
    ctx.wait = wait;
    ctx.env = p.env;
    ctx.cancel = Some(cancel_rx);
    let owner = ctx.owner.clone();
    // A client that goes away mid-call cancels it: what it waited on is stopped.
    let watcher = {
        let mut closed = conn.closed();
        let tx = cancel_tx.clone();
        tokio::spawn(async move {
            if closed.wait_for(|c| *c).await.is_ok() {
                let _ = tx.send(Some(CancelReason::OwnerGone));
            }
        })
    };
    let out = tools::call(&ctx, &p.name, p.arguments).await;
    watcher.abort();
    let followed = match (p.as_task, out.background, out.task_id) {
        // A handle that cannot be given out (the disk is full) leaves the answer as it is
        // without one: the text names the task, and its end is announced.
        (true, true, Some(id)) => match crate::handles::issue(&ctx, id).await {
            Ok(task) => Some(task),
            Err(e) => {
                tracing::warn!("task {id} goes on without a handle: {}", e.message);
                None
            }
        },
        _ => None,
    };
    // Followed by handle, its end is fetched, not announced; notices wait for a call whose
    // answer has room for them.
    let notes = match followed {
        Some(_) => Vec::new(),
        None => conn.notices.take(&owner, &[]).await.unwrap_or_default(),
    };
    let notices = if notes.is_empty() {
        None
    } else {
        Some(tools::notification_message(&engine, &notes).await)
    };
    Ok(ToolCallResult {
        text: out.render(ctx.config.agent.tool_output),
        is_error: out.is_error,
        task_id: out.task_id,
        session_id: out.session_id,
        log_path: out.log_path,
        notices,
        notice_seqs: notes.iter().map(|n| n.seq).collect(),
        handle: followed,
    })
}

/// A running call, cancellable by its id until this is dropped, on every path out.
struct Registered<'a> {
    conn: &'a Conn,
    id: Option<String>,
}

impl<'a> Registered<'a> {
    fn new(
        conn: &'a Conn,
        id: Option<String>,
        cancel: watch::Sender<Option<CancelReason>>,
    ) -> Self {
        if let Some(id) = &id {
            conn.calls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.clone(), cancel);
        }
        Self { conn, id }
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        if let Some(id) = &self.id {
            self.conn
                .calls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id);
        }
    }
}

pub(crate) fn cancel(conn: &Conn, p: ToolCancelParams) -> Result<Empty, RpcError> {
    let calls = conn.calls.lock().unwrap_or_else(|p| p.into_inner());
    let Some(tx) = calls.get(&p.call_id) else {
        // Already finished: nothing to cancel.
        return Ok(Empty {});
    };
    let message = p
        .reason
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| "cancelled by the client".into());
    let _ = tx.send(Some(CancelReason::UserStop {
        message: Some(message),
    }));
    Ok(Empty {})
}
