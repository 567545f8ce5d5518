//! Text for people: tables, ages, records.

use aside_protocol::{TaskRecord, Timestamp};

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

/// The `ls` table's header line.
pub fn table_header() -> String {
    format!(
        "{:<6} {:<6} {:<11} {:<4} {:>4}  {}\n",
        "ID", "KIND", "STATE", "BG", "AGE", "COMMAND"
    )
}

/// One row of the `ls` table; `unseen` marks a task that ended since the owner last looked.
pub fn table_row(t: &TaskRecord, unseen: bool) -> String {
    let state = format!("{}{}", state_name(t), if unseen { "*" } else { "" });
    let mut command = match &t.name {
        Some(n) => format!("[{n}] {}", t.kind.display()),
        None => t.kind.display(),
    };
    if let (Some(p), false) = (&t.progress, t.is_terminal()) {
        command = format!("({}) {command}", p.describe());
    }
    format!(
        "{:<6} {:<6} {:<11} {:<4} {:>4}  {}\n",
        t.id.to_string(),
        t.kind.name(),
        state,
        if t.detached { "yes" } else { "no" },
        age(t.created_at),
        truncate(&command, 80)
    )
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
