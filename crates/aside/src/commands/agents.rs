//! `aside agents`: the agent definitions found for this directory.

use aside_agent::definitions::Source;
use aside_agent::project::{catalog_for, project_root};

use crate::cli::AgentsArgs;
use crate::render;
use crate::stdout::outln;

pub fn run(a: AgentsArgs) -> anyhow::Result<i32> {
    let project = project_root(&std::env::current_dir()?);
    let catalog = catalog_for(&project);
    if a.json {
        render::print_json(&serde_json::json!({
            "project": project.display().to_string(),
            "agents": catalog.agents().collect::<Vec<_>>(),
            "warnings": catalog.warnings(),
        }))?;
        return Ok(0);
    }
    for d in catalog.agents() {
        let from = match &d.source {
            Source::Builtin => "built in".to_string(),
            Source::File(p) => p.display().to_string(),
        };
        let kind = match &d.command {
            Some(cmd) => format!("external: {}", cmd.join(" ")),
            None => {
                let tools: Vec<&str> = d.effective_tools().iter().map(|t| t.name()).collect();
                format!("tools: {}", tools.join(", "))
            }
        };
        outln!("{:<16} {}", d.name, d.description)?;
        outln!("{:<16} {kind}; from {from}", "")?;
    }
    for w in catalog.warnings() {
        eprintln!("warning: {w}");
    }
    Ok(0)
}
