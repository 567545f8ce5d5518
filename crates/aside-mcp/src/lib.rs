//! `aside mcp`: the Model Context Protocol server that gives any coding agent aside's tools.
//!
//! It holds no task state: every tool call goes to the daemon (`tools.call`), which runs the
//! agent tool registry for this connection's owner and returns the owner's pending
//! notifications with the result, so each notice is shown once, at the end of whatever tool
//! result comes next (MCP has no way to put a message into the model's conversation).
//! A client's `notifications/cancelled` stops the task a foreground call waits on; long
//! foreground calls send progress when the client asked for it; a background task that ends
//! is also announced as a logging notification.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aside_client::Client;
use aside_protocol::rpc::{
    method, AckParams, IdParams, ListParams, StopParams, SubscribeParams, ToolCallParams,
    ToolCancelParams, ToolsListParams,
};
use aside_protocol::{EventKind, Tool as AsideTool};
// Logging notifications are deprecated by the newest MCP revision (SEP-2577), but the
// protocol versions clients speak today still carry them, and they are how an idle host
// learns that a background task ended.
#[allow(deprecated)]
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelledNotificationParam,
    ContentBlock, Implementation, ListToolsResult, LoggingLevel, LoggingMessageNotificationParam,
    PaginatedRequestParams, ProgressNotificationParam, RequestParamsMeta, ServerCapabilities,
    ServerConfig, Tool,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData as McpError, Peer, RoleServer, ServerHandler, ServiceExt};
use serde_json::{json, Value};

mod hosts;
pub use hosts::{HostClient, UnknownClient};

/// The tools offered: the task tools, then with `--file-tools` the file tools (off by default:
/// host agents have their own).
pub fn offered_tools(file_tools: bool) -> Vec<AsideTool> {
    let mut tools: Vec<AsideTool> = AsideTool::ALL
        .into_iter()
        .filter(|t| !t.is_file_tool())
        .collect();
    if file_tools {
        tools.extend(AsideTool::ALL.into_iter().filter(|t| t.is_file_tool()));
    }
    tools
}

/// How often a long foreground call reports progress, when the client asked for it.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum McpServerError {
    #[error("the daemon refused: {0}")]
    Daemon(#[from] aside_client::ClientError),
    #[error("MCP: {0}")]
    Mcp(String),
}

/// How this server behaves.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Offer `read`, `write`, `edit`, `glob` and `grep` too.
    pub file_tools: bool,
    /// Stop this connection's live tasks when the client goes away (default: they go on).
    pub stop_on_exit: bool,
    /// Working directory of the tools.
    pub cwd: String,
    /// Environment of the commands the tools start.
    pub env: BTreeMap<String, String>,
}

struct Server {
    client: Arc<Client>,
    owner: String,
    options: Options,
    tools: Vec<Tool>,
    calls: AtomicU64,
    peer: Mutex<Option<Peer<RoleServer>>>,
    /// Notices taken with the result of a cancelled call, whose answer the client never
    /// reads: they go at the end of the next result instead. Each with its seqs.
    held: Mutex<Vec<(String, Vec<u64>)>>,
    /// Seqs of notices put in a result returned to the client: acknowledged to the daemon at
    /// the next call or when the session ends (a session killed first leaves them pending).
    shown: Mutex<Vec<u64>>,
    /// The daemon call id of each running MCP request, to cancel it with the client's reason.
    running: Mutex<std::collections::HashMap<String, String>>,
}

/// A request id as a map key.
fn request_key(id: &rmcp::model::RequestId) -> String {
    serde_json::to_string(id).unwrap_or_default()
}

impl Server {
    /// Acknowledges the notices of results already sent, so they are not handed out again.
    async fn ack_shown(&self) {
        let seqs = self
            .shown
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default();
        if seqs.is_empty() {
            return;
        }
        // On failure they stay held for this connection: handed out again only if it ends.
        let _ = self
            .client
            .request::<method::NotificationsAck>(AckParams { seqs })
            .await;
    }

    async fn cancel(&self, call_id: String, reason: Option<String>) {
        let reason = reason
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(|| "cancelled by the MCP client".into());
        let _ = self
            .client
            .request::<method::ToolsCancel>(ToolCancelParams {
                call_id,
                reason: Some(reason),
            })
            .await;
    }
}

const MCP_NOTE: &str = " Through this MCP server, notices of background tasks that ended are \
    appended to the result of your next aside tool call.";

/// Serves MCP on stdin and stdout until the client closes them.
pub async fn serve(client: Client, owner: String, options: Options) -> Result<(), McpServerError> {
    let client = Arc::new(client);
    let names: Vec<String> = offered_tools(options.file_tools)
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    let listed = client
        .request::<method::ToolsList>(ToolsListParams {
            names: Some(names),
            cwd: Some(options.cwd.clone()),
        })
        .await?;
    let tools = listed
        .tools
        .into_iter()
        .map(|t| {
            let schema = match t.input_schema {
                Value::Object(o) => o,
                _ => Default::default(),
            };
            let mut description = t.description;
            if t.name.parse().is_ok_and(AsideTool::starts_tasks) {
                description.push_str(MCP_NOTE);
            }
            Tool::new(t.name, description, Arc::new(schema))
        })
        .collect();
    let server = Arc::new(Server {
        client: client.clone(),
        owner: owner.clone(),
        options: options.clone(),
        tools,
        calls: AtomicU64::new(0),
        peer: Mutex::new(None),
        held: Mutex::new(Vec::new()),
        shown: Mutex::new(Vec::new()),
        running: Mutex::new(Default::default()),
    });
    client
        .request::<method::EventsSubscribe>(SubscribeParams { after: None })
        .await?;
    let announcer = tokio::spawn(announce_endings(server.clone()));
    let running = Handler(server.clone())
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| McpServerError::Mcp(e.to_string()))?;
    let _ = running.waiting().await;
    announcer.abort();
    server.ack_shown().await;
    if options.stop_on_exit {
        let live = client
            .request::<method::TaskList>(ListParams::default())
            .await?;
        let ids: Vec<_> = live
            .tasks
            .iter()
            .filter(|t| t.owner == owner)
            .map(|t| t.id)
            .collect();
        if !ids.is_empty() {
            client
                .request::<method::TaskStop>(StopParams {
                    ids,
                    message: Some("the MCP client went away".into()),
                })
                .await?;
        }
    }
    Ok(())
}

/// Sends a logging notification when a background task of this owner ends. The notice
/// itself stays pending for the next tool result.
#[allow(deprecated)]
async fn announce_endings(server: Arc<Server>) {
    while let Some(event) = server.client.next_event().await {
        if !event.detached || !matches!(event.kind, EventKind::Finished { .. }) {
            continue;
        }
        let Ok(task) = server
            .client
            .request::<method::TaskGet>(IdParams { id: event.task_id })
            .await
        else {
            continue;
        };
        if task.owner != server.owner {
            continue;
        }
        let peer = server.peer.lock().ok().and_then(|p| p.clone());
        if let Some(peer) = peer {
            let text = format!(
                "task {} ({}) ended: {}",
                task.id,
                task.kind.display(),
                task.state.describe()
            );
            let _ = peer
                .notify_logging_message(LoggingMessageNotificationParam::new(
                    LoggingLevel::Info,
                    json!(text),
                ))
                .await;
        }
    }
}

#[derive(Clone)]
struct Handler(Arc<Server>);

impl Handler {
    async fn call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let s = &self.0;
        let name = request.name.to_string();
        if !s.tools.iter().any(|t| t.name == name) {
            let names: Vec<&str> = s.tools.iter().map(|t| t.name.as_ref()).collect();
            return CallToolResult::error(vec![ContentBlock::text(format!(
                "there is no tool named {name:?} here; the tools are: {}",
                names.join(", ")
            ))]);
        }
        // The client has the results returned before this call.
        s.ack_shown().await;
        let call_id = format!("mcp-{}", s.calls.fetch_add(1, Ordering::Relaxed));
        let params = ToolCallParams {
            name,
            arguments: Value::Object(request.arguments.clone().unwrap_or_default()),
            call_id: Some(call_id.clone()),
            cwd: Some(s.options.cwd.clone()),
            env: Some(s.options.env.clone()),
        };
        // rmcp may move the request's `_meta` into the context.
        let token = request
            .progress_token()
            .or_else(|| context.meta.get_progress_token());
        let progress = token.map(|token| {
            let peer = context.peer.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let mut n = 0u32;
                loop {
                    tokio::time::sleep(PROGRESS_EVERY).await;
                    n += 1;
                    let param = ProgressNotificationParam::new(token.clone(), f64::from(n))
                        .with_message(format!(
                            "still running after {}",
                            aside_protocol::format_duration(Duration::from_secs(
                                started.elapsed().as_secs()
                            ))
                        ));
                    if peer.notify_progress(param).await.is_err() {
                        return;
                    }
                }
            })
        });
        let key = request_key(&context.id);
        if let Ok(mut r) = s.running.lock() {
            r.insert(key.clone(), call_id.clone());
        }
        let call = s.client.request::<method::ToolsCall>(params);
        tokio::pin!(call);
        let result = tokio::select! {
            r = &mut call => r,
            _ = context.ct.cancelled() => {
                // `on_cancelled` passes the client's reason on; this is the fallback when the
                // call is still running a moment later.
                let done = tokio::time::timeout(Duration::from_secs(2), &mut call).await;
                let r = match done {
                    Ok(r) => r,
                    Err(_) => {
                        s.cancel(call_id, None).await;
                        call.await
                    }
                };
                if let Ok(mut running) = s.running.lock() {
                    running.remove(&key);
                }
                if let Ok(r) = r {
                    if let (Some(n), Ok(mut held)) = (r.notices, s.held.lock()) {
                        held.push((n, r.notice_seqs));
                    }
                }
                return CallToolResult::error(vec![ContentBlock::text("cancelled")]);
            }
        };
        if let Some(p) = progress {
            p.abort();
        }
        if let Ok(mut running) = s.running.lock() {
            running.remove(&key);
        }
        match result {
            Ok(r) => {
                let mut text = r.text;
                let mut notices: Vec<(String, Vec<u64>)> = s
                    .held
                    .lock()
                    .map(|mut h| std::mem::take(&mut *h))
                    .unwrap_or_default();
                notices.extend(r.notices.map(|n| (n, r.notice_seqs)));
                let mut seqs = Vec::new();
                for (n, shown) in notices {
                    text.push_str("\n\n");
                    text.push_str(&n);
                    seqs.extend(shown);
                }
                if let Ok(mut shown) = s.shown.lock() {
                    shown.extend(seqs);
                }
                let content = vec![ContentBlock::text(text)];
                if r.is_error {
                    CallToolResult::error(content)
                } else {
                    CallToolResult::success(content)
                }
            }
            Err(e) => CallToolResult::error(vec![ContentBlock::text(e.to_string())]),
        }
    }
}

impl ServerHandler for Handler {
    #[allow(deprecated)]
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_logging()
                .build(),
        );
        info.server_info = Implementation::new("aside", env!("CARGO_PKG_VERSION"));
        info.instructions = Some(
            "aside runs shell commands and subagents as tasks that can go to the background. \
             Use bash with run_in_background for servers, watchers and long builds; use task \
             for subagents. When a background task ends, a notice with its outcome is appended \
             to the result of your next aside tool call: do not poll. task_id names a run; \
             session_id names a subagent's conversation."
                .into(),
        );
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.0.tools.clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        Ok(self.call(request, context).await.into())
    }

    async fn on_cancelled(
        &self,
        notification: CancelledNotificationParam,
        _context: NotificationContext<RoleServer>,
    ) {
        let Some(id) = notification.request_id else {
            return;
        };
        let call_id = self
            .0
            .running
            .lock()
            .ok()
            .and_then(|r| r.get(&request_key(&id)).cloned());
        if let Some(call_id) = call_id {
            self.0.cancel(call_id, notification.reason).await;
        }
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if let Ok(mut p) = self.0.peer.lock() {
            *p = Some(context.peer.clone());
        }
    }
}
