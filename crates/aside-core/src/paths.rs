//! Where aside keeps its files.
//!
//! `ASIDE_HOME`, when set, holds everything: state, logs, socket and `config.toml`. Otherwise
//! state lives in `$XDG_STATE_HOME/aside` (`~/.local/state/aside`) and the config file in
//! `$XDG_CONFIG_HOME/aside/config.toml` (`~/.config/aside/config.toml`).

use std::path::PathBuf;

/// The longest path a Unix socket address holds (`sun_path` is 108 bytes with its NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// Why aside's files have no place.
#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    /// Neither `ASIDE_HOME`, the XDG variable `var`, nor `HOME` is set.
    #[error("neither {var} nor HOME is set; set ASIDE_HOME")]
    NoHome { var: &'static str },
    /// A relative `ASIDE_HOME` and no current directory to resolve it against.
    #[error("cannot resolve ASIDE_HOME: {source}")]
    NoCurrentDir { source: std::io::Error },
    /// The socket path does not fit in a Unix socket address.
    #[error(
        "the socket path {} is too long for a Unix socket ({len} bytes, at most {MAX_SOCKET_PATH}); use a shorter ASIDE_HOME",
        path.display()
    )]
    SocketTooLong { path: PathBuf, len: usize },
}

#[derive(Debug, Clone)]
pub struct Paths {
    /// The state directory: database, logs, socket, lock.
    pub home: PathBuf,
    pub config_file: PathBuf,
}

impl Paths {
    pub fn from_env() -> Result<Self, PathsError> {
        if let Some(home) = env_path("ASIDE_HOME") {
            return Ok(Self::in_home(absolute(home)?));
        }
        let user_home = env_path("HOME");
        let xdg = |var: &'static str, fallback: &str| -> Result<PathBuf, PathsError> {
            match (env_path(var), &user_home) {
                (Some(p), _) if p.is_absolute() => Ok(p),
                (_, Some(h)) => Ok(h.join(fallback)),
                (_, None) => Err(PathsError::NoHome { var }),
            }
        };
        Ok(Self {
            home: xdg("XDG_STATE_HOME", ".local/state")?.join("aside"),
            config_file: xdg("XDG_CONFIG_HOME", ".config")?.join("aside/config.toml"),
        })
    }

    pub fn in_home(home: PathBuf) -> Self {
        Self {
            config_file: home.join("config.toml"),
            home,
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.home.join("aside.sock")
    }

    /// The socket path, or why it cannot be one: Unix socket paths hold at most 107 bytes.
    pub fn checked_socket(&self) -> Result<PathBuf, PathsError> {
        let socket = self.socket();
        let len = socket.as_os_str().len();
        if len > MAX_SOCKET_PATH {
            return Err(PathsError::SocketTooLong { path: socket, len });
        }
        Ok(socket)
    }

    pub fn lock_file(&self) -> PathBuf {
        self.home.join("daemon.lock")
    }

    pub fn daemon_log(&self) -> PathBuf {
        self.home.join("daemon.log")
    }
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn absolute(p: PathBuf) -> Result<PathBuf, PathsError> {
    if p.is_absolute() {
        return Ok(p);
    }
    std::env::current_dir()
        .map(|d| d.join(p))
        .map_err(|source| PathsError::NoCurrentDir { source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_socket_path_is_refused_with_its_length() {
        let short = Paths::in_home(PathBuf::from("/tmp/aside"));
        assert_eq!(short.checked_socket().unwrap(), short.socket());
        let long = Paths::in_home(PathBuf::from(format!("/{}", "d".repeat(100))));
        let e = long.checked_socket().unwrap_err();
        assert!(
            matches!(e, PathsError::SocketTooLong { len: 112, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("too long") && e.to_string().contains("ASIDE_HOME"));
    }
}
