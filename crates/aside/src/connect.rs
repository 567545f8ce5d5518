//! Reaching the daemon of this state directory.

use std::path::PathBuf;

use aside_client::{Client, Launcher};
use aside_core::Paths;
use aside_protocol::TaskId;

pub struct Context {
    pub paths: Paths,
}

impl Context {
    /// Connects, starting the daemon when none runs.
    pub async fn client(&self) -> anyhow::Result<Client> {
        let socket = self.paths.checked_socket().map_err(anyhow::Error::msg)?;
        let client = Client::connect(&socket, Some(&self.launcher()?), owner()).await?;
        warn_if_outdated(&client);
        Ok(client)
    }

    /// Connects, starting the daemon when none runs, and makes a first call `M` in the same
    /// round trip as the greeting: the client, and that call's result.
    pub async fn client_with<M: aside_protocol::rpc::Method>(
        &self,
        params: M::Params,
    ) -> anyhow::Result<(Client, M::Result)> {
        let socket = self.paths.checked_socket().map_err(anyhow::Error::msg)?;
        let (client, first) =
            Client::connect_with::<M>(&socket, Some(&self.launcher()?), owner(), params).await?;
        warn_if_outdated(&client);
        Ok((client, first?))
    }

    /// Connects as `owner`, starting the daemon when none runs.
    pub async fn client_as(&self, owner: String) -> anyhow::Result<Client> {
        let socket = self.paths.checked_socket().map_err(anyhow::Error::msg)?;
        let client = Client::connect(&socket, Some(&self.launcher()?), Some(owner)).await?;
        warn_if_outdated(&client);
        Ok(client)
    }

    /// `aside daemon run`, started in `/`: the variables its paths come from are handed on
    /// absolute, so that it finds the state directory this CLI found.
    fn launcher(&self) -> anyhow::Result<Launcher> {
        let here = std::env::current_dir();
        let env = ["ASIDE_HOME", "HOME"]
            .into_iter()
            .filter_map(|var| {
                let value = PathBuf::from(std::env::var_os(var)?);
                let here = here.as_ref().ok()?;
                (!value.as_os_str().is_empty() && value.is_relative())
                    .then(|| (var.into(), here.join(value).into_os_string()))
            })
            .collect();
        Ok(Launcher {
            program: std::env::current_exe()?,
            args: vec!["daemon".into(), "run".into()],
            env,
            log: self.paths.daemon_log(),
            pid_file: self.paths.lock_file(),
        })
    }

    /// Connects to a running daemon only.
    pub async fn existing_client(&self) -> anyhow::Result<Client> {
        let socket = self.paths.checked_socket().map_err(anyhow::Error::msg)?;
        Ok(Client::connect(&socket, None, owner()).await?)
    }
}

/// Says on stderr when the daemon runs another aside than this one (an upgrade installed
/// since it started): restarting it is safe, but it is the user's to do, since a restart
/// drops its connections (clients reconnect).
fn warn_if_outdated(client: &Client) {
    let mine = env!("CARGO_PKG_VERSION");
    let theirs = &client.daemon.daemon_version;
    let why = if theirs != mine {
        Some(format!("runs aside {theirs}, this is aside {mine}"))
    } else if binary_replaced(client.daemon.pid) {
        Some("runs a binary that was replaced or removed since it started".to_string())
    } else {
        None
    };
    if let Some(why) = why {
        eprintln!(
            "aside: the daemon (pid {}) {why}; `aside daemon restart` replaces it without stopping any task",
            client.daemon.pid
        );
    }
}

/// Whether the daemon's program file is gone from where it started (Linux shows it as
/// "(deleted)"): a new install replaced it.
fn binary_replaced(pid: u32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .is_ok_and(|p| p.to_string_lossy().ends_with(" (deleted)"))
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
