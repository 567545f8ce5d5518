//! Text for people: tables, ages, records.

use aside_protocol::{CancelReason, Failure, TaskRecord, TaskState, Timestamp};

/// "3s", "5m", "2h", "4d".
pub fn age(since: Timestamp) -> String {
    let secs = since.until(Timestamp::now()).as_secs();
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86399 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

fn truncate(s: &str, max: usize) -> String {
    let one_line = s.replace('\n', " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// Widths of the `ls` table's columns before COMMAND, which takes the rest.
const RESULT_WIDTH: usize = 16;
const GROUP_WIDTH: usize = 10;

/// The `ls` table's header line.
pub fn table_header() -> String {
    format!(
        "{:<6} {:<6} {:<11} {:<RESULT_WIDTH$} {:<8} {:<GROUP_WIDTH$} {:>4}  {}\n",
        "ID", "KIND", "STATE", "RESULT", "DETACHED", "GROUP", "AGE", "COMMAND"
    )
}

/// One row of the `ls` table; `unseen` marks a task that ended since the owner last looked.
pub fn table_row(t: &TaskRecord, unseen: bool) -> String {
    let state = format!("{}{}", state_name(t), if unseen { "*" } else { "" });
    let mut command = t.kind.display();
    if !t.labels.is_empty() {
        command = format!("{{{}}} {command}", labels(t));
    }
    if let Some(n) = &t.name {
        command = format!("[{n}] {command}");
    }
    if let (Some(p), false) = (&t.progress, t.is_terminal()) {
        command = format!("({}) {command}", p.describe());
    }
    format!(
        "{:<6} {:<6} {:<11} {:<RESULT_WIDTH$} {:<8} {:<GROUP_WIDTH$} {:>4}  {}\n",
        t.id.to_string(),
        t.kind.name(),
        state,
        truncate(&result(t), RESULT_WIDTH),
        if t.detached { "yes" } else { "no" },
        truncate(t.group.as_deref().unwrap_or("-"), GROUP_WIDTH),
        age(t.created_at),
        truncate(&command, 80)
    )
}

/// A task's labels as `k=v k2=v2`.
pub fn labels(t: &TaskRecord) -> String {
    let pairs: Vec<String> = t.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(" ")
}

/// The RESULT column: how the task ended, or what a queued one waits for.
pub fn result(t: &TaskRecord) -> String {
    match (&t.state, t.after.is_empty()) {
        (TaskState::Queued, false) => {
            let ids: Vec<String> = t.after.iter().map(|id| id.to_string()).collect();
            format!("after {}", ids.join(","))
        }
        (state, _) => outcome(state),
    }
}

/// How an ended task ended, in a few words (`exit 2`, `signal 9`, `timed out`, `stopped:
/// why`); `-` while it has not ended. `aside info` has the whole story.
pub fn outcome(state: &TaskState) -> String {
    match state {
        TaskState::Succeeded {
            exit_code: Some(code),
            ..
        } => format!("exit {code}"),
        TaskState::Succeeded {
            exit_code: None, ..
        } => "answered".into(),
        TaskState::Failed { failure, .. } => match failure {
            Failure::Exit { exit_code } => format!("exit {exit_code}"),
            Failure::Signal { signal } => format!("signal {signal}"),
            Failure::Spawn {
                not_found: true, ..
            } => "not found".into(),
            Failure::Spawn { .. } => "could not start".into(),
            Failure::Capture { .. } => "capture failed".into(),
            Failure::OutputCap { .. } => "output cap".into(),
            Failure::Worker { .. } => "error".into(),
            Failure::Agent { .. } => "agent error".into(),
            Failure::Dependency { task_id, .. } => format!("dependency {task_id} failed"),
        },
        TaskState::Cancelled { reason, .. } => match reason {
            CancelReason::UserStop { message: Some(m) } => format!("stopped: {m}"),
            CancelReason::UserStop { message: None } => "stopped".into(),
            CancelReason::OwnerGone => "caller gone".into(),
            CancelReason::Shutdown => "shutdown".into(),
            CancelReason::Stalled { .. } => "stalled".into(),
        },
        TaskState::TimedOut { .. } => "timed out".into(),
        TaskState::Lost { .. } => "lost".into(),
        // Not ended yet.
        _ => "-".into(),
    }
}

/// A task's state as a word: `paused` for a running task that is.
fn state_name(t: &TaskRecord) -> &'static str {
    match t.paused {
        true => "paused",
        false => t.state.name(),
    }
}

/// The line under a table with unseen tasks.
pub const UNSEEN_NOTE: &str = "* ended since you last looked\n";

/// A record as `key: value` lines.
pub fn record(t: &TaskRecord) -> String {
    let mut lines = vec![
        format!("id:         {}", t.id),
        format!("kind:       {}", t.kind.name()),
        format!("command:    {}", t.kind.display()),
    ];
    if let Some(n) = &t.name {
        lines.push(format!("name:       {n}"));
    }
    lines.push(format!(
        "state:      {}{}",
        t.state.describe(),
        if t.paused { ", paused" } else { "" }
    ));
    if let Some(code) = t.state.exit_code() {
        lines.push(format!("exit code:  {code}"));
    }
    lines.push(format!("owner:      {}", t.owner));
    lines.push(format!("cwd:        {}", t.cwd));
    if let Some(g) = &t.group {
        lines.push(format!("group:      {g}"));
    }
    if !t.labels.is_empty() {
        lines.push(format!("labels:     {}", labels(t)));
    }
    if !t.after.is_empty() {
        let ids: Vec<String> = t.after.iter().map(|id| id.to_string()).collect();
        lines.push(format!("after:      {}", ids.join(", ")));
    }
    lines.push(format!("mode:       {:?}", t.mode).to_lowercase());
    lines.push(format!("detached:   {}", t.detached));
    lines.push(format!(
        "timeout:    {}",
        t.timeout_ms
            .map(|ms| aside_protocol::format_duration(std::time::Duration::from_millis(ms)))
            .unwrap_or_else(|| "none".into())
    ));
    if let Some(k) = &t.dedupe_key {
        lines.push(format!("dedupe key: {k}"));
    }
    lines.push(format!("created:    {}", t.created_at));
    if let Some(s) = t.state.started_at() {
        lines.push(format!("started:    {s}"));
    }
    if let Some(e) = t.state.ended_at() {
        lines.push(format!("ended:      {e}"));
    }
    if let Some(sid) = t.kind.session_id() {
        lines.push(format!("session:    {sid}"));
    }
    if let Some(p) = &t.progress {
        lines.push(format!("progress:   {} (model {})", p.describe(), p.model));
    }
    if let Some(a) = &t.answer {
        lines.push(format!("answer:     {}", truncate(a, 200)));
    }
    lines.push(format!("output:     {} bytes", t.output_bytes));
    if let Some(p) = &t.log_path {
        lines.push(format!("log:        {p}"));
    }
    lines.join("\n") + "\n"
}

pub fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_vec_pretty(v)?;
    text.push(b'\n');
    crate::stdout::write(&text)?;
    Ok(())
}

/// Says how the task ended, unless its output or the person who stopped it already did.
pub fn report_end(t: &TaskRecord, stopped_here: bool) {
    match &t.state {
        TaskState::Failed {
            failure: Failure::Exit { .. },
            ..
        }
        | TaskState::Succeeded { .. } => {}
        // Ctrl+C here: one line, as Ctrl+Z has.
        TaskState::Cancelled { .. } if stopped_here => {
            eprintln!("aside: task {} stopped (Ctrl+C)", t.id)
        }
        other => eprintln!("aside: task {} {}", t.id, other.describe()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ending_has_a_short_result() {
        let at = Timestamp::now();
        let failed = |failure| TaskState::Failed {
            started_at: Some(at),
            ended_at: at,
            failure,
        };
        let cancelled = |reason| TaskState::Cancelled {
            started_at: None,
            ended_at: at,
            reason,
        };
        let cases = [
            (TaskState::Queued, "-"),
            (
                TaskState::Running {
                    started_at: at,
                    pid: Some(7),
                },
                "-",
            ),
            (
                TaskState::Succeeded {
                    started_at: at,
                    ended_at: at,
                    exit_code: Some(0),
                },
                "exit 0",
            ),
            (
                TaskState::Succeeded {
                    started_at: at,
                    ended_at: at,
                    exit_code: None,
                },
                "answered",
            ),
            (failed(Failure::Exit { exit_code: 2 }), "exit 2"),
            (failed(Failure::Signal { signal: 9 }), "signal 9"),
            (
                failed(Failure::Spawn {
                    error: "no such file".into(),
                    not_found: true,
                }),
                "not found",
            ),
            (failed(Failure::OutputCap { limit_bytes: 1 }), "output cap"),
            (
                cancelled(CancelReason::UserStop {
                    message: Some("enough".into()),
                }),
                "stopped: enough",
            ),
            (cancelled(CancelReason::Shutdown), "shutdown"),
            (
                TaskState::TimedOut {
                    started_at: at,
                    ended_at: at,
                    limit_ms: 100,
                },
                "timed out",
            ),
            (
                TaskState::Lost {
                    started_at: None,
                    ended_at: at,
                    reason: "its supervisor died".into(),
                },
                "lost",
            ),
        ];
        for (state, want) in cases {
            assert_eq!(outcome(&state), want, "{state:?}");
        }
    }
}
