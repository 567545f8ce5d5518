//! `aside restart`: a finished task's command, run again as a new task.
//!
//! Done with two plain requests, the stored spec (`task.spec`) and an ordinary start: a
//! restart is a start, with the same queueing, limits and dedupe, and the environment is
//! this shell's, sent as `aside run` sends it (the stored task keeps none).

use aside_client::Client;
use aside_protocol::rpc::{method, IdParams, StartParams};
use aside_protocol::{Input, StartMode, TaskId, TaskKind, TaskRecord, TaskSpec};

use crate::cli::RestartArgs;
use crate::commands::attach::{self, Session};
use crate::commands::run::{client_env, follow};
use crate::connect::{self, Context};
use crate::render;
use crate::stdout::outln;

pub async fn run(ctx: &Context, a: RestartArgs) -> anyhow::Result<i32> {
    let id = connect::parse_id(&a.id)?;
    let client = ctx.client().await?;
    let (mut spec, input) = spec_again(&client, id, &a.env).await?;
    spec.mode = match a.fg {
        true => StartMode::Foreground,
        false => StartMode::Background,
    };
    // Attached here, a terminal takes this one's size, as with aside run.
    let pty = input.pty().is_some();
    if let (true, Some(size), TaskKind::Shell { input, .. }) =
        (a.fg && pty, crate::terminal::size(), &mut spec.kind)
    {
        *input = aside_protocol::Input::Pty(size);
    }
    let detach = match a.fg && pty {
        true => Some(attach::detach_byte(ctx, None)?),
        false => None,
    };
    let started = client
        .request::<method::TaskStart>(StartParams { spec })
        .await?;
    let task = started.task;
    if started.deduplicated {
        eprintln!(
            "aside: task {} holds that dedupe key already: no new task was started",
            task.id
        );
    }
    if !a.fg {
        match a.json {
            true => render::print_json(&task)?,
            false => outln!("{}", task.id)?,
        }
        return Ok(0);
    }
    eprintln!("aside: task {id} restarted as task {}", task.id);
    let piped = matches!(input, aside_protocol::Input::Pipe);
    if pty || piped {
        let s = Session {
            id: task.id,
            foreground: !task.detached,
            replay: started.deduplicated,
            pipe: piped,
            detach: detach.unwrap_or(attach::DEFAULT_DETACH),
        };
        return attach::session(client, s).await;
    }
    follow(client, task).await
}

/// What starting finished task `id` again takes: its spec, where it ran, with this shell's
/// environment and `env` (`K=V`) over it; and its input. Refused for a task that has not
/// ended and for an agent.
pub async fn spec_again(
    client: &Client,
    id: TaskId,
    env: &[String],
) -> anyhow::Result<(TaskSpec, Input)> {
    let old: TaskRecord = client.request::<method::TaskGet>(IdParams { id }).await?;
    if !old.is_terminal() {
        anyhow::bail!(
            "task {id} is {}: only a finished task can be restarted (aside stop {id} first)",
            old.state.name()
        );
    }
    let TaskKind::Shell { input, .. } = old.kind else {
        anyhow::bail!(
            "task {id} is an agent: start it again with aside agent (--session {} continues \
             its conversation)",
            old.kind.session_id().unwrap_or("SESSION")
        );
    };
    let mut spec = client
        .request::<method::TaskSpecGet>(IdParams { id })
        .await?;
    // Where it ran, as the daemon resolved it.
    spec.cwd = Some(old.cwd.clone());
    spec.env = Some(client_env());
    // What it waited for has run: the new task starts now, labels and all.
    spec.after.clear();
    for kv in env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--env {kv:?}: write it as NAME=VALUE"))?;
        spec.env_extra.insert(k.to_string(), v.to_string());
    }
    Ok((spec, input))
}
