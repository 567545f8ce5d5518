//! The runner of agent tasks: one conversation with a model and its tools, or an external
//! agent command, run as a task of the engine.
//!
//! A conversation is a session (`s` and the id of the task that started it). Its messages are
//! appended to `sessions/<session>.jsonl` as they happen, so a later task can resume it. The
//! tasks an agent starts are owned by `session:<session>`; their notifications are taken at
//! step boundaries (before each model request, never mid-stream) and given to the model as
//! one message. When the model ends its turn while its own background tasks still run, the
//! agent waits for them (up to `agent.settle`) and a notification starts a new turn.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aside_core::{AgentRunner, Config, Engine, Launch, RunFuture, RunOutcome};
use aside_protocol::{AgentProgress, CancelReason, Failure, ShellCommand, TaskKind, TaskRecord};
use serde_json::Value;

use crate::definitions::{AgentDef, Catalog};
use crate::heartbeat::Heartbeat;
use crate::model::{Message, ModelClient, ModelError, ToolCall, ToolSpec};
use crate::project::{self, endpoint};
use crate::resume::{self, Step};
use crate::tools::{self, CallKey, Tool, ToolContext, ToolOutput};
use crate::transcript::Transcript;

/// The owner name of the tasks a session starts.
pub fn session_owner(session: &str) -> String {
    format!("session:{session}")
}

/// The agent runtime the daemon plugs into the engine.
#[derive(Clone)]
pub struct AgentRuntime {
    config: Arc<Config>,
    client: ModelClient,
}

impl AgentRuntime {
    pub fn new(config: Config) -> Result<Self, ModelError> {
        Ok(Self {
            config: Arc::new(config),
            client: ModelClient::new()?,
        })
    }
}

impl AgentRunner for AgentRuntime {
    fn launch(&self, task: Launch) -> Result<RunFuture, Failure> {
        let rt = self.clone();
        Ok(Box::pin(async move { rt.run(task).await }))
    }

    fn session_exists(&self, home: &std::path::Path, session: &str) -> bool {
        Transcript::path(home, session).is_file()
    }
}

impl AgentRuntime {
    async fn run(self, task: Launch) -> RunOutcome {
        let TaskKind::Agent {
            agent,
            prompt,
            session_id,
            depth,
        } = task.spec.kind.clone()
        else {
            return RunOutcome::Failed("not an agent task".into());
        };
        let session = session_id.unwrap_or_else(|| format!("s{}", task.record.id));
        let cwd = PathBuf::from(&task.record.cwd);
        let (found, catalog) = project::load(&self.config, &cwd).await;
        let config = match found {
            Ok(c) => Arc::new(c),
            Err(e) => return RunOutcome::AgentFailed(e.to_string()),
        };
        let catalog = Arc::new(catalog);
        let Some(def) = catalog.get(&agent).cloned() else {
            let known: Vec<&str> = catalog.agents().map(|d| d.name.as_str()).collect();
            return RunOutcome::AgentFailed(format!(
                "there is no agent named {agent:?}; the agents are: {}",
                known.join(", ")
            ));
        };
        if let Some(cmd) = &def.command {
            if task.resumed {
                // Its command died with the daemon (its processes are killed at the start):
                // it has no transcript to go on from, and running it again could repeat work.
                return RunOutcome::Lost(
                    "the daemon stopped while the agent's command ran; its processes were killed \
                     on restart"
                        .into(),
                );
            }
            // The command's runner stops its process tree itself when the task is stopped;
            // racing it here could drop the runner before it kills anything.
            return external(&task, cmd, &prompt).await;
        }
        let owner = session_owner(&session);
        let mut stopping = task.stopping();
        let engine = task.engine.clone();
        let heartbeat = Arc::new(Heartbeat::new());
        let stall = config.agent.stall;
        let stop_children = config.agent.stop_children;

        let work = async {
            let conv = Conversation {
                rt: &self,
                task: &task,
                config: config.clone(),
                catalog: catalog.clone(),
                def: &def,
                session: session.clone(),
                owner: owner.clone(),
                depth,
                cwd: cwd.clone(),
                heartbeat: heartbeat.clone(),
            };
            let out = conv.run(&prompt).await;
            if let RunOutcome::AgentFailed(why) = &out {
                // A failed agent's tasks have nobody to report to: stopped like on a stop.
                let reason = CancelReason::UserStop {
                    message: Some(format!("its agent failed: {why}")),
                };
                stop_owned(&engine, &owner, reason, stop_children).await;
            }
            out
        };
        let watchdog = async {
            let Some(limit) = stall else {
                return std::future::pending().await;
            };
            loop {
                let idle = heartbeat.idle();
                if idle >= limit {
                    task.stop(CancelReason::Stalled {
                        idle_ms: idle.as_millis() as u64,
                    });
                    return std::future::pending().await;
                }
                tokio::time::sleep(limit - idle).await;
            }
        };
        tokio::select! {
            biased;
            out = work => out,
            reason = stopping.wait() => {
                stop_owned(&engine, &owner, reason, stop_children).await;
                RunOutcome::Failed("stopped".into())
            }
            _ = watchdog => RunOutcome::Failed("stalled".into()),
        }
    }
}

/// Stops what an agent started when the agent is stopped: its foreground tasks always, its
/// background ones too unless `agent.stop_children` is off. The reason is passed on.
async fn stop_owned(engine: &Engine, owner: &str, reason: CancelReason, all: bool) {
    let ids: Vec<_> = engine
        .live_tasks_of(owner)
        .into_iter()
        .filter(|t| all || !t.detached)
        .map(|t| t.id)
        .collect();
    if !ids.is_empty() {
        let _ = engine.stop(&ids, owner, reason).await;
    }
}

/// An external agent: its command with the prompt as the last argument; its output is the
/// answer.
async fn external(task: &Launch, cmd: &[String], prompt: &str) -> RunOutcome {
    let mut argv = cmd.to_vec();
    argv.push(prompt.to_string());
    let env = tools::QUIET_ENV
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let run = match task.spawn_command(&ShellCommand::Argv(argv), &env) {
        Ok((_pid, run)) => run,
        Err(f) => return RunOutcome::AgentFailed(f.to_string()),
    };
    match run.await {
        RunOutcome::Exited(aside_core::Exit::Code(0)) => {
            let total = task.output.total();
            let from = total.saturating_sub(256 << 10);
            let text = task
                .output
                .read(from, 256 << 10)
                .map(|b| String::from_utf8_lossy(&b).trim().to_string())
                .unwrap_or_default();
            RunOutcome::Answered(text)
        }
        other => other,
    }
}

struct Conversation<'a> {
    rt: &'a AgentRuntime,
    task: &'a Launch,
    config: Arc<Config>,
    catalog: Arc<Catalog>,
    def: &'a AgentDef,
    session: String,
    owner: String,
    depth: u32,
    cwd: PathBuf,
    heartbeat: Arc<Heartbeat>,
}

impl Conversation<'_> {
    fn say(&self, text: &str) {
        let _ = self.task.output.append(text.as_bytes());
    }

    fn tools(&self) -> Vec<Tool> {
        self.def
            .effective_tools()
            .into_iter()
            .filter(|&t| t != Tool::Task || self.depth < self.config.agent.max_depth)
            .collect()
    }

    async fn run(&self, prompt: &str) -> RunOutcome {
        let id = self.task.record.id;
        let engine = &self.task.engine;
        let endpoint = match endpoint(
            &self.config,
            self.def.model.as_deref(),
            self.task.spec.env.as_ref(),
        ) {
            Ok(e) => e,
            Err(e) => return RunOutcome::AgentFailed(e.to_string()),
        };
        let transcript = Transcript {
            path: Transcript::path(engine.home(), &self.session),
        };
        let mut progress = AgentProgress::default();
        let resumed = match resume::load(self.task, &transcript, prompt) {
            Ok(r) => r,
            Err(e) => return RunOutcome::AgentFailed(e.to_string()),
        };
        let (mut messages, mut step) = match resumed {
            Some((messages, step)) => {
                progress = resume::progress_from(self.task.record.progress.clone(), &step);
                self.say("\n[resumed: the daemon restarted]\n");
                (messages, step)
            }
            None => {
                let mut messages = if transcript.path.exists() {
                    match transcript.load() {
                        Ok(m) => m,
                        Err(e) => return RunOutcome::AgentFailed(e.to_string()),
                    }
                } else if self.session != format!("s{id}") {
                    return RunOutcome::AgentFailed(format!(
                        "there is no conversation {} to resume",
                        self.session
                    ));
                } else {
                    let system = Message::System {
                        content: system_prompt(self.def, &self.cwd),
                    };
                    transcript.append(&system).await;
                    vec![system]
                };
                let user = Message::User {
                    content: prompt.to_string(),
                };
                transcript.append(&user).await;
                messages.push(user);
                (messages, Step::Request)
            }
        };
        progress.model = endpoint.model.clone();

        let offered = self.tools();
        let specs: Vec<ToolSpec> = tools::specs(&self.config, &offered);
        let names: Vec<&str> = offered.iter().map(|t| t.name()).collect();
        let listed: Arc<str> = names.join(", ").into();
        let ctx = ToolContext {
            engine: engine.clone(),
            owner: self.owner.clone(),
            session_id: Some(self.session.clone()),
            cwd: self.cwd.clone(),
            depth: self.depth,
            config: self.config.clone(),
            catalog: self.catalog.clone(),
            env: self.task.spec.env.clone(),
            // Stopping the agent stops what it started (see `stop_owned`).
            cancel: None,
            wait: None,
            call: None,
        };
        let max_turns = self.def.max_turns.unwrap_or(self.config.agent.max_turns);
        self.heartbeat.beat();
        loop {
            match std::mem::replace(&mut step, Step::Request) {
                Step::Answer(answer) => return RunOutcome::Answered(answer),
                Step::Calls {
                    calls,
                    turn,
                    resumed,
                } => {
                    let results = self
                        .run_calls(&ctx, &offered, &listed, &calls, turn, resumed)
                        .await;
                    for msg in results {
                        transcript.append(&msg).await;
                        messages.push(msg);
                    }
                }
                Step::Request => {}
            }
            // Step boundary: what ended since the last request goes in as one message.
            self.inject_notifications(&mut messages, &transcript).await;
            if progress.turns >= max_turns {
                return RunOutcome::AgentFailed(format!(
                    "reached its limit of {max_turns} turns without a final answer"
                ));
            }
            progress.turns += 1;
            let _ = engine.set_progress(id, progress.clone());
            let heartbeat = self.heartbeat.clone();
            let output = self.task.output.clone();
            // Called for every event of the stream (with "" when it carries no text).
            let mut on_text = move |t: &str| {
                heartbeat.beat();
                if !t.is_empty() {
                    let _ = output.append(t.as_bytes());
                }
            };
            let completion = match self
                .rt
                .client
                .complete(
                    &endpoint,
                    &messages,
                    &specs,
                    self.config.agent.retries,
                    &mut on_text,
                )
                .await
            {
                Ok(c) => c,
                Err(e) => return RunOutcome::AgentFailed(e.to_string()),
            };
            self.heartbeat.beat();
            progress.tokens += completion.tokens;
            let assistant = Message::Assistant {
                content: (!completion.content.is_empty()).then(|| completion.content.clone()),
                tool_calls: completion.tool_calls.clone(),
            };
            transcript.append(&assistant).await;
            messages.push(assistant);
            if completion.tool_calls.is_empty() {
                self.say("\n");
                let _ = engine.set_progress(id, progress.clone());
                // The turn ended; tasks of its own still running may bring a new one, while
                // turns are left.
                if progress.turns < max_turns && self.settle().await {
                    continue;
                }
                return RunOutcome::Answered(completion.content);
            }
            let calls = completion.tool_calls;
            for c in &calls {
                let args: String = c.function.arguments.chars().take(200).collect();
                self.say(&format!("\n→ {} {args}\n", c.function.name));
                // Counted as they start, so a long call shows while it runs.
                progress.tool_calls += 1;
                progress.last_tool = Some(c.function.name.clone());
            }
            let _ = engine.set_progress(id, progress.clone());
            step = Step::Calls {
                calls,
                turn: resume::replies(&messages),
                resumed: false,
            };
        }
    }

    /// Runs the tool calls of reply number `turn` in parallel; their results, in order.
    /// `resumed`: the previous run of the agent made them (see [`tools::CallKey`]).
    async fn run_calls(
        &self,
        ctx: &ToolContext,
        offered: &[Tool],
        listed: &Arc<str>,
        calls: &[ToolCall],
        turn: usize,
        resumed: bool,
    ) -> Vec<Message> {
        let paused = self.heartbeat.pause();
        let mut set = tokio::task::JoinSet::new();
        for (i, c) in calls.iter().enumerate() {
            let mut ctx = ctx.clone();
            ctx.call = Some(CallKey {
                key: format!("{}/{turn}/{}", self.session, c.id),
                resumed,
                since: self.task.record.id,
            });
            let name = c.function.name.clone();
            let raw = c.function.arguments.clone();
            let allowed = name
                .parse::<Tool>()
                .ok()
                .filter(|tool| offered.contains(tool));
            let listed = listed.clone();
            set.spawn(async move {
                let out = match allowed {
                    None => ToolOutput::error(format!(
                        "there is no tool named {name:?} here; the tools are: {listed}"
                    )),
                    Some(tool) => match parse_arguments(&raw) {
                        Ok(args) => tools::call_tool(&ctx, tool, args).await,
                        Err(e) => ToolOutput::error(e.to_string()),
                    },
                };
                (i, out)
            });
        }
        let mut results: Vec<Option<ToolOutput>> = vec![None; calls.len()];
        while let Some(joined) = set.join_next().await {
            if let Ok((i, out)) = joined {
                results[i] = Some(out);
            }
        }
        drop(paused);
        calls
            .iter()
            .zip(results)
            .map(|(c, out)| {
                let out = out.unwrap_or_else(|| ToolOutput::error("the tool failed unexpectedly"));
                Message::Tool {
                    tool_call_id: c.id.clone(),
                    content: out.render(self.config.agent.tool_output),
                }
            })
            .collect()
    }

    async fn inject_notifications(&self, messages: &mut Vec<Message>, transcript: &Transcript) {
        let engine = &self.task.engine;
        let consumer = engine.notice_consumer();
        let notes = match consumer.take(&self.owner, &[]).await {
            Ok(n) if !n.is_empty() => n,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!("cannot take notifications of {}: {e}", self.owner);
                return;
            }
        };
        let text = tools::notification_message(engine, &notes).await;
        self.say(&format!("\n{text}\n"));
        let msg = Message::User { content: text };
        transcript.append(&msg).await;
        messages.push(msg);
        // Acknowledged once the conversation (and its transcript) holds them: a daemon that
        // dies before this hands them to the resumed session again.
        let seqs: Vec<u64> = notes.iter().map(|n| n.seq).collect();
        if let Err(e) = consumer.ack(&self.owner, &seqs).await {
            tracing::warn!("cannot acknowledge notifications of {}: {e}", self.owner);
        }
    }

    /// Waits, up to `agent.settle`, while the agent's own tasks run and none has a
    /// notification pending; true when one has (a new turn starts).
    async fn settle(&self) -> bool {
        let _paused = self.heartbeat.pause();
        let engine = &self.task.engine;
        let deadline = tokio::time::Instant::now() + self.config.agent.settle;
        let Ok((_, mut events, _)) = engine.subscribe(None) else {
            return false;
        };
        loop {
            // Live tasks first: a task ends and gets its notification in one step, so one
            // that ended after this look has its notification seen by the next line. (The
            // other order could miss a task that ends in between: no notification yet, and
            // no longer live.)
            let live: Vec<TaskRecord> = engine.live_tasks_of(&self.owner);
            if engine.has_notifications(&self.owner) {
                return true;
            }
            if live.is_empty() {
                return false;
            }
            self.heartbeat.beat();
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) => {
                    let ids: Vec<String> = live.iter().map(|t| t.id.to_string()).collect();
                    self.say(&format!(
                        "\n[still running after {}: tasks {}]\n",
                        aside_protocol::format_duration(self.config.agent.settle),
                        ids.join(", ")
                    ));
                    return false;
                }
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return false,
                // Anything may have changed; look again.
                Ok(Ok(_)) | Ok(Err(_)) => {}
            }
        }
    }
}

/// Why a model's tool arguments cannot be used; the text goes back to the model.
#[derive(Debug, thiserror::Error)]
enum ArgumentsError {
    #[error("the arguments must be a JSON object, not {0}; call the tool again")]
    NotAnObject(Value),
    #[error("the arguments are not valid JSON ({0}); call the tool again with a JSON object")]
    NotJson(#[source] serde_json::Error),
}

/// Tool arguments as the model wrote them; an empty string means no arguments.
fn parse_arguments(raw: &str) -> Result<Value, ArgumentsError> {
    if raw.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(other) => Err(ArgumentsError::NotAnObject(other)),
        Err(e) => Err(ArgumentsError::NotJson(e)),
    }
}

fn system_prompt(def: &AgentDef, cwd: &Path) -> String {
    let base = if def.prompt.trim().is_empty() {
        "You are a capable assistant that completes the task you are given.".to_string()
    } else {
        def.prompt.clone()
    };
    format!(
        "{base}\n\nWorking directory: {}\nWhen you are done, reply with your final answer as \
         plain text, without calling a tool.",
        cwd.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_must_be_an_object() {
        assert!(parse_arguments("{\"a\":1}").is_ok());
        assert!(parse_arguments("").is_ok());
        assert!(parse_arguments("{not json")
            .unwrap_err()
            .to_string()
            .contains("not valid JSON"));
        assert!(parse_arguments("[1]")
            .unwrap_err()
            .to_string()
            .contains("JSON object"));
    }

    #[test]
    fn a_project_cannot_send_the_users_key_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "sk-secret\n").unwrap();
        let user = Config::parse(&format!(
            "[agent]\nprovider = \"p\"\nmodel = \"m\"\n[providers.p]\nbase_url = \"http://good\"\napi_key_env = \"ASIDE_TEST_NEVER_SET\"\napi_key_file = \"{}\"\n",
            key.display()
        ))
        .unwrap();
        let ep = endpoint(&user, None, Some(&Default::default())).unwrap();
        assert_eq!(ep.api_key.as_deref(), Some("sk-secret"));
        let project = user
            .with_project("[providers.p]\nbase_url = \"http://evil\"\n")
            .unwrap();
        let ep = endpoint(&project, None, Some(&Default::default())).unwrap();
        assert_eq!(ep.base_url, "http://evil");
        assert_eq!(ep.api_key, None);
        let project = user
            .with_project("[agent]\nprovider = \"p\"\nbase_url = \"http://evil2\"\n")
            .unwrap();
        // The user's provider still decides where the key goes.
        let ep = endpoint(&project, None, Some(&Default::default())).unwrap();
        assert_eq!(ep.base_url, "http://good");
        assert_eq!(ep.api_key.as_deref(), Some("sk-secret"));
    }
}
