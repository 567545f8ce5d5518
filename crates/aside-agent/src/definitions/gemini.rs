//! Gemini CLI's subagents, `.gemini/agents/*.md`: markdown whose YAML frontmatter holds Gemini's
//! fields and whose body is the system prompt.
//!
//! `name`, `description`, `model` and `max_turns` mean what they mean in every format; `tools`
//! is the allow-list, in Gemini's tool names (`*` is every tool); `kind: local` is what aside
//! runs anyway, and a remote (Agent2Agent) agent is refused. Every other field (`temperature`,
//! `timeout_mins`, `display_name`, `mcp_servers`, and keys Gemini CLI does not know either) is
//! named in a warning and changes nothing.

use std::path::Path;

use serde_yaml_ng::Value;

use super::error::{FieldError, Found};
use super::frontmatter::{self, take, Count, Text};
use super::parse::{agent_name, description, host_allow_list, left_out, model};
use super::tools::gemini_tool;
use super::{AgentDef, DefinitionError, Source, Warning};

/// Parses a Gemini CLI subagent file, with the warnings for what aside leaves out.
pub(super) fn parse(path: &Path, text: &str) -> Result<(AgentDef, Vec<Warning>), DefinitionError> {
    let (mut fields, body) = match frontmatter::read_mapping(text) {
        // Gemini CLI reads a list as several remote agents.
        Err(DefinitionError::NotAMapping {
            found: Found(Value::Sequence(_)),
        }) => return Err(DefinitionError::RemoteAgent),
        read => read?,
    };
    if let Some(field) = take::<Text>(&mut fields, "kind") {
        let Text(kind) = field.value("kind")?;
        match kind.trim() {
            "local" => {}
            "remote" => return Err(DefinitionError::RemoteAgent),
            _ => {
                return Err(FieldError::NotOneOf {
                    expected: "\"local\" or \"remote\"",
                    found: Found(Value::String(kind)),
                }
                .at("kind"))
            }
        }
    }
    // Without `kind`, Gemini CLI takes a file with an agent card for a remote agent.
    if fields.contains_key("agent_card_url") || fields.contains_key("agent_card_json") {
        return Err(DefinitionError::RemoteAgent);
    }

    let name = agent_name(path, take(&mut fields, "name"))?;
    let description = description(take(&mut fields, "description"))?;
    let mut unknown_tools = Vec::new();
    let tools = host_allow_list(take(&mut fields, "tools"), gemini_tool, &mut unknown_tools)?;
    let model = model(take(&mut fields, "model"))?;
    let max_turns = take::<Count>(&mut fields, "max_turns")
        .map(|field| field.value("max_turns").map(|Count(n)| n))
        .transpose()?;

    let warnings = left_out(path, &name, &unknown_tools, &fields);
    let def = AgentDef {
        name,
        description,
        tools,
        disallowed_tools: Vec::new(),
        model,
        max_turns,
        background: false,
        command: None,
        prompt: body.trim().to_string(),
        source: Source::File(path.to_path_buf()),
    };
    Ok((def, warnings))
}

#[cfg(test)]
#[path = "gemini_tests.rs"]
mod tests;
