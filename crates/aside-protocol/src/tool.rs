//! The tools of aside's agent tool registry. Their names are part of the wire (`tools.list`,
//! `tools.call`, a model's tool calls), so every place that needs a tool's name or a fact about
//! it reads it from [`Tool`]; its `match`es are exhaustive, so a new tool is a compile error
//! wherever it must be handled.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One tool, by its wire name (`bash`, `task_output`, ...: the variant in snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tool {
    Bash,
    Read,
    Write,
    Edit,
    Glob,
    Grep,
    Task,
    TaskOutput,
    TaskInput,
    TaskList,
    TaskStop,
}

impl Tool {
    /// Every tool, in the order models see them.
    pub const ALL: [Tool; 11] = [
        Tool::Bash,
        Tool::Read,
        Tool::Write,
        Tool::Edit,
        Tool::Glob,
        Tool::Grep,
        Tool::Task,
        Tool::TaskOutput,
        Tool::TaskInput,
        Tool::TaskList,
        Tool::TaskStop,
    ];

    /// The name on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            Tool::Bash => "bash",
            Tool::Read => "read",
            Tool::Write => "write",
            Tool::Edit => "edit",
            Tool::Glob => "glob",
            Tool::Grep => "grep",
            Tool::Task => "task",
            Tool::TaskOutput => "task_output",
            Tool::TaskInput => "task_input",
            Tool::TaskList => "task_list",
            Tool::TaskStop => "task_stop",
        }
    }

    /// Works on files in the working directory rather than on tasks. `aside mcp` offers these
    /// only with `--file-tools`, since host agents have their own.
    pub const fn is_file_tool(self) -> bool {
        match self {
            Tool::Read | Tool::Write | Tool::Edit | Tool::Glob | Tool::Grep => true,
            Tool::Bash
            | Tool::Task
            | Tool::TaskOutput
            | Tool::TaskInput
            | Tool::TaskList
            | Tool::TaskStop => false,
        }
    }

    /// Cannot change anything: the built-in `explore` agent gets only these.
    pub const fn is_read_only(self) -> bool {
        match self {
            Tool::Read | Tool::Glob | Tool::Grep | Tool::TaskOutput | Tool::TaskList => true,
            // Input changes what a running program does.
            Tool::Bash
            | Tool::Write
            | Tool::Edit
            | Tool::Task
            | Tool::TaskInput
            | Tool::TaskStop => false,
        }
    }

    /// Starts a task, which may go on in the background and end after the call returns.
    pub const fn starts_tasks(self) -> bool {
        match self {
            Tool::Bash | Tool::Task => true,
            Tool::Read
            | Tool::Write
            | Tool::Edit
            | Tool::Glob
            | Tool::Grep
            | Tool::TaskOutput
            | Tool::TaskInput
            | Tool::TaskList
            | Tool::TaskStop => false,
        }
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of [`Tool::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("there is no tool named {name:?}")]
pub struct UnknownTool {
    pub name: String,
}

impl FromStr for Tool {
    type Err = UnknownTool;

    /// Exactly the wire name; other spellings (Claude's `Bash`, `BashOutput`) are for agent
    /// definitions to map.
    fn from_str(name: &str) -> Result<Tool, UnknownTool> {
        Tool::ALL
            .into_iter()
            .find(|tool| tool.name() == name)
            .ok_or_else(|| UnknownTool {
                name: name.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_match_serde() {
        for tool in Tool::ALL {
            assert_eq!(tool.name().parse::<Tool>(), Ok(tool));
            assert_eq!(tool.to_string(), tool.name());
            assert_eq!(serde_json::to_value(tool).unwrap(), tool.name());
            let back: Tool = serde_json::from_value(serde_json::json!(tool.name())).unwrap();
            assert_eq!(back, tool);
        }
    }

    #[test]
    fn all_lists_every_tool_once_in_declaration_order() {
        let mut sorted = Tool::ALL;
        sorted.sort();
        assert_eq!(sorted, Tool::ALL);
        let names: Vec<&str> = Tool::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(
            names,
            [
                "bash",
                "read",
                "write",
                "edit",
                "glob",
                "grep",
                "task",
                "task_output",
                "task_input",
                "task_list",
                "task_stop"
            ]
        );
    }

    #[test]
    fn unknown_names_are_refused() {
        let err = "Bash".parse::<Tool>().unwrap_err();
        assert_eq!(err.to_string(), "there is no tool named \"Bash\"");
        assert!(serde_json::from_value::<Tool>(serde_json::json!("web_fetch")).is_err());
    }

    #[test]
    fn facts() {
        let files: Vec<Tool> = Tool::ALL.into_iter().filter(|t| t.is_file_tool()).collect();
        assert_eq!(
            files,
            [Tool::Read, Tool::Write, Tool::Edit, Tool::Glob, Tool::Grep]
        );
        let read_only: Vec<Tool> = Tool::ALL.into_iter().filter(|t| t.is_read_only()).collect();
        assert_eq!(
            read_only,
            [
                Tool::Read,
                Tool::Glob,
                Tool::Grep,
                Tool::TaskOutput,
                Tool::TaskList
            ]
        );
        let starting: Vec<Tool> = Tool::ALL.into_iter().filter(|t| t.starts_tasks()).collect();
        assert_eq!(starting, [Tool::Bash, Tool::Task]);
    }
}
