//! The context the agent tools run in for a connection: its owner, and the project settings
//! (and agents) of the working directory a client names.

use std::path::PathBuf;
use std::sync::Arc;

use aside_agent::definitions::Catalog;
use aside_agent::project::{self, project_config, project_root};
use aside_agent::tools::ToolContext;
use aside_core::config::Config;
use aside_protocol::rpc::{ErrorCode, RpcError};

use crate::connection::Conn;
use crate::Shared;

/// The working directory a client names, checked (default: the daemon's).
pub(crate) fn workdir(cwd: Option<String>) -> Result<PathBuf, RpcError> {
    let dir = match cwd {
        Some(c) => PathBuf::from(c),
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
    };
    if !dir.is_absolute() || !dir.is_dir() {
        return Err(RpcError::new(
            ErrorCode::InvalidParams,
            format!(
                "the working directory {} is not an existing absolute directory",
                dir.display()
            ),
        ));
    }
    Ok(dir)
}

/// A context with the project settings of `cwd` and no agents: enough to shape a result.
pub(crate) fn settings_context(
    shared: &Shared,
    conn: &Conn,
    cwd: Option<String>,
) -> Result<ToolContext, RpcError> {
    let cwd = workdir(cwd)?;
    let config = project_config(shared.engine.config(), &project_root(&cwd))
        .map_err(|e| RpcError::new(ErrorCode::BadSpec, e.to_string()))?;
    Ok(tool_context(shared, conn, cwd, config, Catalog::default()))
}

/// The context tools run in for this connection's owner, with the project settings and
/// agents of `cwd` (default: the daemon's working directory).
pub(crate) async fn context(
    shared: &Shared,
    conn: &Conn,
    cwd: Option<String>,
) -> Result<ToolContext, RpcError> {
    let cwd = workdir(cwd)?;
    let (found, catalog) = project::load(shared.engine.config(), &cwd).await;
    let config = found.map_err(|e| RpcError::new(ErrorCode::BadSpec, e.to_string()))?;
    Ok(tool_context(shared, conn, cwd, config, catalog))
}

fn tool_context(
    shared: &Shared,
    conn: &Conn,
    cwd: PathBuf,
    config: Config,
    catalog: Catalog,
) -> ToolContext {
    ToolContext {
        engine: shared.engine.clone(),
        owner: conn.owner(),
        session_id: None,
        cwd,
        depth: 0,
        config: Arc::new(config),
        catalog: Arc::new(catalog),
        env: None,
        cancel: None,
        wait: None,
        call: None,
    }
}
