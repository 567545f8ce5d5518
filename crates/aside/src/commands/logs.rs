//! `aside logs`: a task's output, byte for byte; `-f` follows it until the task ends.

use std::io::Write;

use aside_client::Client;
use aside_protocol::rpc::{method, IdParams, ReadParams, ReadResult};
use aside_protocol::{TaskId, TaskRecord};

use crate::cli::LogsArgs;
use crate::connect::{self, Context};
use crate::stdout::StdoutError;

const CHUNK: u64 = 1 << 20;

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
    let mut out = std::io::stdout().lock();
    loop {
        let read = client
            .request::<method::TaskRead>(ReadParams {
                id,
                after,
                max_bytes: CHUNK,
                wait_ms: a.follow.then_some(30_000),
                foreground: false,
                until: None,
                plain: false,
                screen: None,
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
        let data = r.chunk.decode()?;
        out.write_all(&data)
            .and_then(|_| out.flush())
            .map_err(StdoutError)?;
        after = r.next;
        let caught_up = after >= r.total;
        if r.eof || (!a.follow && caught_up) {
            return Ok(0);
        }
    }
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
            .request::<method::TaskRead>(ReadParams {
                id,
                after: start,
                max_bytes: total - start,
                wait_ms: None,
                foreground: false,
                until: None,
                plain: false,
                screen: None,
            })
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
