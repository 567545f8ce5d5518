//! MCP Tasks (`io.modelcontextprotocol/tasks`) through `aside mcp`, driven by rmcp's client
//! speaking protocol 2026-07-28 (`server/discover`, capabilities declared per request), and by
//! one that does not declare the extension.

use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, CancelTaskParams, ClientCapabilities,
    ClientConfig, ClientRequest, DetailedTask, GetTaskParams, Implementation, ProtocolVersion,
    TaskPayload, TaskStatus,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, PeerRequestOptions, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{json, Value};

use crate::support::*;

/// A client that declares the Tasks extension (or not).
#[derive(Clone)]
struct HostClient {
    tasks: bool,
}

impl ClientHandler for HostClient {
    fn get_info(&self) -> ClientConfig {
        let caps = if self.tasks {
            ClientCapabilities::builder().enable_tasks().build()
        } else {
            ClientCapabilities::default()
        };
        ClientConfig::new(caps, Implementation::new("aside-tests", "1"))
    }
}

struct Host {
    rt: tokio::runtime::Runtime,
    service: Option<RunningService<RoleClient, HostClient>>,
    child: tokio::process::Child,
}

impl Host {
    /// `aside mcp` with a client at 2026-07-28 that declares the extension per request.
    fn tasks(a: &Aside, flags: &[&str]) -> Self {
        Self::start(a, flags, true)
    }

    /// `aside mcp` with a client (legacy `initialize`) that does not declare it.
    fn plain(a: &Aside, flags: &[&str]) -> Self {
        Self::start(a, flags, false)
    }

    fn start(a: &Aside, flags: &[&str], tasks: bool) -> Self {
        let mut args = vec!["mcp"];
        args.extend_from_slice(flags);
        let (rt, child, stdout, stdin) = spawn_mcp(a.cmd(&args));
        let client = HostClient { tasks };
        let service = rt
            .block_on(async {
                let connect = async {
                    if tasks {
                        client
                            .serve_with_lifecycle(
                                (stdout, stdin),
                                ClientLifecycleMode::Discover {
                                    preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                                },
                            )
                            .await
                    } else {
                        client.serve((stdout, stdin)).await
                    }
                };
                tokio::time::timeout(Duration::from_secs(30), connect).await
            })
            .expect("connected within 30 s")
            .expect("connected");
        Self {
            rt,
            service: Some(service),
            child,
        }
    }

    fn service(&self) -> &RunningService<RoleClient, HostClient> {
        self.service.as_ref().expect("connected")
    }

    fn call(&self, name: &str, args: Value) -> CallToolResponse {
        let Value::Object(args) = args else {
            panic!("arguments must be an object")
        };
        let params = CallToolRequestParams::new(name.to_string()).with_arguments(args);
        self.rt
            .block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(60),
                    self.service().peer().call_tool_once(params),
                )
                .await
            })
            .expect("tools/call within 60 s")
            .expect("tools/call")
    }

    fn get(&self, task_id: &str) -> Result<DetailedTask, rmcp::ServiceError> {
        self.rt
            .block_on(self.service().get_task(GetTaskParams::new(task_id)))
            .map(|r| r.task)
    }

    /// Polls `tasks/get` until the task is terminal, as a host does.
    fn until_terminal(&self, task_id: &str) -> DetailedTask {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let t = self.get(task_id).expect("tasks/get");
            if t.status().is_terminal() {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "still {:?} after 30 s",
                t.status()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn close(mut self) {
        if let Some(s) = self.service.take() {
            let _ = self.rt.block_on(s.cancel());
        }
        let _ = self.rt.block_on(self.child.wait());
    }
}

fn handle(r: CallToolResponse) -> rmcp::model::CreateTaskResult {
    match r {
        CallToolResponse::Task(t) => t,
        other => panic!("expected a task handle, got {other:?}"),
    }
}

fn complete_text(r: &CallToolResponse) -> String {
    match r {
        CallToolResponse::Complete(r) => r
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect::<Vec<_>>()
            .join("\n"),
        other => panic!("expected a complete result, got {other:?}"),
    }
}

/// The text of a completed task's result, and its `isError`.
fn result_of(t: &DetailedTask) -> (String, bool) {
    let TaskPayload::Completed { result } = &t.payload else {
        panic!("not completed: {t:?}")
    };
    // A CallToolResult as it is, without the discriminator of the answer around it.
    assert!(result.get("resultType").is_none(), "{result:?}");
    assert!(t.task.last_updated_at >= t.task.created_at, "{t:?}");
    let text = result["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    (text, result["isError"] == true)
}

fn aside_id(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("task_id: "))
        .unwrap_or_else(|| panic!("no task_id in {text}"))
        .to_string()
}

#[test]
fn a_background_bash_gets_a_handle_whose_result_comes_through_tasks_get_only() {
    let a = Aside::new();
    let h = Host::tasks(&a, &[]);
    let created = handle(h.call(
        "bash",
        json!({"command": "sleep 0.3; echo from-the-background", "run_in_background": true}),
    ));
    let t = &created.task;
    assert_eq!(t.status, TaskStatus::Working);
    assert_eq!(t.poll_interval_ms, Some(1000));
    assert_eq!(t.ttl_ms, None, "unlimited: kept with the task's record");
    assert!(t.task_id.len() > 30, "unguessable: {}", t.task_id);
    let wire = serde_json::to_value(&created).expect("json");
    assert_eq!(wire["resultType"], "task", "{wire}");
    assert!(
        wire["ttlMs"].is_null() && wire.get("ttlMs").is_some(),
        "{wire}"
    );
    assert!(
        t.last_updated_at >= t.created_at,
        "updated before created: {wire}"
    );

    let done = h.until_terminal(&t.task_id);
    assert_eq!(done.status(), TaskStatus::Completed);
    let (text, is_error) = result_of(&done);
    assert!(!is_error, "{text}");
    // The result a foreground call would have returned: ids first, then the output.
    assert!(text.starts_with("task_id: "), "{text}");
    assert!(text.contains("succeeded (exit code 0)"), "{text}");
    assert!(text.contains("from-the-background"), "{text}");
    let id = aside_id(&text);
    assert_eq!(a.state(&id), "succeeded");
    // Polled again: the same answer.
    assert_eq!(result_of(&h.until_terminal(&t.task_id)).0, text);

    // Delivered once: no notice of it at the end of a later result.
    let later = complete_text(&h.call("bash", json!({"command": "echo later"})));
    assert!(later.contains("later"), "{later}");
    assert!(!later.contains("task-notification"), "told twice: {later}");
    // A foreground call that finishes in time is answered in full, as ever.
    assert!(later.starts_with("task_id: "), "{later}");
    h.close();
}

#[test]
fn a_foreground_call_past_its_wait_answers_with_a_handle() {
    let a = Aside::new();
    let h = Host::tasks(&a, &["--wait", "500ms"]);
    let created = handle(h.call("bash", json!({"command": "sleep 1.5; echo slow-one"})));
    let done = h.until_terminal(&created.task.task_id);
    let (text, _) = result_of(&done);
    assert!(text.contains("slow-one"), "{text}");
    h.close();
}

#[test]
fn a_failing_background_command_completes_with_is_error() {
    let a = Aside::new();
    let h = Host::tasks(&a, &[]);
    let created = handle(h.call(
        "bash",
        json!({"command": "echo broken >&2; exit 4", "run_in_background": true}),
    ));
    let done = h.until_terminal(&created.task.task_id);
    assert_eq!(done.status(), TaskStatus::Completed);
    let (text, is_error) = result_of(&done);
    assert!(is_error, "{text}");
    assert!(
        text.contains("exited with code 4") && text.contains("broken"),
        "{text}"
    );
    h.close();
}

#[test]
fn tasks_cancel_stops_the_whole_tree() {
    let a = Aside::new();
    let h = Host::tasks(&a, &[]);
    let pidfile = a.path("child.pid");
    let created = handle(h.call(
        "bash",
        json!({"command": format!("sh -c 'echo $$ > {}; exec sleep 600' & wait", pidfile.display()),
               "run_in_background": true}),
    ));
    let child = a.read_pid("child.pid");
    h.rt.block_on(
        h.service()
            .cancel_task(CancelTaskParams::new(created.task.task_id.clone())),
    )
    .expect("tasks/cancel");
    assert_all_dead(
        &[child],
        Duration::from_secs(10),
        "the cancelled task's child",
    );
    let done = h.until_terminal(&created.task.task_id);
    assert_eq!(done.status(), TaskStatus::Cancelled, "{done:?}");
    let message = done.task.status_message.clone().unwrap_or_default();
    assert!(message.contains("cancelled by the MCP client"), "{message}");
    h.close();
}

#[test]
fn an_unknown_handle_is_invalid_params() {
    let a = Aside::new();
    let h = Host::tasks(&a, &[]);
    for id in ["1-0123456789abcdef0123456789abcdef", "nothing"] {
        match h.get(id) {
            Err(rmcp::ServiceError::McpError(e)) => assert_eq!(e.code.0, -32602, "{e:?}"),
            other => panic!("tasks/get {id}: {other:?}"),
        }
    }
    h.close();
}

#[test]
fn a_client_without_the_extension_keeps_the_text_and_the_notice() {
    let a = Aside::new();
    let h = Host::plain(&a, &[]);
    // Held until the answer is in: a task that ended first would have its notice in it.
    let r = h.call(
        "bash",
        json!({"command": format!("{}; echo plain-bg", a.gate("go")), "run_in_background": true}),
    );
    let text = complete_text(&r);
    let id = aside_id(&text);
    assert!(text.contains("in the background"), "{text}");
    a.open("go");
    a.wait_end(&id);
    let later = complete_text(&h.call("bash", json!({"command": "true"})));
    assert!(
        later.contains("<task-notification>") && later.contains("plain-bg"),
        "{later}"
    );
    // tasks/* need the extension declared.
    match h.get("anything") {
        Err(rmcp::ServiceError::McpError(e)) => assert_eq!(e.code.0, -32021, "{e:?}"),
        other => panic!("tasks/get without the extension: {other:?}"),
    }
    h.close();
}

#[test]
fn a_handle_is_answered_by_a_new_server_and_after_a_daemon_restart() {
    let a = Aside::new();
    let first = Host::tasks(&a, &[]);
    let created = handle(first.call(
        "bash",
        json!({"command": &format!("{}; echo survived", a.gate("go")), "run_in_background": true}),
    ));
    let task_id = created.task.task_id.clone();
    first.close();
    // The host restarted: a new `aside mcp` process follows the same handle.
    let second = Host::tasks(&a, &[]);
    assert_eq!(
        second.get(&task_id).expect("tasks/get").status(),
        TaskStatus::Working
    );
    a.open("go");
    let done = second.until_terminal(&task_id);
    assert!(result_of(&done).0.contains("survived"));
    second.close();
    // The daemon restarted too: the handle is in its store.
    a.ok(&["daemon", "stop"]);
    let third = Host::tasks(&a, &[]);
    let again = third.until_terminal(&task_id);
    assert!(result_of(&again).0.contains("survived"));
    third.close();
}

#[test]
fn a_cancel_after_the_call_moved_its_task_to_the_background_leaves_it_running() {
    let a = Aside::new();
    let h = Host::plain(&a, &["--wait", "300ms"]);
    let params = CallToolRequestParams::new("bash").with_arguments(
        json!({"command": format!("{}; echo kept", a.gate("go"))})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    let request =
        h.rt.block_on(h.service().peer().send_cancellable_request(
            ClientRequest::CallToolRequest(CallToolRequest::new(params)),
            PeerRequestOptions::no_options(),
        ))
        .expect("send");
    // The host's own timeout fires after the call moved the command to the background.
    std::thread::sleep(Duration::from_millis(1500));
    h.rt.block_on(request.cancel(Some("host timeout".into())))
        .expect("cancel");
    let live = a.wait_live(1);
    let id = live[0]["id"].as_str().expect("id").to_string();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        a.state(&id),
        "running",
        "the cancel stopped work already in the background"
    );
    a.open("go");
    assert_eq!(a.wait_end(&id)["state"], "succeeded");
    h.close();
}

#[test]
fn a_background_subagent_gets_a_handle_whose_result_is_its_answer() {
    use crate::model_server::ModelServer;
    let a = Aside::new();
    let gate = a.gate("go");
    let server = ModelServer::bash_then_answer(gate, "the subagent's final answer");
    a.write_config(&server.config());
    let h = Host::tasks(&a, &[]);
    let created = handle(h.call(
        "task",
        json!({"prompt": "wait for the gate", "run_in_background": true}),
    ));
    // While it works, the status line says how far it is.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut message = String::new();
    while !message.contains("last bash") {
        let t = h.get(&created.task.task_id).expect("tasks/get");
        assert_eq!(t.status(), TaskStatus::Working, "{t:?}");
        message = t.task.status_message.clone().unwrap_or_default();
        assert!(Instant::now() < deadline, "no progress shown: {message}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        message.contains("running (turn 1, 1 tools, last bash"),
        "{message}"
    );
    a.open("go");
    let done = h.until_terminal(&created.task.task_id);
    let (text, is_error) = result_of(&done);
    assert!(!is_error, "{text}");
    assert!(text.contains("session_id: s"), "{text}");
    assert!(text.contains("the subagent's final answer"), "{text}");
    h.close();
}
