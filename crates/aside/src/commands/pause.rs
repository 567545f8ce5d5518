//! `aside pause` and `aside resume`: stop and continue every process of running tasks.

use aside_protocol::rpc::{method, IdsParams};

use crate::cli::PauseArgs;
use crate::connect::{self, Context};
use crate::render;
use crate::stdout::outln;

pub async fn run(ctx: &Context, a: PauseArgs, pause: bool) -> anyhow::Result<i32> {
    let ids = connect::parse_ids(&a.ids)?;
    let client = ctx.client().await?;
    let params = IdsParams { ids };
    let r = match pause {
        true => client.request::<method::TaskPause>(params).await?,
        false => client.request::<method::TaskResume>(params).await?,
    };
    if a.json {
        render::print_json(&r.tasks)?;
    } else {
        for t in &r.tasks {
            outln!("{} {}", t.id, if t.paused { "paused" } else { "running" })?;
        }
    }
    Ok(0)
}
