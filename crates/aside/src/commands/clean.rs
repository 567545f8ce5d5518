//! `aside clean`: remove finished tasks and their logs.

use aside_protocol::rpc::{method, CleanParams, CleanResult};

use crate::cli::CleanArgs;
use crate::connect::{self, Context};
use crate::stdout::outln;

pub async fn run(ctx: &Context, a: CleanArgs) -> anyhow::Result<i32> {
    let older = a
        .older_than
        .as_deref()
        .map(|d| connect::parse_duration(d, "older-than"))
        .transpose()?;
    let client = ctx.client().await?;
    let r: CleanResult = client
        .request::<method::TaskClean>(CleanParams {
            older_than_ms: older.map(|d| d.as_millis() as u64),
        })
        .await?;
    outln!(
        "removed {} finished task{}",
        r.removed.len(),
        if r.removed.len() == 1 { "" } else { "s" }
    )?;
    Ok(0)
}
