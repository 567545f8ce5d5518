//! The tools an agent has, in one registry that every front uses as it is: the agent runtime
//! calls it for its models, and the daemon serves it to `aside mcp`.
//!
//! Every result carries the ids of the task it touched (and the session, for agents) and the
//! log's path in a header that truncation never touches, on every outcome.

pub mod files;
mod input;
mod output;
mod record;
mod tasks;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use aside_core::{Config, Engine};
use aside_protocol::TaskId;
pub use aside_protocol::Tool;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::definitions::Catalog;
use crate::model::ToolSpec;

pub use record::describe_outcome;
pub use tasks::{ended_result, notification_message};

/// The environment every command run for an agent gets, so output stays plain.
pub const QUIET_ENV: &[(&str, &str)] = &[
    ("NO_COLOR", "1"),
    ("TERM", "dumb"),
    ("PAGER", "cat"),
    ("GIT_PAGER", "cat"),
];

/// Who calls a tool, and with what around it.
#[derive(Clone)]
pub struct ToolContext {
    pub engine: Engine,
    /// The owner of the tasks the tools start; their notifications go to it.
    pub owner: String,
    /// The session of the calling agent, if it is one.
    pub session_id: Option<String>,
    pub cwd: PathBuf,
    /// The caller's depth: 0 for a top-level agent or an MCP client.
    pub depth: u32,
    pub config: Arc<Config>,
    pub catalog: Arc<Catalog>,
    /// The environment of commands the tools start (the quiet variables are added on top).
    pub env: Option<BTreeMap<String, String>>,
    /// Set when the caller cancels the call: a task it waits on is stopped with the reason.
    pub cancel: Option<tokio::sync::watch::Receiver<Option<aside_protocol::CancelReason>>>,
    /// How long a foreground `bash` or `task` waits before its work moves to the background
    /// (default: the settings).
    pub wait: Option<std::time::Duration>,
    /// The model's tool call being served, when an agent calls: `bash` and `task` key the
    /// task they start by it.
    pub call: Option<CallKey>,
}

/// Names the task a `bash` or `task` call starts (its dedupe key), so that an agent resumed
/// after its daemon went away finds that task again instead of running the command twice.
#[derive(Debug, Clone)]
pub struct CallKey {
    /// `<session>/<turn>/<tool call id>`: call ids are unique within a reply only.
    pub key: String,
    /// The call was made by the previous run of the agent: its task may exist already.
    pub resumed: bool,
    /// The agent's task: a task started for the call is newer.
    pub since: TaskId,
}

/// The outcome of one tool call.
#[derive(Debug, Clone, Default)]
pub struct ToolOutput {
    pub text: String,
    pub is_error: bool,
    pub task_id: Option<TaskId>,
    pub session_id: Option<String>,
    pub log_path: Option<String>,
    /// The call's task goes on in the background (started there, or moved there when the
    /// wait budget ran out).
    pub background: bool,
}

impl ToolOutput {
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            is_error: true,
            ..Self::default()
        }
    }

    pub fn ok(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    /// The text a model sees: the ids and the log's path first, then the body capped at
    /// `cap` characters as head and tail around a marker.
    pub fn render(&self, cap: usize) -> String {
        let mut head = Vec::new();
        if let Some(id) = self.task_id {
            head.push(format!("task_id: {id}"));
        }
        if let Some(s) = &self.session_id {
            head.push(format!("session_id: {s}"));
        }
        if let Some(p) = &self.log_path {
            head.push(format!("log: {p}"));
        }
        let whole = match (&self.log_path, self.task_id) {
            (Some(p), _) => Some(p.clone()),
            // Short foreground output stays in memory: it is read back by offset.
            (None, Some(id)) => Some(format!("task {id}'s output (read it with task_output)")),
            (None, None) => None,
        };
        let body = cap_text(&self.text, cap, whole.as_deref());
        if head.is_empty() {
            body
        } else {
            format!("{}\n{body}", head.join("\n"))
        }
    }
}

/// Keeps the head and the tail of `text` within `cap` characters, with a marker between
/// that says how much was left out and where the whole of it is.
pub fn cap_text(text: &str, cap: usize, log: Option<&str>) -> String {
    let total = text.chars().count();
    if total <= cap {
        return text.to_string();
    }
    let keep = cap.saturating_sub(200).max(2);
    let head_n = keep * 2 / 5;
    let tail_n = keep - head_n;
    let head: String = text.chars().take(head_n).collect();
    let tail: String = text.chars().skip(total - tail_n).collect();
    let omitted = total - head_n - tail_n;
    let whole = match log {
        Some(p) => format!("; the whole output is in {p}"),
        None => String::new(),
    };
    format!("{head}\n[… {omitted} characters omitted{whole} …]\n{tail}")
}

/// The specs of `tools`, with descriptions that quote the effective settings.
pub fn specs(config: &Config, tools: &[Tool]) -> Vec<ToolSpec> {
    tools.iter().map(|&tool| spec(config, tool)).collect()
}

fn schema<T: JsonSchema>() -> Value {
    let mut v = serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.remove("$schema");
        obj.remove("title");
    }
    v
}

fn spec(config: &Config, tool: Tool) -> ToolSpec {
    let limits = files::Limits::default();
    let (description, parameters) = match tool {
        Tool::Bash => (tasks::bash_description(config), schema::<tasks::BashArgs>()),
        Tool::Task => (tasks::task_description(config), schema::<tasks::TaskArgs>()),
        Tool::TaskOutput => (
            output::task_output_description(config),
            schema::<output::TaskOutputArgs>(),
        ),
        Tool::TaskInput => (
            input::task_input_description(),
            schema::<input::TaskInputArgs>(),
        ),
        Tool::TaskList => (
            "Lists your tasks (shell commands and subagents): id, kind, state, and what they run. \
             Set all to include tasks started by others."
                .to_string(),
            schema::<tasks::TaskListArgs>(),
        ),
        Tool::TaskStop => (
            "Stops a running task and its whole process tree (SIGTERM, then SIGKILL), or a \
             queued one before it starts, and returns its final state. Stopping a subagent stops \
             what it started. You are not notified again about a task you stopped."
                .to_string(),
            schema::<tasks::TaskStopArgs>(),
        ),
        Tool::Read => (
            format!(
                "Reads a file, with line numbers. Returns at most {} lines (use offset and limit \
                 for more); lines longer than {} characters are cut.",
                limits.max_read_lines, limits.max_line_chars
            ),
            schema::<files::ReadArgs>(),
        ),
        Tool::Write => (
            "Writes a file, replacing it if it exists and creating parent directories.".to_string(),
            schema::<files::WriteArgs>(),
        ),
        Tool::Edit => (
            "Replaces an exact string in a file. old_string must occur exactly once unless \
             replace_all is set; include surrounding lines to make it unique."
                .to_string(),
            schema::<files::EditArgs>(),
        ),
        Tool::Glob => (
            format!(
                "Finds files by glob pattern (e.g. **/*.rs), newest first, skipping what \
                 .gitignore excludes. At most {} results.",
                limits.max_results
            ),
            schema::<files::GlobArgs>(),
        ),
        Tool::Grep => (
            format!(
                "Searches file contents with a regular expression, skipping binary files and \
                 what .gitignore excludes. At most {} result lines.",
                limits.max_results
            ),
            schema::<files::GrepArgs>(),
        ),
    };
    ToolSpec {
        name: tool.name().to_string(),
        description,
        parameters,
    }
}

fn args<T: DeserializeOwned>(tool: Tool, v: Value) -> Result<T, ToolOutput> {
    let v = if v.is_null() {
        Value::Object(Default::default())
    } else {
        v
    };
    serde_json::from_value(v)
        .map_err(|e| ToolOutput::error(format!("invalid arguments for {tool}: {e}")))
}

/// Calls a tool by its wire name. Never panics on input: bad arguments and unknown tools are
/// tool errors.
pub async fn call(ctx: &ToolContext, name: &str, arguments: Value) -> ToolOutput {
    match name.parse() {
        Ok(tool) => call_tool(ctx, tool, arguments).await,
        Err(_) => {
            let names: Vec<&str> = Tool::ALL.iter().map(|t| t.name()).collect();
            ToolOutput::error(format!(
                "there is no tool named {name:?}; the tools are: {}",
                names.join(", ")
            ))
        }
    }
}

/// Calls `tool`. Bad arguments are tool errors.
pub async fn call_tool(ctx: &ToolContext, tool: Tool, arguments: Value) -> ToolOutput {
    let limits = files::Limits::default();
    macro_rules! file_tool {
        ($f:ident, $t:ty $(, $l:expr)?) => {{
            let a: $t = match args(tool, arguments) {
                Ok(a) => a,
                Err(e) => return e,
            };
            let cwd = ctx.cwd.clone();
            let res = tokio::task::spawn_blocking(move || files::$f(&cwd, &a $(, &$l)?)).await;
            match res {
                Ok(Ok(text)) => ToolOutput::ok(text),
                Ok(Err(e)) => ToolOutput::error(e.to_string()),
                Err(e) => ToolOutput::error(format!("{tool} failed: {e}")),
            }
        }};
    }
    match tool {
        Tool::Bash => match args(tool, arguments) {
            Ok(a) => tasks::bash(ctx, a).await,
            Err(e) => e,
        },
        Tool::Task => match args(tool, arguments) {
            Ok(a) => tasks::task(ctx, a).await,
            Err(e) => e,
        },
        Tool::TaskOutput => match args(tool, arguments) {
            Ok(a) => output::task_output(ctx, a).await,
            Err(e) => e,
        },
        Tool::TaskInput => match args(tool, arguments) {
            Ok(a) => input::task_input(ctx, a),
            Err(e) => e,
        },
        Tool::TaskList => match args(tool, arguments) {
            Ok(a) => tasks::task_list(ctx, a),
            Err(e) => e,
        },
        Tool::TaskStop => match args(tool, arguments) {
            Ok(a) => tasks::task_stop(ctx, a).await,
            Err(e) => e,
        },
        Tool::Read => file_tool!(read, files::ReadArgs, limits),
        Tool::Write => file_tool!(write, files::WriteArgs),
        Tool::Edit => file_tool!(edit, files::EditArgs),
        Tool::Glob => file_tool!(glob, files::GlobArgs, limits),
        Tool::Grep => file_tool!(grep, files::GrepArgs, limits),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capping_keeps_head_tail_and_says_where_the_rest_is() {
        let text: String = (0..10_000).map(|i| format!("{i}\n")).collect();
        let out = cap_text(&text, 1000, Some("/logs/7.log"));
        assert!(out.chars().count() <= 1100, "{}", out.len());
        assert!(out.starts_with("0\n1\n"));
        assert!(out.ends_with("9999\n"));
        assert!(out.contains("characters omitted; the whole output is in /logs/7.log"));
        assert_eq!(cap_text("short", 1000, None), "short");
    }

    #[test]
    fn ids_stay_outside_the_capped_part() {
        let out = ToolOutput {
            text: "x".repeat(50_000),
            task_id: TaskId::new(12),
            session_id: Some("s12".into()),
            log_path: Some("/l".into()),
            ..ToolOutput::default()
        };
        let r = out.render(1000);
        assert!(
            r.starts_with("task_id: 12\nsession_id: s12\nlog: /l\n"),
            "{r}"
        );
    }

    #[test]
    fn every_tool_has_a_spec_with_an_object_schema() {
        let specs = specs(&Config::default(), &Tool::ALL);
        assert_eq!(specs.len(), Tool::ALL.len());
        for s in specs {
            assert_eq!(s.parameters["type"], "object", "{}", s.name);
        }
    }
}
