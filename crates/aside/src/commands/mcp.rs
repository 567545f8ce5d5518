//! `aside mcp`: the MCP server on stdin/stdout.

use crate::cli::McpArgs;
use crate::connect::Context;
use crate::stdout::outln;

pub async fn run(ctx: &Context, a: McpArgs) -> anyhow::Result<i32> {
    // Each MCP connection is an owner of its own, whatever ASIDE_OWNER says: its notices
    // reach it and nobody else.
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let owner = format!("mcp-{}-{ms}", std::process::id());
    let client = ctx.client_as(owner.clone()).await?;
    let env = crate::commands::agent::agent_env(ctx);
    let options = aside_mcp::Options {
        file_tools: a.file_tools,
        stop_on_exit: a.stop_on_exit,
        cwd: std::env::current_dir()?.display().to_string(),
        env,
        wait: crate::connect::parse_duration(&a.wait, "wait")?,
    };
    aside_mcp::serve(client, owner, options).await?;
    Ok(0)
}

pub fn print_config(client: &str) -> anyhow::Result<i32> {
    let host: aside_mcp::HostClient = client.parse()?;
    let (text, place) = (host.snippet(), host.place());
    // Only the snippet on stdout, so it can be piped into the file as it is.
    eprintln!("aside: for {client}, put this in {place}:");
    if let Some(note) = host.note() {
        eprintln!("aside: {note}");
    }
    outln!("{text}")?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_wait_reads_as_it_is_written() {
        assert_eq!(
            aside_core::config::parse_duration(aside_mcp::DEFAULT_WAIT_TEXT).ok(),
            Some(aside_mcp::DEFAULT_WAIT)
        );
    }
}
