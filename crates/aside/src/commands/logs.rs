//! `aside logs`: a task's output, byte for byte; `-f` follows it until the task ends;
//! `--until` waits until it matches a pattern.

use std::io::Write;
use std::time::{Duration, Instant};

use aside_client::Client;
use aside_protocol::rpc::{method, IdParams, ReadParams, ReadResult};
use aside_protocol::{ScreenFormat, TaskId, TaskRecord};

use crate::cli::LogsArgs;
use crate::connect::{self, Context};
use crate::exit;
use crate::json_chunks::JsonChunks;
use crate::stdout::{outln, StdoutError};

const CHUNK: u64 = 1 << 20;
/// How often `-f --until` asks again, to print what came meanwhile.
const FOLLOW_POLL: Duration = Duration::from_millis(250);
/// The longest one `--until` request waits: the daemon's cap on a wait.
const LONGEST_WAIT: Duration = aside_core::config::MAX_WAIT;
/// Output already printed that the next `--until` request scans again, so a match cut by
/// two answers is found: as much as the daemon's own scan carries over.
const OVERLAP: usize = aside_core::MATCH_CARRY;

/// Prints a terminal task's screen as text.
async fn screen(client: &Client, id: TaskId) -> anyhow::Result<i32> {
    let r = client
        .request::<method::TaskRead>(ReadParams {
            screen: Some(ScreenFormat::Text),
            ..ReadParams::new(id, 0, 1)
        })
        .await?;
    if let Some(s) = r.screen {
        outln!("{}", s.text)?;
    }
    Ok(0)
}

pub async fn run(ctx: &Context, a: LogsArgs) -> anyhow::Result<i32> {
    if aside_protocol::valid_session_id(&a.id) {
        return transcript(ctx, &a.id);
    }
    let id = connect::parse_id(&a.id)?;
    let mut client = ctx.client().await?;
    let task: TaskRecord = client.request::<method::TaskGet>(IdParams { id }).await?;
    let mut after = match a.tail {
        Some(n) => tail_offset(&client, id, task.output_bytes, n).await?,
        None => 0,
    };
    if let Some(pattern) = &a.until {
        let limit = a
            .timeout
            .as_deref()
            .map(|t| connect::parse_duration(t, "timeout"))
            .transpose()?;
        let want = Until {
            id,
            pattern,
            follow: a.follow && !a.screen,
            limit,
        };
        if a.json {
            let mut out = JsonChunks::new(std::io::stdout().lock(), after);
            let code = until(client, &want, after, &mut out).await?;
            out.finish().map_err(StdoutError)?;
            return Ok(code);
        }
        if !a.screen {
            return until(client, &want, after, &mut std::io::stdout().lock()).await;
        }
        // The output the wait went through is not shown: the screen after it is.
        let code = until(client, &want, after, &mut std::io::sink()).await?;
        client = ctx.client().await?;
        if code != 0 {
            return Ok(code);
        }
    }
    if a.screen {
        return screen(&client, id).await;
    }
    let mut out = match a.json {
        true => Out::Json(JsonChunks::new(std::io::stdout().lock(), after)),
        false => Out::Raw(std::io::stdout().lock()),
    };
    loop {
        let read = client
            .request::<method::TaskRead>(ReadParams {
                wait_ms: a.follow.then_some(30_000),
                ..ReadParams::new(id, after, CHUNK)
            })
            .await;
        let r: ReadResult = match read {
            Ok(r) => r,
            // The daemon restarted: on from the same byte with the next one.
            Err(e) if a.follow && Client::broke(&e) => {
                client = client.reconnect().await?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        out.write(r.offset, &r.chunk.decode()?)
            .map_err(StdoutError)?;
        after = r.next;
        let caught_up = after >= r.total;
        if r.eof || (!a.follow && caught_up) {
            out.finish().map_err(StdoutError)?;
            return Ok(0);
        }
    }
}

/// Where the output goes: as it is, or as JSON lines (`--json`).
enum Out<W: Write> {
    Raw(W),
    Json(JsonChunks<W>),
}

impl<W: Write> Out<W> {
    /// Writes `data`, read from `offset`, and flushes it.
    fn write(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        match self {
            Out::Raw(w) => w.write_all(data).and_then(|_| w.flush()),
            Out::Json(j) => {
                j.seek(offset)?;
                j.write_all(data).and_then(|_| j.flush())
            }
        }
    }

    fn finish(&mut self) -> std::io::Result<()> {
        match self {
            Out::Raw(w) => w.flush(),
            Out::Json(j) => j.finish(),
        }
    }
}

/// What `--until` waits for.
struct Until<'a> {
    id: TaskId,
    pattern: &'a str,
    follow: bool,
    limit: Option<Duration>,
}

/// Prints the output from `start` up to the end of the first match of the pattern. Each
/// request waits for a match (at most [`FOLLOW_POLL`] with `-f`, which prints what came
/// meanwhile); the next one starts a little back, at a line within [`OVERLAP`] of what was
/// printed, so a match cut by two answers is still found.
async fn until(
    mut client: Client,
    want: &Until<'_>,
    start: u64,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    let deadline = want.limit.map(|l| Instant::now() + l);
    // Printed up to here; `recent` is the end of it, at most OVERLAP bytes.
    let mut printed = start;
    let mut recent: Vec<u8> = Vec::new();
    let mut scan = start;
    loop {
        let mut wait = if want.follow {
            FOLLOW_POLL
        } else {
            LONGEST_WAIT
        };
        if let Some(d) = deadline {
            wait = wait.min(d.saturating_duration_since(Instant::now()));
        }
        let read = client
            .request::<method::TaskRead>(ReadParams {
                wait_ms: Some(wait.as_millis() as u64),
                until: Some(want.pattern.to_string()),
                ..ReadParams::new(want.id, scan, CHUNK)
            })
            .await;
        let r: ReadResult = match read {
            Ok(r) => r,
            // The daemon restarted: on with the next one.
            Err(e) if Client::broke(&e) => {
                client = client.reconnect().await?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if r.offset > printed {
            // More than one answer's worth led to it: that first.
            copy(&client, want.id, printed..r.offset, out, &mut recent).await?;
            printed = r.offset;
        }
        let data = r.chunk.decode()?;
        let skip = usize::try_from(printed - r.offset).unwrap_or(usize::MAX);
        if let Some(new) = data.get(skip..) {
            print(out, new, &mut recent)?;
        }
        printed = printed.max(r.next);
        if r.matched.is_some() {
            return Ok(0);
        }
        if r.eof {
            let state = r
                .task
                .map(|t| format!(" ({})", t.state.describe()))
                .unwrap_or_default();
            eprintln!(
                "aside: task {} ended{state} before its output matched '{}'",
                want.id, want.pattern
            );
            return Ok(1);
        }
        if let (Some(d), Some(limit)) = (deadline, want.limit) {
            if Instant::now() >= d {
                eprintln!(
                    "aside: the output of task {} did not match '{}' within {} (the task goes on)",
                    want.id,
                    want.pattern,
                    aside_protocol::format_duration(limit)
                );
                return Ok(exit::TIMED_OUT);
            }
        }
        scan = if printed - recent.len() as u64 <= start {
            start
        } else {
            // A line start, so the scan does not begin inside an escape sequence.
            let line = recent.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1);
            printed - (recent.len() - line) as u64
        };
    }
}

/// Writes `data` and keeps the last [`OVERLAP`] bytes printed in `recent`.
fn print(out: &mut dyn Write, data: &[u8], recent: &mut Vec<u8>) -> Result<(), StdoutError> {
    out.write_all(data).and_then(|_| out.flush())?;
    recent.extend_from_slice(&data[data.len().saturating_sub(OVERLAP)..]);
    let extra = recent.len().saturating_sub(OVERLAP);
    recent.drain(..extra);
    Ok(())
}

/// Prints the output in `range`.
async fn copy(
    client: &Client,
    id: TaskId,
    range: std::ops::Range<u64>,
    out: &mut dyn Write,
    recent: &mut Vec<u8>,
) -> anyhow::Result<()> {
    let mut at = range.start;
    while at < range.end {
        let r: ReadResult = client
            .request::<method::TaskRead>(ReadParams::new(id, at, (range.end - at).min(CHUNK)))
            .await?;
        let chunk = r.chunk.decode()?;
        if chunk.is_empty() {
            break;
        }
        print(out, &chunk, recent)?;
        at = r.next;
    }
    Ok(())
}

/// A session's transcript: its messages as JSON lines, as stored.
fn transcript(ctx: &Context, session: &str) -> anyhow::Result<i32> {
    let path = ctx
        .paths
        .home
        .join("sessions")
        .join(format!("{session}.jsonl"));
    match std::fs::read(&path) {
        Ok(bytes) => {
            crate::stdout::write(&bytes)?;
            Ok(0)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!("no conversation {session} (looked for {})", path.display())
        }
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    }
}

/// The offset where the last `lines` lines begin, reading backwards in growing windows.
async fn tail_offset(client: &Client, id: TaskId, total: u64, lines: usize) -> anyhow::Result<u64> {
    if lines == 0 {
        return Ok(total);
    }
    let mut window = 64 * 1024u64;
    loop {
        let start = total.saturating_sub(window);
        let r: ReadResult = client
            .request::<method::TaskRead>(ReadParams::new(id, start, total - start))
            .await?;
        let data = r.chunk.decode()?;
        // A trailing newline ends the last line; it does not start another.
        let body = data.strip_suffix(b"\n").unwrap_or(&data);
        let mut seen = 0;
        for (i, b) in body.iter().enumerate().rev() {
            if *b == b'\n' {
                seen += 1;
                if seen == lines {
                    return Ok(start + i as u64 + 1);
                }
            }
        }
        if start == 0 {
            return Ok(0);
        }
        window *= 4;
    }
}
