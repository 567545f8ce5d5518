//! `aside mcp` driven by rmcp's own MCP client over the real binary's stdin and stdout.

// Logging notifications are deprecated by the newest MCP revision; aside still sends them.
#![allow(deprecated)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, ClientRequest,
    LoggingMessageNotificationParam, NumberOrString, ProgressNotificationParam, ProgressToken,
    RequestParamsMeta,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{json, Value};

use crate::model_server::{ModelServer, Reply};
use crate::support::*;

/// Records the logging and progress notifications the server sends.
#[derive(Clone, Default)]
struct Recorder {
    logs: Arc<Mutex<Vec<String>>>,
    progress: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        if let Ok(mut p) = self.progress.lock() {
            p.push(params.message.unwrap_or_default());
        }
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        if let Ok(mut l) = self.logs.lock() {
            l.push(params.data.to_string());
        }
    }
}

pub(crate) struct Mcp {
    rt: tokio::runtime::Runtime,
    service: Option<RunningService<RoleClient, Recorder>>,
    child: tokio::process::Child,
    logs: Arc<Mutex<Vec<String>>>,
    progress: Arc<Mutex<Vec<String>>>,
}

impl Mcp {
    pub(crate) fn start(a: &Aside, flags: &[&str]) -> Self {
        let mut args = vec!["mcp"];
        args.extend_from_slice(flags);
        let recorder = Recorder::default();
        let logs = recorder.logs.clone();
        let progress = recorder.progress.clone();
        let (rt, child, stdout, stdin) = spawn_mcp(a.cmd(&args));
        let service = rt
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(30), recorder.serve((stdout, stdin))).await
            })
            .expect("initialize within 30 s")
            .expect("initialize");
        Self {
            rt,
            service: Some(service),
            child,
            logs,
            progress,
        }
    }

    fn service(&self) -> &RunningService<RoleClient, Recorder> {
        self.service.as_ref().expect("connected")
    }

    pub(crate) fn tools(&self) -> Vec<rmcp::model::Tool> {
        self.rt
            .block_on(self.service().list_all_tools())
            .expect("tools/list")
    }

    pub(crate) fn call(&self, name: &str, args: Value) -> CallToolResult {
        let Value::Object(args) = args else {
            panic!("arguments must be an object")
        };
        let params = CallToolRequestParams::new(name.to_string()).with_arguments(args);
        self.rt
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(60), self.service().call_tool(params))
                    .await
            })
            .expect("tools/call within 60 s")
            .expect("tools/call")
    }

    pub(crate) fn close(mut self) {
        if let Some(s) = self.service.take() {
            let _ = self.rt.block_on(s.cancel());
        }
        let _ = self.rt.block_on(self.child.wait());
    }
}

pub(crate) fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn is_error(r: &CallToolResult) -> bool {
    r.is_error == Some(true)
}

/// The task id a result names in its header.
pub(crate) fn task_id(r: &CallToolResult) -> String {
    let t = text(r);
    t.lines()
        .find_map(|l| l.strip_prefix("task_id: "))
        .unwrap_or_else(|| panic!("no task_id in {t}"))
        .to_string()
}

#[test]
fn initialize_lists_the_task_tools_with_schemas_and_file_tools_on_request() {
    let a = Aside::new();
    let m = Mcp::start(&a, &[]);
    let tools = m.tools();
    let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(
        names,
        [
            "bash",
            "task",
            "task_output",
            "task_input",
            "task_list",
            "task_stop"
        ]
    );
    for t in &tools {
        assert_eq!(t.input_schema["type"], "object", "{}", t.name);
        assert!(
            t.description.as_ref().is_some_and(|d| d.len() > 40),
            "{}",
            t.name
        );
    }
    let bash = &tools[0];
    assert!(bash.input_schema["properties"]["command"].is_object());
    // The wait budget stated is the one calls get: --wait's default, under host timeouts.
    let d = bash.description.as_deref().unwrap_or_default();
    assert!(
        d.contains("waits up to 45s") && d.contains("notification"),
        "{d}"
    );
    m.close();
    let m = Mcp::start(&a, &["--file-tools", "--wait", "2m"]);
    let tools = m.tools();
    assert_eq!(tools.len(), 11);
    let d = tools[0].description.as_deref().unwrap_or_default();
    assert!(d.contains("waits up to 2m"), "{d}");
    m.close();
}

#[test]
fn a_foreground_bash_returns_output_and_ids() {
    let a = Aside::new();
    let m = Mcp::start(&a, &[]);
    let r = m.call("bash", json!({"command": "echo hello from mcp"}));
    assert!(!is_error(&r), "{r:?}");
    let t = text(&r);
    assert!(t.starts_with("task_id: "), "{t}");
    assert!(t.contains("hello from mcp"), "{t}");
    assert!(t.contains("succeeded (exit code 0)"), "{t}");
    let failed = m.call("bash", json!({"command": "echo no >&2; exit 3"}));
    assert!(is_error(&failed));
    assert!(
        text(&failed).contains("exited with code 3"),
        "{}",
        text(&failed)
    );
    assert!(text(&failed).starts_with("task_id: "));
    m.close();
}

#[test]
fn a_background_notice_arrives_once_at_the_end_of_a_later_result() {
    let a = Aside::new();
    let m = Mcp::start(&a, &[]);
    let r = m.call(
        "bash",
        json!({"command": "sleep 0.3; echo bg-output-line", "run_in_background": true}),
    );
    let id = task_id(&r);
    assert!(text(&r).contains("notification"), "{}", text(&r));
    a.wait_end(&id);
    let later = text(&m.call("task_list", json!({})));
    assert_eq!(later.matches("<task-notification>").count(), 1, "{later}");
    let notice = &later[later.find("<task-notification>").unwrap_or(0)..];
    assert!(notice.contains(&format!("task {id}")), "{notice}");
    assert!(notice.contains("bg-output-line"), "{notice}");
    let again = text(&m.call("task_list", json!({})));
    assert!(!again.contains("<task-notification>"), "{again}");
    // The ending was also sent as a logging notification.
    assert!(eventually(Duration::from_secs(5), || {
        m.logs
            .lock()
            .map(|l| l.iter().any(|x| x.contains(&format!("task {id}"))))
            .unwrap_or(false)
    }));
    m.close();
}

#[test]
fn task_output_reads_from_an_offset() {
    let a = Aside::new();
    let m = Mcp::start(&a, &[]);
    let id = task_id(&m.call(
        "bash",
        json!({"command": "printf abcdef", "run_in_background": true}),
    ));
    a.wait_end(&id);
    let r = m.call("task_output", json!({"task_id": id, "offset": 3}));
    let t = text(&r);
    assert!(t.contains("next_offset: 6"), "{t}");
    let body = t
        .split("output from offset 3:\n")
        .nth(1)
        .unwrap_or_default();
    assert_eq!(body, "def", "{t}");
    // Reading a finished task's result counts as seeing it: no notice follows.
    let next = text(&m.call("task_list", json!({})));
    assert!(!next.contains("<task-notification>"), "{next}");
    m.close();
}

#[test]
fn task_stop_ends_the_whole_tree() {
    let a = Aside::new();
    let m = Mcp::start(&a, &[]);
    let pidfile = a.path("child.pid");
    let r = m.call(
        "bash",
        json!({"command": format!("sleep 600 & echo $! > {}; wait", pidfile.display()),
               "run_in_background": true}),
    );
    let id = task_id(&r);
    let pid = a.read_pid("child.pid");
    let stopped = m.call("task_stop", json!({"task_id": id, "reason": "enough"}));
    let t = text(&stopped);
    assert!(t.contains("cancelled: stopped: enough"), "{t}");
    assert_all_dead(&[pid], Duration::from_secs(10), "the stopped task's sleep");
    assert_eq!(a.state(&id), "cancelled");
    m.close();
}

#[test]
fn long_results_are_capped_but_keep_their_ids() {
    let a = Aside::with_config("[agent]\ntool_output = 2000\n");
    let m = Mcp::start(&a, &[]);
    let r = m.call("bash", json!({"command": "seq 1 300000"}));
    let t = text(&r);
    assert!(t.chars().count() < 2600, "{}", t.len());
    let id = task_id(&r);
    assert!(t.contains("log: "), "{t}");
    assert!(t.contains("characters omitted"), "{t}");
    assert!(t.contains("\n300000"), "the tail is kept: {t}");
    assert!(t.starts_with(&format!("task_id: {id}\nlog: ")), "{t}");
    m.close();
}

#[test]
fn a_capped_result_of_short_output_still_names_a_log_with_all_of_it() {
    let a = Aside::with_config("[agent]\ntool_output = 2000\n");
    let m = Mcp::start(&a, &[]);
    // About 110 KB: kept in memory by the engine, but longer than a result shows.
    let r = m.call("bash", json!({"command": "seq 1 20000"}));
    let t = text(&r);
    let log = t
        .lines()
        .find_map(|l| l.strip_prefix("log: "))
        .unwrap_or_else(|| panic!("no log path in {t}"));
    let whole = std::fs::read_to_string(log).expect("the log exists");
    assert_eq!(whole.lines().count(), 20000);
    assert!(whole.ends_with("20000\n"));
    m.close();
}

#[test]
fn a_foreground_subagent_answers_through_task() {
    let server = ModelServer::start(|_| Reply::text("the subagent's answer"));
    let a = Aside::with_config(&server.config());
    let m = Mcp::start(&a, &[]);
    let r = m.call(
        "task",
        json!({"subagent_type": "general", "prompt": "say something", "description": "say"}),
    );
    let t = text(&r);
    assert!(!is_error(&r), "{t}");
    assert!(t.contains("session_id: s"), "{t}");
    assert!(t.contains("the subagent's answer"), "{t}");
    m.close();
}

#[test]
fn cancelling_a_foreground_call_stops_its_task() {
    let a = Aside::new();
    let m = Mcp::start(&a, &[]);
    let pidfile = a.path("sleep.pid");
    let params = CallToolRequestParams::new("bash").with_arguments(
        json!({"command": format!("echo $$ > {}; exec sleep 600", pidfile.display())})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    let handle =
        m.rt.block_on(m.service().peer().send_cancellable_request(
            ClientRequest::CallToolRequest(CallToolRequest::new(params)),
            PeerRequestOptions::no_options(),
        ))
        .expect("send");
    let pid = a.read_pid("sleep.pid");
    m.rt.block_on(handle.cancel(Some("the user pressed Esc".into())))
        .expect("cancel");
    assert_all_dead(
        &[pid],
        Duration::from_secs(10),
        "the cancelled call's sleep",
    );
    let tasks = a.list_all();
    let id = tasks.last().expect("a task")["id"]
        .as_str()
        .expect("an id")
        .to_string();
    // The process is gone; its task ends once that is recorded.
    let bash = a.wait_end(&id);
    assert_eq!(bash["state"], "cancelled", "{bash}");
    // The client's own reason reaches the task.
    assert_eq!(bash["reason"]["message"], "the user pressed Esc", "{bash}");
    // The server keeps serving.
    let r = m.call("bash", json!({"command": "echo still here"}));
    assert!(text(&r).contains("still here"));
    m.close();
}

#[test]
fn malformed_arguments_are_tool_errors() {
    let a = Aside::new();
    let m = Mcp::start(&a, &[]);
    let r = m.call("bash", json!({}));
    assert!(is_error(&r));
    assert!(text(&r).contains("command"), "{}", text(&r));
    let r = m.call("bash", json!({"command": 5}));
    assert!(is_error(&r));
    assert!(
        text(&r).contains("invalid arguments for bash"),
        "{}",
        text(&r)
    );
    let r = m.call("task_output", json!({"task_id": "../etc"}));
    assert!(is_error(&r), "{}", text(&r));
    let r = m.call("task_stop", json!({"task_id": "999"}));
    assert!(is_error(&r));
    assert!(text(&r).contains("no task with id 999"), "{}", text(&r));
    // A tool that does not exist is a protocol error (invalid params), as MCP has it.
    let params = CallToolRequestParams::new("nonexistent");
    let err =
        m.rt.block_on(m.service().call_tool(params))
            .expect_err("an unknown tool is refused");
    match &err {
        rmcp::ServiceError::McpError(e) => {
            assert_eq!(e.code.0, -32602, "{err}");
            assert!(e.message.contains("no tool named"), "{err}");
        }
        other => panic!("not a protocol error: {other}"),
    }
    // Still serving.
    assert!(text(&m.call("bash", json!({"command": "echo ok"}))).contains("ok"));
    m.close();
}

#[test]
fn two_connections_never_see_each_others_notices() {
    let a = Aside::new();
    let one = Mcp::start(&a, &[]);
    let two = Mcp::start(&a, &[]);
    let id = task_id(&one.call(
        "bash",
        json!({"command": "sleep 0.3; echo from-one", "run_in_background": true}),
    ));
    a.wait_end(&id);
    let seen_by_two = text(&two.call("task_list", json!({})));
    assert!(
        !seen_by_two.contains("<task-notification>"),
        "{seen_by_two}"
    );
    assert_eq!(seen_by_two, "you have no tasks");
    let all = text(&two.call("task_list", json!({"all": true})));
    assert!(all.contains(&format!("task {id}")), "{all}");
    let seen_by_one = text(&one.call("task_list", json!({})));
    assert_eq!(
        seen_by_one.matches("<task-notification>").count(),
        1,
        "{seen_by_one}"
    );
    one.close();
    two.close();
}

#[test]
fn print_config_gives_each_clients_snippet() {
    // Exactly what tests/hosts/run.sh registers with each host (Cursor is not run there):
    // the additions each needs to run aside's tools headless are part of the snippet.
    let expected = [
        (
            "claude",
            r#"claude mcp add aside -- aside mcp
# claude -p asks no one: allow aside's tools with claude --allowedTools mcp__aside -p PROMPT
"#,
        ),
        (
            "codex",
            r#"[mcp_servers.aside]
command = "aside"
args = ["mcp"]
# Codex passes MCP servers only a few variables (HOME, PATH, ...): add those aside needs.
env_vars = ["ASIDE_HOME"]
# Run aside's tools without asking each time (codex exec refuses them otherwise).
default_tools_approval_mode = "approve"
"#,
        ),
        (
            "opencode",
            r#"{
  "$schema": "https://opencode.ai/config.json",
  "mcp": {
    "aside": {
      "command": [
        "aside",
        "mcp"
      ],
      "enabled": true,
      "type": "local"
    }
  }
}
"#,
        ),
        (
            "cursor",
            r#"{
  "mcpServers": {
    "aside": {
      "args": [
        "mcp"
      ],
      "command": "aside"
    }
  }
}
"#,
        ),
        (
            "gemini",
            r#"{
  "mcpServers": {
    "aside": {
      "args": [
        "mcp"
      ],
      "command": "aside",
      "trust": true
    }
  }
}
"#,
        ),
    ];
    let a = Aside::new();
    for (client, snippet) in expected {
        let out = a.ok(&["mcp", "--print-config", client]);
        assert_eq!(out.text(), snippet, "{client}");
        assert!(
            out.stderr.contains("put this in"),
            "{client}: {:?}",
            out.stderr
        );
        if snippet.starts_with('{') {
            let parsed = serde_json::from_str::<Value>(snippet);
            assert!(parsed.is_ok(), "{client}: {parsed:?}");
        }
    }
    let gemini = a.ok(&["mcp", "--print-config", "gemini"]);
    assert!(
        gemini.stderr.contains("trusted folder"),
        "{:?}",
        gemini.stderr
    );
    let bad = a.run(&["mcp", "--print-config", "vim"]);
    assert_eq!(bad.code, 125);
    assert!(bad.stderr.contains("choose claude"), "{:?}", bad.stderr);
}

#[test]
fn a_long_foreground_call_reports_progress_when_asked() {
    let a = Aside::new();
    let m = Mcp::start(&a, &[]);
    let mut params = CallToolRequestParams::new("bash").with_arguments(
        json!({"command": "sleep 6; echo slept"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    params.set_progress_token(ProgressToken(NumberOrString::Number(7)));
    let r =
        m.rt.block_on(m.service().call_tool(params))
            .expect("tools/call");
    assert!(text(&r).contains("slept"), "{}", text(&r));
    let seen = m.progress.lock().map(|p| p.clone()).unwrap_or_default();
    assert!(
        seen.iter().any(|p| p.contains("still running after 5s")),
        "{seen:?}"
    );
    m.close();
}

#[test]
fn stop_on_exit_stops_the_connections_tasks_and_otherwise_they_go_on() {
    let a = Aside::new();
    let sleeper = |m: &Mcp, name: &str| {
        let pidfile = a.path(name);
        task_id(&m.call(
            "bash",
            json!({"command": format!("echo $$ > {}; exec sleep 600", pidfile.display()),
                   "run_in_background": true}),
        ))
    };
    let keeps = Mcp::start(&a, &[]);
    let kept = sleeper(&keeps, "kept.pid");
    let kept_pid = a.read_pid("kept.pid");
    keeps.close();
    let stops = Mcp::start(&a, &["--stop-on-exit"]);
    let stopped = sleeper(&stops, "stopped.pid");
    let stopped_pid = a.read_pid("stopped.pid");
    stops.close();
    assert_all_dead(
        &[stopped_pid],
        Duration::from_secs(10),
        "a --stop-on-exit task",
    );
    assert_eq!(a.wait_end(&stopped)["state"], "cancelled");
    assert!(!is_dead(kept_pid), "a task of a closed connection goes on");
    assert_eq!(a.state(&kept), "running");
    // A later connection sees it with all.
    let later = Mcp::start(&a, &[]);
    let all = text(&later.call("task_list", json!({"all": true})));
    assert!(all.contains(&format!("task {kept}")), "{all}");
    later.call("task_stop", json!({"task_id": kept}));
    later.close();
}

#[test]
fn task_list_and_task_output_show_a_running_subagents_progress() {
    let a = Aside::new();
    let gate = a.gate("go");
    let server = ModelServer::bash_then_answer(gate, "done waiting");
    a.write_config(&server.config());
    let m = Mcp::start(&a, &[]);
    let r = m.call(
        "task",
        json!({"prompt": "wait for the gate", "run_in_background": true}),
    );
    let id = task_id(&r);
    // Once the subagent is inside its tool call, its progress shows as `aside ls` has it.
    let mut listed = String::new();
    let seen = eventually(Duration::from_secs(20), || {
        listed = text(&m.call("task_list", json!({})));
        listed.contains("last bash")
    });
    assert!(seen, "{listed}");
    assert!(
        listed.contains(&format!(
            "task {id} (agent general): running (turn 1, 1 tools, last bash"
        )),
        "{listed}"
    );
    let out = text(&m.call("task_output", json!({"task_id": id})));
    assert!(out.contains("running (turn 1, 1 tools, last bash"), "{out}");
    a.open("go");
    a.wait_end(&id);
    m.close();
}

#[test]
fn logging_set_level_above_info_silences_the_ending_messages() {
    use rmcp::model::{LoggingLevel, SetLevelRequestParams};
    let a = Aside::new();
    let m = Mcp::start(&a, &[]);
    m.rt.block_on(
        m.service()
            .set_level(SetLevelRequestParams::new(LoggingLevel::Warning)),
    )
    .expect("logging/setLevel is accepted");
    let quiet = task_id(&m.call(
        "bash",
        json!({"command": "true", "run_in_background": true}),
    ));
    a.wait_end(&quiet);
    m.rt.block_on(
        m.service()
            .set_level(SetLevelRequestParams::new(LoggingLevel::Info)),
    )
    .expect("logging/setLevel");
    let heard = task_id(&m.call(
        "bash",
        json!({"command": "true", "run_in_background": true}),
    ));
    a.wait_end(&heard);
    let logged = |id: &str| {
        m.logs
            .lock()
            .map(|l| l.iter().any(|x| x.contains(&format!("task {id} "))))
            .unwrap_or(false)
    };
    assert!(eventually(Duration::from_secs(5), || logged(&heard)));
    assert!(
        !logged(&quiet),
        "logged above the level the client asked for"
    );
    m.close();
}

/// An `aside mcp` session rides through daemon restarts: a background command started
/// before goes on under the next daemon, and its notice (in a later result and as a logging
/// message) still reaches this session once; a call in flight when the daemon goes away
/// answers that its command goes on in the background, where it is announced at its end,
/// and the session keeps working.
#[test]
fn a_session_rides_through_daemon_restarts() {
    let a = Aside::new();
    let m = Mcp::start(&a, &[]);
    let r = m.call(
        "bash",
        json!({"command": format!("{}; echo survived", a.gate("go")), "run_in_background": true}),
    );
    let id = task_id(&r);
    a.ok(&["daemon", "restart"]);
    let listed = text(&m.call("task_list", json!({})));
    assert!(listed.contains(id.as_str()), "{listed}");
    assert_eq!(a.state(&id), "running");

    // A foreground call waiting on its command while the daemon is killed.
    let call = {
        let service = m.service().peer().clone();
        let args = json!({"command": format!("{}; echo second", a.gate("go2"))});
        let Value::Object(args) = args else { panic!() };
        let params = CallToolRequestParams::new("bash").with_arguments(args);
        m.rt.spawn(async move { service.call_tool(params).await })
    };
    assert!(eventually(SOON, || a.list_all().len() == 2));
    let daemon = a.daemon_pid().expect("daemon pid");
    kill(daemon, libc::SIGKILL);
    let answer =
        m.rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), call).await })
            .expect("the call answers")
            .expect("joined")
            .expect("a result");
    assert!(is_error(&answer), "{}", text(&answer));
    assert!(text(&answer).contains("restarted"), "{}", text(&answer));
    // The session goes on with the next daemon, which adopted both commands.
    let listed = text(&m.call("task_list", json!({})));
    assert!(listed.contains("running"), "{listed}");
    // The interrupted call's command went to the background: it is announced too.
    assert_eq!(a.info("2")["detached"], true);
    a.open("go");
    a.open("go2");
    a.wait_end(&id);
    a.wait_end("2");
    let later = text(&m.call("task_list", json!({})));
    assert_eq!(later.matches("<task-notification>").count(), 2, "{later}");
    assert!(
        later.contains("survived") && later.contains("second"),
        "{later}"
    );
    assert!(eventually(Duration::from_secs(5), || {
        m.logs
            .lock()
            .map(|l| l.iter().any(|x| x.contains(&format!("task {id}"))))
            .unwrap_or(false)
    }));
    m.close();
}
