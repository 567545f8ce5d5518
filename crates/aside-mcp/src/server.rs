//! The MCP handler: tool calls go to the daemon's tool registry, task handles to its store.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aside_protocol::rpc::{
    method, AckParams, HandleCancelParams, HandleParams, IdParams, ListParams, ToolCallParams,
    ToolCancelParams,
};
use aside_protocol::{EventKind, TaskId};
// Logging notifications are deprecated by the newest MCP revision (SEP-2577), but the
// protocol versions clients speak today still carry them, and they are how an idle host
// without the Tasks extension learns that a background task ended.
#[allow(deprecated)]
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams,
    CancelledNotificationParam, ContentBlock, GetTaskParams, GetTaskResult, Implementation,
    ListToolsResult, LoggingLevel, LoggingMessageNotificationParam, PaginatedRequestParams,
    ProgressNotificationParam, ProtocolVersion, RequestParamsMeta, ServerCapabilities,
    ServerConfig, SetLevelRequestMethod, SetLevelRequestParams, Tool,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData as McpError, Peer, RoleServer, ServerHandler};
use serde_json::{json, Value};

use crate::daemon::Daemon;
use crate::{tasks, Options};

/// How often a long foreground call reports progress, when the client asked for it.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

pub(crate) struct Server {
    pub(crate) daemon: Daemon,
    owner: String,
    options: Options,
    tools: Vec<Tool>,
    calls: AtomicU64,
    peer: Mutex<Option<Peer<RoleServer>>>,
    /// The least severe logging level the client wants (`logging/setLevel`), as a rank.
    log_level: AtomicU8,
    /// Notices taken with the result of a cancelled call, whose answer the client never
    /// reads: they go at the end of the next result instead. Each with its seqs.
    held: Mutex<Vec<(String, Vec<u64>)>>,
    /// Seqs of notices put in a result returned to the client: acknowledged to the daemon at
    /// the next call or when the session ends (a session killed first leaves them pending).
    shown: Mutex<Vec<u64>>,
    /// The daemon call id of each running MCP request, to cancel it with the client's reason.
    running: Mutex<HashMap<String, String>>,
    /// Tasks this server gave a handle for: their end reaches the client through it.
    followed: Mutex<HashSet<TaskId>>,
}

/// A request id as a map key.
fn request_key(id: &rmcp::model::RequestId) -> String {
    serde_json::to_string(id).unwrap_or_default()
}

/// A logging level's rank, least severe first.
#[allow(deprecated)]
fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every section under these locks is a single push, take or insert.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Server {
    pub(crate) fn new(daemon: Daemon, owner: String, options: Options, tools: Vec<Tool>) -> Self {
        Self {
            daemon,
            owner,
            options,
            tools,
            calls: AtomicU64::new(0),
            peer: Mutex::new(None),
            log_level: AtomicU8::new(0),
            held: Mutex::new(Vec::new()),
            shown: Mutex::new(Vec::new()),
            running: Mutex::new(HashMap::new()),
            followed: Mutex::new(HashSet::new()),
        }
    }

    /// Acknowledges the notices of results already sent, so they are not handed out again.
    pub(crate) async fn ack_shown(&self) {
        let seqs = std::mem::take(&mut *lock(&self.shown));
        if seqs.is_empty() {
            return;
        }
        // On failure they stay held for this connection: handed out again only if it ends.
        let _ = self
            .daemon
            .request::<method::NotificationsAck>(AckParams { seqs })
            .await;
    }

    /// Moves this session's foreground tasks to the background: after a daemon restart no
    /// call waits on them any more.
    async fn background_waited_on(&self) {
        let Ok(live) = self
            .daemon
            .request::<method::TaskList>(ListParams::default())
            .await
        else {
            return;
        };
        for t in live.tasks {
            if t.owner == self.owner && !t.detached && !t.is_terminal() {
                let _ = self
                    .daemon
                    .request::<method::TaskDetach>(IdParams { id: t.id })
                    .await;
            }
        }
    }

    async fn cancel(&self, call_id: String, reason: Option<String>) {
        let reason = reason
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(|| "cancelled by the MCP client".into());
        let _ = self
            .daemon
            .request::<method::ToolsCancel>(ToolCancelParams {
                call_id,
                reason: Some(reason),
            })
            .await;
    }
}

/// Sends a logging notification when a background task of this owner ends, unless the client
/// follows it by handle or asked for less. The notice itself stays pending for the next tool
/// result.
#[allow(deprecated)]
pub(crate) async fn announce_endings(server: Arc<Server>) {
    loop {
        let client = server.daemon.client();
        while let Some(event) = client.next_event().await {
            server.daemon.saw_event(event.seq);
            announce(&server, event).await;
        }
        // The daemon went away: on with the next one, from the last event seen.
        if server.daemon.renew(&client).await.is_err() {
            return;
        }
    }
}

#[allow(deprecated)]
async fn announce(server: &Server, event: aside_protocol::Event) {
    {
        if !event.detached || !matches!(event.kind, EventKind::Finished { .. }) {
            return;
        }
        // A followed task ends once: its entry goes with it.
        if lock(&server.followed).remove(&event.task_id)
            || server.log_level.load(Ordering::Relaxed) > rank(LoggingLevel::Info)
        {
            return;
        }
        let Ok(task) = server
            .daemon
            .request::<method::TaskGet>(IdParams { id: event.task_id })
            .await
        else {
            return;
        };
        if task.owner != server.owner {
            return;
        }
        let peer = lock(&server.peer).clone();
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
pub(crate) struct Handler(pub(crate) Arc<Server>);

/// Sends progress for a long foreground call every [`PROGRESS_EVERY`] until aborted.
fn report_progress(
    peer: Peer<RoleServer>,
    token: rmcp::model::ProgressToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut n = 0u32;
        loop {
            tokio::time::sleep(PROGRESS_EVERY).await;
            n += 1;
            let param =
                ProgressNotificationParam::new(token.clone(), f64::from(n)).with_message(format!(
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
}

impl Handler {
    async fn call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let s = &self.0;
        let name = request.name.to_string();
        if !s.tools.iter().any(|t| t.name == name) {
            let names: Vec<&str> = s.tools.iter().map(|t| t.name.as_ref()).collect();
            return Err(McpError::invalid_params(
                format!(
                    "there is no tool named {name:?} here; the tools are: {}",
                    names.join(", ")
                ),
                None,
            ));
        }
        // The client has the results returned before this call.
        s.ack_shown().await;
        let call_id = format!("mcp-{}", s.calls.fetch_add(1, Ordering::Relaxed));
        let as_task = context
            .client_capabilities()
            .is_some_and(|c| c.supports_tasks());
        let params = ToolCallParams {
            name,
            arguments: Value::Object(request.arguments.clone().unwrap_or_default()),
            call_id: Some(call_id.clone()),
            cwd: Some(s.options.cwd.clone()),
            env: Some(s.options.env.clone()),
            as_task,
            wait_ms: Some(s.options.wait.as_millis() as u64),
        };
        // rmcp may move the request's `_meta` into the context.
        let token = request
            .progress_token()
            .or_else(|| context.meta.get_progress_token());
        let progress = token.map(|token| report_progress(context.peer.clone(), token));
        let key = request_key(&context.id);
        lock(&s.running).insert(key.clone(), call_id.clone());
        let client = s.daemon.client();
        let call = client.request::<method::ToolsCall>(params);
        tokio::pin!(call);
        let result = tokio::select! {
            r = &mut call => r,
            _ = context.ct.cancelled() => {
                // `on_cancelled` passes the client's reason on; this is the fallback when the
                // call is still running a moment later. A call that has moved its task to the
                // background has answered by then: the cancel leaves that task running.
                let done = tokio::time::timeout(Duration::from_secs(2), &mut call).await;
                let r = match done {
                    Ok(r) => r,
                    Err(_) => {
                        s.cancel(call_id, None).await;
                        call.await
                    }
                };
                lock(&s.running).remove(&key);
                if let Ok(r) = r {
                    if let Some(n) = r.notices {
                        lock(&s.held).push((n, r.notice_seqs));
                    }
                }
                return Ok(CallToolResult::error(vec![ContentBlock::text("cancelled")]).into());
            }
        };
        if let Some(p) = progress {
            p.abort();
        }
        lock(&s.running).remove(&key);
        let r = match result {
            Ok(r) => r,
            Err(e) if aside_client::Client::broke(&e) => {
                // Not called again: it may have started a command, which the next daemon
                // adopted. The session goes on with that daemon, and what its calls were
                // waiting on goes to the background, announced at its end as said below.
                if s.daemon.renew(&client).await.is_ok() {
                    s.background_waited_on().await;
                }
                return Ok(CallToolResult::error(vec![ContentBlock::text(
                    "the aside daemon restarted while this call was in progress. A command \
                     it started was not stopped: it goes on in the background (task_list \
                     shows it, task_output reads it). Call again only if task_list does not \
                     show it.",
                )])
                .into());
            }
            Err(e) => {
                return Ok(CallToolResult::error(vec![ContentBlock::text(e.to_string())]).into())
            }
        };
        if let Some(handle) = &r.handle {
            lock(&s.followed).insert(handle.task_id);
            return Ok(CallToolResponse::Task(tasks::created(handle)));
        }
        let mut text = r.text;
        let mut notices = std::mem::take(&mut *lock(&s.held));
        notices.extend(r.notices.map(|n| (n, r.notice_seqs)));
        let mut seqs = Vec::new();
        for (n, shown) in notices {
            text.push_str("\n\n");
            text.push_str(&n);
            seqs.extend(shown);
        }
        lock(&s.shown).extend(seqs);
        let content = vec![ContentBlock::text(text)];
        Ok(if r.is_error {
            CallToolResult::error(content)
        } else {
            CallToolResult::success(content)
        }
        .into())
    }
}

impl ServerHandler for Handler {
    #[allow(deprecated)]
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_logging()
                .enable_tasks()
                .build(),
        );
        info.server_info = Implementation::new("aside", env!("CARGO_PKG_VERSION"));
        info.instructions = Some(
            "aside runs shell commands and subagents as tasks that can go to the background. \
             Use bash with run_in_background for servers, watchers and long builds; use task \
             for subagents. When a background task ends you are told once, with its outcome: \
             by your host (for hosts that follow MCP tasks), or in a notice appended to the \
             result of your next aside tool call. Do not poll. task_id names a run; \
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
        self.call(request, context).await
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        let task = self
            .0
            .daemon
            .request::<method::ToolsTaskGet>(HandleParams {
                handle: request.task_id,
                cwd: Some(self.0.options.cwd.clone()),
            })
            .await
            .map_err(tasks::error)?;
        Ok(GetTaskResult::new(tasks::detailed(&task)))
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.0
            .daemon
            .request::<method::ToolsTaskCancel>(HandleCancelParams {
                handle: request.task_id,
                reason: Some("cancelled by the MCP client".into()),
            })
            .await
            .map_err(tasks::error)?;
        Ok(())
    }

    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        // Logging is gone from protocol 2026-07-28 (SEP-2577): unknown there, as it should be.
        let version = context
            .meta
            .protocol_version()
            .or_else(|| context.protocol_version());
        if version.is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str()) {
            return Err(McpError::method_not_found::<SetLevelRequestMethod>());
        }
        self.0
            .log_level
            .store(rank(request.level), Ordering::Relaxed);
        Ok(())
    }

    async fn on_cancelled(
        &self,
        notification: CancelledNotificationParam,
        _context: NotificationContext<RoleServer>,
    ) {
        let Some(id) = notification.request_id else {
            return;
        };
        let call_id = lock(&self.0.running).get(&request_key(&id)).cloned();
        if let Some(call_id) = call_id {
            self.0.cancel(call_id, notification.reason).await;
        }
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        *lock(&self.0.peer) = Some(context.peer.clone());
    }
}
