//! `aside run`: start a task; in the foreground, stream its output until it ends or is
//! detached.

use std::collections::BTreeMap;

use aside_client::Client;
use aside_protocol::rpc::{
    method, IdParams, ListParams, ReadParams, StartParams, StartResult, StopParams,
};
use aside_protocol::{
    Input, ShellCommand, StartMode, TaskId, TaskKind, TaskRecord, TaskSpec, TaskState, TermSize,
};
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::RunArgs;
use crate::commands::attach::{self, Session};
use crate::connect::{self, Context};
use crate::exit;
use crate::render;
use crate::status_line::StatusLine;
use crate::stdout::{outln, StdoutError};

/// Bytes asked for per read while streaming.
const READ_BYTES: u64 = 1 << 20;

pub async fn run(ctx: &Context, a: RunArgs) -> anyhow::Result<i32> {
    let spec = build_spec(&a)?;
    // Read before the start: a bad detach key must not leave a task behind.
    let detach = match a.pty && !a.bg {
        true => Some(attach::detach_byte(ctx, None)?),
        false => None,
    };
    let (client, started): (_, StartResult) = ctx
        .client_with::<method::TaskStart>(StartParams { spec })
        .await?;
    let task = started.task;
    if a.bg {
        if a.json {
            render::print_json(&task)?;
        } else {
            outln!("{}", task.id)?;
        }
        return Ok(0);
    }
    if started.deduplicated {
        eprintln!(
            "aside: task {} already holds that dedupe key; following it",
            task.id
        );
    } else if task.state == TaskState::Queued {
        let ahead = queued_ahead(&client, task.id).await?;
        eprintln!(
            "aside: task {} is queued ({ahead} queued ahead of it); it starts when a slot is free",
            task.id
        );
    }
    if a.pty || a.stdin {
        let s = Session {
            id: task.id,
            foreground: !task.detached,
            replay: started.deduplicated,
            pipe: a.stdin,
            detach: detach.unwrap_or(attach::DEFAULT_DETACH),
        };
        return attach::session(client, s).await;
    }
    follow(client, task).await
}

/// How many live tasks wait for a slot ahead of `id`.
async fn queued_ahead(client: &Client, id: TaskId) -> anyhow::Result<usize> {
    let page = client
        .request::<method::TaskList>(ListParams {
            limit: Some(10_000),
            ..ListParams::default()
        })
        .await?;
    Ok(page
        .tasks
        .iter()
        .filter(|t| t.id < id && t.state == TaskState::Queued)
        .count())
}

fn build_spec(a: &RunArgs) -> anyhow::Result<TaskSpec> {
    let command = if a.command.len() == 1 && needs_shell(&a.command[0]) {
        ShellCommand::Script(a.command[0].clone())
    } else {
        ShellCommand::Argv(a.command.clone())
    };
    let mut spec = TaskSpec::shell(command);
    let here = std::env::current_dir()?;
    let cwd = match &a.cwd {
        Some(dir) => here.join(dir),
        None => here,
    };
    spec.cwd = Some(cwd.display().to_string());
    // The task runs with this shell's environment, not the daemon's.
    spec.env = Some(client_env());
    let mut extra = BTreeMap::new();
    for kv in &a.env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--env {kv:?}: write it as NAME=VALUE"))?;
        extra.insert(k.to_string(), v.to_string());
    }
    spec.env_extra = extra;
    spec.name = a.name.clone();
    spec.group = a.group.clone();
    spec.dedupe_key = a.dedupe.clone();
    spec.labels = parse_labels(&a.labels)?;
    spec.after = a
        .after
        .iter()
        .map(|s| connect::parse_id(s).map_err(|e| anyhow::anyhow!("--after {s:?}: {e}")))
        .collect::<anyhow::Result<_>>()?;
    spec.timeout = connect::parse_opt_limit(a.timeout.as_deref(), "timeout")?;
    spec.wait = connect::parse_opt_limit(a.wait.as_deref(), "wait")?;
    if a.pty || a.stdin {
        let input = match a.pty {
            true => Input::Pty(terminal_size(a)),
            false => Input::Pipe,
        };
        if let TaskKind::Shell { input: i, .. } = &mut spec.kind {
            *i = input;
        }
    }
    spec.mode = if a.bg {
        StartMode::Background
    } else {
        StartMode::Foreground
    };
    Ok(spec)
}

/// `--size`, else (in the foreground) this terminal's, else the default.
fn terminal_size(a: &RunArgs) -> TermSize {
    a.size
        .or_else(|| (!a.bg).then(crate::terminal::size).flatten())
        .unwrap_or_default()
}

/// This process's environment (variables that are valid UTF-8).
pub fn client_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// One argument that a shell would have to read (spaces, pipes, quotes, variables...).
fn needs_shell(arg: &str) -> bool {
    arg.chars()
        .any(|c| c.is_whitespace() || "|&;<>()$`\\\"'*?[]#~=%{}!".contains(c))
}

/// Streams output until the task ends (exit with its code) or goes to the background
/// (exit 148). Ctrl+C stops the task; Ctrl+Z detaches it. When the daemon restarts, it
/// connects to the next one and goes on from the byte it had reached.
pub async fn follow(mut client: Client, task: TaskRecord) -> anyhow::Result<i32> {
    let id = task.id;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigtstp = signal(SignalKind::from_raw(libc::SIGTSTP))?;
    let mut stdout = std::io::stdout();
    let mut after = 0u64;
    let mut stopping = false;
    // A task found by its dedupe key may be in the background already: it is followed to
    // its end all the same. Only a task that was in the foreground ends the following by
    // being detached.
    let in_background = task.detached;
    let mut status = StatusLine::new(&task);
    loop {
        // The read stays in flight while signals and the status line are seen to: a read
        // given up would still be waited on by the daemon.
        let r = {
            let mut read = std::pin::pin!(client.request::<method::TaskRead>(ReadParams {
                wait_ms: Some(60_000),
                foreground: !in_background,
                ..ReadParams::new(id, after, READ_BYTES)
            }));
            loop {
                tokio::select! {
                    r = &mut read => break r,
                    _ = sigint.recv() => {
                        if !stopping {
                            stopping = true;
                            match stop(&client, id).await {
                                Ok(()) => {}
                                // Asked again once connected to the next daemon.
                                Err(e) if Client::broke(&e) => {}
                                Err(e) => return Err(e.into()),
                            }
                        }
                    }
                    _ = sigtstp.recv() => {
                        if in_background {
                            status.clear();
                            eprintln!("aside: task {id} continues in the background; follow it with: aside logs -f {id}");
                            return Ok(exit::STILL_RUNNING);
                        }
                        let _: TaskRecord = client.request::<method::TaskDetach>(IdParams { id }).await?;
                    }
                    _ = status.due(), if status.on() => {
                        let t = client.request::<method::TaskGet>(IdParams { id }).await;
                        status.update(t.as_ref().ok());
                    }
                }
            }
        };
        let r = match r {
            Ok(r) => r,
            Err(e) if Client::broke(&e) => {
                client = client.reconnect().await?;
                // A stop asked of the daemon that went away is asked again.
                if stopping {
                    stop(&client, id).await?;
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let data = r.chunk.decode()?;
        let written = status.output(&mut stdout, &data, r.total);
        if let Err(e) = written {
            // Nobody can take its output any more: stop the task, as a pipe would, and say so.
            let why = match e.kind() {
                std::io::ErrorKind::BrokenPipe => "the reader of its output went away",
                _ => "its output could not be written",
            };
            let _ = client
                .request::<method::TaskStop>(StopParams {
                    ids: vec![id],
                    message: Some(why.into()),
                })
                .await?;
            anyhow::bail!("{}; task {id} was stopped", StdoutError(e));
        }
        after = r.next;
        if let Some(t) = r.task {
            if t.is_terminal() && r.eof {
                status.clear();
                render::report_end(&t, stopping);
                return Ok(exit::for_state(&t.state));
            }
            if t.detached && !t.is_terminal() && !in_background {
                status.clear();
                eprintln!(
                    "aside: task {id} continues in the background; follow it with: aside logs -f {id}"
                );
                return Ok(exit::STILL_RUNNING);
            }
        }
    }
}

async fn stop(client: &Client, id: TaskId) -> Result<(), aside_client::ClientError> {
    client
        .request::<method::TaskStop>(StopParams {
            ids: vec![id],
            message: Some("interrupted (Ctrl+C)".into()),
        })
        .await
        .map(|_| ())
}

/// `--label K=V` arguments as a map (a key given twice keeps its last value).
pub fn parse_labels(args: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    args.iter()
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--label {kv:?}: write it as KEY=VALUE"))?;
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::needs_shell;

    #[test]
    fn shell_only_when_needed() {
        assert!(!needs_shell("true"));
        assert!(!needs_shell("./build.sh"));
        assert!(needs_shell("echo hi"));
        assert!(needs_shell("a|b"));
        assert!(needs_shell("$HOME"));
    }
}
