//! `aside send`: text and named keys to a task's terminal or input pipe.

use aside_protocol::keys;
use aside_protocol::rpc::{method, IdParams};
use aside_protocol::TaskRecord;

use crate::cli::SendArgs;
use crate::commands::attach;
use crate::connect::{self, Context};

pub async fn run(ctx: &Context, a: SendArgs) -> anyhow::Result<i32> {
    let id = connect::parse_id(&a.id)?;
    if a.text.is_none() && a.keys.is_empty() && !a.eof {
        anyhow::bail!("nothing to send: give text, --key KEY or --eof");
    }
    let client = ctx.client().await?;
    let task: TaskRecord = client.request::<method::TaskGet>(IdParams { id }).await?;
    // A terminal's Enter is a carriage return; a pipe's is a newline.
    let pty = task.kind.input().pty().is_some();
    let mut data = a.text.unwrap_or_default().into_bytes();
    for k in &a.keys {
        match keys::bytes(k, pty) {
            Some(b) => data.extend(b),
            None => anyhow::bail!(
                "--key {k:?} is not a key; keys are C-<letter>, M-<key> and {}",
                keys::NAMES.join(", ")
            ),
        }
    }
    // The end of input goes with the last bytes: a program that exits once it has read
    // them must not make a separate end of file arrive too late.
    let chunks: Vec<&[u8]> = match data.is_empty() {
        true => vec![&[]],
        false => data.chunks(aside_core::MAX_WRITE).collect(),
    };
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        attach::send(&client, id, chunk, a.eof && i == last).await?;
    }
    Ok(0)
}
