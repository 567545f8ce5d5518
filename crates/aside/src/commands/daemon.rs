//! `aside daemon`: start, stop, status, and the hidden `run` that is the daemon itself.

use std::time::{Duration, Instant};

use aside_core::{Config, Paths};
use aside_protocol::rpc::{method, DaemonStatusResult, Empty, ShutdownParams};

use crate::cli::{DaemonAction, DaemonArgs};
use crate::connect::Context;
use crate::render;
use crate::stdout::outln;

pub async fn run(ctx: &Context, a: DaemonArgs) -> anyhow::Result<i32> {
    match a.action {
        DaemonAction::Start => {
            let client = ctx.client().await?;
            outln!("daemon running (pid {})", client.daemon.pid)?;
            Ok(0)
        }
        DaemonAction::Stop { keep_tasks } => {
            if !stop(ctx, keep_tasks).await? {
                outln!("no daemon running")?;
                return Ok(0);
            }
            outln!("daemon stopped")?;
            Ok(0)
        }
        DaemonAction::Restart => {
            let old = stop(ctx, true).await?;
            let client = ctx.client().await?;
            let s: DaemonStatusResult = client.request::<method::DaemonStatus>(Empty {}).await?;
            match old {
                true => outln!(
                    "daemon restarted (pid {}); {} running tasks kept",
                    client.daemon.pid,
                    s.running
                )?,
                false => outln!("daemon running (pid {})", client.daemon.pid)?,
            }
            Ok(0)
        }
        DaemonAction::Status { json } => match ctx.existing_client().await {
            Ok(client) => {
                let s: DaemonStatusResult =
                    client.request::<method::DaemonStatus>(Empty {}).await?;
                if json {
                    let mut v = serde_json::to_value(&s)?;
                    v["alive"] = true.into();
                    render::print_json(&v)?;
                } else {
                    outln!("running: pid {}, socket {}", s.pid, s.socket)?;
                    outln!("state:   {}", s.home)?;
                    outln!("version: {} (protocol {})", s.version, s.protocol_version)?;
                    outln!("tasks:   {} running, {} queued", s.running, s.queued)?;
                    outln!("slots:")?;
                    crate::commands::slots::print(&s.slots, None, "  ")?;
                }
                Ok(0)
            }
            Err(_) => {
                let socket = ctx.paths.socket().display().to_string();
                if json {
                    render::print_json(
                        &serde_json::json!({"alive": false, "running": 0, "queued": 0, "socket": socket}),
                    )?;
                } else {
                    outln!("not running (socket {socket})")?;
                }
                Ok(1)
            }
        },
        DaemonAction::Run => run_foreground(ctx.paths.clone()),
    }
}

/// Asks the running daemon to exit and waits until it has; `false` when none was running.
async fn stop(ctx: &Context, keep_tasks: bool) -> anyhow::Result<bool> {
    let Ok(client) = ctx.existing_client().await else {
        return Ok(false);
    };
    let pid = client.daemon.pid;
    match client
        .request::<method::DaemonShutdown>(ShutdownParams { keep_tasks })
        .await
    {
        Ok(_) => {}
        // A daemon shutting down may close the connection before its answer is
        // out: that is the stop we asked for. Whether it ended is checked below.
        Err(aside_client::ClientError::Io(_)) => {}
        Err(e) => return Err(e.into()),
    }
    drop(client);
    // Gone once its socket no longer answers and its process has exited. Another client
    // (one following a task) may start the next daemon meanwhile: that one answers too.
    let deadline = Instant::now() + Duration::from_secs(60);
    while process_alive(pid)
        || ctx
            .existing_client()
            .await
            .is_ok_and(|c| c.daemon.pid == pid)
    {
        if Instant::now() >= deadline {
            anyhow::bail!("the daemon (pid {pid}) did not exit within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(true)
}

fn process_alive(pid: u32) -> bool {
    // Signal 0 checks for existence; a zombie counts as gone.
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok();
    alive && !zombie(pid)
}

/// Linux shows a zombie's state in `/proc`; elsewhere the socket going quiet is the sign.
#[cfg(target_os = "linux")]
fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
}

#[cfg(not(target_os = "linux"))]
fn zombie(_pid: u32) -> bool {
    false
}

/// The daemon itself, in this process, until it is told to stop.
pub fn run_foreground(paths: Paths) -> anyhow::Result<i32> {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .init();
    let config = Config::load(&paths.config_file)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let served = rt.block_on(aside_daemon::serve(paths, config));
    // The runtime goes first, with every connection to a supervisor; only then the lock, for
    // a next daemon to adopt them. A blocking call that does not end in time is left to the
    // process's exit.
    rt.shutdown_timeout(Duration::from_secs(5));
    match served {
        Ok(lock) => {
            drop(lock);
            Ok(0)
        }
        // Another client started a daemon at the same moment: it serves; this one is not needed.
        Err(aside_daemon::DaemonError::AlreadyRunning(_)) => Ok(0),
        Err(e) => Err(e.into()),
    }
}
