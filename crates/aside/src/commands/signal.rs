//! `aside signal`: a signal to a task's processes, or a new size for its terminal.

use aside_protocol::rpc::{method, SignalParams};
use aside_protocol::{TaskRecord, TaskSignal};

use crate::cli::SignalArgs;
use crate::connect::{self, Context};

pub async fn run(ctx: &Context, a: SignalArgs) -> anyhow::Result<i32> {
    let id = connect::parse_id(&a.id)?;
    let Some(signal) = TaskSignal::parse(&a.signal, a.size) else {
        if a.signal.trim().to_ascii_uppercase().ends_with("WINCH") {
            anyhow::bail!("WINCH resizes the terminal: give its new size with --size COLSxROWS");
        }
        anyhow::bail!(
            "{:?} is not a signal aside sends; it sends {}",
            a.signal,
            TaskSignal::NAMES.join(", ")
        );
    };
    let client = ctx.client().await?;
    let _: TaskRecord = client
        .request::<method::TaskSignal>(SignalParams { id, signal })
        .await?;
    Ok(0)
}
