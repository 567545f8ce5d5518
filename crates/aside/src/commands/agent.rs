//! `aside agent` and `aside exec`: agent tasks from the command line.

use aside_client::Client;
use aside_protocol::rpc::{method, IdParams, ReadParams, ReadResult, StartParams, StartResult};
use aside_protocol::{Limit, StartMode, TaskKind, TaskRecord, TaskSpec};

use crate::cli::{AgentArgs, ExecArgs};
use crate::commands::run::{client_env, follow};
use crate::connect::{self, Context};
use crate::exit;
use crate::render;
use crate::stdout::outln;

/// The environment an agent task gets: this shell's, without the model keys. The daemon reads
/// keys from its own environment or a key file, so they are never stored with a task.
pub fn agent_env(ctx: &Context) -> std::collections::BTreeMap<String, String> {
    let mut env = client_env();
    let config = aside_core::Config::load(&ctx.paths.config_file).unwrap_or_default();
    for k in config.key_vars() {
        env.remove(&k);
    }
    env
}

fn spec(
    ctx: &Context,
    agent: &str,
    prompt: &str,
    session: Option<String>,
) -> anyhow::Result<TaskSpec> {
    let mut spec = TaskSpec::new(TaskKind::Agent {
        agent: agent.to_string(),
        prompt: prompt.to_string(),
        session_id: session,
        depth: 0,
    });
    spec.cwd = Some(std::env::current_dir()?.display().to_string());
    spec.env = Some(agent_env(ctx));
    Ok(spec)
}

pub async fn agent(ctx: &Context, a: AgentArgs) -> anyhow::Result<i32> {
    let mut spec = spec(ctx, &a.agent, &a.prompt, a.session)?;
    spec.name = a.name;
    spec.timeout = connect::parse_opt_limit(a.timeout.as_deref(), "timeout")?;
    spec.wait = connect::parse_opt_limit(a.wait.as_deref(), "wait")?;
    // The definition's `background` is the default mode; --bg and --fg override it.
    let background = a.bg
        || (!a.fg && {
            let here = std::env::current_dir()?;
            let catalog =
                aside_agent::project::catalog_for(&aside_agent::project::project_root(&here));
            catalog.get(&a.agent).is_some_and(|d| d.background)
        });
    spec.mode = if background {
        StartMode::Background
    } else {
        StartMode::Foreground
    };
    let client = ctx.client().await?;
    let started: StartResult = client
        .request::<method::TaskStart>(StartParams { spec })
        .await?;
    let task = started.task;
    if background {
        if a.json {
            render::print_json(&task)?;
        } else {
            outln!("{}", task.id)?;
        }
        return Ok(0);
    }
    follow(client, task).await
}

pub async fn exec(ctx: &Context, a: ExecArgs) -> anyhow::Result<i32> {
    let mut spec = spec(ctx, &a.agent, &a.prompt, None)?;
    // Nobody detaches an exec: it waits for its answer however long it takes.
    spec.wait = Some(Limit::NONE);
    spec.timeout = connect::parse_opt_limit(a.timeout.as_deref(), "timeout")?;
    let client = ctx.client().await?;
    let started: StartResult = client
        .request::<method::TaskStart>(StartParams { spec })
        .await?;
    if !a.json {
        return follow(client, started.task).await;
    }
    json_lines(&client, started.task).await
}

/// `exec --json`: one JSON object per line: `output` chunks, `progress` changes, and a final
/// `result` with the whole record (its `answer` included).
async fn json_lines(client: &Client, task: TaskRecord) -> anyhow::Result<i32> {
    let id = task.id;
    let mut after = 0u64;
    let mut last_progress = None;
    let print = |v: serde_json::Value| outln!("{v}");
    print(
        serde_json::json!({"type": "started", "task_id": id, "session_id": task.kind.session_id()}),
    )?;
    loop {
        let r: ReadResult = client
            .request::<method::TaskRead>(ReadParams {
                wait_ms: Some(1000),
                foreground: true,
                ..ReadParams::new(id, after, 1 << 20)
            })
            .await?;
        let data = r.chunk.decode()?;
        if !data.is_empty() {
            print(serde_json::json!({"type": "output", "text": String::from_utf8_lossy(&data)}))?;
        }
        after = r.next;
        let record: TaskRecord = match r.task {
            Some(t) => t,
            None => client.request::<method::TaskGet>(IdParams { id }).await?,
        };
        if record.progress != last_progress {
            last_progress = record.progress.clone();
            if let Some(p) = &last_progress {
                print(serde_json::json!({"type": "progress", "progress": p}))?;
            }
        }
        if (record.is_terminal() && r.eof) || (record.detached && !record.is_terminal()) {
            print(serde_json::json!({"type": "result", "task": record}))?;
            return Ok(exit::for_state(&record.state));
        }
    }
}
