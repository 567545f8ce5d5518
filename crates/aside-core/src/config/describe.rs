//! [`Config::describe`]: the settings as a config file, each key with the first line of its
//! field's doc comment, so a new setting is described where it is declared.

use serde_json::Value as Schema;
use toml::{Table, Value};

use super::Config;

/// Comments start in this column when the key and value leave room.
const COMMENT_COLUMN: usize = 26;

pub(super) fn describe(config: &Config) -> String {
    let schema = schemars::schema_for!(Config);
    let root = schema.as_value();
    let mut lines = Vec::new();
    match Table::try_from(config) {
        Ok(table) => write_table(&mut lines, "", &table, root, root),
        Err(e) => lines.push(format!("# the settings cannot be written as TOML: {e}")),
    }
    lines.join("\n")
}

/// Writes `table`'s values, then its sub-tables (TOML needs that order), each annotated from
/// `schema`, the JSON Schema of the type it was serialized from.
fn write_table(
    lines: &mut Vec<String>,
    prefix: &str,
    table: &Table,
    schema: &Schema,
    root: &Schema,
) {
    let fields = &schema["properties"];
    for (key, value) in table.iter().filter(|(_, v)| !v.is_table()) {
        lines.push(annotate(
            format!("{} = {value}", toml_key(key)),
            &doc(&fields[key]),
        ));
    }
    for (key, value) in table {
        let Value::Table(sub) = value else { continue };
        let field = &fields[key];
        let name = format!("{prefix}{}", toml_key(key));
        let body = resolve(field, root);
        let entry = resolve(&body["additionalProperties"], root);
        if entry.get("properties").is_some() {
            // A map of sections ([providers.NAME]): its doc is a hint, then each section.
            let hint = doc(field);
            if !hint.is_empty() {
                lines.push(format!("# {hint}"));
            }
            for (entry_key, entry_value) in sub {
                if let Value::Table(t) = entry_value {
                    let entry_name = format!("{name}.{}", toml_key(entry_key));
                    lines.push(format!("[{entry_name}]"));
                    write_table(lines, &format!("{entry_name}."), t, entry, root);
                }
            }
        } else {
            lines.push(annotate(format!("[{name}]"), &doc(field)));
            write_table(lines, &format!("{name}."), sub, body, root);
        }
    }
}

/// The schema a `$ref` points to, or `schema` itself.
fn resolve<'a>(schema: &'a Schema, root: &'a Schema) -> &'a Schema {
    match schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        Some(name) => &root["$defs"][name],
        None => schema,
    }
}

/// The first line of a field's doc comment, as plain text.
fn doc(field: &Schema) -> String {
    let text = field["description"].as_str().unwrap_or("");
    let first = text.lines().next().unwrap_or("").trim();
    first.strip_suffix('.').unwrap_or(first).replace('`', "")
}

fn annotate(code: String, doc: &str) -> String {
    if doc.is_empty() {
        code
    } else {
        format!("{code:<width$} # {doc}", width = COMMENT_COLUMN - 1)
    }
}

/// A key as TOML writes it: bare when it can be, else quoted.
fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if bare {
        key.to_string()
    } else {
        Value::String(key.to_string()).to_string()
    }
}
