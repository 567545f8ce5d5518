//! `aside completions SHELL`: a completion script generated from the CLI's own definition,
//! so it never falls behind a new command or flag.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

pub fn run(shell: Shell) -> anyhow::Result<i32> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "aside", &mut script);
    crate::stdout::write(&script)?;
    Ok(0)
}
