//! One definition file's text into an [`AgentDef`]: each setting of the frontmatter checked,
//! tool names mapped onto aside's tools, the body as the system prompt. Claude Code's format
//! (which opencode's and aside's files share) is read here; Gemini CLI's and Codex's in their
//! own modules, with the pieces below that every format shares; [`super::parse_format`] picks
//! the reader.

use std::path::Path;

use super::frontmatter::{
    self, first_set, Argv, Count, Field, Flag, Frontmatter, Text, ToolNames, ToolsField,
};
use serde_yaml_ng::Mapping;

use super::tools::{dedup, disabled_tools, map_host_tools, map_tools};
use super::{AgentDef, DefinitionError, Source, Tool, Warning};

/// Claude's model tier aliases, and `inherit` (Claude's and Gemini CLI's word for the caller's
/// model). They name no model on an OpenAI-compatible server, so an agent that asks for one
/// gets the configured default model instead.
const MODEL_ALIASES: &[&str] = &["inherit", "sonnet", "opus", "haiku"];

/// The longest agent name allowed; names appear in task ids and listings.
const MAX_NAME_LEN: usize = 64;

/// Parses one definition file's text. `path` gives the default name (the file stem) and the
/// [`Source`]. The error says what is wrong, naming the field when a field is at fault.
pub fn parse(path: &Path, text: &str) -> Result<AgentDef, DefinitionError> {
    parse_with_warnings(path, text).map(|(def, _)| def)
}

/// Like [`parse`], but also returns the problems that did not stop the agent from loading:
/// tool names aside has no equivalent for, which are left out.
pub fn parse_with_warnings(
    path: &Path,
    text: &str,
) -> Result<(AgentDef, Vec<Warning>), DefinitionError> {
    let (frontmatter, body) = frontmatter::read(text)?;
    let mut unknown_tools = Vec::new();
    let def = build(path, frontmatter, body, &mut unknown_tools)?;
    let warnings = unknown_tools_warning(path, &def.name, &unknown_tools)
        .into_iter()
        .collect();
    Ok((def, warnings))
}

/// The warning for tool names that were left out, if there were any.
pub(super) fn unknown_tools_warning(
    path: &Path,
    agent: &str,
    unknown: &[String],
) -> Option<Warning> {
    (!unknown.is_empty()).then(|| Warning {
        path: path.to_path_buf(),
        message: format!(
            "agent {agent:?}: ignoring tools aside does not have: {}",
            unknown.join(", ")
        ),
    })
}

/// The warning for a field that was read but changes nothing: aside has no such setting.
fn ignored_field(path: &Path, agent: &str, key: &str) -> Warning {
    Warning {
        path: path.to_path_buf(),
        message: format!("agent {agent:?}: ignoring `{key}`, which aside does not honour"),
    }
}

/// A host's `tools` allow-list in its own tool names, mapped onto aside's (`*`: every tool,
/// as no list). Names with no equivalent go to `unknown`.
pub(super) fn host_allow_list(
    field: Option<Field<ToolNames>>,
    lookup: fn(&str) -> Option<&'static [Tool]>,
    unknown: &mut Vec<String>,
) -> Result<Option<Vec<Tool>>, DefinitionError> {
    let Some(field) = field else {
        return Ok(None);
    };
    let ToolNames(names) = field.value("tools")?;
    let every = names.iter().any(|name| name == "*");
    Ok((!every).then(|| map_host_tools(&names, lookup, unknown)))
}

/// What a host's file had that aside leaves out: the tool names with no equivalent, then each
/// field still set in `fields` (the ones read were taken out of it).
pub(super) fn left_out(
    path: &Path,
    agent: &str,
    unknown_tools: &[String],
    fields: &Mapping,
) -> Vec<Warning> {
    let mut warnings: Vec<Warning> = unknown_tools_warning(path, agent, unknown_tools)
        .into_iter()
        .collect();
    warnings.extend(
        fields
            .iter()
            .filter(|(_, value)| !value.is_null())
            .filter_map(|(key, _)| key.as_str())
            .map(|key| ignored_field(path, agent, key)),
    );
    warnings
}

/// The agent's name: the `name` field, or else the file's stem.
pub(super) fn agent_name(
    path: &Path,
    field: Option<Field<Text>>,
) -> Result<String, DefinitionError> {
    match field {
        Some(field) => {
            let Text(name) = field.value("name")?;
            if !valid_name(&name) {
                return Err(DefinitionError::BadName { name });
            }
            Ok(name)
        }
        None => {
            let stem = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .ok_or(DefinitionError::FileNameNotUtf8)?;
            if !valid_name(stem) {
                return Err(DefinitionError::BadFileName {
                    name: stem.to_string(),
                });
            }
            Ok(stem.to_string())
        }
    }
}

/// The description, trimmed; empty when the file has none.
pub(super) fn description(field: Option<Field<Text>>) -> Result<String, DefinitionError> {
    match field {
        Some(field) => field
            .value("description")
            .map(|Text(text)| text.trim().to_string()),
        None => Ok(String::new()),
    }
}

/// The model the agent asks for, or None for the configured default: absent, empty, or one of
/// the hosts' aliases, which name no model on an OpenAI-compatible server.
pub(super) fn model(field: Option<Field<Text>>) -> Result<Option<String>, DefinitionError> {
    let Some(field) = field else {
        return Ok(None);
    };
    let Text(model) = field.value("model")?;
    let model = model.trim().to_string();
    let alias = MODEL_ALIASES
        .iter()
        .any(|alias| model.eq_ignore_ascii_case(alias));
    Ok((!alias && !model.is_empty()).then_some(model))
}

/// Builds the definition, checking the settings in a fixed order so a file with several
/// problems always reports the same one.
fn build(
    path: &Path,
    frontmatter: Frontmatter,
    body: &str,
    unknown_tools: &mut Vec<String>,
) -> Result<AgentDef, DefinitionError> {
    let Frontmatter {
        name,
        description,
        tools,
        disallowed_tools_camel,
        disallowed_tools,
        model,
        max_turns_camel,
        max_turns,
        max_steps,
        background,
        command,
    } = frontmatter;

    let name = agent_name(path, name)?;
    let description = self::description(description)?;

    let mut allowed = None;
    let mut disallowed = Vec::new();
    match tools.map(|field| field.value("tools")).transpose()? {
        // opencode's map only ever takes tools away.
        Some(ToolsField::Switches(switches)) => disallowed = disabled_tools(&switches),
        // `*` is Claude Code's way of saying every tool.
        Some(ToolsField::Names(names)) if !names.iter().any(|n| n == "*") => {
            allowed = Some(map_tools(&names, Some(unknown_tools)));
        }
        Some(ToolsField::Names(_)) | None => {}
    }
    let denied = first_set([
        ("disallowedTools", disallowed_tools_camel),
        ("disallowed_tools", disallowed_tools),
    ]);
    if let Some((key, field)) = denied {
        let ToolNames(names) = field.value(key)?;
        // A tool aside does not have cannot be used anyway, so unknown names here need no
        // warning: Claude files commonly deny WebFetch and the like.
        disallowed.extend(map_tools(&names, None));
    }
    dedup(&mut disallowed);

    let model = self::model(model)?;

    let max_turns = first_set([
        ("maxTurns", max_turns_camel),
        ("max_turns", max_turns),
        ("maxSteps", max_steps),
    ])
    .map(|(key, field)| field.value(key).map(|Count(n)| n))
    .transpose()?;

    let background = match background {
        Some(field) => field.value("background").map(|Flag(on)| on)?,
        None => false,
    };

    let command = command
        .map(|field| field.value("command").map(|Argv(argv)| argv))
        .transpose()?;

    Ok(AgentDef {
        name,
        description,
        tools: allowed,
        disallowed_tools: disallowed,
        model,
        max_turns,
        background,
        command,
        prompt: body.trim().to_string(),
        source: Source::File(path.to_path_buf()),
    })
}

/// 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    // Every accepted character is ASCII, so the byte length is the character count.
    first_ok && rest_ok && name.len() <= MAX_NAME_LEN
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
