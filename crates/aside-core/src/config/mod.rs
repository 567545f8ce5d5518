//! Settings of the engine, with every default in one place.
//!
//! The config file (`config.toml` in the config directory, see [`crate::paths`]) may set any
//! of these keys; what it leaves out keeps the default in [`Config::default`]. The file is read
//! straight into these types, and `aside --help` and the README print [`Config::describe`],
//! written from the same types: the documented defaults are the effective ones.

mod describe;
mod error;
mod units;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use error::{ConfigError, InvalidValue, NameError};
pub use units::{
    fmt_size, format_limit, parse_duration, parse_limit, parse_size, DurationError, Size, SizeError,
};

/// The longest any single wait may block: callers get a clean answer with what is still
/// running, never an hour-long hang.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

/// The longest duration accepted anywhere (timeouts, budgets, retention): 10 years.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The settings. Each field's first doc line is its comment in [`Config::describe`]; fields
/// are described in declaration order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Tasks running at once, over all groups.
    pub max_running: usize,
    /// Foreground wait budget, then the task moves to the background.
    #[serde(with = "units::limit")]
    #[schemars(with = "String")]
    pub wait: Option<Duration>,
    /// Hard limit, then the task is killed.
    #[serde(with = "units::limit")]
    #[schemars(with = "String")]
    pub timeout: Option<Duration>,
    /// SIGTERM to SIGKILL when stopping.
    #[serde(with = "units::duration")]
    #[schemars(with = "String")]
    pub kill_grace: Duration,
    /// Output still read after exit while descendants hold the pipe.
    #[serde(with = "units::duration")]
    #[schemars(with = "String")]
    pub drain: Duration,
    /// Output past this stops the task (failed).
    #[serde(with = "units::size")]
    #[schemars(with = "String")]
    pub output_cap: u64,
    /// Foreground output kept in memory up to this, then logged.
    #[serde(with = "units::size")]
    #[schemars(with = "String")]
    pub spill: u64,
    /// Recent output kept in memory per task.
    ///
    /// For previews and `aside logs --tail`.
    #[serde(with = "units::size")]
    #[schemars(with = "String")]
    pub tail: u64,
    /// Memory for output of finished foreground tasks.
    ///
    /// Output of foreground tasks that never reached the disk.
    #[serde(with = "units::size")]
    #[schemars(with = "String")]
    pub retained_memory: u64,
    /// Finished tasks are removed this long after they end.
    ///
    /// With their logs.
    #[serde(with = "units::limit")]
    #[schemars(with = "String")]
    pub retention: Option<Duration>,
    /// Run (sh -c) when a task ends; blank for none.
    ///
    /// The completion hook: the task's record arrives as JSON on its stdin, and
    /// ASIDE_TASK_ID, ASIDE_TASK_STATE, ASIDE_TASK_EXIT_CODE, ASIDE_TASK_NAME,
    /// ASIDE_TASK_GROUP and ASIDE_TASK_OWNER in its environment. It runs in the task's
    /// working directory, beside the daemon (never blocking it), at most 4 at once, and is
    /// killed after 1 minute; its output and its failures go to the daemon's log.
    #[serde(with = "units::blank_is_none")]
    #[schemars(with = "String")]
    pub on_end: Option<String>,
    /// Leaves `aside attach` and `aside run --pty`, e.g. "C-]".
    ///
    /// The key that detaches a terminal attached to a task, which runs on.
    pub detach_key: String,
    /// Settings of agent tasks.
    pub agent: AgentConfig,
    /// `[providers.NAME]` base_url = "...", api_key_env = "VAR" or api_key_file = "PATH".
    ///
    /// Model providers by name; `[agent] provider` picks one.
    pub providers: BTreeMap<String, Provider>,
    /// Groups: NAME = tasks at once, e.g. build = 2.
    ///
    /// Named groups and the tasks each may run at once.
    pub groups: BTreeMap<String, usize>,
    /// Endpoints named by a project's `.aside/config.toml`: a cloned repository must not be
    /// able to send the user's key to a server of its choosing, so these get none.
    #[serde(skip)]
    pub keyless_urls: BTreeSet<String>,
}

/// The group top-level agent tasks run in unless they name another; its limit is
/// `agent.max_running`.
pub const AGENT_GROUP: &str = "agents";
/// The group of agents started by agents; also limited to `agent.max_running`.
pub const SUBAGENT_GROUP: &str = "subagents";

/// Settings of agent tasks, each with its default in [`AgentConfig::default`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// Default model (ASIDE_MODEL wins; an agent's own model first).
    ///
    /// Used when neither the agent's definition nor `ASIDE_MODEL` names one.
    #[serde(with = "units::blank_is_none")]
    #[schemars(with = "String")]
    pub model: Option<String>,
    /// A `[providers.NAME]` to use instead of base_url.
    ///
    /// Used when `model` does not start with a provider's name and `/`.
    #[serde(with = "units::blank_is_none")]
    #[schemars(with = "String")]
    pub provider: Option<String>,
    /// OpenAI-compatible endpoint (OPENAI_BASE_URL wins).
    ///
    /// The Chat Completions base, when no provider is named.
    pub base_url: String,
    /// Agents at once (groups "agents" and "subagents", each).
    pub max_running: usize,
    /// 1: subagents cannot start subagents.
    ///
    /// How deep agents may start agents.
    pub max_depth: u32,
    /// Model turns per agent task.
    ///
    /// Unless its definition says fewer.
    pub max_turns: u32,
    /// An agent without progress this long is stopped.
    #[serde(with = "units::limit")]
    #[schemars(with = "String")]
    pub stall: Option<Duration>,
    /// A foreground task call waits this long, then backgrounds.
    ///
    /// How long a foreground `task` call waits for its subagent.
    #[serde(with = "units::limit")]
    #[schemars(with = "String")]
    pub wait: Option<Duration>,
    /// At its end an agent waits this long for its background tasks.
    #[serde(with = "units::duration")]
    #[schemars(with = "String")]
    pub settle: Duration,
    /// Characters of a tool result shown (head and tail).
    ///
    /// Longer results keep their head and tail.
    pub tool_output: usize,
    /// Stopping an agent stops its background tasks.
    pub stop_children: bool,
    /// Retries of a model request after 429 or 5xx.
    pub retries: u32,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            model: None,
            provider: None,
            base_url: "https://api.openai.com/v1".into(),
            max_running: 8,
            max_depth: 1,
            max_turns: 50,
            stall: Some(Duration::from_secs(600)),
            wait: Some(Duration::from_secs(600)),
            settle: Duration::from_secs(600),
            tool_output: 30_000,
            stop_children: true,
            retries: 4,
        }
    }
}

/// An OpenAI-compatible endpoint and where its key comes from. Keys are never written to the
/// config: name an environment variable or a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// OpenAI-compatible endpoint.
    pub base_url: String,
    /// The environment variable that holds the key (default OPENAI_API_KEY).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// A file whose first line is the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_running: 16,
            wait: Some(Duration::from_secs(120)),
            timeout: None,
            kill_grace: Duration::from_secs(5),
            drain: Duration::from_secs(2),
            output_cap: 1 << 30,
            spill: 1 << 20,
            tail: 64 << 10,
            retained_memory: 16 << 20,
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
            on_end: None,
            detach_key: "C-\\".into(),
            agent: AgentConfig::default(),
            providers: BTreeMap::new(),
            groups: BTreeMap::new(),
            keyless_urls: BTreeSet::new(),
        }
    }
}

/// What a project's `.aside/config.toml` may set: agent settings only. `[agent]` stays a table
/// here so that only the keys it names change the daemon's.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFile {
    #[serde(default)]
    agent: toml::Table,
    #[serde(default)]
    providers: BTreeMap<String, Provider>,
}

impl Config {
    /// Reads `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map_err(|e| e.in_file(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfigError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Reads a config file's text: the keys it sets on top of the defaults, checked.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| toml_error(None, e))?;
        let config: Config = deserialize(de, "")?;
        config.validate()?;
        Ok(config)
    }

    /// Applies a project's `.aside/config.toml` (its `[agent]` and `[providers]`) on top. The
    /// project's endpoints are recorded in `keyless_urls`, its providers lose any key source,
    /// a blank value leaves the daemon's, and `agent.max_running` stays the daemon's.
    pub fn with_project(&self, text: &str) -> Result<Self, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| toml_error(None, e))?;
        let project: ProjectFile = deserialize(de, "")?;
        let mut c = self.clone();
        let mut agent = toml::Table::try_from(&self.agent)?;
        for (key, value) in project.agent {
            if value.as_str().is_some_and(|s| s.trim().is_empty()) {
                continue;
            }
            if key == "base_url" {
                if let Some(url) = value.as_str() {
                    c.keyless_urls.insert(url.to_string());
                }
            }
            agent.insert(key, value);
        }
        c.agent = deserialize(toml::Value::Table(agent), "agent")?;
        for (name, mut p) in project.providers {
            c.keyless_urls.insert(p.base_url.clone());
            // Where keys come from is the user's choice, never a project's.
            p.api_key_env = None;
            p.api_key_file = None;
            c.providers.insert(name, p);
        }
        c.validate()?;
        // Slots are the daemon's, shared by every project: a project cannot change them.
        c.agent.max_running = self.agent.max_running;
        Ok(c)
    }

    /// Checks what the types do not: limits of at least 1, names, durations of at most 10
    /// years, and that `agent.provider` names a provider.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let at_least = |key: &str, n: u64, min: u64| {
            if n >= min {
                Ok(())
            } else {
                Err(ConfigError::invalid(key, InvalidValue::AtLeast(min)))
            }
        };
        let a = &self.agent;
        at_least("max_running", self.max_running as u64, 1)?;
        at_least("agent.max_running", a.max_running as u64, 1)?;
        at_least("agent.max_turns", u64::from(a.max_turns), 1)?;
        at_least("agent.tool_output", a.tool_output as u64, 1000)?;
        for (name, limit) in &self.groups {
            check_name("group", name).map_err(|e| ConfigError::invalid("groups", e.into()))?;
            at_least(&format!("groups.{name:?}"), *limit as u64, 1)?;
        }
        for name in self.providers.keys() {
            check_name("provider", name)
                .map_err(|e| ConfigError::invalid("providers", e.into()))?;
        }
        for (key, d) in [
            ("wait", self.wait),
            ("timeout", self.timeout),
            ("kill_grace", Some(self.kill_grace)),
            ("drain", Some(self.drain)),
            ("retention", self.retention),
            ("agent.stall", a.stall),
            ("agent.wait", a.wait),
            ("agent.settle", Some(a.settle)),
        ] {
            if let Some(d) = d {
                units::check_duration(d).map_err(|e| ConfigError::invalid(key, e.into()))?;
            }
        }
        if self.detach_byte().is_none() {
            return Err(ConfigError::invalid(
                "detach_key",
                InvalidValue::NotADetachKey(self.detach_key.clone()),
            ));
        }
        if let Some(p) = &a.provider {
            if !self.providers.contains_key(p) {
                return Err(ConfigError::invalid(
                    "agent.provider",
                    InvalidValue::NoSuchProvider(p.clone()),
                ));
            }
        }
        Ok(())
    }

    /// The byte the detach key sends on a terminal.
    pub fn detach_byte(&self) -> Option<u8> {
        match aside_protocol::keys::bytes(&self.detach_key, true).as_deref() {
            Some([b]) => Some(*b),
            _ => None,
        }
    }

    /// The environment variables that hold model keys: never passed to tasks or stored.
    pub fn key_vars(&self) -> Vec<String> {
        let mut vars = vec!["OPENAI_API_KEY".to_string()];
        for p in self.providers.values() {
            if let Some(v) = &p.api_key_env {
                if !vars.contains(v) {
                    vars.push(v.clone());
                }
            }
        }
        vars
    }

    /// The limit of a group, `None` for a group the config does not name (only the global
    /// limit applies to it).
    pub fn group_limit(&self, group: &str) -> Option<usize> {
        match self.groups.get(group) {
            Some(n) => Some(*n),
            None if group == AGENT_GROUP || group == SUBAGENT_GROUP => Some(self.agent.max_running),
            None => None,
        }
    }

    /// Every setting with its value and a comment, one per line, in the config file's syntax.
    pub fn describe(&self) -> String {
        describe::describe(self)
    }
}

/// Deserializes `de`, naming the key at fault (under `prefix`) in an error.
fn deserialize<'de, T, D>(de: D, prefix: &str) -> Result<T, ConfigError>
where
    T: DeserializeOwned,
    D: serde::Deserializer<'de, Error = toml::de::Error>,
{
    serde_path_to_error::deserialize(de).map_err(|e| {
        let mut key = prefix.to_string();
        for segment in e.path() {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(&segment.to_string());
        }
        toml_error(Some(key).filter(|k| !k.is_empty()), e.into_inner())
    })
}

fn toml_error(key: Option<String>, source: toml::de::Error) -> ConfigError {
    ConfigError::Toml {
        path: None,
        key,
        source: Box::new(source),
    }
}

fn check_name(what: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(NameError {
            what,
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Checks a group name given with a task.
pub fn validate_group(name: &str) -> Result<(), NameError> {
    check_name("group", name)
}
