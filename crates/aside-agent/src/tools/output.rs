//! `task_output`, and how every tool shows a task's output: its bytes, or for a task on a
//! terminal the screen they drew, since a terminal's raw output is escape sequences a model
//! reads badly.

use std::time::Duration;

use aside_core::config::MAX_WAIT;
use aside_core::{Config, Engine, Pattern};
use aside_protocol::rpc::UNTIL_WAIT_MS;
use aside_protocol::{
    format_duration, Screen, ScreenFormat, TaskId, TaskKind, TaskRecord, TermSize,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::record::{describe_outcome, engine_error, id_text, output_of, parse_id};
use super::{cap_text, ToolContext, ToolOutput};

/// Bytes read from each end of a long output when building a result.
const READ_WINDOW: usize = 256 << 10;
/// Bytes of raw output a notification shows at most.
const TAIL_BYTES: u64 = 2000;
/// Characters of a screen a notification shows at most.
const TAIL_SCREEN: usize = 4000;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskOutputArgs {
    /// The task's id.
    #[serde(deserialize_with = "id_text")]
    pub task_id: String,
    /// Byte offset to read from (the `next_offset` of an earlier call); default 0.
    #[serde(default)]
    pub offset: Option<u64>,
    /// Seconds to wait for the task to end before answering (at most 600); default 0.
    #[serde(default)]
    pub wait_seconds: Option<u64>,
    /// For a task started with pty: true, show its terminal's screen now (text, and where
    /// the cursor is) instead of output bytes; offset is not used.
    #[serde(default)]
    pub screen: bool,
    /// A regular expression: wait (wait_seconds, 30 s by default) until the output from
    /// offset on matches it, escape sequences left out; the answer shows the match and the
    /// output up to it. The task ending first is its own answer.
    #[serde(default)]
    pub until: Option<String>,
}

pub fn task_output_description(c: &Config) -> String {
    format!(
        "Reads a task's output from a byte offset, with its state. wait_seconds (at most {}) \
         waits for the task to end first and returns cleanly, with what is still running, if \
         it has not. screen: true shows what a terminal task (bash pty: true) has on its \
         screen, as text with the cursor's row and column, instead of the raw output: read it \
         after task_input to see the program's answer (call again if it is not there yet). \
         until: a regular expression to wait for in the output from offset on (a dev server's \
         ready line, a REPL's prompt), up to wait_seconds (30 by default); the answer shows \
         the match and the output up to it, or the screen with screen: true. Rarely needed \
         otherwise: notifications bring each background task's outcome. Output over {} \
         characters shows head and tail. Examples: {{\"task_id\": \"7\", \"screen\": \
         true}}; {{\"task_id\": \"8\", \"until\": \"ready on http://\\\\S+\", \
         \"wait_seconds\": 60}}.",
        MAX_WAIT.as_secs(),
        c.agent.tool_output
    )
}

pub async fn task_output(ctx: &ToolContext, a: TaskOutputArgs) -> ToolOutput {
    let id = match parse_id(&a.task_id) {
        Ok(id) => id,
        Err(e) => return e,
    };
    if let Some(pattern) = &a.until {
        return until(ctx, id, &a, pattern).await;
    }
    let wait = Duration::from_secs(a.wait_seconds.unwrap_or(0)).min(MAX_WAIT);
    let t = if wait.is_zero() {
        ctx.engine.get(id)
    } else {
        ctx.engine
            .wait(&[id], Some(wait))
            .await
            .map(|(mut ts, _)| ts.remove(0))
    };
    let t = match t {
        Ok(t) => t,
        Err(e) => return engine_error(e),
    };
    let offset = a.offset.unwrap_or(0);
    let (body, next) = if a.screen {
        match screen_of(&ctx.engine, id).await {
            Ok(s) => (screen_block(&s), s.offset),
            Err(e) => return e,
        }
    } else {
        let cap_bytes = ctx.config.agent.tool_output * 4;
        // Plain: without escape sequences, and one cut by the end of the read is left whole
        // for the next offset.
        let read = ctx.engine.read_plain(id, offset, cap_bytes, None, false);
        match read.await {
            Ok(r) => (
                format!(
                    "output from offset {offset}:\n{}",
                    String::from_utf8_lossy(&r.data)
                ),
                r.next,
            ),
            Err(e) => (
                format!("output from offset {offset}:\n(output not available: {e})"),
                offset,
            ),
        }
    };
    if t.is_terminal() && t.owner == ctx.owner {
        // The owner has seen the result: no notification repeats it.
        ctx.engine.discard_notification(id).await;
    }
    let still = if t.is_terminal() {
        String::new()
    } else if wait.is_zero() {
        "\nIt is still running; a notification comes when it ends.".into()
    } else {
        format!(
            "\nIt is still running after waiting {}; a notification comes when it ends.",
            format_duration(wait)
        )
    };
    let answer = match (&t.kind, &t.answer) {
        (TaskKind::Agent { .. }, Some(ans)) => format!("\nanswer:\n{ans}"),
        _ => String::new(),
    };
    let mut out = output_of(&t);
    out.text = format!(
        "{}{still}\nnext_offset: {next}\n{body}{answer}",
        describe_outcome(&t)
    );
    out
}

/// `task_output` with `until`: waits for the pattern, then shows the match with the output
/// up to it (or the screen).
async fn until(ctx: &ToolContext, id: TaskId, a: &TaskOutputArgs, pattern: &str) -> ToolOutput {
    let pattern = match Pattern::new(pattern) {
        Ok(p) => p,
        Err(e) => return ToolOutput::error(format!("until: {e}")),
    };
    let wait = match a.wait_seconds {
        Some(s) => Duration::from_secs(s).min(MAX_WAIT),
        None => Duration::from_millis(UNTIL_WAIT_MS),
    };
    let offset = a.offset.unwrap_or(0);
    let cap_bytes = ctx.config.agent.tool_output * 4;
    let u = match ctx
        .engine
        .read_until(id, offset, &pattern, wait, cap_bytes)
        .await
    {
        Ok(u) => u,
        Err(e) => return engine_error(e),
    };
    let t = match ctx.engine.get(id) {
        Ok(t) => t,
        Err(e) => return engine_error(e),
    };
    let (found, next) = match &u.matched {
        Some(m) => (
            format!("matched {:?} at offset {}", m.text, m.offset),
            m.end,
        ),
        None if u.read.eof => (
            format!("no match for {:?}: the task ended first", pattern.as_str()),
            u.read.next,
        ),
        None => (
            format!(
                "no match for {:?} within {}",
                pattern.as_str(),
                format_duration(wait)
            ),
            u.read.next,
        ),
    };
    let body = if a.screen {
        match screen_of(&ctx.engine, id).await {
            Ok(s) => screen_block(&s),
            Err(e) => return e,
        }
    } else {
        format!(
            "output from offset {}:\n{}",
            u.read.offset,
            String::from_utf8_lossy(&aside_core::ansi::strip(&u.read.data))
        )
    };
    let still = match t.is_terminal() {
        true => "",
        false => "\nIt is still running; a notification comes when it ends.",
    };
    let mut out = output_of(&t);
    out.text = format!(
        "{}{still}\n{found}\nnext_offset: {next}\n{body}",
        describe_outcome(&t)
    );
    out
}

/// The terminal a shell task runs on, if it runs on one.
pub(super) fn terminal(t: &TaskRecord) -> Option<TermSize> {
    t.kind.input().pty()
}

/// A task's screen as text. Drawing it may replay megabytes of a log: off the runtime.
async fn screen_of(engine: &Engine, id: TaskId) -> Result<Screen, ToolOutput> {
    let engine = engine.clone();
    match tokio::task::spawn_blocking(move || engine.screen(id, ScreenFormat::Text)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(engine_error(e)),
        Err(e) => Err(ToolOutput::error(format!("drawing the screen failed: {e}"))),
    }
}

/// A screen as a model reads it: a line on its size and cursor, then its rows.
fn screen_block(s: &Screen) -> String {
    format!(
        "screen ({}x{}, cursor at row {}, column {}, from 0):\n{}",
        s.cols, s.rows, s.cursor_row, s.cursor_col, s.text
    )
}

/// What a result shows of a shell task's output: the screen of a terminal task, else the
/// output as text.
pub(super) async fn shown(engine: &Engine, t: &TaskRecord) -> String {
    if terminal(t).is_some() {
        if let Ok(s) = screen_of(engine, t.id).await {
            return screen_block(&s);
        }
    }
    output_text(engine, t.id).await
}

/// Output as a model reads it: escape sequences (colours, cursor moves) left out.
fn text_of(output: &[u8]) -> String {
    String::from_utf8_lossy(&aside_core::ansi::strip(output)).into_owned()
}

/// The whole output as text when it is short; its head and tail, with a marker, when not.
async fn output_text(engine: &Engine, id: TaskId) -> String {
    let Ok(first) = engine.read(id, 0, READ_WINDOW, None, false).await else {
        return String::new();
    };
    let total = first.total;
    let head = text_of(&first.data);
    if total <= first.data.len() as u64 {
        return head;
    }
    let from = total
        .saturating_sub(READ_WINDOW as u64)
        .max(first.data.len() as u64);
    let tail = match engine.read(id, from, READ_WINDOW, None, false).await {
        Ok(r) => text_of(&r.data),
        Err(_) => String::new(),
    };
    let skipped = from - first.data.len() as u64;
    if skipped == 0 {
        format!("{head}{tail}")
    } else {
        format!("{head}\n[… {skipped} bytes omitted …]\n{tail}")
    }
}

/// What a notification shows of a shell task's output, with its label: the last screen of a
/// terminal task, else the output's tail; empty when there is none.
pub(super) async fn tail(engine: &Engine, t: &TaskRecord) -> String {
    if terminal(t).is_some() {
        if let Ok(s) = screen_of(engine, t.id).await {
            if s.text.trim().is_empty() {
                return String::new();
            }
            return format!("last {}", cap_text(&screen_block(&s), TAIL_SCREEN, None));
        }
    }
    let from = t.output_bytes.saturating_sub(TAIL_BYTES);
    match engine
        .read(t.id, from, TAIL_BYTES as usize, None, false)
        .await
    {
        Ok(r) => {
            let tail = text_of(&r.data).trim_end().to_string();
            if tail.is_empty() {
                tail
            } else {
                format!("output tail:\n{tail}")
            }
        }
        Err(_) => String::new(),
    }
}
