//! The agents aside has without any file: `general` and `explore`.

use super::{AgentDef, Source, Tool};

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
