//! Tool names as Claude Code, opencode, Gemini CLI, Codex and aside write them, mapped onto
//! aside's [`Tool`]s.

use std::collections::HashSet;

use globset::{GlobBuilder, GlobMatcher};

use super::Tool;

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
        "task_input" | "taskinput" => Tool::TaskInput,
        "task_list" | "tasklist" => Tool::TaskList,
        "task_stop" | "taskstop" | "killshell" | "killbash" => Tool::TaskStop,
        _ => return None,
    };
    Some(tool)
}

/// Every tool, as a static so that a lookup can hand out a slice of one.
static EVERY_TOOL: [Tool; Tool::ALL.len()] = Tool::ALL;

/// The aside tools a Gemini CLI tool name stands for, ignoring case; aside's own names are
/// understood too. None for tools aside does not have (`web_fetch`, `google_web_search`, MCP
/// tools, ...).
pub(super) fn gemini_tool(name: &str) -> Option<&'static [Tool]> {
    let tools: &'static [Tool] = match name.trim().to_ascii_lowercase().as_str() {
        "run_shell_command" => &[Tool::Bash],
        "read_file" | "read_many_files" => &[Tool::Read],
        "write_file" => &[Tool::Write],
        "replace" => &[Tool::Edit],
        "glob" | "list_directory" => &[Tool::Glob],
        "grep_search" | "search_file_content" => &[Tool::Grep],
        other => return own_tool(other),
    };
    Some(tools)
}

/// The aside tools a Codex tool name stands for, ignoring case; aside's own names are
/// understood too. `apply_patch` both edits and creates files, so it stands for two.
pub(super) fn codex_tool(name: &str) -> Option<&'static [Tool]> {
    let tools: &'static [Tool] = match name.trim().to_ascii_lowercase().as_str() {
        "shell" | "local_shell" | "exec_command" => &[Tool::Bash],
        "apply_patch" => &[Tool::Edit, Tool::Write],
        "read_file" => &[Tool::Read],
        "list_dir" => &[Tool::Glob],
        "grep_files" => &[Tool::Grep],
        "spawn_agent" => &[Tool::Task],
        other => return own_tool(other),
    };
    Some(tools)
}

/// The tool whose wire name is `name` (already lowercased).
fn own_tool(name: &str) -> Option<&'static [Tool]> {
    EVERY_TOOL
        .iter()
        .find(|tool| tool.name() == name)
        .map(std::slice::from_ref)
}

/// Maps a host's tool names with `lookup`, deduplicated in first-seen order. Names with no aside
/// equivalent are dropped and recorded in `unknown`, once each.
pub(super) fn map_host_tools(
    names: &[String],
    lookup: fn(&str) -> Option<&'static [Tool]>,
    unknown: &mut Vec<String>,
) -> Vec<Tool> {
    let mut tools = Vec::new();
    for name in names {
        match lookup(name) {
            Some(mapped) => tools.extend_from_slice(mapped),
            None if !unknown.contains(name) => unknown.push(name.clone()),
            None => {}
        }
    }
    dedup(&mut tools);
    tools
}

/// Maps names to aside tools, deduplicated in first-seen order. Names with no aside equivalent
/// are dropped, and recorded in `unknown` when the caller wants to warn about them.
pub(super) fn map_tools(names: &[String], mut unknown: Option<&mut Vec<String>>) -> Vec<Tool> {
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

/// The tools opencode's tool map turns off: each switch turns the tools its key names on or off,
/// later switches winning, and keys may be wildcards (`"*": false`, `"mymcp_*": false`). Keys
/// naming tools aside lacks change nothing.
pub(super) fn disabled_tools(switches: &[(String, bool)]) -> Vec<Tool> {
    let mut enabled = [true; Tool::ALL.len()];
    for (pattern, on) in switches {
        let wildcard = pattern.contains(['*', '?']).then(|| wildcard(pattern));
        let mapped = map_tool_name(pattern);
        for (slot, tool) in enabled.iter_mut().zip(Tool::ALL) {
            let hit = match &wildcard {
                Some(matcher) => matcher.as_ref().is_some_and(|m| m.is_match(tool.name())),
                None => mapped == Some(tool),
            };
            if hit {
                *slot = *on;
            }
        }
    }
    Tool::ALL
        .into_iter()
        .zip(enabled)
        .filter(|(_, on)| !on)
        .map(|(tool, _)| tool)
        .collect()
}

/// A matcher for opencode's wildcards, which match whole tool names: `*` is any run of
/// characters, `?` any one, and nothing else is special, so the rest of glob syntax is escaped.
/// None if the pattern cannot be compiled, which escaping leaves no case for.
fn wildcard(pattern: &str) -> Option<GlobMatcher> {
    let mut glob = String::with_capacity(pattern.len() * 2);
    for c in pattern.chars() {
        match c {
            // A run of `*` means what one does; globset would read `**` as a path wildcard.
            '*' if glob.ends_with('*') => {}
            '[' | ']' | '{' | '}' | '\\' => {
                glob.push('\\');
                glob.push(c);
            }
            c => glob.push(c),
        }
    }
    GlobBuilder::new(&glob)
        .backslash_escape(true)
        .build()
        .ok()
        .map(|glob| glob.compile_matcher())
}

/// Removes repeats, keeping each tool's first position.
pub(super) fn dedup(tools: &mut Vec<Tool>) {
    let mut seen = HashSet::new();
    tools.retain(|&tool| seen.insert(tool));
}

#[cfg(test)]
#[path = "tools_tests.rs"]
mod tests;
