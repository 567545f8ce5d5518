//! `aside`: the command line front of the task engine.

mod cli;
mod commands;
mod connect;
mod exit;
mod json_chunks;
mod render;
mod status_line;
mod stdout;
mod task_filter;
mod terminal;

use clap::{CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command, DaemonAction};

fn main() {
    let paths = aside_core::Paths::from_env();
    let mut command = Cli::command();
    // The settings text is built only when help may be shown: every other run, a foreground
    // `aside run` above all, starts faster without it.
    if std::env::args_os().any(|a| a == "-h" || a == "--help" || a == "help") {
        command = command.after_help(cli::after_help(paths.as_ref().ok()));
    }
    let cli = match command
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => usage_error(e),
    };
    let code = match run(cli, paths) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("aside: {e}");
            exit::ASIDE_FAILED
        }
    };
    std::process::exit(code);
}

/// Help and version go to stdout with success; a usage error goes to stderr and exits 125,
/// like every other failure of aside itself (clap's own code would be 2).
fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => e.exit(),
        _ => {
            let _ = e.print();
            std::process::exit(exit::ASIDE_FAILED)
        }
    }
}

fn run(cli: Cli, paths: Result<aside_core::Paths, aside_core::PathsError>) -> anyhow::Result<i32> {
    if let Command::Schema = cli.command {
        return commands::schema::run();
    }
    if let Command::Completions(a) = &cli.command {
        return commands::completions::run(a.shell);
    }
    if let Command::Mcp(cli::McpArgs {
        print_config: Some(client),
        ..
    }) = &cli.command
    {
        return commands::mcp::print_config(client);
    }
    let paths = paths?;
    if let Command::Daemon(ref d) = cli.command {
        if let DaemonAction::Run = d.action {
            return commands::daemon::run_foreground(paths);
        }
    }
    // A client spends its time waiting on one socket: one thread is plenty and starts fastest.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let ctx = connect::Context { paths };
        match cli.command {
            Command::Run(a) => commands::run::run(&ctx, a).await,
            Command::Agent(a) => commands::agent::agent(&ctx, a).await,
            Command::Exec(a) => commands::agent::exec(&ctx, a).await,
            Command::Agents(a) => commands::agents::run(a),
            Command::Mcp(a) => commands::mcp::run(&ctx, a).await,
            Command::Ls(a) => commands::ls::run(&ctx, a).await,
            Command::Logs(a) => commands::logs::run(&ctx, a).await,
            Command::Wait(a) => commands::wait::run(&ctx, a).await,
            Command::Stop(a) => commands::stop::run(&ctx, a).await,
            Command::Detach(a) => commands::detach::run(&ctx, a).await,
            Command::Pause(a) => commands::pause::run(&ctx, a, true).await,
            Command::Resume(a) => commands::pause::run(&ctx, a, false).await,
            Command::Restart(a) => commands::restart::run(&ctx, a).await,
            Command::Slots(a) => commands::slots::run(&ctx, a).await,
            Command::Send(a) => commands::send::run(&ctx, a).await,
            Command::Signal(a) => commands::signal::run(&ctx, a).await,
            Command::Attach(a) => commands::attach::run(&ctx, a).await,
            Command::Top(a) => commands::top::run(&ctx, a).await,
            Command::Info(a) => commands::info::run(&ctx, a).await,
            Command::Clean(a) => commands::clean::run(&ctx, a).await,
            Command::Daemon(a) => commands::daemon::run(&ctx, a).await,
            Command::Schema => commands::schema::run(),
            Command::Completions(a) => commands::completions::run(a.shell),
        }
    })
}
