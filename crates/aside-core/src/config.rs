//! Settings of the engine, with every default in one place.
//!
//! The config file (`config.toml` in the config directory, see [`crate::paths`]) may set any
//! of these keys; what it leaves out keeps the default below. `aside --help` and the README
//! print [`Config::describe`], so the documented defaults are the effective ones.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// The longest any single wait may block: callers get a clean answer with what is still
/// running, never an hour-long hang.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

/// The longest duration accepted anywhere (timeouts, budgets, retention): 10 years.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Tasks running at once, over all groups.
    pub max_running: usize,
    /// Named groups and the tasks each may run at once.
    pub groups: BTreeMap<String, usize>,
    /// How long a foreground caller waits before the task moves to the background.
    pub wait: Option<Duration>,
    /// Hard limit after which a task is killed.
    pub timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL when a task is stopped.
    pub kill_grace: Duration,
    /// How long output is still read after the process exits, while descendants hold the pipe.
    pub drain: Duration,
    /// Output past this many bytes stops the task.
    pub output_cap: u64,
    /// A foreground task keeps its output in memory up to this many bytes, then writes a log.
    pub spill: u64,
    /// Bytes of recent output kept in memory for previews.
    pub tail: u64,
    /// Memory for the output of finished foreground tasks that never reached the disk.
    pub retained_memory: u64,
    /// Finished tasks are removed with their logs this long after they end.
    pub retention: Option<Duration>,
    /// Settings of agent tasks.
    pub agent: AgentConfig,
    /// Model providers by name; `[agent] provider` picks one.
    pub providers: BTreeMap<String, Provider>,
    /// Endpoints named by a project's `.aside/config.toml`: a cloned repository must not be
    /// able to send the user's key to a server of its choosing, so these get none.
    pub keyless_urls: std::collections::BTreeSet<String>,
}

/// The group top-level agent tasks run in unless they name another; its limit is
/// `agent.max_running`.
pub const AGENT_GROUP: &str = "agents";
/// The group of agents started by agents; also limited to `agent.max_running`.
pub const SUBAGENT_GROUP: &str = "subagents";

/// Settings of agent tasks, each with its default in [`AgentConfig::default`].
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// The model, when neither the agent's definition nor `ASIDE_MODEL` names one.
    pub model: Option<String>,
    /// The provider used when `model` does not start with a provider's name and `/`.
    pub provider: Option<String>,
    /// Chat Completions endpoint base, when no provider is named (`OPENAI_BASE_URL` wins).
    pub base_url: String,
    /// Agents running at once (the limit of the `agents` group).
    pub max_running: usize,
    /// How deep agents may start agents: 1 means a subagent cannot start subagents.
    pub max_depth: u32,
    /// Model turns per agent task, unless its definition says fewer.
    pub max_turns: u32,
    /// An agent with no progress for this long is stopped.
    pub stall: Option<Duration>,
    /// How long a foreground `task` call waits for its subagent before moving it to the
    /// background.
    pub wait: Option<Duration>,
    /// How long an agent whose turn ended waits for its own background tasks to finish.
    pub settle: Duration,
    /// Characters of a tool result the model sees; longer results keep head and tail.
    pub tool_output: usize,
    /// Background tasks an agent started are stopped when the agent is stopped.
    pub stop_children: bool,
    /// Attempts of a model request that fails with 429 or 5xx.
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    pub base_url: String,
    /// The environment variable that holds the key (default `OPENAI_API_KEY`).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// A file whose first line is the key.
    #[serde(default)]
    pub api_key_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAgent {
    model: Option<String>,
    provider: Option<String>,
    base_url: Option<String>,
    max_running: Option<usize>,
    max_depth: Option<u32>,
    max_turns: Option<u32>,
    stall: Option<String>,
    wait: Option<String>,
    settle: Option<String>,
    tool_output: Option<usize>,
    stop_children: Option<bool>,
    retries: Option<u32>,
}

/// What a project's `.aside/config.toml` may set: agent settings only.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFile {
    #[serde(default)]
    agent: FileAgent,
    #[serde(default)]
    providers: BTreeMap<String, Provider>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_running: 16,
            groups: BTreeMap::new(),
            wait: Some(Duration::from_secs(120)),
            timeout: None,
            kill_grace: Duration::from_secs(5),
            drain: Duration::from_secs(2),
            output_cap: 1 << 30,
            spill: 1 << 20,
            tail: 64 << 10,
            retained_memory: 16 << 20,
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
            agent: AgentConfig::default(),
            providers: BTreeMap::new(),
            keyless_urls: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The file's form: every key optional, unknown keys refused so a typo is not ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    max_running: Option<usize>,
    #[serde(default)]
    groups: BTreeMap<String, usize>,
    wait: Option<String>,
    timeout: Option<String>,
    kill_grace: Option<String>,
    drain: Option<String>,
    output_cap: Option<String>,
    spill: Option<String>,
    tail: Option<String>,
    retained_memory: Option<String>,
    retention: Option<String>,
    #[serde(default)]
    agent: FileAgent,
    #[serde(default)]
    providers: BTreeMap<String, Provider>,
}

impl Config {
    /// Reads `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map_err(|message| ConfigError::Invalid {
                path: shown,
                message,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfigError::Io {
                path: shown,
                source,
            }),
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let file: FileConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut c = Self::default();
        if let Some(n) = file.max_running {
            if n == 0 {
                return Err("max_running must be at least 1".into());
            }
            c.max_running = n;
        }
        for (name, limit) in &file.groups {
            check_group_name(name)?;
            if *limit == 0 {
                return Err(format!("group {name:?}: a limit must be at least 1"));
            }
        }
        c.groups = file.groups;
        let opt = |key: &str, v: Option<String>, cur: Option<Duration>| match v {
            Some(s) => parse_limit(&s).map_err(|e| format!("{key}: {e}")),
            None => Ok(cur),
        };
        let req = |key: &str, v: Option<String>, cur: Duration| match v {
            Some(s) => parse_duration(&s).map_err(|e| format!("{key}: {e}")),
            None => Ok(cur),
        };
        let size = |key: &str, v: Option<String>, cur: u64| match v {
            Some(s) => parse_size(&s).map_err(|e| format!("{key}: {e}")),
            None => Ok(cur),
        };
        c.wait = opt("wait", file.wait, c.wait)?;
        c.timeout = opt("timeout", file.timeout, c.timeout)?;
        c.retention = opt("retention", file.retention, c.retention)?;
        c.kill_grace = req("kill_grace", file.kill_grace, c.kill_grace)?;
        c.drain = req("drain", file.drain, c.drain)?;
        c.output_cap = size("output_cap", file.output_cap, c.output_cap)?;
        c.spill = size("spill", file.spill, c.spill)?;
        c.tail = size("tail", file.tail, c.tail)?;
        c.retained_memory = size("retained_memory", file.retained_memory, c.retained_memory)?;
        c.apply_agent(file.agent, file.providers)?;
        Ok(c)
    }

    /// Applies a project's `.aside/config.toml` (its `[agent]` and `[providers]`) on top.
    pub fn with_project(&self, text: &str) -> Result<Self, String> {
        let mut file: ProjectFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut c = self.clone();
        if let Some(url) = &file.agent.base_url {
            c.keyless_urls.insert(url.clone());
        }
        for p in file.providers.values_mut() {
            c.keyless_urls.insert(p.base_url.clone());
            // Where keys come from is the user's choice, never a project's.
            p.api_key_env = None;
            p.api_key_file = None;
        }
        c.apply_agent(file.agent, file.providers)?;
        // Slots are the daemon's, shared by every project: a project cannot change them.
        c.agent.max_running = self.agent.max_running;
        Ok(c)
    }

    fn apply_agent(
        &mut self,
        f: FileAgent,
        providers: BTreeMap<String, Provider>,
    ) -> Result<(), String> {
        let a = &mut self.agent;
        if let Some(m) = f.model.filter(|m| !m.trim().is_empty()) {
            a.model = Some(m);
        }
        if let Some(p) = f.provider.filter(|p| !p.trim().is_empty()) {
            a.provider = Some(p);
        }
        if let Some(u) = f.base_url {
            a.base_url = u;
        }
        if let Some(n) = f.max_running {
            if n == 0 {
                return Err("agent.max_running must be at least 1".into());
            }
            a.max_running = n;
        }
        if let Some(n) = f.max_depth {
            a.max_depth = n;
        }
        if let Some(n) = f.max_turns {
            if n == 0 {
                return Err("agent.max_turns must be at least 1".into());
            }
            a.max_turns = n;
        }
        if let Some(s) = f.stall {
            a.stall = parse_limit(&s).map_err(|e| format!("agent.stall: {e}"))?;
        }
        if let Some(s) = f.wait {
            a.wait = parse_limit(&s).map_err(|e| format!("agent.wait: {e}"))?;
        }
        if let Some(s) = f.settle {
            a.settle = parse_duration(&s).map_err(|e| format!("agent.settle: {e}"))?;
        }
        if let Some(n) = f.tool_output {
            if n < 1000 {
                return Err("agent.tool_output must be at least 1000 characters".into());
            }
            a.tool_output = n;
        }
        if let Some(b) = f.stop_children {
            a.stop_children = b;
        }
        if let Some(n) = f.retries {
            a.retries = n;
        }
        for (name, p) in providers {
            check_group_name(&name).map_err(|e| format!("providers: {e}"))?;
            self.providers.insert(name, p);
        }
        if let Some(p) = &self.agent.provider {
            if !self.providers.contains_key(p) {
                return Err(format!(
                    "agent.provider names {p:?}, which no [providers.{p}] section defines"
                ));
            }
        }
        Ok(())
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

    /// Every setting with its value, one per line, in the config file's syntax.
    pub fn describe(&self) -> String {
        let d = |d: Option<Duration>| d.map_or_else(|| "none".to_string(), fmt_duration);
        let mut lines = vec![
            format!(
                "max_running = {:<14} # tasks running at once, over all groups",
                self.max_running
            ),
            format!(
                "wait = {:<21} # foreground wait budget, then the task moves to the background",
                q(&d(self.wait))
            ),
            format!(
                "timeout = {:<18} # hard limit, then the task is killed",
                q(&d(self.timeout))
            ),
            format!(
                "kill_grace = {:<15} # SIGTERM to SIGKILL when stopping",
                q(&fmt_duration(self.kill_grace))
            ),
            format!(
                "drain = {:<20} # output still read after exit while descendants hold the pipe",
                q(&fmt_duration(self.drain))
            ),
            format!(
                "output_cap = {:<15} # output past this stops the task (failed)",
                q(&fmt_size(self.output_cap))
            ),
            format!(
                "spill = {:<20} # foreground output kept in memory up to this, then logged",
                q(&fmt_size(self.spill))
            ),
            format!(
                "tail = {:<21} # recent output kept in memory per task",
                q(&fmt_size(self.tail))
            ),
            format!(
                "retained_memory = {:<10} # memory for output of finished foreground tasks",
                q(&fmt_size(self.retained_memory))
            ),
            format!(
                "retention = {:<16} # finished tasks are removed this long after they end",
                q(&d(self.retention))
            ),
        ];
        let a = &self.agent;
        lines.extend([
            "[agent]".to_string(),
            format!(
                "model = {:<20} # default model (ASIDE_MODEL wins; an agent's own model first)",
                q(a.model.as_deref().unwrap_or(""))
            ),
            format!(
                "provider = {:<17} # a [providers.NAME] to use instead of base_url",
                q(a.provider.as_deref().unwrap_or(""))
            ),
            format!(
                "base_url = {:<17} # OpenAI-compatible endpoint (OPENAI_BASE_URL wins)",
                q(&a.base_url)
            ),
            format!(
                "max_running = {:<14} # agents at once (groups \"{AGENT_GROUP}\", \"{SUBAGENT_GROUP}\")",
                a.max_running
            ),
            format!(
                "max_depth = {:<16} # 1: subagents cannot start subagents",
                a.max_depth
            ),
            format!("max_turns = {:<16} # model turns per agent task", a.max_turns),
            format!(
                "stall = {:<20} # an agent without progress this long is stopped",
                q(&d(a.stall))
            ),
            format!(
                "wait = {:<21} # a foreground task call waits this long, then backgrounds",
                q(&d(a.wait))
            ),
            format!(
                "settle = {:<19} # at its end an agent waits this long for its background tasks",
                q(&fmt_duration(a.settle))
            ),
            format!(
                "tool_output = {:<14} # characters of a tool result shown (head and tail)",
                a.tool_output
            ),
            format!(
                "stop_children = {:<12} # stopping an agent stops its background tasks",
                a.stop_children
            ),
            format!(
                "retries = {:<18} # retries of a model request after 429 or 5xx",
                a.retries
            ),
            "# [providers.NAME] base_url = \"...\", api_key_env = \"VAR\" or api_key_file = \"PATH\"".to_string(),
        ]);
        if self.groups.is_empty() {
            lines
                .push("[groups]                     # name = tasks at once, e.g. build = 2".into());
        } else {
            lines.push("[groups]".into());
            for (name, limit) in &self.groups {
                lines.push(format!("{name} = {limit}"));
            }
        }
        lines.join("\n")
    }
}

fn q(s: &str) -> String {
    format!("\"{s}\"")
}

fn check_group_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(format!(
            "group {name:?}: names are 1 to 64 characters of letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

/// Checks a group name given with a task.
pub fn validate_group(name: &str) -> Result<(), String> {
    check_group_name(name)
}

/// Reads a duration such as `500ms`, `30s`, `2m`, `1h`, `1h30m` or `7d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let d = humantime::parse_duration(s).map_err(|e| {
        format!("{s:?} is not a duration ({e}); write it like 500ms, 30s, 2m or 1h")
    })?;
    if d > MAX_DURATION {
        return Err(format!("{s:?} is longer than the limit of 10 years"));
    }
    Ok(d)
}

/// Reads a duration or `none`.
pub fn parse_limit(s: &str) -> Result<Option<Duration>, String> {
    if s.trim().eq_ignore_ascii_case("none") {
        Ok(None)
    } else {
        parse_duration(s).map(Some)
    }
}

/// Reads a size such as `1GiB`, `512KiB`, `1MB` or a plain number of bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size; write it like 64KiB, 1MiB or 1GiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(format!("{s:?}: unknown unit; use B, KiB, MiB or GiB")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

pub fn fmt_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    let ms = d.as_millis();
    let units = [
        (86_400_000u128, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
        (1, "ms"),
    ];
    let mut rest = ms;
    let mut out = String::new();
    for (size, name) in units {
        if rest >= size {
            out.push_str(&format!("{}{name}", rest / size));
            rest %= size;
        }
    }
    out
}

pub fn fmt_size(n: u64) -> String {
    for (size, name) in [
        (1u64 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ] {
        if n >= size && n.is_multiple_of(size) {
            return format!("{}{name}", n / size);
        }
    }
    format!("{n}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_describe() {
        let text = Config::default().describe();
        let parsed = Config::parse(&text).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn bad_values_are_refused_with_the_key() {
        assert!(Config::parse("max_running = 0")
            .unwrap_err()
            .contains("max_running"));
        assert!(Config::parse("[groups]\nbuild = 0")
            .unwrap_err()
            .contains("build"));
        assert!(Config::parse("wait = \"soon\"")
            .unwrap_err()
            .contains("wait"));
        assert!(Config::parse("timeout = \"1000000000h\"")
            .unwrap_err()
            .contains("10 years"));
        assert!(Config::parse("wiat = \"1s\"").is_err());
        let c = Config::parse("timeout = \"none\"\nwait = \"30s\"\n[groups]\nbuild = 2").unwrap();
        assert_eq!(c.wait, Some(Duration::from_secs(30)));
        assert_eq!(c.group_limit("build"), Some(2));
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_limit("none").unwrap(), None);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(fmt_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(fmt_size(64 << 10), "64KiB");
        assert!(parse_size("99999999999999GiB").is_err());
    }
}
