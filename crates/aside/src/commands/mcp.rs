//! `aside mcp`: the MCP server on stdin/stdout.

use crate::cli::McpArgs;
use crate::connect::Context;

pub async fn run(ctx: &Context, a: McpArgs) -> anyhow::Result<i32> {
    // Each MCP connection is an owner of its own: its notices reach it and nobody else.
    let owner = std::env::var("ASIDE_OWNER")
        .ok()
        .filter(|o| !o.is_empty())
        .unwrap_or_else(|| {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            format!("mcp-{}-{ms}", std::process::id())
        });
    let client = ctx.client_as(owner.clone()).await?;
    let env = crate::commands::agent::agent_env(ctx);
    let options = aside_mcp::Options {
        file_tools: a.file_tools,
        stop_on_exit: a.stop_on_exit,
        cwd: std::env::current_dir()?.display().to_string(),
        env,
    };
    aside_mcp::serve(client, owner, options).await?;
    Ok(0)
}

pub fn print_config(client: &str) -> anyhow::Result<i32> {
    let text = aside_mcp::print_config(client).map_err(anyhow::Error::msg)?;
    println!("{text}");
    Ok(0)
}
