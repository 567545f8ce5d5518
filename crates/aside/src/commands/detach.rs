//! `aside detach`: a foreground task goes on in the background.

use aside_protocol::rpc::{method, IdParams};
use aside_protocol::TaskRecord;

use crate::cli::IdArg;
use crate::connect::{self, Context};
use crate::stdout::outln;

pub async fn run(ctx: &Context, a: IdArg) -> anyhow::Result<i32> {
    let id = connect::parse_id(&a.id)?;
    let client = ctx.client().await?;
    let t: TaskRecord = client
        .request::<method::TaskDetach>(IdParams { id })
        .await?;
    outln!(
        "task {} runs in the background; follow it with: aside logs -f {}",
        t.id,
        t.id
    )?;
    Ok(0)
}
