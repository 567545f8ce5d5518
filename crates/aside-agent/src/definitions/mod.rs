//! Agent definitions: the files other coding agents already keep them in.
//!
//! An agent is a system prompt plus a few settings. aside reads the formats people already have
//! rather than inventing its own ([`Format`]): Claude Code's `.claude/agents/*.md` and opencode's
//! `.opencode/agent(s)/*.md` load as they are, and `.aside/agents/*.md` uses the same format;
//! Gemini CLI's `.gemini/agents/*.md` (markdown with Gemini's own frontmatter fields) and
//! Codex's `.codex/agents/*.toml` have readers of their own. Tool names from every format are
//! mapped onto aside's own tools ([`Tool`]). In Claude's format, settings aside has no use for
//! are ignored silently, as that format is shared by tools with settings of their own; in
//! Gemini's and Codex's, each field aside does not honour is named in a [`Warning`].
//!
//! [`discover`] never fails: a broken file becomes a [`Warning`] naming the file and what is
//! wrong with it, and every other agent still loads, so one bad file cannot take away the rest.
//!
//! # JSON
//!
//! Everything here serializes with serde for `aside agents --json`. A [`Catalog`] is
//! `{"agents": [AgentDef, ...], "warnings": [{"path": ..., "message": ...}]}` with the agents
//! sorted by name. [`Source`] is externally tagged: the string `"builtin"`, or
//! `{"file": "/path/to/agent.md"}`. Paths that are not valid UTF-8 are written lossily rather
//! than failing the whole listing.

mod builtin;
mod codex;
mod discover;
mod error;
mod frontmatter;
mod gemini;
mod parse;
mod tools;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use aside_protocol::Tool;
use serde::{Serialize, Serializer};

pub use builtin::builtins;
pub use discover::{discover, search_dirs};
pub use error::{DefinitionError, FieldError, Found};
pub use parse::{parse, parse_with_warnings};
pub use tools::map_tool_name;

/// Parses one definition file's text as `format` says, with the problems that did not stop the
/// agent from loading: tool names aside has no equivalent for, and (for Gemini CLI's and
/// Codex's files) each field aside does not honour.
pub fn parse_format(
    format: Format,
    path: &Path,
    text: &str,
) -> Result<(AgentDef, Vec<Warning>), DefinitionError> {
    match format {
        Format::Claude => parse_with_warnings(path, text),
        Format::Gemini => gemini::parse(path, text),
        Format::Codex => codex::parse(path, text),
    }
}

/// One agent: what it is for, which tools and model it gets, and its system prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentDef {
    pub name: String,
    pub description: String,
    /// Allow-list; None = every tool.
    pub tools: Option<Vec<Tool>>,
    /// Tools the agent must not use, even if `tools` allows them.
    pub disallowed_tools: Vec<Tool>,
    /// None = the configured default model.
    pub model: Option<String>,
    pub max_turns: Option<u32>,
    /// The default mode when the caller does not say: background if true.
    pub background: bool,
    /// An external agent: run this command (argv) with the prompt appended as the last argument,
    /// instead of a model. None for model agents.
    pub command: Option<Vec<String>>,
    /// The system prompt (the markdown body, trimmed).
    pub prompt: String,
    pub source: Source,
}

impl AgentDef {
    /// Whether the agent may use `tool`: it is on the allow-list (or there is none) and not on
    /// the deny-list. The two lists come from different fields and formats, so callers should
    /// ask here rather than combine them themselves.
    pub fn allows_tool(&self, tool: Tool) -> bool {
        let allowed = self
            .tools
            .as_ref()
            .is_none_or(|tools| tools.contains(&tool));
        allowed && !self.disallowed_tools.contains(&tool)
    }

    /// The tools the agent may use, in [`Tool::ALL`] order.
    pub fn effective_tools(&self) -> Vec<Tool> {
        Tool::ALL
            .into_iter()
            .filter(|&tool| self.allows_tool(tool))
            .collect()
    }
}

/// The format of a definition file, which the directory it is in decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Claude Code's markdown with YAML frontmatter, which opencode's and aside's files share.
    Claude,
    /// Gemini CLI's subagents: markdown with YAML frontmatter of Gemini's fields.
    Gemini,
    /// Codex's custom agents: one TOML file each.
    Codex,
}

impl Format {
    /// The file-name extension of this format's files.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Claude | Format::Gemini => "md",
            Format::Codex => "toml",
        }
    }
}

/// Where an agent definition came from. Serializes as `"builtin"` or `{"file": "<path>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Builtin,
    File(#[serde(serialize_with = "serialize_path")] PathBuf),
}

/// A problem with one definition file. The file was skipped, or (for tool names aside does not
/// have) loaded without the parts it could not use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    #[serde(serialize_with = "serialize_path")]
    pub path: PathBuf,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// The agents found by [`discover`], one per name, plus the warnings collected on the way.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Catalog {
    /// Keyed by name so that a later definition replaces an earlier one, and listings come out
    /// sorted. Serialized as a list, since each definition carries its name.
    #[serde(serialize_with = "serialize_agents")]
    agents: BTreeMap<String, AgentDef>,
    pub warnings: Vec<Warning>,
}

impl Catalog {
    /// The agent called `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&AgentDef> {
        self.agents.get(name)
    }

    /// Every agent, sorted by name.
    pub fn agents(&self) -> impl Iterator<Item = &AgentDef> {
        self.agents.values()
    }

    /// The problems found while loading, in the order the files were read.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    fn insert(&mut self, def: AgentDef) {
        self.agents.insert(def.name.clone(), def);
    }
}

/// The directories [`discover`] searches. Any of them may be missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Roots {
    /// The project root: its `.claude`, `.opencode`, `.aside`, `.gemini` and `.codex`
    /// directories are searched.
    pub project: Option<PathBuf>,
    /// The user's home directory, for `~/.claude/agents`.
    pub user_home: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME`, or `~/.config`: for opencode's and aside's user agents.
    pub user_config: Option<PathBuf>,
    /// The directory Gemini CLI keeps its `.gemini` in: `$GEMINI_CLI_HOME`, or the home
    /// directory.
    pub gemini_home: Option<PathBuf>,
    /// Codex's own directory: `$CODEX_HOME`, or `~/.codex`.
    pub codex_home: Option<PathBuf>,
}

impl Roots {
    /// Roots from the environment: `$HOME`; `$XDG_CONFIG_HOME` falling back to `~/.config`;
    /// `$GEMINI_CLI_HOME` falling back to `$HOME`; `$CODEX_HOME` falling back to `~/.codex`.
    /// Relative values are ignored (the XDG spec requires it, and the others would depend on
    /// the working directory of whichever process reads them).
    pub fn from_env(project: Option<PathBuf>) -> Roots {
        let absolute = |var: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|dir| dir.is_absolute())
        };
        let user_home = std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(PathBuf::from);
        let user_config = absolute("XDG_CONFIG_HOME")
            .or_else(|| user_home.as_ref().map(|home| home.join(".config")));
        let gemini_home = absolute("GEMINI_CLI_HOME").or_else(|| user_home.clone());
        let codex_home =
            absolute("CODEX_HOME").or_else(|| user_home.as_ref().map(|home| home.join(".codex")));
        Roots {
            project,
            user_home,
            user_config,
            gemini_home,
            codex_home,
        }
    }
}

/// Paths as strings, lossily: a listing should not fail over one odd file name.
fn serialize_path<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}

fn serialize_agents<S: Serializer>(
    agents: &BTreeMap<String, AgentDef>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(agents.values())
}
