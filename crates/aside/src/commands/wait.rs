//! `aside wait`: block until tasks end.

use std::time::{Duration, Instant};

use aside_client::Client;
use aside_protocol::rpc::{method, WaitParams, WaitResult};

use crate::cli::WaitArgs;
use crate::connect::{self, Context};
use crate::exit;
use crate::render;
use crate::stdout::outln;

pub async fn run(ctx: &Context, a: WaitArgs) -> anyhow::Result<i32> {
    let ids = connect::parse_ids(&a.ids)?;
    let limit = a
        .timeout
        .as_deref()
        .map(|t| connect::parse_duration(t, "timeout"))
        .transpose()?;
    let deadline = limit.map(|l| Instant::now() + l);
    let mut client = ctx.client().await?;
    loop {
        // The daemon caps one wait at 10 minutes; without --timeout, ask again.
        let chunk = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let waited = client
            .request::<method::TaskWait>(WaitParams {
                ids: ids.clone(),
                timeout_ms: chunk.map(|c| c.as_millis() as u64),
            })
            .await;
        let r: WaitResult = match waited {
            Ok(r) => r,
            // The daemon restarted: wait on with the next one.
            Err(e) if Client::broke(&e) => {
                client = client.reconnect().await?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let expired = deadline.is_some_and(|d| Instant::now() >= d);
        if !r.done && !expired {
            continue;
        }
        if a.json {
            render::print_json(&r.tasks)?;
        }
        if !r.done {
            let running: Vec<String> = r
                .tasks
                .iter()
                .filter(|t| !t.is_terminal())
                .map(|t| t.id.to_string())
                .collect();
            eprintln!(
                "aside: still running after {}: {}",
                aside_protocol::format_duration(limit.unwrap_or(Duration::ZERO)),
                running.join(" ")
            );
            return Ok(exit::STILL_RUNNING);
        }
        if !a.json {
            for t in &r.tasks {
                outln!("{} {}", t.id, t.state.describe())?;
            }
        }
        let code = r
            .tasks
            .iter()
            .map(|t| exit::for_state(&t.state))
            .find(|c| *c != 0)
            .unwrap_or(0);
        return Ok(code);
    }
}
