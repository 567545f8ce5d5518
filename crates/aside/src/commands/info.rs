//! `aside info`: a task's whole record.

use aside_protocol::rpc::{method, IdParams};
use aside_protocol::TaskRecord;

use crate::cli::InfoArgs;
use crate::connect::{self, Context};
use crate::render;

pub async fn run(ctx: &Context, a: InfoArgs) -> anyhow::Result<i32> {
    let id = connect::parse_id(&a.id)?;
    let client = ctx.client().await?;
    let t: TaskRecord = client.request::<method::TaskGet>(IdParams { id }).await?;
    if a.json {
        render::print_json(&t)?;
    } else {
        crate::stdout::write(render::record(&t).as_bytes())?;
    }
    Ok(0)
}
