//! What every task tool shares: reading a task id, showing how a task ended or where it is,
//! the result header that carries its ids, and engine errors as tool errors.

use aside_core::{ConsoleError, EngineError};
use aside_protocol::{TaskId, TaskKind, TaskRecord, TaskState};
use serde::Deserialize;

use super::ToolOutput;

/// Models often send ids as numbers: both are accepted.
pub(super) fn id_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "task_id must be a string such as \"12\", not {other}"
        ))),
    }
}

pub(super) fn parse_id(s: &str) -> Result<TaskId, ToolOutput> {
    s.trim()
        .parse::<TaskId>()
        .map_err(|e| ToolOutput::error(format!("task_id: {e}")))
}

/// An engine error as a tool error: where the engine's message names a CLI flag, the tool
/// that does it is named instead.
pub(super) fn engine_error(e: EngineError) -> ToolOutput {
    ToolOutput::error(match e {
        EngineError::Console(ConsoleError::NoInput(id)) => {
            format!("task {id} takes no input: start it with bash pty: true (a terminal)")
        }
        EngineError::Console(ConsoleError::NoTerminal(id)) => {
            format!("task {id} has no terminal: start it with bash pty: true")
        }
        other => other.to_string(),
    })
}

/// One line on how a task ended or where it is.
pub fn describe_outcome(t: &TaskRecord) -> String {
    let what = match &t.kind {
        TaskKind::Shell { command, .. } => format!("shell `{}`", command.display()),
        TaskKind::Agent { agent, .. } => format!("agent {agent}"),
    };
    let state = match (&t.state, &t.progress) {
        (
            TaskState::Succeeded {
                exit_code: Some(c), ..
            },
            _,
        ) => format!("succeeded (exit code {c})"),
        // A subagent at work shows how far it is, as `aside ls` does.
        (TaskState::Running { .. }, Some(p)) => format!("running ({})", p.describe()),
        (other, _) => other.describe(),
    };
    let bg = if t.detached && !t.is_terminal() {
        ", in the background"
    } else {
        ""
    };
    let paused = if t.paused {
        ", paused (aside resume)"
    } else {
        ""
    };
    format!("task {} ({what}): {state}{paused}{bg}", t.id)
}

pub(super) fn output_of(t: &TaskRecord) -> ToolOutput {
    ToolOutput {
        task_id: Some(t.id),
        session_id: t.kind.session_id().map(str::to_string),
        log_path: t.log_path.clone(),
        is_error: matches!(
            t.state,
            TaskState::Failed { .. } | TaskState::TimedOut { .. } | TaskState::Lost { .. }
        ),
        ..ToolOutput::default()
    }
}
