//! Codex's custom agents, `.codex/agents/*.toml`: one TOML file each, with `name`,
//! `description` and `developer_instructions` (the system prompt), and any of Codex's own
//! settings besides.
//!
//! `model` means what it means in every format. `instructions`, Codex's older key for a system
//! prompt, comes before `developer_instructions` when a file has both. Codex has no tool list:
//! `sandbox_mode = "read-only"` is how a file keeps an agent from changing anything, and aside,
//! which has no sandbox, does that by offering only the tools that change nothing. A `tools`
//! list (not Codex's, but what converters from other formats write) is read as the allow-list
//! in Codex's tool names. Every other key (`model_reasoning_effort`, `nickname_candidates`,
//! `mcp_servers`, `approval_policy`, Codex's `[tools]` table, ...) is named in a warning and
//! changes nothing.

use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

use super::error::{FieldError, Found};
use super::frontmatter::{take, Text};
use super::parse::{agent_name, description, host_allow_list, left_out, model};
use super::tools::codex_tool;
use super::{AgentDef, DefinitionError, Source, Tool, Warning};

/// Parses a Codex agent file, with the warnings for what aside leaves out.
pub(super) fn parse(path: &Path, text: &str) -> Result<(AgentDef, Vec<Warning>), DefinitionError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let table: toml::Table = toml::from_str(text).map_err(|err| toml_error(text, &err))?;
    // As YAML values, so that the fields are read by the same code as the other formats'.
    let mut fields: Mapping = table
        .into_iter()
        .map(|(key, value)| (Value::String(key), yaml(value)))
        .collect();

    let name = agent_name(path, take(&mut fields, "name"))?;
    let description = description(take(&mut fields, "description"))?;
    let prompt = prompt(&mut fields)?;
    let model = model(take(&mut fields, "model"))?;
    let mut unknown_tools = Vec::new();
    // Codex's own `[tools]` table stays in `fields`, to be warned about with the rest.
    let tools = match fields.get("tools") {
        Some(Value::Mapping(_)) => None,
        _ => host_allow_list(take(&mut fields, "tools"), codex_tool, &mut unknown_tools)?,
    };
    let mut disallowed_tools = Vec::new();
    let mut unconfined = false;
    if let Some(field) = take::<Text>(&mut fields, "sandbox_mode") {
        let Text(mode) = field.value("sandbox_mode")?;
        match mode.trim() {
            // Codex still lets such an agent run commands, inside a sandbox that cannot write;
            // aside has no such sandbox, so the agent gets only the tools that change nothing.
            "read-only" => {
                disallowed_tools = Tool::ALL
                    .into_iter()
                    .filter(|tool| !tool.is_read_only())
                    .collect();
            }
            "workspace-write" => unconfined = true,
            "danger-full-access" => {}
            _ => {
                return Err(FieldError::NotOneOf {
                    expected: "\"read-only\", \"workspace-write\" or \"danger-full-access\"",
                    found: Found(Value::String(mode)),
                }
                .at("sandbox_mode"))
            }
        }
    }

    let mut warnings = left_out(path, &name, &unknown_tools, &fields);
    if unconfined {
        // After the tool names' warning, before the fields'.
        let at = usize::from(!unknown_tools.is_empty());
        warnings.insert(
            at,
            Warning {
                path: path.to_path_buf(),
                message: format!(
                "agent {name:?}: not enforcing `sandbox_mode = \"workspace-write\"`: aside does \
                 not confine an agent's writes to the workspace"
            ),
            },
        );
    }
    let def = AgentDef {
        name,
        description,
        tools,
        disallowed_tools,
        model,
        max_turns: None,
        background: false,
        command: None,
        prompt,
        source: Source::File(path.to_path_buf()),
    };
    Ok((def, warnings))
}

/// The system prompt: `developer_instructions`, after `instructions` when the file has both.
fn prompt(fields: &mut Mapping) -> Result<String, DefinitionError> {
    let mut parts = Vec::new();
    for key in ["instructions", "developer_instructions"] {
        if let Some(field) = take::<Text>(fields, key) {
            let Text(text) = field.value(key)?;
            let text = text.trim();
            if !text.is_empty() {
                parts.push(text.to_string());
            }
        }
    }
    Ok(parts.join("\n\n"))
}

/// A TOML error on one line: where it is (line and column, from 1) and what is wrong.
fn toml_error(text: &str, err: &toml::de::Error) -> DefinitionError {
    let message = err.message().trim();
    let Some(before) = err.span().and_then(|span| text.get(..span.start)) else {
        return DefinitionError::Toml(message.to_string());
    };
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |start| start.chars().count())
        + 1;
    DefinitionError::Toml(format!("line {line}, column {column}: {message}"))
}

/// A TOML value as the YAML value it would be written as. Dates and times, which YAML has no
/// type for, become their text.
fn yaml(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(n) => Value::Number(n.into()),
        toml::Value::Float(x) => Value::Number(x.into()),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(when) => Value::String(when.to_string()),
        toml::Value::Array(items) => Value::Sequence(items.into_iter().map(yaml).collect()),
        toml::Value::Table(table) => Value::Mapping(
            table
                .into_iter()
                .map(|(key, value)| (Value::String(key), yaml(value)))
                .collect(),
        ),
    }
}

#[cfg(test)]
#[path = "codex_tests.rs"]
mod tests;
