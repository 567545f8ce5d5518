//! `task_input`: text and named keys typed into a running task's terminal (or pipe).

use aside_core::{ConsoleError, EngineError, MAX_WRITE};
use aside_protocol::{keys, Input, TaskKind};
use schemars::JsonSchema;
use serde::Deserialize;

use super::record::{describe_outcome, engine_error, id_text, output_of, parse_id};
use super::{ToolContext, ToolOutput};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskInputArgs {
    /// The task's id.
    #[serde(deserialize_with = "id_text")]
    pub task_id: String,
    /// Text to type, sent first, exactly as given.
    #[serde(default)]
    pub text: Option<String>,
    /// Keys to press after the text, in order, by name: "Enter", "Tab", "Escape", "Up",
    /// "C-c" (Ctrl+C), "C-d", "M-x" (Alt+X), "F1", ...
    #[serde(default, deserialize_with = "one_or_many")]
    pub keys: Vec<String>,
    /// Close a pipe's input after the rest (end of file). A terminal has none: send ["C-d"].
    #[serde(default)]
    pub eof: bool,
}

/// Models sometimes send one key as a string rather than a list of one.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Keys {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Keys::deserialize(d)? {
        Keys::One(k) => vec![k],
        Keys::Many(ks) => ks,
    })
}

/// Every key name taken, as the description and errors list them.
fn key_names() -> String {
    format!(
        "{}, C-<letter> (Ctrl: C-c interrupts, C-d ends input), M-<key> (Alt)",
        keys::NAMES.join(", ")
    )
}

pub fn task_input_description() -> String {
    format!(
        "Types into a running task started with bash pty: true (or a task with a pipe as its \
         input): first text, exactly as given, then each of keys pressed in order. Keys: {}. \
         Then read what the program shows with task_output screen: true. Example: \
         {{\"task_id\": \"7\", \"text\": \"print(6*7)\", \"keys\": [\"Enter\"]}}; to interrupt: \
         {{\"task_id\": \"7\", \"keys\": [\"C-c\"]}}. eof: true closes a pipe after the input.",
        key_names()
    )
}

pub fn task_input(ctx: &ToolContext, a: TaskInputArgs) -> ToolOutput {
    let id = match parse_id(&a.task_id) {
        Ok(id) => id,
        Err(e) => return e,
    };
    let t = match ctx.engine.get(id) {
        Ok(t) => t,
        Err(e) => return engine_error(e),
    };
    let pty = match &t.kind {
        TaskKind::Shell {
            input: Input::Pty(_),
            ..
        } => true,
        TaskKind::Shell {
            input: Input::Pipe, ..
        } => false,
        TaskKind::Shell {
            input: Input::None, ..
        } => return engine_error(ConsoleError::NoInput(id).into()),
        TaskKind::Agent { .. } => return engine_error(EngineError::Agent { id }),
    };
    if a.eof && pty {
        return ToolOutput::error(format!(
            "task {id} runs on a terminal, which has no end of file to close: send keys \
             [\"C-d\"] to end a program's input"
        ));
    }
    let text = a.text.unwrap_or_default();
    let mut data = text.clone().into_bytes();
    let mut unknown = Vec::new();
    for key in &a.keys {
        match keys::bytes(key, pty) {
            Some(b) => data.extend(b),
            None => unknown.push(format!("{key:?}")),
        }
    }
    if !unknown.is_empty() {
        // Nothing is sent: half of what was meant could do harm.
        return ToolOutput::error(format!(
            "no key named {}; nothing was sent. The keys are: {}. To type characters, put \
             them in text.",
            unknown.join(", "),
            key_names()
        ));
    }
    if data.is_empty() && !a.eof {
        return ToolOutput::error("nothing to send: give text, keys or eof: true");
    }
    // In writes the supervisor takes, as `aside send` cuts them; eof goes with the last.
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(MAX_WRITE).collect()
    };
    let mut written = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        let eof = a.eof && i + 1 == chunks.len();
        match ctx.engine.write(id, chunk, eof) {
            Ok(n) => written += n,
            Err(e) if written == 0 => return engine_error(e),
            Err(e) => {
                return ToolOutput::error(format!(
                    "{} after {written} bytes of {} were sent",
                    engine_error(e).text,
                    data.len()
                ))
            }
        }
    }
    let mut what = Vec::new();
    if !text.is_empty() {
        what.push("the text".to_string());
    }
    what.extend(a.keys.iter().cloned());
    if a.eof {
        what.push("end of file".into());
    }
    let read = if pty {
        "task_output screen: true"
    } else {
        "task_output"
    };
    let mut out = output_of(&t);
    out.is_error = false;
    out.text = format!(
        "{}\nsent {written} bytes ({}). Read what it shows with {read}.",
        describe_outcome(&t),
        what.join(", ")
    );
    out
}
