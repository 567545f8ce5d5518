//! `aside stop`: stop tasks with their whole process tree.

use aside_protocol::rpc::{method, StopParams};

use crate::cli::StopArgs;
use crate::connect::{self, Context};
use crate::render;
use crate::stdout::outln;

pub async fn run(ctx: &Context, a: StopArgs) -> anyhow::Result<i32> {
    let ids = connect::parse_ids(&a.ids)?;
    let client = ctx.client().await?;
    let r = client
        .request::<method::TaskStop>(StopParams {
            ids,
            message: a.reason,
        })
        .await?;
    if a.json {
        render::print_json(&r.tasks)?;
    } else {
        for t in &r.tasks {
            outln!("{} {}", t.id, t.state.describe())?;
        }
    }
    Ok(0)
}
