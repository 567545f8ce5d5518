//! The frontmatter of a definition file: split from the markdown body, parsed as YAML (with one
//! repair for what Claude Code writes), and deserialized into a [`Frontmatter`] whose field
//! types say which shapes each setting accepts.

use serde::{Deserialize, Deserializer};
use serde_yaml_ng::{Mapping, Value};

use super::error::{DefinitionError, FieldError, Found};

/// The settings aside reads. Each spelling the formats use is a field of its own rather than a
/// serde alias, so that an error names the spelling the file used, and a file with two spellings
/// of one setting still loads ([`first_set`] picks one; an alias would refuse it as a duplicate).
/// Keys aside has no use for (`color`, `mode`, `temperature`, ...) are ignored, so files written
/// for Claude Code or opencode load unchanged. `key:` with nothing after it counts as absent.
#[derive(Debug, Deserialize)]
pub(super) struct Frontmatter {
    pub name: Option<Field<Text>>,
    pub description: Option<Field<Text>>,
    pub tools: Option<Field<ToolsField>>,
    #[serde(rename = "disallowedTools")]
    pub disallowed_tools_camel: Option<Field<ToolNames>>,
    pub disallowed_tools: Option<Field<ToolNames>>,
    pub model: Option<Field<Text>>,
    #[serde(rename = "maxTurns")]
    pub max_turns_camel: Option<Field<Count>>,
    pub max_turns: Option<Field<Count>>,
    /// opencode's spelling.
    #[serde(rename = "maxSteps")]
    pub max_steps: Option<Field<Count>>,
    pub background: Option<Field<Flag>>,
    pub command: Option<Field<Argv>>,
}

/// Reads a definition file's text into its frontmatter and its body.
pub(super) fn read(text: &str) -> Result<(Frontmatter, &str), DefinitionError> {
    let (fields, body) = read_mapping(text)?;
    let frontmatter =
        serde_yaml_ng::from_value(Value::Mapping(fields)).map_err(DefinitionError::Yaml)?;
    Ok((frontmatter, body))
}

/// Reads a definition file's text into its frontmatter's fields, in the file's order, and its
/// body. For formats whose fields are taken one by one ([`take`]) so that what is left over can
/// be named in a warning.
pub(super) fn read_mapping(text: &str) -> Result<(Mapping, &str), DefinitionError> {
    let (yaml, body) = split(text)?;
    let fields = match parse_yaml(&yaml)? {
        Value::Mapping(fields) => fields,
        // `---` directly followed by `---`: no fields, every default.
        Value::Null => Mapping::new(),
        other => {
            return Err(DefinitionError::NotAMapping {
                found: Found(other),
            })
        }
    };
    // Only a string can name a setting. Other keys are ignored like unknown ones (serde would
    // otherwise take a number key as a field's position).
    let fields: Mapping = fields
        .into_iter()
        .filter(|(key, _)| key.is_string())
        .collect();
    Ok((fields, body))
}

/// Removes the setting `key` from `fields` and reads its value, keeping the other fields in
/// their order. `key:` with nothing after it counts as absent, as in [`Frontmatter`].
pub(super) fn take<T: TryFrom<Value, Error = FieldError>>(
    fields: &mut Mapping,
    key: &str,
) -> Option<Field<T>> {
    match fields.shift_remove(key)? {
        Value::Null => None,
        value => Some(Field(T::try_from(value))),
    }
}

/// The first of a setting's spellings that the file uses, with that spelling.
pub(super) fn first_set<T, const N: usize>(
    spellings: [(&'static str, Option<T>); N],
) -> Option<(&'static str, T)> {
    spellings
        .into_iter()
        .find_map(|(key, value)| value.map(|value| (key, value)))
}

/// One setting's value as aside uses it, or what is wrong with it. A bad value does not fail the
/// deserialization: the error is reported when the setting is read, in a fixed order and with
/// the spelling the file used.
#[derive(Debug)]
pub(super) struct Field<T>(Result<T, FieldError>);

impl<T> Field<T> {
    /// The value, or the problem as the error of the setting spelled `key`.
    pub fn value(self, key: &str) -> Result<T, DefinitionError> {
        self.0.map_err(|problem| problem.at(key))
    }
}

impl<'de, T: TryFrom<Value, Error = FieldError>> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(|value| Field(T::try_from(value)))
    }
}

/// Text. YAML turns an unquoted `name: 2024` into a number the author did not intend, so
/// numbers and booleans are taken as written.
#[derive(Debug)]
pub(super) struct Text(pub String);

impl TryFrom<Value> for Text {
    type Error = FieldError;

    fn try_from(value: Value) -> Result<Self, FieldError> {
        scalar_text(value)
            .map(Text)
            .map_err(|value| FieldError::NotText(Found(value)))
    }
}

/// A scalar as text, or the value back when it is not one.
fn scalar_text(value: Value) -> Result<String, Value> {
    match value {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(other),
    }
}

/// A positive integer (a turn limit).
#[derive(Debug)]
pub(super) struct Count(pub u32);

impl TryFrom<Value> for Count {
    type Error = FieldError;

    fn try_from(value: Value) -> Result<Self, FieldError> {
        let n = match &value {
            Value::Number(n) => n.as_u64(),
            _ => None,
        };
        n.filter(|&n| n > 0)
            .and_then(|n| u32::try_from(n).ok())
            .map(Count)
            .ok_or(FieldError::NotPositiveInteger(Found(value)))
    }
}

/// `true` or `false`.
#[derive(Debug)]
pub(super) struct Flag(pub bool);

impl TryFrom<Value> for Flag {
    type Error = FieldError;

    fn try_from(value: Value) -> Result<Self, FieldError> {
        match value {
            Value::Bool(b) => Ok(Flag(b)),
            other => Err(FieldError::NotBool(Found(other))),
        }
    }
}

/// Tool names as the file writes them, from a comma-separated string (`Read, Grep, Glob`) or a
/// list.
#[derive(Debug)]
pub(super) struct ToolNames(pub Vec<String>);

impl TryFrom<Value> for ToolNames {
    type Error = FieldError;

    fn try_from(value: Value) -> Result<Self, FieldError> {
        match value {
            Value::String(s) => Ok(ToolNames(
                s.split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .map(str::to_string)
                    .collect(),
            )),
            Value::Sequence(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s.trim().to_string()),
                    other => Err(FieldError::NotToolName {
                        index: i + 1,
                        found: Found(other),
                    }),
                })
                .collect::<Result<_, _>>()
                .map(ToolNames),
            other => Err(FieldError::NotToolNames(Found(other))),
        }
    }
}

/// The `tools` setting, in either format's form.
#[derive(Debug)]
pub(super) enum ToolsField {
    /// Claude Code's allow-list.
    Names(Vec<String>),
    /// opencode's map (`{write: false, "task_*": false}`): switches, applied in order, whose
    /// keys may be wildcards.
    Switches(Vec<(String, bool)>),
}

impl TryFrom<Value> for ToolsField {
    type Error = FieldError;

    fn try_from(value: Value) -> Result<Self, FieldError> {
        let Value::Mapping(map) = value else {
            return ToolNames::try_from(value).map(|ToolNames(names)| ToolsField::Names(names));
        };
        map.into_iter()
            .map(|(key, on)| {
                let Value::String(tool) = key else {
                    return Err(FieldError::NotToolKey(Found(key)));
                };
                match on {
                    Value::Bool(on) => Ok((tool, on)),
                    other => Err(FieldError::ToolEntry {
                        tool,
                        problem: Box::new(FieldError::NotBool(Found(other))),
                    }),
                }
            })
            .collect::<Result<_, _>>()
            .map(ToolsField::Switches)
    }
}

/// An external agent's argv: a list of strings, or one string split as a shell would (quotes
/// group words; no variables or globbing, since nothing runs a shell).
#[derive(Debug)]
pub(super) struct Argv(pub Vec<String>);

impl TryFrom<Value> for Argv {
    type Error = FieldError;

    fn try_from(value: Value) -> Result<Self, FieldError> {
        let argv: Vec<String> = match value {
            Value::String(line) => shlex::split(&line).ok_or(FieldError::UnclosedQuote)?,
            Value::Sequence(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    scalar_text(item).map_err(|item| FieldError::NotArgument {
                        index: i + 1,
                        found: Found(item),
                    })
                })
                .collect::<Result<_, _>>()?,
            other => return Err(FieldError::NotCommand(Found(other))),
        };
        match argv.first() {
            None => Err(FieldError::EmptyCommand),
            Some(program) if program.is_empty() => Err(FieldError::EmptyProgram),
            Some(_) => Ok(Argv(argv)),
        }
    }
}

/// Splits a file into its frontmatter and body. The YAML text returned starts with an empty
/// line standing in for the opening `---`, so line numbers in YAML errors match the file's.
fn split(text: &str) -> Result<(String, &str), DefinitionError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or_default();
    if first.trim_end() != "---" {
        return Err(DefinitionError::NoFrontmatter);
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
    Err(DefinitionError::UnclosedFrontmatter)
}

/// Parses the frontmatter as YAML. Claude Code writes descriptions like
/// `description: Use this agent when... Context: ... user: "..."` unquoted, which is not valid
/// YAML (`: ` inside a plain value) but which Claude Code itself loads; so when the strict parse
/// fails, such single-line values are quoted and the parse tried once more. If that fails too,
/// the error is the strict parser's, which points at the real problem.
fn parse_yaml(yaml: &str) -> Result<Value, DefinitionError> {
    let strict = match serde_yaml_ng::from_str::<Value>(yaml) {
        Ok(value) => return Ok(value),
        Err(err) => err,
    };
    if let Some(repaired) = quote_colon_values(yaml) {
        if let Ok(value) = serde_yaml_ng::from_str::<Value>(&repaired) {
            return Ok(value);
        }
    }
    Err(DefinitionError::Yaml(strict))
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
