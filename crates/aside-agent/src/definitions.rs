//! Agent definitions: markdown files with YAML frontmatter.
//!
//! An agent is a system prompt (the markdown body) plus a few settings (the frontmatter). aside
//! reads the formats people already have rather than inventing its own: Claude Code's
//! `.claude/agents/*.md` and opencode's `.opencode/agent(s)/*.md` load as they are, and
//! `.aside/agents/*.md` uses the same format. Tool names from those formats are mapped onto
//! aside's own tools ([`Tool`]); settings aside has no use for are ignored.
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

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

pub use aside_protocol::Tool;
use serde::{Serialize, Serializer};
use serde_yaml_ng::{Mapping, Value};

/// Claude's model tier aliases. They name no model on an OpenAI-compatible server, so an agent
/// that asks for one gets the configured default model instead.
const MODEL_ALIASES: &[&str] = &["inherit", "sonnet", "opus", "haiku"];

/// The longest agent name allowed; names appear in task ids and listings.
const MAX_NAME_LEN: usize = 64;

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
#[derive(Debug, Clone, Serialize)]
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
    /// The project root: its `.claude`, `.opencode` and `.aside` directories are searched.
    pub project: Option<PathBuf>,
    /// The user's home directory, for `~/.claude/agents`.
    pub user_home: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME`, or `~/.config`: for opencode's and aside's user agents.
    pub user_config: Option<PathBuf>,
}

impl Roots {
    /// Roots from the environment: `$HOME`, and `$XDG_CONFIG_HOME` falling back to
    /// `~/.config` (a relative `$XDG_CONFIG_HOME` is ignored, as the XDG spec requires).
    pub fn from_env(project: Option<PathBuf>) -> Roots {
        let user_home = std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(PathBuf::from);
        let user_config = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|dir| dir.is_absolute())
            .or_else(|| user_home.as_ref().map(|home| home.join(".config")));
        Roots {
            project,
            user_home,
            user_config,
        }
    }
}

/// The directories searched for `*.md` definitions, lowest precedence first: user directories,
/// then project directories, so that a project's agent replaces a user's of the same name (and
/// both replace the built-ins).
pub fn search_dirs(roots: &Roots) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(home) = &roots.user_home {
        dirs.push(home.join(".claude").join("agents"));
    }
    if let Some(config) = &roots.user_config {
        dirs.push(config.join("opencode").join("agent"));
        dirs.push(config.join("opencode").join("agents"));
        dirs.push(config.join("aside").join("agents"));
    }
    if let Some(project) = &roots.project {
        dirs.push(project.join(".claude").join("agents"));
        dirs.push(project.join(".opencode").join("agent"));
        dirs.push(project.join(".opencode").join("agents"));
        dirs.push(project.join(".aside").join("agents"));
    }
    // A project that is the home directory would list `~/.claude/agents` twice; keep each
    // directory once, at its later (higher-precedence) place.
    let mut seen = std::collections::HashSet::new();
    let mut unique: Vec<PathBuf> = dirs
        .into_iter()
        .rev()
        .filter(|d| seen.insert(d.canonicalize().unwrap_or_else(|_| d.clone())))
        .collect();
    unique.reverse();
    unique
}

/// Finds every agent: the built-ins, then each of [`search_dirs`] in order, a later definition
/// replacing an earlier one of the same name. Files are read in file-name order within a
/// directory so the result does not depend on the file system's listing order.
pub fn discover(roots: &Roots) -> Catalog {
    let mut catalog = Catalog {
        agents: BTreeMap::new(),
        warnings: Vec::new(),
    };
    for def in builtins() {
        catalog.insert(def);
    }
    for dir in search_dirs(roots) {
        load_dir(&dir, &mut catalog);
    }
    catalog
}

/// The agents aside always has, before any file is read. A file may replace them by name.
pub fn builtins() -> Vec<AgentDef> {
    let builtin =
        |name: &str, description: &str, tools: Option<Vec<Tool>>, prompt: &str| AgentDef {
            name: name.to_string(),
            description: description.to_string(),
            tools,
            disallowed_tools: Vec::new(),
            model: None,
            max_turns: None,
            background: false,
            command: None,
            prompt: prompt.to_string(),
            source: Source::Builtin,
        };
    vec![
        builtin(
            "general",
            "General-purpose agent for multi-step tasks: researching, searching code, running \
             commands, making changes.",
            None,
            GENERAL_PROMPT,
        ),
        builtin(
            "explore",
            "Fast read-only agent for exploring a codebase: finds files, searches code, answers \
             questions about it.",
            Some(Tool::ALL.into_iter().filter(|t| t.is_read_only()).collect()),
            EXPLORE_PROMPT,
        ),
    ]
}

const GENERAL_PROMPT: &str = "\
You are a general-purpose agent working on a task another agent handed to you. Use your tools \
to research, search code, run commands and make changes as the task requires. Work on your own \
until the task is done: nobody will answer questions, so make reasonable choices and state them. \
Check your work where you can (build, run the tests). When you finish, reply with a short report \
of what you found or changed, with the file paths involved; that reply is all the caller sees.";

const EXPLORE_PROMPT: &str = "\
You are a read-only agent for exploring a codebase. You cannot modify anything: you have no \
tools to write or edit files or to run commands, so do not try or offer to. Use glob to find \
files, grep to search their contents, and read to look at them. Be quick: search broadly first, \
then read only what you need. When you finish, answer the question directly and cite file paths \
(with line numbers where they help); your reply is all the caller sees.";

/// Loads every `*.md` file directly in `dir` into `catalog`. A missing directory is normal (most
/// people have only some of them) and is skipped silently; one that exists but cannot be read
/// is worth a warning.
fn load_dir(dir: &Path, catalog: &mut Catalog) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if matches!(err.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => return,
        Err(err) => {
            catalog.warnings.push(Warning {
                path: dir.to_path_buf(),
                message: format!("cannot read the directory: {err}"),
            });
            return;
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) if is_definition_file(&entry.path()) => files.push(entry.path()),
            Ok(_) => {}
            Err(err) => catalog.warnings.push(Warning {
                path: dir.to_path_buf(),
                message: format!("cannot list the directory: {err}"),
            }),
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    for path in files {
        match load_file(&path) {
            Ok((def, warnings)) => {
                catalog.insert(def);
                catalog.warnings.extend(warnings);
            }
            Err(message) => catalog.warnings.push(Warning { path, message }),
        }
    }
}

/// A `*.md` file (or a symlink to one). Hidden files are skipped, as a shell's `*.md` would, so
/// editors' lock and backup files (`.#agent.md`) are not read as agents.
fn is_definition_file(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .is_some_and(|name| name.as_encoded_bytes().starts_with(b"."));
    !hidden && path.extension().is_some_and(|ext| ext == "md") && path.is_file()
}

fn load_file(path: &Path) -> Result<(AgentDef, Vec<Warning>), String> {
    let bytes = fs::read(path).map_err(|err| format!("cannot read the file: {err}"))?;
    let text = String::from_utf8(bytes).map_err(|_| "the file is not valid UTF-8".to_string())?;
    parse_with_warnings(path, &text)
}

/// Parses one definition file's text. `path` gives the default name (the file stem) and the
/// [`Source`]. The error says what is wrong, naming the field when a field is at fault.
pub fn parse(path: &Path, text: &str) -> Result<AgentDef, String> {
    parse_with_warnings(path, text).map(|(def, _)| def)
}

/// Like [`parse`], but also returns the problems that did not stop the agent from loading:
/// tool names aside has no equivalent for, which are left out.
pub fn parse_with_warnings(path: &Path, text: &str) -> Result<(AgentDef, Vec<Warning>), String> {
    let (yaml, body) = split_frontmatter(text)?;
    let fields = match parse_yaml(&yaml)? {
        Value::Mapping(map) => map,
        // `---` directly followed by `---`: no fields, every default.
        Value::Null => Mapping::new(),
        other => {
            return Err(format!(
                "the frontmatter must be a mapping of fields, not {}",
                describe(&other)
            ))
        }
    };
    let mut unknown_tools = Vec::new();
    let def = build(path, &fields, body, &mut unknown_tools)?;
    let warnings = if unknown_tools.is_empty() {
        Vec::new()
    } else {
        vec![Warning {
            path: path.to_path_buf(),
            message: format!(
                "agent {:?}: ignoring tools aside does not have: {}",
                def.name,
                unknown_tools.join(", ")
            ),
        }]
    };
    Ok((def, warnings))
}

/// Splits a file into its frontmatter and body. The YAML text returned starts with an empty
/// line standing in for the opening `---`, so line numbers in YAML errors match the file's.
fn split_frontmatter(text: &str) -> Result<(String, &str), String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or_default();
    if first.trim_end() != "---" {
        return Err(
            "no YAML frontmatter: an agent file must start with a `---` line, then the fields, \
             then another `---` line"
                .to_string(),
        );
    }
    let mut offset = first.len();
    let mut yaml = String::from("\n");
    for line in lines {
        offset += line.len();
        if line.trim_end() == "---" {
            return Ok((yaml, &text[offset..]));
        }
        yaml.push_str(line);
    }
    Err("the frontmatter has no closing `---` line".to_string())
}

/// Parses the frontmatter as YAML. Claude Code writes descriptions like
/// `description: Use this agent when... Context: ... user: "..."` unquoted, which is not valid
/// YAML (`: ` inside a plain value) but which Claude Code itself loads; so when the strict parse
/// fails, such single-line values are quoted and the parse tried once more. If that fails too,
/// the error is the strict parser's, which points at the real problem.
fn parse_yaml(yaml: &str) -> Result<Value, String> {
    let strict = match serde_yaml_ng::from_str::<Value>(yaml) {
        Ok(value) => return Ok(value),
        Err(err) => err,
    };
    if let Some(repaired) = quote_colon_values(yaml) {
        if let Ok(value) = serde_yaml_ng::from_str::<Value>(&repaired) {
            return Ok(value);
        }
    }
    Err(format!("invalid YAML in the frontmatter: {strict}"))
}

/// Rewrites top-level `key: value` lines whose plain value contains `: ` (or ends in `:`) as
/// `key: "value"`, keeping the value's text exactly. Returns None when no line needed it. A
/// value continued on indented lines is left alone: quoting only its first line would change it.
fn quote_colon_values(yaml: &str) -> Option<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = String::with_capacity(yaml.len() + 16);
    let mut changed = false;
    for (i, line) in lines.iter().enumerate() {
        let continued = lines
            .get(i + 1)
            .is_some_and(|next| next.starts_with([' ', '\t']) && !next.trim().is_empty());
        match plain_entry(line) {
            Some((key, value))
                if !continued
                    && (value.contains(": ") || value.contains(":\t") || value.ends_with(':')) =>
            {
                // A JSON string is also a valid YAML double-quoted string.
                let quoted = serde_json::to_string(value).ok()?;
                out.push_str(key);
                out.push_str(": ");
                out.push_str(&quoted);
                changed = true;
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    changed.then_some(out)
}

/// A top-level `key: value` line whose value is a plain (unquoted, non-flow, non-block) scalar.
fn plain_entry(line: &str) -> Option<(&str, &str)> {
    let (key, rest) = line.split_once(':')?;
    let key_ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !key_ok || !rest.starts_with([' ', '\t']) {
        return None;
    }
    let value = rest.trim();
    let plain = !value.is_empty()
        && !value.starts_with([
            '"', '\'', '[', '{', '|', '>', '&', '*', '!', '#', '%', '@', '`',
        ]);
    plain.then_some((key, value))
}

/// Builds the definition from the frontmatter fields. Unknown fields are ignored, so files
/// written for Claude Code or opencode (`color`, `mode`, `temperature`, ...) load unchanged.
fn build(
    path: &Path,
    fields: &Mapping,
    body: &str,
    unknown_tools: &mut Vec<String>,
) -> Result<AgentDef, String> {
    let name = match field(fields, &["name"]) {
        Some((key, value)) => {
            let name = scalar_string(key, value)?;
            validate_name(&name).map_err(|why| format!("invalid agent name {name:?}: {why}"))?;
            name
        }
        None => {
            let stem = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .ok_or_else(|| {
                    "the file name is not valid UTF-8; set `name` in the frontmatter".to_string()
                })?;
            validate_name(stem).map_err(|why| {
                format!(
                    "invalid agent name {stem:?} (taken from the file name; set `name` in the \
                     frontmatter): {why}"
                )
            })?;
            stem.to_string()
        }
    };

    let description = match field(fields, &["description"]) {
        Some((key, value)) => scalar_string(key, value)?.trim().to_string(),
        None => String::new(),
    };

    let mut tools = None;
    let mut disallowed = Vec::new();
    match field(fields, &["tools"]) {
        None => {}
        // opencode: `tools: {write: false, bash: true}` only ever takes tools away.
        Some((key, Value::Mapping(map))) => disallowed = disabled_tools(key, map)?,
        Some((key, value)) => {
            let names = tool_list(key, value)?;
            // `*` is Claude Code's way of saying every tool.
            if !names.iter().any(|n| n == "*") {
                tools = Some(map_tools(&names, Some(unknown_tools)));
            }
        }
    }
    if let Some((key, value)) = field(fields, &["disallowedTools", "disallowed_tools"]) {
        // A tool aside does not have cannot be used anyway, so unknown names here need no
        // warning: Claude files commonly deny WebFetch and the like.
        disallowed.extend(map_tools(&tool_list(key, value)?, None));
    }
    dedup(&mut disallowed);

    let model = match field(fields, &["model"]) {
        Some((key, value)) => {
            let model = scalar_string(key, value)?.trim().to_string();
            let alias = MODEL_ALIASES
                .iter()
                .any(|alias| model.eq_ignore_ascii_case(alias));
            (!alias && !model.is_empty()).then_some(model)
        }
        None => None,
    };

    let max_turns = match field(fields, &["maxTurns", "max_turns", "maxSteps"]) {
        Some((key, value)) => Some(positive_integer(key, value)?),
        None => None,
    };

    let background = match field(fields, &["background"]) {
        Some((_, Value::Bool(background))) => *background,
        Some((key, other)) => {
            return Err(format!(
                "`{key}` must be true or false, got {}",
                describe(other)
            ))
        }
        None => false,
    };

    let command = match field(fields, &["command"]) {
        Some((key, value)) => Some(command(key, value)?),
        None => None,
    };

    Ok(AgentDef {
        name,
        description,
        tools,
        disallowed_tools: disallowed,
        model,
        max_turns,
        background,
        command,
        prompt: body.trim().to_string(),
        source: Source::File(path.to_path_buf()),
    })
}

/// The first of `keys` present with a value; the key is returned so errors name the spelling
/// the file used. `key:` with nothing after it counts as absent, as an empty field would.
fn field<'a>(fields: &'a Mapping, keys: &[&'static str]) -> Option<(&'static str, &'a Value)> {
    keys.iter().find_map(|&key| match fields.get(key) {
        None | Some(Value::Null) => None,
        Some(value) => Some((key, value)),
    })
}

/// A field meant as text. Numbers and booleans are taken as written, since YAML turns an
/// unquoted `name: 2024` into a number the author did not intend.
fn scalar_string(key: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("`{key}` must be a string, got {}", describe(other))),
    }
}

fn validate_name(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    // Every accepted character is ASCII, so the byte length is the character count.
    if first_ok && rest_ok && name.len() <= MAX_NAME_LEN {
        Ok(())
    } else {
        Err("a name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    }
}

/// Tool names given as a comma-separated string (`Read, Grep, Glob`) or a list.
fn tool_list(key: &str, value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::String(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_string)
            .collect()),
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.trim().to_string()),
                other => Err(format!(
                    "`{key}` item {} must be a tool name, got {}",
                    i + 1,
                    describe(other)
                )),
            })
            .collect(),
        other => Err(format!(
            "`{key}` must be a comma-separated string or a list of tool names, got {}",
            describe(other)
        )),
    }
}

/// opencode's tool map: each entry turns the tools its key names on or off, later entries
/// winning, and keys may be wildcards (`"*": false`, `"mymcp_*": false`). The tools left off
/// are denied. Keys naming tools aside lacks change nothing, so they are ignored quietly.
fn disabled_tools(key: &str, map: &Mapping) -> Result<Vec<Tool>, String> {
    let mut enabled = [true; Tool::ALL.len()];
    for (tool_key, on) in map {
        let Value::String(pattern) = tool_key else {
            return Err(format!(
                "`{key}` keys must be tool names, got {}",
                describe(tool_key)
            ));
        };
        let Value::Bool(on) = on else {
            return Err(format!(
                "`{key}.{pattern}` must be true or false, got {}",
                describe(on)
            ));
        };
        let wildcard = pattern.contains(['*', '?']);
        let mapped = map_tool_name(pattern);
        for (slot, tool) in enabled.iter_mut().zip(Tool::ALL) {
            let hit = if wildcard {
                wildcard_match(pattern, tool.name())
            } else {
                mapped == Some(tool)
            };
            if hit {
                *slot = *on;
            }
        }
    }
    Ok(Tool::ALL
        .into_iter()
        .zip(enabled)
        .filter(|(_, on)| !on)
        .map(|(tool, _)| tool)
        .collect())
}

/// Matches `*` (any run) and `?` (any one character) against `text`, by backtracking to the last
/// `*`: linear enough for tool names, and no glob crate semantics (path separators) to trip on.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((star_p, star_t)) = star {
            pi = star_p + 1;
            ti = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Maps names to aside tools, deduplicated in first-seen order. Names with no aside equivalent
/// are dropped, and recorded in `unknown` when the caller wants to warn about them.
fn map_tools(names: &[String], mut unknown: Option<&mut Vec<String>>) -> Vec<Tool> {
    let mut tools = Vec::new();
    for name in names {
        match map_tool_name(name) {
            Some(tool) => tools.push(tool),
            None => {
                if let Some(unknown) = unknown.as_deref_mut() {
                    if !unknown.contains(name) {
                        unknown.push(name.clone());
                    }
                }
            }
        }
    }
    dedup(&mut tools);
    tools
}

/// The aside tool a Claude Code, opencode or aside tool name stands for, ignoring case.
/// None for tools aside does not have (WebFetch, NotebookEdit, MCP tools, ...), and for
/// permission patterns like `Bash(git:*)`: aside cannot narrow a tool that way, and granting the
/// whole tool would give the agent more than its author meant.
pub fn map_tool_name(name: &str) -> Option<Tool> {
    let tool = match name.trim().to_ascii_lowercase().as_str() {
        "bash" => Tool::Bash,
        "read" => Tool::Read,
        "write" => Tool::Write,
        "edit" | "multiedit" | "patch" => Tool::Edit,
        "glob" | "ls" | "list" => Tool::Glob,
        "grep" => Tool::Grep,
        "task" | "agent" => Tool::Task,
        "task_output" | "taskoutput" | "bashoutput" => Tool::TaskOutput,
        "task_list" | "tasklist" => Tool::TaskList,
        "task_stop" | "taskstop" | "killshell" | "killbash" => Tool::TaskStop,
        _ => return None,
    };
    Some(tool)
}

/// Removes repeats, keeping each tool's first position.
fn dedup(tools: &mut Vec<Tool>) {
    let mut seen = std::collections::HashSet::new();
    tools.retain(|&tool| seen.insert(tool));
}

fn positive_integer(key: &str, value: &Value) -> Result<u32, String> {
    let n = match value {
        Value::Number(n) => n.as_u64(),
        _ => None,
    };
    n.filter(|&n| n > 0)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            format!(
                "`{key}` must be a positive integer, got {}",
                describe(value)
            )
        })
}

/// An external agent's argv: a list of strings, or one string split as a shell would (quotes
/// group words; no variables or globbing, since nothing runs a shell).
fn command(key: &str, value: &Value) -> Result<Vec<String>, String> {
    let argv = match value {
        Value::String(line) => shlex::split(line)
            .ok_or_else(|| format!("`{key}` has an unclosed quote or a trailing backslash"))?,
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                scalar_string(key, item).map_err(|_| {
                    format!(
                        "`{key}` item {} must be a string, got {}",
                        i + 1,
                        describe(item)
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        other => {
            return Err(format!(
                "`{key}` must be a command line string or a list of arguments, got {}",
                describe(other)
            ))
        }
    };
    match argv.first() {
        None => Err(format!("`{key}` is empty")),
        Some(program) if program.is_empty() => Err(format!("`{key}` has an empty program name")),
        Some(_) => Ok(argv),
    }
}

/// A value as an error message shows it: scalars as written, containers by kind.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Sequence(_) => "a list".to_string(),
        Value::Mapping(_) => "a mapping".to_string(),
        Value::Tagged(tagged) => format!("a value tagged {}", tagged.tag),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
        fs::create_dir_all(dir).unwrap();
        let path = dir.join(file);
        fs::write(&path, text).unwrap();
        path
    }

    fn parse_ok(text: &str) -> AgentDef {
        parse(Path::new("/agents/sample.md"), text).unwrap()
    }

    fn parse_err(text: &str) -> String {
        parse(Path::new("/agents/sample.md"), text).unwrap_err()
    }

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Tools by their wire names, so expectations read like the files they test.
    fn tools(names: &[&str]) -> Vec<Tool> {
        names.iter().map(|name| name.parse().unwrap()).collect()
    }

    #[test]
    fn claude_format_with_comma_separated_tools() {
        let def = parse_ok(
            "---\nname: code-reviewer\ndescription: Reviews code for quality.\n\
             tools: Read, Grep, Glob, Bash\nmodel: sonnet\ncolor: blue\n---\n\n\
             You are a senior code reviewer.\n\nBe thorough.\n\n",
        );
        assert_eq!(def.name, "code-reviewer");
        assert_eq!(def.description, "Reviews code for quality.");
        assert_eq!(def.tools, Some(tools(&["read", "grep", "glob", "bash"])));
        assert!(def.disallowed_tools.is_empty());
        assert_eq!(def.model, None);
        assert_eq!(def.max_turns, None);
        assert!(!def.background);
        assert_eq!(def.command, None);
        assert_eq!(
            def.prompt,
            "You are a senior code reviewer.\n\nBe thorough."
        );
        assert_eq!(def.source, Source::File(PathBuf::from("/agents/sample.md")));
    }

    #[test]
    fn list_tools_are_mapped_and_deduplicated() {
        let def = parse_ok(
            "---\ntools:\n  - read\n  - MultiEdit\n  - Edit\n  - LS\n  - Agent\n  - BashOutput\n  \
             - KillShell\n  - TaskList\n  - task_stop\n---\nbody\n",
        );
        assert_eq!(def.name, "sample", "the name defaults to the file stem");
        assert_eq!(def.description, "", "a missing description is not an error");
        assert_eq!(
            def.tools,
            Some(tools(&[
                "read",
                "edit",
                "glob",
                "task",
                "task_output",
                "task_stop",
                "task_list"
            ]))
        );
    }

    #[test]
    fn star_and_empty_tools() {
        assert_eq!(parse_ok("---\ntools: \"*\"\n---\n").tools, None);
        assert_eq!(parse_ok("---\ntools:\n---\n").tools, None, "empty = absent");
        assert_eq!(parse_ok("---\ntools: []\n---\n").tools, Some(vec![]));
    }

    #[test]
    fn opencode_tool_map_and_max_steps() {
        let def = parse_ok(
            "---\ndescription: Writes docs\nmode: subagent\nmodel: anthropic/claude-sonnet-4\n\
             temperature: 0.1\nmaxSteps: 12\ntools:\n  write: false\n  bash: false\n  \
             read: true\n  webfetch: false\n---\nWrite docs.\n",
        );
        assert_eq!(def.tools, None, "the map form does not restrict");
        assert_eq!(def.disallowed_tools, tools(&["bash", "write"]));
        assert_eq!(def.max_turns, Some(12));
        assert_eq!(def.model.as_deref(), Some("anthropic/claude-sonnet-4"));
        assert!(def.allows_tool(Tool::Read));
        assert!(!def.allows_tool(Tool::Bash));
    }

    #[test]
    fn opencode_tool_map_wildcards_apply_in_order() {
        let def = parse_ok("---\ntools:\n  \"*\": false\n  read: true\n  Grep: true\n---\n");
        assert_eq!(def.effective_tools(), tools(&["read", "grep"]));
        let def = parse_ok("---\ntools:\n  \"task_*\": false\n---\n");
        assert_eq!(
            def.disallowed_tools,
            tools(&["task_output", "task_list", "task_stop"])
        );
    }

    #[test]
    fn primary_mode_agents_still_load() {
        let def = parse_ok("---\nmode: primary\n---\nbody");
        assert_eq!(def.name, "sample");
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let def = parse_ok(
            "---\nname: x\ncolor: red\npermission:\n  edit: deny\nhooks: [1, 2]\n\
             skills: {a: b}\n---\nbody",
        );
        assert_eq!(def.name, "x");
        assert_eq!(def.prompt, "body");
    }

    #[test]
    fn disallowed_tools_as_string_or_list() {
        let def = parse_ok("---\ndisallowedTools: Write, Edit, WebFetch\n---\n");
        assert_eq!(def.disallowed_tools, tools(&["write", "edit"]));
        let def = parse_ok("---\ndisallowed_tools: [Bash, KillBash]\n---\n");
        assert_eq!(def.disallowed_tools, tools(&["bash", "task_stop"]));
        assert_eq!(
            def.effective_tools(),
            tools(&[
                "read",
                "write",
                "edit",
                "glob",
                "grep",
                "task",
                "task_output",
                "task_list"
            ])
        );
    }

    #[test]
    fn unmapped_tool_names_warn_and_the_agent_loads() {
        let path = Path::new("/p/.claude/agents/web.md");
        let (def, warnings) = parse_with_warnings(
            path,
            "---\ntools: Read, WebFetch, mcp__github__search, NotebookEdit, Bash(git:*), read\n---\n",
        )
        .unwrap();
        assert_eq!(def.tools, Some(tools(&["read"])));
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].path, path);
        let message = &warnings[0].message;
        for name in [
            "WebFetch",
            "mcp__github__search",
            "NotebookEdit",
            "Bash(git:*)",
        ] {
            assert!(message.contains(name), "{message}");
        }
        let (_, warnings) = parse_with_warnings(path, "---\ntools: Read\n---\n").unwrap();
        assert!(warnings.is_empty());
    }

    #[test]
    fn model_aliases_mean_the_default_model() {
        for alias in ["inherit", "sonnet", "opus", "haiku", "Opus", "''"] {
            let def = parse_ok(&format!("---\nmodel: {alias}\n---\n"));
            assert_eq!(def.model, None, "{alias}");
        }
        let def = parse_ok("---\nmodel: qwen2.5-coder:32b\n---\n");
        assert_eq!(def.model.as_deref(), Some("qwen2.5-coder:32b"));
    }

    #[test]
    fn max_turns_must_be_a_positive_integer() {
        assert_eq!(parse_ok("---\nmaxTurns: 5\n---\n").max_turns, Some(5));
        assert_eq!(parse_ok("---\nmax_turns: 7\n---\n").max_turns, Some(7));
        for bad in ["0", "-3", "2.5", "ten", "[1]", "99999999999"] {
            let err = parse_err(&format!("---\nmaxTurns: {bad}\n---\n"));
            assert!(
                err.contains("`maxTurns` must be a positive integer"),
                "{err}"
            );
        }
        let err = parse_err("---\nmaxSteps: 0\n---\n");
        assert!(err.contains("`maxSteps`"), "{err}");
    }

    #[test]
    fn background_flag() {
        assert!(parse_ok("---\nbackground: true\n---\n").background);
        assert!(!parse_ok("---\nbackground: false\n---\n").background);
        let err = parse_err("---\nbackground: sometimes\n---\n");
        assert!(err.contains("`background` must be true or false"), "{err}");
    }

    #[test]
    fn command_string_is_split_like_a_shell() {
        let def = parse_ok(
            "---\ncommand: codex exec --model 'o4 mini' \"--flag=a b\" plain\n---\nunused",
        );
        assert_eq!(
            def.command,
            Some(strings(&[
                "codex",
                "exec",
                "--model",
                "o4 mini",
                "--flag=a b",
                "plain"
            ]))
        );
        let err = parse_err("---\ncommand: \"codex 'unclosed\"\n---\n");
        assert!(err.contains("`command`"), "{err}");
    }

    #[test]
    fn command_list() {
        let def = parse_ok("---\ncommand: [gemini, -p, \"with space\"]\n---\n");
        assert_eq!(def.command, Some(strings(&["gemini", "-p", "with space"])));
        for empty in ["[]", "\"\"", "\"   \"", "[\"\"]"] {
            let err = parse_err(&format!("---\ncommand: {empty}\n---\n"));
            assert!(err.contains("`command`"), "{empty}: {err}");
        }
        let err = parse_err("---\ncommand: [a, [b]]\n---\n");
        assert!(err.contains("`command` item 2"), "{err}");
    }

    #[test]
    fn missing_or_unclosed_frontmatter() {
        assert!(parse_err("# Just markdown\n\nname: x\n").contains("no YAML frontmatter"));
        assert!(parse_err("").contains("no YAML frontmatter"));
        assert!(parse_err("---\nname: x\nbody").contains("no closing `---`"));
        // A byte-order mark and CRLF line endings are fine.
        let def = parse_ok("\u{feff}---\r\nname: crlf\r\n---\r\nbody\r\n");
        assert_eq!(def.name, "crlf");
        assert_eq!(def.prompt, "body");
    }

    #[test]
    fn bad_names() {
        for bad in ["-dash", "has space", "slash/y", "ünï", &"a".repeat(65)] {
            let err = parse_err(&format!("---\nname: \"{bad}\"\n---\n"));
            assert!(err.contains("invalid agent name"), "{bad}: {err}");
        }
        assert_eq!(
            parse_ok(&format!("---\nname: {}\n---\n", "a".repeat(64)))
                .name
                .len(),
            64
        );
        assert_eq!(parse_ok("---\nname: A1.b_c-d\n---\n").name, "A1.b_c-d");
        let err = parse(Path::new("/x/my agent.md"), "---\n---\n").unwrap_err();
        assert!(err.contains("taken from the file name"), "{err}");
        let err = parse_err("---\nname: [a]\n---\n");
        assert!(err.contains("`name` must be a string"), "{err}");
    }

    #[test]
    fn wrong_types_name_the_field() {
        let err = parse_err("---\ntools: 5\n---\n");
        assert!(err.contains("`tools`"), "{err}");
        let err = parse_err("---\ntools: [Read, {a: b}]\n---\n");
        assert!(err.contains("`tools` item 2"), "{err}");
        let err = parse_err("---\ntools:\n  write: nope\n---\n");
        assert!(err.contains("`tools.write` must be true or false"), "{err}");
        let err = parse_err("---\ndescription: [a]\n---\n");
        assert!(err.contains("`description`"), "{err}");
        let err = parse_err("---\n- a\n- b\n---\n");
        assert!(err.contains("must be a mapping"), "{err}");
    }

    #[test]
    fn bad_yaml_reports_the_file_line() {
        let err = parse_err("---\nname: x\ntools: [Read\n---\n");
        assert!(err.contains("invalid YAML"), "{err}");
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn claude_style_descriptions_with_colons_load() {
        // As Claude Code's own agent generator writes them: not valid YAML, loaded anyway.
        let def = parse_ok(
            "---\nname: reviewer\ndescription: Use this agent after writing code. Examples:\\n\
             <example>Context: the user wrote code. user: \"review it\" assistant: \"on it\"\
             </example>\ntools: Read, Grep\nbackground: true\n---\nReview.\n",
        );
        assert!(def.description.starts_with("Use this agent"));
        assert!(def.description.contains("user: \"review it\""));
        assert_eq!(def.tools, Some(tools(&["read", "grep"])));
        assert!(def.background, "other fields keep their types");
    }

    #[test]
    fn builtins_are_general_and_explore() {
        let catalog = discover(&Roots::default());
        let names: Vec<_> = catalog.agents().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["explore", "general"]);
        let general = catalog.get("general").unwrap();
        assert_eq!(general.tools, None);
        assert_eq!(general.source, Source::Builtin);
        assert!(!general.prompt.is_empty());
        let explore = catalog.get("explore").unwrap();
        assert_eq!(
            explore.effective_tools(),
            tools(&["read", "glob", "grep", "task_output", "task_list"])
        );
        assert!(explore.prompt.contains("cannot modify"));
        assert!(catalog.warnings().is_empty());
    }

    #[test]
    fn project_overrides_user_overrides_builtin() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let config = tmp.path().join("config");
        let project = tmp.path().join("project");
        write(
            &home.join(".claude/agents"),
            "general.md",
            "---\ndescription: user general\n---\nuser",
        );
        write(
            &home.join(".claude/agents"),
            "helper.md",
            "---\ndescription: user helper\n---\nuser",
        );
        write(
            &config.join("aside/agents"),
            "helper.md",
            "---\ndescription: aside helper\n---\nuser",
        );
        write(
            &config.join("opencode/agent"),
            "oc.md",
            "---\ndescription: opencode\n---\n",
        );
        write(
            &project.join(".claude/agents"),
            "helper.md",
            "---\ndescription: claude project helper\n---\n",
        );
        let winner = write(
            &project.join(".aside/agents"),
            "helper2.md",
            "---\nname: helper\ndescription: aside project helper\n---\n",
        );
        write(
            &project.join(".opencode/agents"),
            "explore.md",
            "---\ndescription: project explore\n---\n",
        );
        // Not agents: wrong extension, hidden, in a subdirectory.
        write(&project.join(".aside/agents"), "notes.txt", "---\n---\n");
        write(&project.join(".aside/agents"), ".#helper.md", "junk");
        write(&project.join(".aside/agents/sub"), "deep.md", "---\n---\n");

        let catalog = discover(&Roots {
            project: Some(project),
            user_home: Some(home),
            user_config: Some(config),
        });
        assert!(catalog.warnings().is_empty(), "{:?}", catalog.warnings());
        let names: Vec<_> = catalog.agents().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["explore", "general", "helper", "oc"]);
        assert_eq!(catalog.get("general").unwrap().description, "user general");
        assert_eq!(
            catalog.get("explore").unwrap().description,
            "project explore"
        );
        let helper = catalog.get("helper").unwrap();
        assert_eq!(helper.description, "aside project helper");
        assert_eq!(helper.source, Source::File(winner));
    }

    #[test]
    fn broken_file_warns_with_its_path_and_siblings_load() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(".claude/agents");
        let broken = write(&dir, "a-broken.md", "---\nname: [unclosed\n---\nbody");
        let plain = write(&dir, "b-plain.md", "just a prompt, no frontmatter");
        let bad_turns = write(&dir, "c-turns.md", "---\nmaxTurns: -1\n---\n");
        let binary = dir.join("d-binary.md");
        fs::write(&binary, [b'-', b'-', b'-', b'\n', 0xff, 0xfe]).unwrap();
        write(&dir, "e-good.md", "---\ndescription: fine\n---\nok");

        let catalog = discover(&Roots {
            project: Some(tmp.path().to_path_buf()),
            ..Roots::default()
        });
        assert_eq!(catalog.get("e-good").unwrap().description, "fine");
        let warned: Vec<_> = catalog.warnings().iter().map(|w| w.path.clone()).collect();
        assert_eq!(warned, [broken, plain, bad_turns, binary]);
        let messages: Vec<_> = catalog
            .warnings()
            .iter()
            .map(|w| w.message.as_str())
            .collect();
        assert!(messages[0].contains("invalid YAML"), "{}", messages[0]);
        assert!(
            messages[1].contains("no YAML frontmatter"),
            "{}",
            messages[1]
        );
        assert!(messages[2].contains("maxTurns"), "{}", messages[2]);
        assert!(messages[3].contains("UTF-8"), "{}", messages[3]);
        for name in ["a-broken", "b-plain", "c-turns", "d-binary"] {
            assert!(catalog.get(name).is_none(), "{name}");
        }
    }

    #[test]
    fn a_broken_override_keeps_the_earlier_definition() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let project = tmp.path().join("project");
        write(
            &home.join(".claude/agents"),
            "helper.md",
            "---\ndescription: user\n---\n",
        );
        write(
            &project.join(".claude/agents"),
            "helper.md",
            "---\ndescription: project\nbackground: maybe\n---\n",
        );
        let catalog = discover(&Roots {
            project: Some(project),
            user_home: Some(home),
            user_config: None,
        });
        assert_eq!(catalog.get("helper").unwrap().description, "user");
        assert_eq!(catalog.warnings().len(), 1);
    }

    #[test]
    fn catalog_serializes_as_documented() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write(
            &tmp.path().join(".aside/agents"),
            "x.md",
            "---\ntools: Read, WebSearch\n---\nhi",
        );
        let catalog = discover(&Roots {
            project: Some(tmp.path().to_path_buf()),
            ..Roots::default()
        });
        let json = serde_json::to_value(&catalog).unwrap();
        let agents = json["agents"].as_array().unwrap();
        assert_eq!(agents.len(), 3);
        assert_eq!(agents[0]["name"], "explore");
        assert_eq!(agents[0]["source"], "builtin");
        assert_eq!(agents[2]["source"]["file"], path.to_string_lossy().as_ref());
        assert_eq!(agents[2]["tools"], serde_json::json!(["read"]));
        assert_eq!(json["warnings"][0]["path"], path.to_string_lossy().as_ref());
    }

    #[test]
    fn search_dirs_order() {
        let roots = Roots {
            project: Some(PathBuf::from("/p")),
            user_home: Some(PathBuf::from("/h")),
            user_config: Some(PathBuf::from("/c")),
        };
        let dirs: Vec<_> = search_dirs(&roots)
            .into_iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            dirs,
            [
                "/h/.claude/agents",
                "/c/opencode/agent",
                "/c/opencode/agents",
                "/c/aside/agents",
                "/p/.claude/agents",
                "/p/.opencode/agent",
                "/p/.opencode/agents",
                "/p/.aside/agents",
            ]
        );
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", "bash"));
        assert!(wildcard_match("task_*", "task_list"));
        assert!(!wildcard_match("task_*", "task"));
        assert!(wildcard_match("*a*t*", "task_output"));
        assert!(wildcard_match("gr?p", "grep"));
        assert!(!wildcard_match("gr?p", "grepp"));
    }
}
