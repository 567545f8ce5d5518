//! `aside mcp`: the Model Context Protocol server that gives any coding agent aside's tools.
//!
//! It holds no task state: every tool call goes to the daemon (`tools.call`), which runs the
//! agent tool registry for this connection's owner. Background work reaches the model one of
//! two ways:
//! - a client that declared the Tasks extension gets a task handle for a call whose work goes
//!   on in the background and polls it (`tasks/get`) until it has the result ([`tasks`]);
//! - any other client gets the owner's pending notifications at the end of whatever tool
//!   result comes next, and a logging notification when one ends.
//!
//! A client's `notifications/cancelled` stops the task a foreground call waits on, until the
//! call has moved it to the background; long foreground calls send progress when asked.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aside_client::Client;
use aside_protocol::rpc::{method, ListParams, StopParams, SubscribeParams, ToolsListParams};
use aside_protocol::Tool as AsideTool;
use rmcp::model::Tool;
use rmcp::ServiceExt;
use serde_json::Value;

mod daemon;
mod hosts;
mod server;
pub mod tasks;

use daemon::Daemon;
pub use hosts::{HostClient, UnknownClient};
use server::{Handler, Server};

/// How long a foreground call waits before its work moves to the background, unless
/// `--wait` says otherwise: under the shortest common host timeout (Codex cancels a call
/// after 60 s; Gemini CLI after 10 minutes; Claude Code after about 28 hours), so the host
/// gets an answer, not a timeout that would stop the work.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(45);
/// [`DEFAULT_WAIT`] as `--wait` takes it (a test of the CLI keeps the two the same).
pub const DEFAULT_WAIT_TEXT: &str = "45s";

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

#[derive(Debug, thiserror::Error)]
pub enum McpServerError {
    #[error("the daemon refused: {0}")]
    Daemon(#[from] aside_client::ClientError),
    #[error("MCP: {0}")]
    Mcp(String),
}

/// How this server behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Offer `read`, `write`, `edit`, `glob` and `grep` too.
    pub file_tools: bool,
    /// Stop this connection's live tasks when the client goes away (default: they go on).
    pub stop_on_exit: bool,
    /// Working directory of the tools.
    pub cwd: String,
    /// Environment of the commands the tools start.
    pub env: BTreeMap<String, String>,
    /// How long a foreground `bash` or `task` call waits before its work moves to the
    /// background.
    pub wait: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            file_tools: false,
            stop_on_exit: false,
            cwd: "/".into(),
            env: BTreeMap::new(),
            wait: DEFAULT_WAIT,
        }
    }
}

const MCP_NOTE: &str = " Through this MCP server, notices of background tasks that ended are \
    appended to the result of your next aside tool call.";

/// Serves MCP on stdin and stdout until the client closes them.
pub async fn serve(client: Client, owner: String, options: Options) -> Result<(), McpServerError> {
    let daemon = Daemon::new(client);
    let names: Vec<String> = offered_tools(options.file_tools)
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    let listed = daemon
        .request::<method::ToolsList>(ToolsListParams {
            names: Some(names),
            cwd: Some(options.cwd.clone()),
            wait_ms: Some(options.wait.as_millis() as u64),
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
    daemon
        .request::<method::EventsSubscribe>(SubscribeParams { after: None })
        .await?;
    let server = Arc::new(Server::new(daemon, owner.clone(), options.clone(), tools));
    let announcer = tokio::spawn(server::announce_endings(server.clone()));
    let running = Handler(server.clone())
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| McpServerError::Mcp(e.to_string()))?;
    let _ = running.waiting().await;
    announcer.abort();
    server.ack_shown().await;
    if options.stop_on_exit {
        let live = server
            .daemon
            .request::<method::TaskList>(ListParams::default())
            .await?;
        let ids: Vec<_> = live
            .tasks
            .iter()
            .filter(|t| t.owner == owner)
            .map(|t| t.id)
            .collect();
        if !ids.is_empty() {
            server
                .daemon
                .request::<method::TaskStop>(StopParams {
                    ids,
                    message: Some("the MCP client went away".into()),
                })
                .await?;
        }
    }
    Ok(())
}
