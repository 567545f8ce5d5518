//! Why settings are refused: each error names the key at fault, and the file once it is known.

use std::fmt;
use std::path::{Path, PathBuf};

use super::DurationError;

/// Settings that cannot be read or are refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML, an unknown key, or a value of the wrong form; `key` is the dotted key at fault
    /// (`agent.stall`), `None` when the text is not TOML.
    #[error("{}{}", InFile(path.as_deref()), TomlMessage(key.as_deref(), source))]
    Toml {
        path: Option<PathBuf>,
        key: Option<String>,
        source: Box<toml::de::Error>,
    },
    /// A value of the right form but out of range.
    #[error("{}{key}: {reason}", InFile(path.as_deref()))]
    Invalid {
        path: Option<PathBuf>,
        key: String,
        reason: InvalidValue,
    },
    /// The settings cannot be written as TOML (a number past TOML's range, set by a program).
    #[error("the settings cannot be written as TOML: {0}")]
    Write(#[from] toml::ser::Error),
}

impl ConfigError {
    /// The same error, saying which file it is about.
    pub fn in_file(self, file: &Path) -> Self {
        match self {
            ConfigError::Toml { key, source, .. } => ConfigError::Toml {
                path: Some(file.to_path_buf()),
                key,
                source,
            },
            ConfigError::Invalid { key, reason, .. } => ConfigError::Invalid {
                path: Some(file.to_path_buf()),
                key,
                reason,
            },
            other => other,
        }
    }

    /// The dotted key at fault, when one is.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Toml { key, .. } => key.as_deref(),
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }

    pub(super) fn invalid(key: impl Into<String>, reason: InvalidValue) -> Self {
        ConfigError::Invalid {
            path: None,
            key: key.into(),
            reason,
        }
    }
}

/// Why a value of the right form is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidValue {
    #[error("must be at least {0}")]
    AtLeast(u64),
    #[error(transparent)]
    Duration(#[from] DurationError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("names {0:?}, which no [providers.{0}] section defines")]
    NoSuchProvider(String),
    #[error("{0:?} is not one key that sends a single byte (such as \"C-\\\\\" or \"C-]\")")]
    NotADetachKey(String),
}

/// A group or provider name that is not 1 to 64 characters of `[A-Za-z0-9._-]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {name:?}: names are 1 to 64 characters of letters, digits, '-', '_' and '.'")]
pub struct NameError {
    /// What the name is of: `group` or `provider`.
    pub what: &'static str,
    pub name: String,
}

/// `path: ` when the file is known.
struct InFile<'a>(Option<&'a Path>);

impl fmt::Display for InFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, "{}: ", p.display()),
            None => Ok(()),
        }
    }
}

/// `key: message` when the key is known; else TOML's own report, which shows the line.
struct TomlMessage<'a>(Option<&'a str>, &'a toml::de::Error);

impl fmt::Display for TomlMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(key) => write!(f, "{key}: {}", self.1.message()),
            None => write!(f, "{}", self.1.to_string().trim_end()),
        }
    }
}
