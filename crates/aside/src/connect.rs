//! Reaching the daemon of this state directory.

use aside_client::{Client, Launcher};
use aside_core::Paths;
use aside_protocol::TaskId;

pub struct Context {
    pub paths: Paths,
}

impl Context {
    /// Connects, starting the daemon when none runs.
    pub async fn client(&self) -> anyhow::Result<Client> {
        let launcher = Launcher {
            program: std::env::current_exe()?,
            args: vec!["daemon".into(), "run".into()],
            log: self.paths.daemon_log(),
        };
        let socket = self.paths.checked_socket().map_err(anyhow::Error::msg)?;
        Ok(Client::connect(&socket, Some(&launcher), owner()).await?)
    }

    /// Connects as `owner`, starting the daemon when none runs.
    pub async fn client_as(&self, owner: String) -> anyhow::Result<Client> {
        let launcher = Launcher {
            program: std::env::current_exe()?,
            args: vec!["daemon".into(), "run".into()],
            log: self.paths.daemon_log(),
        };
        let socket = self.paths.checked_socket().map_err(anyhow::Error::msg)?;
        Ok(Client::connect(&socket, Some(&launcher), Some(owner)).await?)
    }

    /// Connects to a running daemon only.
    pub async fn existing_client(&self) -> anyhow::Result<Client> {
        let socket = self.paths.checked_socket().map_err(anyhow::Error::msg)?;
        Ok(Client::connect(&socket, None, owner()).await?)
    }
}

fn owner() -> Option<String> {
    std::env::var("ASIDE_OWNER").ok().filter(|o| !o.is_empty())
}

pub fn parse_id(s: &str) -> anyhow::Result<TaskId> {
    Ok(s.parse::<TaskId>()?)
}

pub fn parse_ids(ids: &[String]) -> anyhow::Result<Vec<TaskId>> {
    ids.iter().map(|s| parse_id(s)).collect()
}

/// Reads a duration flag (`500ms`, `30s`, `2m`, `1h`), or `none` where allowed.
pub fn parse_limit(s: &str, what: &str) -> anyhow::Result<aside_protocol::Limit> {
    let d = aside_core::config::parse_limit(s).map_err(|e| anyhow::anyhow!("--{what}: {e}"))?;
    Ok(aside_protocol::Limit::from_millis(
        d.map(|d| d.as_millis() as u64),
    ))
}

/// A duration flag that may be absent.
pub fn parse_opt_limit(
    s: Option<&str>,
    what: &str,
) -> anyhow::Result<Option<aside_protocol::Limit>> {
    s.map(|s| parse_limit(s, what)).transpose()
}

pub fn parse_duration(s: &str, what: &str) -> anyhow::Result<std::time::Duration> {
    aside_core::config::parse_duration(s).map_err(|e| anyhow::anyhow!("--{what}: {e}"))
}
