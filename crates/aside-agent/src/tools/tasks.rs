//! The tools that start and manage tasks: `bash`, `task`, `task_list`, `task_stop`.
//! `task_output` is in [`super::output`], `task_input` in [`super::input`], and what every
//! task tool shares (ids, outcomes, errors) in [`super::record`].

use std::time::Duration;

use aside_core::{Config, Engine, EngineError, ListQuery, Order};
use aside_protocol::{
    format_duration, CancelReason, Input, Limit, Notification, ShellCommand, StartMode, TaskId,
    TaskKind, TaskRecord, TaskSpec, TermSize,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::record::{describe_outcome, engine_error, id_text, output_of, parse_id};
use super::{output, ToolContext, ToolOutput, QUIET_ENV};

/// The longest a `bash` call may ask for as its timeout.
const MAX_BASH_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Characters of one coalesced notification message at most.
const NOTICES_CAP: usize = 20_000;
/// Tasks `task_list` shows at most, newest first.
const LIST_MAX: usize = 200;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct BashArgs {
    /// The command, run by `sh -c` in the working directory.
    pub command: String,
    /// Hard limit in milliseconds, after which the command and its children are killed.
    #[serde(default)]
    pub timeout: Option<u64>,
    /// Start it in the background and return its task id at once; a notification comes when
    /// it ends.
    #[serde(default)]
    pub run_in_background: bool,
    /// Five to ten words on what the command does, shown in task listings.
    #[serde(default)]
    pub description: Option<String>,
    /// Run it on a terminal, for programs that need one (a REPL, a TUI, a prompt): type into
    /// it with task_input, read its screen with task_output screen: true.
    #[serde(default)]
    pub pty: bool,
    /// The terminal's width in columns, with pty (default 120).
    #[serde(default)]
    pub cols: Option<u16>,
    /// The terminal's height in rows, with pty (default 40).
    #[serde(default)]
    pub rows: Option<u16>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskArgs {
    /// Which agent to run (see the list in this tool's description).
    #[serde(default = "general")]
    pub subagent_type: String,
    /// Three to five words on what the subagent will do.
    #[serde(default)]
    pub description: Option<String>,
    /// The task for the subagent: everything it needs to know, since it sees nothing else.
    pub prompt: String,
    /// Start it in the background and return its ids at once; a notification comes when it
    /// ends.
    #[serde(default)]
    pub run_in_background: Option<bool>,
    /// Continue the finished conversation with this session id instead of starting anew.
    #[serde(default)]
    pub session_id: Option<String>,
}

fn general() -> String {
    "general".into()
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskListArgs {
    /// Include tasks started by others, not only yours.
    #[serde(default)]
    pub all: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskStopArgs {
    /// The task's id.
    #[serde(deserialize_with = "id_text")]
    pub task_id: String,
    /// Why it is stopped; recorded with the task.
    #[serde(default)]
    pub reason: Option<String>,
}

fn d(limit: Option<Duration>) -> String {
    limit.map_or_else(|| "none".to_string(), format_duration)
}

pub fn bash_description(c: &Config) -> String {
    format!(
        "Runs a shell command (sh -c) as a task. In the foreground (default) the call waits up \
         to {wait}; a command still running then moves to the background and the call returns \
         its task_id. With run_in_background the call returns the task_id at once. Either way, \
         when a background command ends you get a notification with its outcome and output \
         tail, so do not poll: go on with other work. The default timeout is {timeout} (set \
         `timeout` in ms to kill it sooner). Output over {cap} characters shows its head and \
         tail, with the log's path for the rest. Commands run with NO_COLOR=1, TERM=dumb, \
         PAGER=cat and GIT_PAGER=cat. With pty: true the command runs on a terminal \
         ({cols}x{rows} unless cols/rows say otherwise; TERM=xterm-256color), for a REPL, a TUI \
         or a prompt: start it with run_in_background, type into it with task_input and read \
         its screen with task_output screen: true. A pty command in the foreground waits like \
         any other, and its result shows the terminal's last screen instead of the raw \
         output. Example: {{\"command\": \"python3 -q\", \"pty\": true, \
         \"run_in_background\": true}}.",
        cols = TermSize::DEFAULT.cols,
        rows = TermSize::DEFAULT.rows,
        wait = d(c.wait),
        timeout = d(c.timeout),
        cap = c.agent.tool_output,
    )
}

pub fn task_description(c: &Config) -> String {
    format!(
        "Starts a subagent: a separate conversation with its own tools that works on the \
         prompt and returns its final answer. In the foreground (default) the call waits up to \
         {wait}, then the subagent moves to the background and the call returns its ids. With \
         run_in_background the call returns at once and a notification with its answer comes \
         when it ends; do not poll. Several task calls in one message run in parallel. Each \
         result carries a task_id (the run, for task_output and task_stop) and a session_id \
         (the conversation: pass it back as session_id to continue a finished one). At most \
         {n} agents run at once; subagents cannot start subagents beyond depth {depth}.",
        wait = d(c.agent.wait),
        n = c.agent.max_running,
        depth = c.agent.max_depth,
    )
}

/// Waits until a foreground task ends or moves to the background.
async fn until_settled(engine: &Engine, id: TaskId) -> Result<TaskRecord, EngineError> {
    // Its caller is this agent: after a daemon restart, it is back.
    engine.attend(id);
    loop {
        let mut rx = engine.watch(id)?;
        rx.borrow_and_update();
        let t = engine.get(id)?;
        if t.is_terminal() || t.detached {
            return Ok(t);
        }
        if rx.changed().await.is_err() {
            return engine.get(id);
        }
    }
}

/// Resolves with the reason once the call is cancelled; never if it is not.
async fn cancelled(rx: &mut tokio::sync::watch::Receiver<Option<CancelReason>>) -> CancelReason {
    loop {
        if let Some(r) = rx.borrow_and_update().clone() {
            return r;
        }
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// The tool result of a task that ended, as the foreground call that started it would have
/// returned it, for a caller that followed it by handle (such a task makes no notification).
pub async fn ended_result(ctx: &ToolContext, t: TaskRecord) -> ToolOutput {
    result_of(ctx, t).await
}

/// The result of a call that started `t` and waited for it in the foreground.
async fn foreground_result(ctx: &ToolContext, t: TaskRecord) -> ToolOutput {
    if t.detached && t.is_terminal() {
        // It moved to the background and ended before this call answered: this result
        // shows the end, so no notification repeats it.
        ctx.engine.discard_notification(t.id).await;
    }
    result_of(ctx, t).await
}

async fn result_of(ctx: &ToolContext, t: TaskRecord) -> ToolOutput {
    let mut out = output_of(&t);
    let body = match &t.kind {
        TaskKind::Agent { .. } => t.answer.clone().unwrap_or_default(),
        TaskKind::Shell { .. } => output::shown(&ctx.engine, &t).await,
    };
    if out.log_path.is_none() && body.chars().count() > ctx.config.agent.tool_output {
        // Only part of it will be shown: the whole of it goes to a log the result names.
        if let Ok(path) = ctx.engine.keep_log(t.id) {
            out.log_path = path;
        }
    }
    let line = describe_outcome(&t);
    out.text = if t.is_terminal() {
        if body.is_empty() {
            line
        } else {
            format!("{line}\n{body}")
        }
    } else {
        out.background = true;
        format!(
            "{line}: it took longer than the wait budget and goes on in the background. You \
             will get a notification when it ends; do not poll.\noutput so far:\n{body}"
        )
    };
    out
}

fn started_in_background(t: &TaskRecord) -> ToolOutput {
    let mut out = output_of(t);
    out.background = true;
    let terminal = if output::terminal(t).is_some() {
        " Type into it with task_input; read its screen with task_output screen: true."
    } else {
        ""
    };
    out.text = format!(
        "{}. You will get a notification when it ends; go on with other work.{terminal}",
        describe_outcome(t)
    );
    out
}

fn base_spec(ctx: &ToolContext, kind: TaskKind, background: bool) -> TaskSpec {
    let mut spec = TaskSpec::new(kind);
    spec.cwd = Some(ctx.cwd.display().to_string());
    // Commands get the caller's environment (the daemon's when it sent none), never the
    // model keys.
    let mut env = ctx
        .env
        .clone()
        .unwrap_or_else(|| std::env::vars().collect());
    for k in ctx.config.key_vars() {
        env.remove(&k);
    }
    spec.env = Some(env);
    spec.env_extra = QUIET_ENV
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    spec.mode = if background {
        StartMode::Background
    } else {
        StartMode::Foreground
    };
    spec
}

/// A call the previous run of a resumed agent made: the task it started, followed to its
/// end as the call would have (or its result if it ended meanwhile), so that nothing runs
/// twice. `None` when that run started nothing for it.
async fn resumed_call(ctx: &ToolContext) -> Option<ToolOutput> {
    let call = ctx.call.as_ref().filter(|c| c.resumed)?;
    let mut cursor = None;
    let t = 'found: loop {
        let query = ListQuery {
            all: true,
            owner: Some(ctx.owner.clone()),
            order: Order::NewestFirst,
            limit: LIST_MAX,
            cursor,
        };
        let page = ctx.engine.list(&query).ok()?;
        for t in page.tasks {
            if t.id <= call.since {
                // Older than the agent's run: it started nothing for the call.
                return None;
            }
            if t.dedupe_key.as_deref() == Some(call.key.as_str()) {
                break 'found t;
            }
        }
        cursor = Some(page.next_cursor?);
    };
    Some(if t.is_terminal() {
        foreground_result(ctx, t).await
    } else if t.mode == StartMode::Background {
        started_in_background(&t)
    } else {
        follow(ctx, t.id).await
    })
}

pub async fn bash(ctx: &ToolContext, a: BashArgs) -> ToolOutput {
    if let Some(out) = resumed_call(ctx).await {
        return out;
    }
    if a.command.trim().is_empty() {
        return ToolOutput::error("command is empty");
    }
    let input = match terminal_of(&a) {
        Ok(input) => input,
        Err(e) => return e,
    };
    let mut spec = base_spec(
        ctx,
        TaskKind::Shell {
            command: ShellCommand::Script(a.command),
            input,
        },
        a.run_in_background,
    );
    spec.name = a.description.filter(|d| !d.trim().is_empty());
    if let Some(ms) = a.timeout {
        if ms == 0 || Duration::from_millis(ms) > MAX_BASH_TIMEOUT {
            return ToolOutput::error(format!(
                "timeout must be between 1 and {} ms",
                MAX_BASH_TIMEOUT.as_millis()
            ));
        }
        spec.timeout = Some(Limit::Millis(ms));
    }
    if let Some(w) = ctx.wait {
        spec.wait = Some(Limit::Millis(w.as_millis() as u64));
    }
    start_and_follow(ctx, spec).await
}

/// The input a `bash` call asks for: a terminal of the size given, or none.
fn terminal_of(a: &BashArgs) -> Result<Input, ToolOutput> {
    if !a.pty {
        return match (a.cols, a.rows) {
            (None, None) => Ok(Input::None),
            _ => Err(ToolOutput::error(
                "cols and rows are the size of a terminal: set pty: true with them",
            )),
        };
    }
    let size = TermSize {
        cols: a.cols.unwrap_or(TermSize::DEFAULT.cols),
        rows: a.rows.unwrap_or(TermSize::DEFAULT.rows),
    };
    if !size.is_valid() {
        return Err(ToolOutput::error(format!(
            "cols and rows must be between 1 and {}; {size} is not",
            TermSize::MAX
        )));
    }
    Ok(Input::Pty(size))
}

async fn start_and_follow(ctx: &ToolContext, mut spec: TaskSpec) -> ToolOutput {
    if let Some(call) = &ctx.call {
        spec.dedupe_key = Some(call.key.clone());
    }
    let background = spec.mode == StartMode::Background;
    let started = match ctx.engine.start(&ctx.owner, spec).await {
        Ok(s) => s.task,
        Err(e) => return engine_error(e),
    };
    if background {
        return started_in_background(&started);
    }
    follow(ctx, started.id).await
}

/// Waits for a foreground task until it ends or moves to the background; its result.
async fn follow(ctx: &ToolContext, id: TaskId) -> ToolOutput {
    let settled = match &ctx.cancel {
        None => until_settled(&ctx.engine, id).await,
        Some(rx) => {
            let mut rx = rx.clone();
            tokio::select! {
                r = until_settled(&ctx.engine, id) => r,
                reason = cancelled(&mut rx) => {
                    match ctx.engine.stop(&[id], &ctx.owner, reason).await {
                        Ok(mut ts) if !ts.is_empty() => Ok(ts.remove(0)),
                        Ok(_) => ctx.engine.get(id),
                        Err(e) => Err(e),
                    }
                }
            }
        }
    };
    match settled {
        Ok(t) => foreground_result(ctx, t).await,
        Err(e) => engine_error(e),
    }
}

pub async fn task(ctx: &ToolContext, a: TaskArgs) -> ToolOutput {
    if let Some(out) = resumed_call(ctx).await {
        return out;
    }
    let max = ctx.config.agent.max_depth;
    if ctx.depth + 1 > max {
        return ToolOutput::error(format!(
            "subagents cannot start subagents here (nesting depth is limited to {max}); do the \
             work yourself"
        ));
    }
    let Some(def) = ctx.catalog.get(&a.subagent_type) else {
        let known: Vec<&str> = ctx.catalog.agents().map(|d| d.name.as_str()).collect();
        return ToolOutput::error(format!(
            "there is no agent named {:?}; the agents are: {}",
            a.subagent_type,
            known.join(", ")
        ));
    };
    if let Some(s) = &a.session_id {
        if let Some(live) = ctx.engine.session_task(s) {
            return ToolOutput::error(format!(
                "session {s} is still running in task {}; wait for its notification or read it \
                 with task_output",
                live.id
            ));
        }
    }
    let background = a.run_in_background.unwrap_or(def.background);
    let mut spec = base_spec(
        ctx,
        TaskKind::Agent {
            agent: def.name.clone(),
            prompt: a.prompt,
            session_id: a.session_id,
            depth: ctx.depth + 1,
        },
        background,
    );
    spec.name = a.description.filter(|d| !d.trim().is_empty());
    spec.wait = Some(Limit::from_millis(
        ctx.wait
            .or(ctx.config.agent.wait)
            .map(|w| w.as_millis() as u64),
    ));
    start_and_follow(ctx, spec).await
}

pub fn task_list(ctx: &ToolContext, a: TaskListArgs) -> ToolOutput {
    // The newest first, at most a screenful: history can be long.
    let query = ListQuery {
        all: true,
        owner: (!a.all).then(|| ctx.owner.clone()),
        order: Order::NewestFirst,
        limit: LIST_MAX,
        cursor: None,
    };
    let tasks = match ctx.engine.list(&query) {
        Ok(page) => page.tasks,
        Err(e) => return engine_error(e),
    };
    if tasks.is_empty() {
        return ToolOutput::ok(if a.all {
            "no tasks"
        } else {
            "you have no tasks"
        });
    }
    let lines: Vec<String> = tasks
        .iter()
        .map(|t| {
            let session = t
                .kind
                .session_id()
                .map(|s| format!(" session_id={s}"))
                .unwrap_or_default();
            format!("{}{session}", describe_outcome(t))
        })
        .collect();
    ToolOutput::ok(lines.join("\n"))
}

pub async fn task_stop(ctx: &ToolContext, a: TaskStopArgs) -> ToolOutput {
    let id = match parse_id(&a.task_id) {
        Ok(id) => id,
        Err(e) => return e,
    };
    let reason = CancelReason::UserStop {
        message: a.reason.filter(|r| !r.trim().is_empty()),
    };
    match ctx.engine.stop(&[id], &ctx.owner, reason).await {
        Ok(mut ts) if !ts.is_empty() => {
            let t = ts.remove(0);
            let mut out = output_of(&t);
            out.is_error = false;
            out.text = describe_outcome(&t);
            out
        }
        Ok(_) => ToolOutput::error(format!("no task with id {id}")),
        Err(e) => engine_error(e),
    }
}

/// One message announcing every task in `notes`, with each one's outcome and output tail.
pub async fn notification_message(engine: &Engine, notes: &[Notification]) -> String {
    let mut parts = Vec::new();
    for n in notes {
        let t = &n.task;
        let mut lines = vec![describe_outcome(t)];
        if let Some(s) = t.kind.session_id() {
            lines.push(format!("session_id: {s}"));
        }
        if let Some(p) = &t.log_path {
            lines.push(format!("log: {p}"));
        }
        match (&t.kind, &t.answer) {
            (TaskKind::Agent { .. }, Some(ans)) => {
                lines.push(format!("answer:\n{}", super::cap_text(ans, 4000, None)));
            }
            _ => {
                let tail = output::tail(engine, t).await;
                if !tail.is_empty() {
                    lines.push(tail);
                }
            }
        }
        parts.push(format!(
            "<task-notification>\n{}\n</task-notification>",
            lines.join("\n")
        ));
    }
    // Many tasks ending together still make one message of bounded size.
    super::cap_text(&parts.join("\n"), NOTICES_CAP, None)
}
