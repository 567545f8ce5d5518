//! Agent tasks against the scripted model server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::model_server::{self as ms, Gate, ModelServer, Reply, Seen};
use crate::support::*;

fn aside_with(server: &ModelServer, extra: &str) -> Aside {
    Aside::with_config(&format!("{}{extra}", server.config()))
}

/// The requests of the conversation whose task prompt is `prompt`, in order.
fn requests_of(server: &ModelServer, prompt: &str) -> Vec<Seen> {
    server
        .requests()
        .into_iter()
        .filter(|s| ms::prompt(&s.body) == prompt)
        .collect()
}

/// How many `<task-notification>` blocks the whole conversation of a request holds.
fn notifications(req: &Value) -> usize {
    ms::messages(req)
        .iter()
        .filter_map(|m| m["content"].as_str())
        .map(|c| c.matches("<task-notification>").count())
        .sum()
}

/// The content of a message, or "".
fn content(m: &Value) -> &str {
    m["content"].as_str().unwrap_or_default()
}

/// Waits until the server has seen `n` requests of the conversation `prompt`.
fn wait_requests(server: &ModelServer, prompt: &str, n: usize) {
    let found = eventually(SOON, || requests_of(server, prompt).len() >= n);
    assert!(
        found,
        "the model never got {n} requests for {prompt:?}: {:?}",
        requests_of(server, prompt)
            .iter()
            .map(|s| &s.body)
            .collect::<Vec<_>>()
    );
}

/// A gate a server script waits on, answering this text once the test opens it.
fn gated(gate: &Gate, text: &str) -> Reply {
    if gate.wait(Duration::from_secs(60)) {
        Reply::text(text)
    } else {
        Reply::text("the test never opened the gate")
    }
}

/// A reply script that answers each request with the next of `replies` (the last repeats).
fn in_turn(replies: Vec<Reply>) -> impl Fn(&Value) -> Reply + Send + Sync + 'static {
    let n = AtomicUsize::new(0);
    move |_| {
        let i = n.fetch_add(1, Ordering::SeqCst).min(replies.len() - 1);
        replies[i].clone()
    }
}

// 1. A foreground `task` call gives the child's answer as the tool result.

#[test]
fn a_foreground_task_call_returns_the_childs_answer() {
    let server = ModelServer::start(|req| {
        let prompt = ms::prompt(req);
        if prompt == "parent job" {
            match ms::tool_results(req).last() {
                None => Reply::tool(
                    "task",
                    json!({"subagent_type": "general", "prompt": "child job", "description": "child"}),
                ),
                Some(r) => Reply::Text(format!("parent saw: {r}")),
            }
        } else {
            Reply::text("the child's answer is 42")
        }
    });
    let a = aside_with(&server, "");
    let out = a.run(&["exec", "parent job"]);
    assert_eq!(out.code, 0, "{out:?}");
    let text = out.text();
    assert!(text.contains("parent saw: task_id: 2"), "{text}");
    assert!(text.contains("session_id: s2"), "{text}");
    assert!(text.contains("the child's answer is 42"), "{text}");
    let child = a.info("2");
    assert_eq!(child["kind"], "agent");
    assert_eq!(child["agent"], "general");
    assert_eq!(child["prompt"], "child job");
    assert_eq!(child["session_id"], "s2");
    assert_eq!(child["depth"], 1);
    assert_eq!(child["state"], "succeeded");
    assert_eq!(child["answer"], "the child's answer is 42");
    assert_eq!(child["owner"], "session:s1");
    let parent = a.info("1");
    assert_eq!(parent["depth"], 0);
    assert_eq!(parent["session_id"], "s1");
    let p = &parent["progress"];
    assert_eq!(p["turns"], 2, "{parent}");
    assert_eq!(p["tool_calls"], 1, "{parent}");
    assert_eq!(p["last_tool"], "task", "{parent}");
    assert_eq!(p["model"], "scripted", "{parent}");
    assert!(p["tokens"].as_u64().unwrap_or(0) >= 10, "{parent}");
    // A foreground child's result was the tool result: no notification repeats it.
    for s in requests_of(&server, "parent job") {
        assert_eq!(notifications(&s.body), 0, "{}", s.body);
    }
}

// 2. A background `task` call returns at once; its notification arrives once, at a step
// boundary.

#[test]
fn a_background_task_notifies_once_at_the_next_step_boundary() {
    let child_go = Gate::new();
    let server = ModelServer::start({
        let child_go = child_go.clone();
        move |req| {
            if ms::prompt(req) == "child job" {
                return gated(&child_go, "the child's answer is 42");
            }
            match ms::tool_results(req).len() {
                0 => Reply::tool(
                    "task",
                    json!({"prompt": "child job", "description": "child", "run_in_background": true}),
                ),
                // Busy with something else while the child works.
                1 => Reply::tool(
                    "bash",
                    json!({"command": "while [ ! -e child-done ]; do sleep 0.05; done"}),
                ),
                // One more step after the notification, to see it is not given again.
                2 => Reply::tool("bash", json!({"command": "true"})),
                _ => Reply::text("parent done"),
            }
        }
    });
    let a = aside_with(&server, "");
    let exec = a.spawn(&["exec", "parent job"]);
    // The call returned while the child was still waiting on the model.
    wait_requests(&server, "parent job", 2);
    let parent = requests_of(&server, "parent job");
    let started = ms::tool_results(&parent[1].body);
    assert_eq!(started.len(), 1);
    assert!(started[0].contains("task_id: 2"), "{}", started[0]);
    assert!(started[0].contains("session_id: s2"), "{}", started[0]);
    assert!(
        started[0].contains("running") || started[0].contains("queued"),
        "{}",
        started[0]
    );
    assert!(!started[0].contains("succeeded"), "{}", started[0]);
    // The child ends while the parent's bash call runs: nothing is injected mid-call.
    child_go.open();
    let child = a.wait_end("2");
    assert_eq!(child["state"], "succeeded", "{child}");
    assert_eq!(child["owner"], "session:s1", "{child}");
    std::fs::write(a.path("child-done"), b"").expect("open the bash gate");
    let out = exec.finish();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.text().contains("parent done"), "{out:?}");

    let parent = requests_of(&server, "parent job");
    assert_eq!(parent.len(), 4, "{parent:?}");
    assert_eq!(notifications(&parent[0].body), 0);
    assert_eq!(notifications(&parent[1].body), 0);
    // The request after the bash call: its result, then the one notification.
    let msgs = ms::messages(&parent[2].body);
    let n = msgs.len();
    assert_eq!(msgs[n - 2]["role"], "tool", "{msgs:?}");
    assert_eq!(msgs[n - 1]["role"], "user", "{msgs:?}");
    let note = content(&msgs[n - 1]);
    assert_eq!(note.matches("<task-notification>").count(), 1, "{note}");
    assert!(note.contains("task 2 (agent general)"), "{note}");
    assert!(note.contains("succeeded"), "{note}");
    assert!(note.contains("session_id: s2"), "{note}");
    assert!(note.contains("the child's answer is 42"), "{note}");
    assert_eq!(notifications(&parent[2].body), 1);
    // Later requests carry it in the history, but no new one.
    let last = &parent[3].body;
    assert_eq!(notifications(last), 1, "{last}");
    assert_eq!(ms::last(last)["role"], "tool", "{last}");
    let rec = a.info("1");
    assert_eq!(rec["answer"], "parent done");
    assert_eq!(rec["progress"]["tool_calls"], 3, "{rec}");
    assert_eq!(rec["progress"]["last_tool"], "bash", "{rec}");
}

#[test]
fn a_notification_after_the_turn_ended_starts_a_new_turn() {
    let child_go = Gate::new();
    let server = ModelServer::start({
        let child_go = child_go.clone();
        move |req| {
            if ms::prompt(req) == "child job" {
                return gated(&child_go, "the child's answer is 42");
            }
            let last = ms::last(req);
            if content(&last).contains("<task-notification>") {
                return Reply::Text(format!(
                    "parent got: {}",
                    content(&last).contains("the child's answer is 42")
                ));
            }
            match ms::tool_results(req).len() {
                0 => Reply::tool(
                    "task",
                    json!({"prompt": "child job", "run_in_background": true}),
                ),
                _ => Reply::text("waiting for the child"),
            }
        }
    });
    let a = aside_with(&server, "");
    let exec = a.spawn(&["exec", "parent job"]);
    // The parent's turn has ended with text while the child still waits on the model.
    wait_requests(&server, "parent job", 2);
    exec.wait_stdout(b"waiting for the child");
    assert_eq!(a.state("1"), "running");
    child_go.open();
    let out = exec.finish();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.text().contains("parent got: true"),
        "{out:?} {} {} {:?}",
        a.info("1"),
        a.info("2"),
        server
            .requests()
            .iter()
            .map(|s| &s.body["messages"])
            .collect::<Vec<_>>()
    );
    let rec = a.info("1");
    assert_eq!(rec["state"], "succeeded");
    assert_eq!(rec["answer"], "parent got: true");
    assert_eq!(rec["progress"]["turns"], 3, "{rec}");

    let parent = requests_of(&server, "parent job");
    assert_eq!(parent.len(), 3, "{parent:?}");
    let msgs = ms::messages(&parent[2].body);
    let n = msgs.len();
    assert_eq!(msgs[n - 2]["role"], "assistant", "{msgs:?}");
    assert_eq!(content(&msgs[n - 2]), "waiting for the child", "{msgs:?}");
    assert_eq!(msgs[n - 1]["role"], "user", "{msgs:?}");
    assert_eq!(notifications(&parent[2].body), 1, "{msgs:?}");
}

// 3. Several task calls in one message run at once.

#[test]
fn two_task_calls_in_one_message_overlap() {
    const SLOW: Duration = Duration::from_millis(1500);
    let server = ModelServer::start(|req| match ms::prompt(req).as_str() {
        "parent job" => {
            if ms::tool_results(req).is_empty() {
                Reply::Tools(vec![
                    (
                        "task".into(),
                        json!({"prompt": "child A", "description": "a"}).to_string(),
                    ),
                    (
                        "task".into(),
                        json!({"prompt": "child B", "description": "b"}).to_string(),
                    ),
                ])
            } else {
                Reply::Text(ms::tool_results(req).join(" | "))
            }
        }
        "child A" => Reply::Slow(SLOW, "answer A".into()),
        _ => Reply::Slow(SLOW, "answer B".into()),
    });
    let a = aside_with(&server, "");
    let out = a.run(&["exec", "parent job"]);
    assert_eq!(out.code, 0, "{out:?}");
    let answer = a.info("1")["answer"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (first, second) = answer.split_once(" | ").expect("two tool results");
    // The results are in the order of the calls.
    assert!(first.contains("answer A"), "{answer}");
    assert!(second.contains("answer B"), "{answer}");
    let a_req = requests_of(&server, "child A");
    let b_req = requests_of(&server, "child B");
    assert_eq!((a_req.len(), b_req.len()), (1, 1));
    let (early, late) = if a_req[0].at <= b_req[0].at {
        (a_req[0].at, b_req[0].at)
    } else {
        (b_req[0].at, a_req[0].at)
    };
    // Both children asked the model before either got its answer.
    assert!(
        late < early + SLOW,
        "the second child asked {:?} after the first",
        late - early
    );
}

// 4. Slots and timeouts hold for agents.

#[test]
fn agents_beyond_max_running_wait_queued() {
    let go = Gate::new();
    let server = ModelServer::start({
        let go = go.clone();
        move |req| {
            let p = ms::prompt(req);
            if p == "one" {
                gated(&go, "one done")
            } else {
                Reply::Text(format!("{p} done"))
            }
        }
    });
    let a = aside_with(&server, "max_running = 1\n");
    let one = a.ok(&["agent", "general", "one", "--bg"]).text();
    assert_eq!(one.trim(), "1");
    a.wait_state("1", "running");
    wait_requests(&server, "one", 1);
    let two = a.ok(&["agent", "general", "two", "--bg"]).text();
    assert_eq!(two.trim(), "2");
    let rec = a.wait_state("2", "queued");
    assert_eq!(rec["group"], "agents", "{rec}");
    // It stays queued while the first holds the only slot, and never reaches the model.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(a.state("2"), "queued");
    assert!(requests_of(&server, "two").is_empty());
    go.open();
    assert_eq!(a.wait_end("1")["state"], "succeeded");
    let two = a.wait_end("2");
    assert_eq!(two["state"], "succeeded", "{two}");
    assert_eq!(two["answer"], "two done", "{two}");
    let order: Vec<String> = server
        .requests()
        .iter()
        .map(|s| ms::prompt(&s.body))
        .collect();
    assert_eq!(order, ["one", "two"]);
}

#[test]
fn an_agent_past_its_timeout_ends_timed_out() {
    let server = ModelServer::start(|_| Reply::Hang(Duration::from_secs(60)));
    let a = aside_with(&server, "");
    let t0 = Instant::now();
    let out = a.run(&["agent", "general", "hang", "--timeout", "1s"]);
    assert_eq!(out.code, 124, "{out:?}");
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    let rec = a.info("1");
    assert_eq!(rec["state"], "timed_out", "{rec}");
    assert_eq!(rec["limit_ms"], 1000, "{rec}");
}

// 5. A stop reaches the child's running bash, with its reason.

#[test]
fn stopping_a_child_agent_stops_its_bash_with_the_reason() {
    let server = ModelServer::start(|req| match ms::prompt(req).as_str() {
        "parent job" => match ms::tool_results(req).last() {
            None => Reply::tool("task", json!({"prompt": "child job"})),
            Some(r) => Reply::Text(format!("parent saw: {r}")),
        },
        _ => match ms::tool_results(req).last() {
            None => Reply::tool(
                "bash",
                json!({"command": "echo $$ > sleep.pid; exec sleep 600"}),
            ),
            Some(r) => Reply::Text(format!("child saw: {r}")),
        },
    });
    let a = aside_with(&server, "");
    let exec = a.spawn(&["exec", "parent job"]);
    let pid = a.read_pid("sleep.pid");
    let mut bash = Value::Null;
    let found = eventually(SOON, || {
        bash = a
            .list_all()
            .into_iter()
            .find(|t| t["kind"] == "shell" && t["owner"] == "session:s2")
            .unwrap_or(Value::Null);
        bash["state"] == "running"
    });
    assert!(found, "no running bash task of the child: {bash}");
    let bash_id = bash["id"].as_str().unwrap_or_default().to_string();
    assert!(!is_dead(pid));

    let out = a.ok(&["stop", "2", "--reason", "because", "--json"]);
    let stopped = out.json();
    let child = stopped
        .as_array()
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or(stopped);
    assert_eq!(child["state"], "cancelled", "{child}");
    assert_eq!(child["reason"]["message"], "because", "{child}");

    let bash = a.wait_end(&bash_id);
    assert_eq!(bash["state"], "cancelled", "{bash}");
    assert_eq!(bash["reason"]["cause"], "user_stop", "{bash}");
    assert_eq!(bash["reason"]["message"], "because", "{bash}");
    assert_all_dead(&[pid], SOON, "the child's sleep");

    // The parent hears how its child ended and finishes.
    let out = exec.finish();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.text().contains("parent saw: task_id: 2"), "{out:?}");
    assert!(out.text().contains("cancelled"), "{out:?}");
}

// 6. A session resumes with its whole conversation.

#[test]
fn a_session_resumes_with_the_earlier_messages() {
    let server = ModelServer::start(|req| {
        let last = content(&ms::last(req)).to_string();
        Reply::Text(format!("answer to {last}"))
    });
    let a = aside_with(&server, "");
    let out = a.ok(&["agent", "general", "first"]);
    assert!(out.text().contains("answer to first"), "{out:?}");
    assert_eq!(a.info("1")["session_id"], "s1");
    let out = a.ok(&["agent", "general", "second", "--session", "s1"]);
    assert!(out.text().contains("answer to second"), "{out:?}");
    let rec = a.info("2");
    assert_eq!(rec["session_id"], "s1", "{rec}");
    assert_eq!(rec["answer"], "answer to second", "{rec}");

    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let first = ms::messages(&reqs[0].body);
    let second = ms::messages(&reqs[1].body);
    let roles: Vec<&str> = second
        .iter()
        .map(|m| m["role"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"], "{second:?}");
    assert_eq!(second[..2], first[..], "{second:?}");
    assert_eq!(content(&second[2]), "answer to first");
    assert_eq!(content(&second[3]), "second");

    // An unknown session is refused, naming it, and creates no task (it is not started
    // afresh, nor started to fail).
    let out = a.run(&["agent", "general", "third", "--session", "s99"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("s99"), "{out:?}");
    assert_eq!(a.list_all().len(), 2);
    assert_eq!(server.requests().len(), 2);
}

// 7. The depth limit: a subagent is not offered `task`.

#[test]
fn subagents_at_the_depth_limit_are_not_offered_task() {
    let server = ModelServer::start(|req| match ms::prompt(req).as_str() {
        "parent job" => match ms::tool_results(req).last() {
            None => Reply::tool("task", json!({"prompt": "child job"})),
            Some(r) => Reply::Text(r.clone()),
        },
        // A child that tries anyway gets a tool error.
        _ => match ms::tool_results(req).last() {
            None => Reply::tool("task", json!({"prompt": "grandchild job"})),
            Some(r) => Reply::Text(format!("child saw: {r}")),
        },
    });
    let a = aside_with(&server, "");
    let out = a.run(&["exec", "parent job"]);
    assert_eq!(out.code, 0, "{out:?}");
    let parent = requests_of(&server, "parent job");
    let child = requests_of(&server, "child job");
    assert!(!parent.is_empty() && !child.is_empty());
    let top = ms::tool_names(&parent[0].body);
    assert!(top.contains(&"task".to_string()), "{top:?}");
    assert!(top.contains(&"bash".to_string()), "{top:?}");
    let sub = ms::tool_names(&child[0].body);
    assert!(!sub.contains(&"task".to_string()), "{sub:?}");
    assert!(sub.contains(&"bash".to_string()), "{sub:?}");
    assert!(sub.contains(&"task_output".to_string()), "{sub:?}");
    assert!(requests_of(&server, "grandchild job").is_empty());
    let results = ms::tool_results(&child[1].body);
    assert!(
        results[0].contains("there is no tool named \"task\""),
        "{results:?}"
    );
    assert_eq!(a.list_all().len(), 2, "no grandchild task was started");
}

// 8. The stall watchdog.

#[test]
fn a_stalled_agent_is_cancelled_as_stalled() {
    let server = ModelServer::start(|_| Reply::Hang(Duration::from_secs(60)));
    let a = aside_with(&server, "stall = \"1s\"\n");
    let t0 = Instant::now();
    let out = a.run(&["agent", "general", "hang"]);
    assert_eq!(out.code, 130, "{out:?}");
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    let rec = a.info("1");
    assert_eq!(rec["state"], "cancelled", "{rec}");
    assert_eq!(rec["reason"]["cause"], "stalled", "{rec}");
    assert!(
        rec["reason"]["idle_ms"].as_u64().unwrap_or(0) >= 1000,
        "{rec}"
    );
}

// 9. An external-command agent.

#[test]
fn an_external_command_agent_answers_with_its_output() {
    let server = ModelServer::start(|_| Reply::text("the model should not be asked"));
    let a = aside_with(&server, "");
    let dir = a.path(".aside/agents");
    std::fs::create_dir_all(&dir).expect("agents dir");
    std::fs::write(
        dir.join("echoer.md"),
        "---\ndescription: echoes\ncommand: [\"sh\", \"-c\", \"echo external: $0\"]\n---\n",
    )
    .expect("write echoer.md");
    let out = a.run(&["agent", "echoer", "hello"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.text().contains("external: hello"), "{out:?}");
    let rec = a.info("1");
    assert_eq!(rec["kind"], "agent");
    assert_eq!(rec["agent"], "echoer");
    assert_eq!(rec["state"], "succeeded", "{rec}");
    assert!(
        rec["answer"]
            .as_str()
            .unwrap_or_default()
            .contains("external: hello"),
        "{rec}"
    );
    assert!(server.requests().is_empty());
}

// 10. Bad model output.

/// Runs `aside agent general PROMPT` to its end; returns the record.
fn run_agent(a: &Aside, prompt: &str) -> Value {
    let out = a.run(&["agent", "general", prompt]);
    let rec = a.info("1");
    let code = if rec["state"] == "succeeded" { 0 } else { 1 };
    assert_eq!(out.code, code, "{out:?} {rec}");
    rec
}

fn error_of(rec: &Value) -> String {
    assert_eq!(rec["state"], "failed", "{rec}");
    assert_eq!(rec["failure"], "agent", "{rec}");
    rec["error"].as_str().unwrap_or_default().to_string()
}

#[test]
fn arguments_that_are_not_json_come_back_as_a_tool_error() {
    let server = ModelServer::start(|req| match ms::tool_results(req).last() {
        None => Reply::Tools(vec![("bash".into(), "{\"command\": \"echo hi".into())]),
        Some(r) => Reply::Text(format!("saw: {r}")),
    });
    let a = aside_with(&server, "");
    let rec = run_agent(&a, "go");
    assert_eq!(rec["state"], "succeeded", "{rec}");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let results = ms::tool_results(&reqs[1].body);
    assert_eq!(results.len(), 1);
    assert!(results[0].contains("not valid JSON"), "{results:?}");
    // Nothing ran.
    assert_eq!(a.list_all().len(), 1);
}

#[test]
fn an_unknown_tool_comes_back_as_a_tool_error_naming_it() {
    let server = ModelServer::start(|req| match ms::tool_results(req).last() {
        None => Reply::tool("frobnicate", json!({"x": 1})),
        Some(r) => Reply::Text(format!("saw: {r}")),
    });
    let a = aside_with(&server, "");
    let rec = run_agent(&a, "go");
    assert_eq!(rec["state"], "succeeded", "{rec}");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let results = ms::tool_results(&reqs[1].body);
    assert!(results[0].contains("frobnicate"), "{results:?}");
    assert!(
        results[0].contains("bash"),
        "the tools are listed: {results:?}"
    );
}

#[test]
fn empty_choices_fail_the_task_clearly() {
    let server = ModelServer::start(|_| Reply::EmptyChoices);
    let a = aside_with(&server, "");
    let rec = run_agent(&a, "go");
    let err = error_of(&rec);
    assert!(err.contains("no choices"), "{err}");
}

#[test]
fn a_cut_off_stream_is_retried() {
    let server = ModelServer::start(in_turn(vec![
        Reply::CutOff("half an ans".into()),
        Reply::text("a whole answer"),
    ]));
    let a = aside_with(&server, "");
    let rec = run_agent(&a, "go");
    assert_eq!(rec["state"], "succeeded", "{rec}");
    assert_eq!(rec["answer"], "a whole answer", "{rec}");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_stream_cut_off_every_time_fails_saying_so() {
    let server = ModelServer::start(|_| Reply::CutOff("half an ans".into()));
    let a = aside_with(&server, "");
    let rec = run_agent(&a, "go");
    let err = error_of(&rec);
    assert!(err.contains("cut off"), "{err}");
    // retries = 2: three attempts in all.
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn a_server_error_is_retried() {
    let server = ModelServer::start(in_turn(vec![
        Reply::Status(500, "{\"error\":{\"message\":\"overloaded\"}}".into(), None),
        Reply::text("fine now"),
    ]));
    let a = aside_with(&server, "");
    let rec = run_agent(&a, "go");
    assert_eq!(rec["state"], "succeeded", "{rec}");
    assert_eq!(rec["answer"], "fine now", "{rec}");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_401_fails_at_once_naming_the_api_key() {
    let server = ModelServer::start(|_| {
        Reply::Status(401, "{\"error\":{\"message\":\"bad key\"}}".into(), None)
    });
    let a = aside_with(&server, "");
    let rec = run_agent(&a, "go");
    let err = error_of(&rec);
    assert!(err.contains("API key"), "{err}");
    assert!(err.contains("bad key"), "{err}");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_429_waits_for_retry_after_then_succeeds() {
    let server = ModelServer::start(in_turn(vec![
        Reply::Status(
            429,
            "{\"error\":{\"message\":\"slow down\"}}".into(),
            Some(1),
        ),
        Reply::text("fine now"),
    ]));
    let a = aside_with(&server, "");
    let rec = run_agent(&a, "go");
    assert_eq!(rec["state"], "succeeded", "{rec}");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at - reqs[0].at;
    // Retry-After (1 s), not the first backoff (0.5 s).
    assert!(gap >= Duration::from_millis(950), "{gap:?}");
}

// 11. `aside agents`.

#[test]
fn agents_lists_builtins_and_project_agents_and_warns_of_broken_files() {
    let a = Aside::new();
    let project = a.path("proj");
    let dir = project.join(".claude/agents");
    std::fs::create_dir_all(&dir).expect("agents dir");
    std::fs::write(
        dir.join("x.md"),
        "---\ndescription: project agent x\ntools: Read, Grep\n---\nYou are x.",
    )
    .expect("write x.md");
    let broken = dir.join("broken.md");
    std::fs::write(&broken, "---\nname: [unclosed\n---\nbody").expect("write broken.md");
    let mut cmd = a.cmd(&["agents", "--json"]);
    cmd.current_dir(&project);
    let out = a.spawn_cmd(cmd, &["agents", "--json"]).finish();
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_eq!(v["project"], project.display().to_string(), "{v}");
    let agents = v["agents"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = agents.iter().filter_map(|d| d["name"].as_str()).collect();
    assert_eq!(names, ["explore", "general", "x"], "{v}");
    let x = &agents[2];
    assert_eq!(x["description"], "project agent x");
    assert_eq!(x["tools"], json!(["read", "grep"]), "{x}");
    let warnings = v["warnings"].as_array().cloned().unwrap_or_default();
    assert_eq!(warnings.len(), 1, "{v}");
    assert_eq!(warnings[0]["path"], broken.display().to_string(), "{v}");
    assert!(
        warnings[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("YAML"),
        "{v}"
    );

    // The text form warns on stderr, with the path.
    let mut cmd = a.cmd(&["agents"]);
    cmd.current_dir(&project);
    let out = a.spawn_cmd(cmd, &["agents"]).finish();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.text().contains("project agent x"), "{out:?}");
    assert!(
        out.stderr.contains(&broken.display().to_string()),
        "{out:?}"
    );
}

/// Writes `text` to `dir/file`, making `dir` first; returns the file's path.
fn write_definition(dir: &std::path::Path, file: &str, text: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).expect("agents dir");
    let path = dir.join(file);
    std::fs::write(&path, text).expect("write the definition");
    path
}

#[test]
fn gemini_and_codex_agents_are_listed_with_their_warnings_and_run() {
    let server = ModelServer::start(|_| Reply::text("reviewed: fine"));
    let a = aside_with(&server, "");
    // Only Gemini CLI's and Codex's directories mark this project's root.
    let project = a.path("proj");
    let x = write_definition(
        &project.join(".gemini/agents"),
        "x.md",
        "---\nname: x\ndescription: gemini agent x\nkind: local\ntools:\n  - read_file\n  \
         - run_shell_command\n  - web_fetch\ntemperature: 0.2\nmax_turns: 5\n---\nYou are x.\n",
    );
    let y = write_definition(
        &project.join(".codex/agents"),
        "y.toml",
        "name = \"y\"\ndescription = \"codex agent y\"\nsandbox_mode = \"read-only\"\n\
         model_reasoning_effort = \"high\"\n\
         developer_instructions = \"\"\"\nYou are y, a careful reviewer.\n\"\"\"\n",
    );
    // A user's Codex agent, under $HOME.
    write_definition(
        &a.path(".codex/agents"),
        "z.toml",
        "name = \"z\"\ndescription = \"user codex agent z\"\ndeveloper_instructions = \"Z.\"\n",
    );

    let mut cmd = a.cmd(&["agents", "--json"]);
    cmd.current_dir(&project);
    let out = a.spawn_cmd(cmd, &["agents", "--json"]).finish();
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_eq!(v["project"], project.display().to_string(), "{v}");
    let agents = v["agents"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = agents.iter().filter_map(|d| d["name"].as_str()).collect();
    assert_eq!(names, ["explore", "general", "x", "y", "z"], "{v}");
    let gx = &agents[2];
    assert_eq!(gx["description"], "gemini agent x", "{gx}");
    assert_eq!(gx["tools"], json!(["read", "bash"]), "{gx}");
    assert_eq!(gx["max_turns"], 5, "{gx}");
    assert_eq!(gx["prompt"], "You are x.", "{gx}");
    let cy = &agents[3];
    assert_eq!(cy["description"], "codex agent y", "{cy}");
    assert_eq!(cy["tools"], Value::Null, "{cy}");
    assert_eq!(
        cy["disallowed_tools"],
        json!(["bash", "write", "edit", "task", "task_input", "task_stop"]),
        "{cy}"
    );
    assert_eq!(cy["prompt"], "You are y, a careful reviewer.", "{cy}");
    assert_eq!(agents[4]["description"], "user codex agent z", "{v}");
    let warnings: Vec<(String, String)> = v["warnings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|w| {
            (
                w["path"].as_str().unwrap_or_default().to_string(),
                w["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let (x, y) = (x.display().to_string(), y.display().to_string());
    assert_eq!(
        warnings,
        [
            (
                x.clone(),
                "agent \"x\": ignoring tools aside does not have: web_fetch".to_string()
            ),
            (
                x.clone(),
                "agent \"x\": ignoring `temperature`, which aside does not honour".to_string()
            ),
            (
                y.clone(),
                "agent \"y\": ignoring `model_reasoning_effort`, which aside does not honour"
                    .to_string()
            ),
        ],
        "{v}"
    );

    // The text form lists them and warns on stderr, as for every format.
    let mut cmd = a.cmd(&["agents"]);
    cmd.current_dir(&project);
    let out = a.spawn_cmd(cmd, &["agents"]).finish();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.text().contains("codex agent y"), "{out:?}");
    assert!(
        out.text()
            .contains("tools: read, glob, grep, task_output, task_list; from"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains(&format!(
            "warning: {x}: agent \"x\": ignoring `temperature`, which aside does not honour"
        )),
        "{out:?}"
    );

    // The Codex agent runs with its instructions as the system prompt and only the tools
    // its read-only sandbox leaves.
    let mut cmd = a.cmd(&["agent", "y", "review the parser"]);
    cmd.current_dir(&project);
    let out = a.spawn_cmd(cmd, &["agent"]).finish();
    assert_eq!(out.code, 0, "{out:?}");
    let rec = a.info("1");
    assert_eq!(rec["agent"], "y", "{rec}");
    assert_eq!(rec["state"], "succeeded", "{rec}");
    assert_eq!(rec["answer"], "reviewed: fine", "{rec}");
    let reqs = requests_of(&server, "review the parser");
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let system = ms::messages(&reqs[0].body)
        .into_iter()
        .find(|m| m["role"] == "system")
        .unwrap_or_default();
    assert!(
        content(&system).starts_with("You are y, a careful reviewer."),
        "{system}"
    );
    assert_eq!(
        ms::tool_names(&reqs[0].body),
        ["read", "glob", "grep", "task_output", "task_list"]
    );
}

// 12. `aside exec --json`.

#[test]
fn exec_json_prints_lines_ending_with_the_result() {
    let server = ModelServer::start(|req| match ms::tool_results(req).last() {
        None => Reply::tool("bash", json!({"command": "echo from-bash"})),
        Some(_) => Reply::text("all done"),
    });
    let a = aside_with(&server, "");
    let out = a.run(&["exec", "--json", "go"]);
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<Value> = out
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect();
    assert_eq!(lines[0]["type"], "started", "{lines:?}");
    assert_eq!(lines[0]["task_id"], "1", "{lines:?}");
    assert_eq!(lines[0]["session_id"], "s1", "{lines:?}");
    let last = lines.last().expect("lines");
    assert_eq!(last["type"], "result", "{lines:?}");
    assert_eq!(last["task"]["state"], "succeeded", "{last}");
    assert_eq!(last["task"]["answer"], "all done", "{last}");
    assert_eq!(
        lines.iter().filter(|l| l["type"] == "result").count(),
        1,
        "{lines:?}"
    );
    let text: String = lines
        .iter()
        .filter(|l| l["type"] == "output")
        .filter_map(|l| l["text"].as_str())
        .collect();
    assert!(text.contains("all done"), "{lines:?}");
    assert!(lines.iter().any(|l| l["type"] == "progress"), "{lines:?}");
}

#[test]
fn a_broken_file_warns_once_when_the_project_is_the_home_directory() {
    let a = Aside::new();
    let dir = a.path(".claude/agents");
    std::fs::create_dir_all(&dir).expect("agents dir");
    std::fs::write(dir.join("broken.md"), "---\nname: [unclosed\n---\nbody").expect("write");
    let v = a.ok(&["agents", "--json"]).json();
    assert_eq!(v["project"], a.home.display().to_string(), "{v}");
    let warnings = v["warnings"].as_array().cloned().unwrap_or_default();
    assert_eq!(warnings.len(), 1, "{v}");
}

#[test]
fn logs_of_a_session_id_print_its_transcript_as_json_lines() {
    let server = ModelServer::start(|_| Reply::text("transcribed answer"));
    let a = aside_with(&server, "");
    a.ok(&["exec", "remember this prompt"]);
    let out = a.ok(&["logs", "s1"]);
    let lines: Vec<serde_json::Value> = out
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let roles: Vec<&str> = lines.iter().filter_map(|m| m["role"].as_str()).collect();
    assert_eq!(roles, ["system", "user", "assistant"], "{lines:?}");
    assert_eq!(lines[1]["content"], "remember this prompt");
    assert_eq!(lines[2]["content"], "transcribed answer");
    let missing = a.run(&["logs", "s99"]);
    assert_eq!(missing.code, 125);
    assert!(
        missing.stderr.contains("no conversation s99"),
        "{:?}",
        missing.stderr
    );
}

// Fixes from review.

#[test]
fn tool_waits_do_not_count_as_stalls() {
    let server = ModelServer::start(|req| {
        if ms::tool_results(req).is_empty() {
            Reply::tool("bash", json!({"command": "sleep 2; echo rested"}))
        } else {
            Reply::text("done after the wait")
        }
    });
    let a = aside_with(&server, "stall = \"1s\"\n");
    let out = a.run(&["agent", "general", "wait a little"]);
    assert_eq!(out.code, 0, "{out:?}");
    let rec = a.info("1");
    assert_eq!(rec["state"], "succeeded", "{rec}");
    assert_eq!(rec["answer"], "done after the wait");
}

#[test]
fn stopping_an_external_agent_kills_its_command() {
    let server = ModelServer::start(|_| Reply::text("unused"));
    let a = aside_with(&server, "");
    let dir = a.path(".aside/agents");
    std::fs::create_dir_all(&dir).expect("agents dir");
    let pidfile = a.path("ext.pid");
    std::fs::write(
        dir.join("sleeper.md"),
        format!(
            "---\ndescription: sleeps\ncommand: [\"sh\", \"-c\", \"echo $$ > {}; exec sleep 600\"]\n---\n",
            pidfile.display()
        ),
    )
    .expect("write sleeper.md");
    // Several rounds: a race between the stop and the runner would show in some.
    for round in 0..3 {
        let _ = std::fs::remove_file(&pidfile);
        let id = a
            .ok(&["agent", "sleeper", "go", "--bg"])
            .text()
            .trim()
            .to_string();
        let pid = a.read_pid("ext.pid");
        a.ok(&["stop", &id]);
        assert_all_dead(&[pid], Duration::from_secs(10), &format!("round {round}"));
        assert_eq!(a.state(&id), "cancelled");
    }
}

#[test]
fn a_session_stopped_during_a_tool_call_resumes() {
    let server = ModelServer::start(|req| {
        if ms::prompt(req) == "first" && ms::tool_results(req).is_empty() {
            Reply::tool("bash", json!({"command": "sleep 600"}))
        } else {
            Reply::text("resumed fine")
        }
    });
    let a = aside_with(&server, "");
    let id = a
        .ok(&["agent", "general", "first", "--bg"])
        .text()
        .trim()
        .to_string();
    assert!(eventually(Duration::from_secs(20), || a
        .list_all()
        .iter()
        .any(|t| t["kind"] == "shell" && t["state"] == "running")));
    a.ok(&["stop", &id]);
    let out = a.run(&["agent", "general", "second", "--session", "s1"]);
    assert_eq!(out.code, 0, "{out:?}");
    let last = server.requests().last().cloned().expect("a request");
    let results = ms::tool_results(&last.body);
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(results[0].contains("interrupted"), "{results:?}");
}

#[test]
fn a_session_runs_once_at_a_time() {
    let gate = Gate::new();
    let g = gate.clone();
    let server = ModelServer::start(move |_| {
        g.wait(Duration::from_secs(30));
        Reply::text("finally")
    });
    let a = aside_with(&server, "");
    let id = a
        .ok(&["agent", "general", "long one", "--bg"])
        .text()
        .trim()
        .to_string();
    a.wait_state(&id, "running");
    let out = a.run(&["agent", "general", "again", "--session", "s1", "--bg"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains("still running in task 1"),
        "{:?}",
        out.stderr
    );
    gate.open();
    a.wait_end(&id);
}

#[test]
fn a_background_definition_starts_in_the_background_unless_fg() {
    let gate = Gate::new();
    let g = gate.clone();
    let server = ModelServer::start(move |_| {
        g.wait(Duration::from_secs(30));
        Reply::text("done in the back")
    });
    let a = aside_with(&server, "");
    let dir = a.path(".claude/agents");
    std::fs::create_dir_all(&dir).expect("agents dir");
    std::fs::write(
        dir.join("watcher.md"),
        "---\nname: watcher\ndescription: watches\nbackground: true\n---\nWatch things.\n",
    )
    .expect("write watcher.md");
    let out = a.ok(&["agent", "watcher", "keep an eye"]);
    let id = out.text().trim().to_string();
    assert_eq!(id, "1", "prints only the id: {out:?}");
    assert_eq!(a.info(&id)["mode"], "background");
    gate.open();
    assert_eq!(a.wait_end(&id)["state"], "succeeded");
    let fg = a.run(&["agent", "watcher", "now in front", "--fg"]);
    assert_eq!(fg.code, 0, "{fg:?}");
    assert!(fg.text().contains("done in the back"), "{fg:?}");
}

// Behaviour the audit found untested.

#[test]
fn commands_agents_run_get_a_quiet_environment_without_keys() {
    let server = ModelServer::start(|req| match ms::tool_results(req).last() {
        None => Reply::tool(
            "bash",
            json!({"command": "echo NO_COLOR=$NO_COLOR TERM=$TERM PAGER=$PAGER GIT_PAGER=$GIT_PAGER KEY=${OPENAI_API_KEY:-unset}"}),
        ),
        Some(r) => Reply::Text(r.clone()),
    });
    let a = aside_with(&server, "");
    let mut cmd = a.cmd(&["agent", "general", "look around"]);
    cmd.env("OPENAI_API_KEY", "sk-must-not-leak");
    let out = a.spawn_cmd(cmd, &["agent"]).finish();
    assert_eq!(out.code, 0, "{out:?}");
    let rec = a.info("1");
    let answer = rec["answer"].as_str().unwrap_or_default();
    assert!(
        answer.contains("NO_COLOR=1 TERM=dumb PAGER=cat GIT_PAGER=cat KEY=unset"),
        "{answer}"
    );
}

#[test]
fn a_model_that_does_not_exist_fails_at_once_and_says_so() {
    let server = ModelServer::start(|_| {
        Reply::Status(
            404,
            r#"{"error":{"message":"The model `scripted` does not exist"}}"#.into(),
            None,
        )
    });
    let a = aside_with(&server, "");
    let rec = run_agent(&a, "hello");
    let e = error_of(&rec);
    assert!(e.contains("does not know model \"scripted\""), "{e}");
    assert_eq!(server.requests().len(), 1, "not retried");
}

#[test]
fn an_agent_stops_at_its_turn_limit() {
    let server = ModelServer::start(|_| Reply::tool("bash", json!({"command": "true"})));
    let a = aside_with(&server, "max_turns = 3\n");
    let rec = run_agent(&a, "loop forever");
    let e = error_of(&rec);
    assert!(e.contains("limit of 3 turns"), "{e}");
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn task_output_waits_at_most_as_asked_and_says_what_still_runs() {
    let server = ModelServer::start(|req| {
        let results = ms::tool_results(req);
        match results.len() {
            0 => Reply::tool(
                "bash",
                json!({"command": "sleep 30", "run_in_background": true}),
            ),
            1 => Reply::tool("task_output", json!({"task_id": 2, "wait_seconds": 1})),
            _ => Reply::Text(results[1].clone()),
        }
    });
    let a = aside_with(&server, "settle = \"1s\"\n");
    let started = std::time::Instant::now();
    let rec = run_agent(&a, "poll once");
    let answer = rec["answer"].as_str().unwrap_or_default().to_string();
    assert!(answer.starts_with("task_id: 2"), "{answer}");
    assert!(
        answer.contains("still running after waiting 1s"),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    a.ok(&["stop", "2"]);
}

#[test]
fn a_task_call_past_its_wait_budget_returns_the_ids_and_the_answer_comes_as_a_notice() {
    let server = ModelServer::start(|req| {
        if ms::prompt(req) == "child job" {
            return Reply::Slow(Duration::from_secs(3), "late answer".into());
        }
        let last = ms::last(req);
        let notified = last["role"] == "user"
            && last["content"]
                .as_str()
                .is_some_and(|c| c.contains("<task-notification>"));
        if notified {
            Reply::text("got the notice")
        } else if ms::tool_results(req).is_empty() {
            Reply::tool("task", json!({"prompt": "child job"}))
        } else {
            Reply::text("moving on")
        }
    });
    let a = aside_with(&server, "wait = \"1s\"\n");
    let out = a.run(&["exec", "parent job"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(a.info("1")["answer"], "got the notice");
    let parent: Vec<Seen> = server
        .requests()
        .into_iter()
        .filter(|s| ms::prompt(&s.body) == "parent job")
        .collect();
    let result = ms::tool_results(&parent[1].body).remove(0);
    assert!(result.starts_with("task_id: 2\nsession_id: s2"), "{result}");
    assert!(result.contains("goes on in the background"), "{result}");
    let notice = ms::last(&parent[2].body)["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(notice.contains("late answer"), "{notice}");
}

#[test]
fn stopping_an_agent_stops_its_background_tasks_too() {
    let gate = Gate::new();
    let g = gate.clone();
    let server = ModelServer::start(move |req| {
        if ms::tool_results(req).is_empty() {
            let pidfile = ms::prompt(req);
            Reply::tool(
                "bash",
                json!({"command": format!("echo $$ > {pidfile}; exec sleep 600"), "run_in_background": true}),
            )
        } else {
            g.wait(Duration::from_secs(30));
            Reply::text("too late")
        }
    });
    let a = aside_with(&server, "");
    let pidfile = a.path("bg.pid").display().to_string();
    let id = a
        .ok(&["agent", "general", &pidfile, "--bg"])
        .text()
        .trim()
        .to_string();
    let pid = a.read_pid("bg.pid");
    a.ok(&["stop", &id, "--reason", "enough"]);
    assert_all_dead(
        &[pid],
        Duration::from_secs(10),
        "the agent's background bash",
    );
    let bash = a.info("2");
    assert_eq!(bash["state"], "cancelled", "{bash}");
    assert_eq!(bash["reason"]["message"], "enough", "{bash}");
    gate.open();
}

#[test]
fn notices_that_end_together_arrive_as_one_message() {
    let server = ModelServer::start(|req| match ms::tool_results(req).len() {
        0 => Reply::Tools(vec![
            (
                "bash".into(),
                json!({"command": "sleep 0.5; echo one", "run_in_background": true}).to_string(),
            ),
            (
                "bash".into(),
                json!({"command": "sleep 0.5; echo two", "run_in_background": true}).to_string(),
            ),
        ]),
        2 => Reply::tool("bash", json!({"command": "sleep 2"})),
        _ => Reply::text("all seen"),
    });
    let a = aside_with(&server, "");
    let rec = run_agent(&a, "two at once");
    assert_eq!(rec["answer"], "all seen", "{rec}");
    let reqs = server.requests();
    let notices: Vec<String> = reqs
        .last()
        .map(|r| ms::messages(&r.body))
        .unwrap_or_default()
        .iter()
        .filter(|m| m["role"] == "user")
        .filter_map(|m| m["content"].as_str().map(str::to_string))
        .filter(|c| c.contains("<task-notification>"))
        .collect();
    assert_eq!(notices.len(), 1, "one message: {notices:?}");
    assert_eq!(notices[0].matches("<task-notification>").count(), 2);
    assert!(notices[0].contains("one") && notices[0].contains("two"));
}

#[test]
fn the_task_tool_resumes_a_finished_session() {
    let server = ModelServer::start(|req| {
        let prompt = ms::prompt(req);
        if prompt == "parent" {
            match ms::tool_results(req).len() {
                0 => Reply::tool("task", json!({"prompt": "remember 7"})),
                1 => Reply::tool(
                    "task",
                    json!({"prompt": "what was it?", "session_id": "s2"}),
                ),
                _ => Reply::Text(ms::tool_results(req)[1].clone()),
            }
        } else {
            // The child: its conversation holds every earlier message of the session.
            let users: Vec<String> = ms::messages(req)
                .iter()
                .filter(|m| m["role"] == "user")
                .filter_map(|m| m["content"].as_str().map(str::to_string))
                .collect();
            Reply::Text(format!("child saw: {}", users.join(" | ")))
        }
    });
    let a = aside_with(&server, "");
    let out = a.run(&["exec", "parent"]);
    assert_eq!(out.code, 0, "{out:?}");
    let answer = a.info("1")["answer"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(answer.contains("session_id: s2"), "{answer}");
    assert!(
        answer.contains("child saw: remember 7 | what was it?"),
        "{answer}"
    );
    let resumed = a.info("3");
    assert_eq!(resumed["session_id"], "s2", "{resumed}");
}

#[test]
fn exec_says_what_still_runs_after_its_settle_limit() {
    let server = ModelServer::start(|req| match ms::tool_results(req).len() {
        0 => Reply::tool(
            "bash",
            json!({"command": "sleep 60", "run_in_background": true}),
        ),
        _ => Reply::text("done, mostly"),
    });
    let a = aside_with(&server, "settle = \"1s\"\n");
    let out = a.run(&["exec", "start something long"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.text().contains("[still running after 1s: tasks 2]"),
        "{out:?}"
    );
    assert_eq!(a.state("2"), "running");
    a.ok(&["stop", "2"]);
}
