//! An agent task whose daemon is killed (SIGKILL) in the middle of a turn goes on in the
//! next daemon from its transcript: the request cut off is sent again, a tool call cut off
//! is finished without running its command twice.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::model_server::{self as ms, Gate, ModelServer, Reply};
use crate::support::*;

/// How many user messages (the prompt, notifications) a request carries.
fn user_messages(req: &Value) -> usize {
    ms::messages(req)
        .iter()
        .filter(|m| m["role"] == "user")
        .count()
}

#[test]
fn an_agent_whose_daemon_dies_during_its_model_request_sends_it_again_and_answers() {
    let gate = Gate::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let server = ModelServer::start({
        let gate = gate.clone();
        let calls = calls.clone();
        move |_| {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                // Held until the daemon that asked is dead: nobody reads this one.
                gate.wait(Duration::from_secs(60));
                Reply::text("an answer nobody hears")
            } else {
                Reply::text("the answer after the restart")
            }
        }
    });
    let a = Aside::with_config(&server.config());
    let id = a.ok(&["agent", "general", "think hard", "--bg"]).text();
    let id = id.trim();
    assert!(eventually(SOON, || !server.requests().is_empty()));
    a.wait_state(id, "running");
    let old = a.kill_daemon();
    gate.open();

    // Any command starts a new daemon, which resumes the agent.
    let t = a.wait_end(id);
    assert_ne!(a.daemon_pid(), Some(old));
    assert_eq!(t["state"], "succeeded", "{t}");
    assert_eq!(t["answer"], "the answer after the restart", "{t}");
    let seen = server.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    // The same request again: the prompt was not written twice.
    assert_eq!(
        ms::messages(&seen[1].body),
        ms::messages(&seen[0].body),
        "{seen:?}"
    );
    assert_eq!(user_messages(&seen[1].body), 1, "{:?}", seen[1].body);
    assert_eq!(t["progress"]["turns"], 1, "{t}");
}

#[test]
fn an_agent_whose_daemon_dies_during_its_bash_call_finishes_it_without_running_it_again() {
    let a = Aside::new();
    let ran = a.path("ran");
    let command = format!("echo once >> '{}'; sleep 2; echo MARK", ran.display());
    let server = ModelServer::start(move |req| match ms::tool_results(req).len() {
        0 => Reply::tool("bash", json!({ "command": command })),
        _ => Reply::text("done after the restart"),
    });
    a.write_config(&server.config());
    let id = a.ok(&["agent", "general", "run it", "--bg"]).text();
    let id = id.trim().to_string();
    // The command runs: the daemon dies under the tool call.
    assert!(eventually(SOON, || ran.exists()));
    a.kill_daemon();

    let t = a.wait_end(&id);
    assert_eq!(t["state"], "succeeded", "{t}");
    assert_eq!(t["answer"], "done after the restart", "{t}");
    let runs = std::fs::read_to_string(&ran).expect("the command ran");
    assert_eq!(runs, "once\n", "the command ran more than once");
    // One shell task, the agent's, which ended by itself.
    let shells: Vec<Value> = a
        .list_all()
        .into_iter()
        .filter(|t| t["kind"] == "shell")
        .collect();
    assert_eq!(shells.len(), 1, "{shells:?}");
    assert_eq!(shells[0]["state"], "succeeded", "{shells:?}");
    assert_eq!(shells[0]["owner"], format!("session:s{id}"), "{shells:?}");
    // The model got the command's real result once, after one request with the call.
    let seen = server.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let results = ms::tool_results(&seen[1].body);
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(results[0].contains("MARK"), "{results:?}");
    assert!(results[0].contains("succeeded"), "{results:?}");
    // No notification repeats the result the call gave.
    assert_eq!(user_messages(&seen[1].body), 1, "{:?}", seen[1].body);
    let rec = a.info(&id);
    assert_eq!(rec["progress"]["tool_calls"], 1, "{rec}");
    assert_eq!(rec["progress"]["turns"], 2, "{rec}");
}

#[test]
fn a_bash_call_that_ended_while_no_daemon_ran_gives_its_result_to_the_resumed_agent() {
    let a = Aside::new();
    let ran = a.path("ran");
    let ended = a.path("ended");
    let command = format!(
        "echo once >> '{}'; {}; echo MARK; touch '{}'",
        ran.display(),
        a.gate("go"),
        ended.display()
    );
    let server = ModelServer::start(move |req| match ms::tool_results(req).len() {
        0 => Reply::tool("bash", json!({ "command": command })),
        _ => Reply::text("done after the restart"),
    });
    a.write_config(&server.config());
    let id = a.ok(&["agent", "general", "run it", "--bg"]).text();
    let id = id.trim().to_string();
    assert!(eventually(SOON, || ran.exists()));
    a.kill_daemon();
    // The command ends under its supervisor while no daemon runs.
    a.open("go");
    assert!(eventually(SOON, || ended.exists()));
    std::thread::sleep(Duration::from_millis(300));

    let t = a.wait_end(&id);
    assert_eq!(t["state"], "succeeded", "{t}");
    assert_eq!(t["answer"], "done after the restart", "{t}");
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "once\n");
    let seen = server.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let results = ms::tool_results(&seen[1].body);
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(results[0].contains("MARK"), "{results:?}");
    // Its end was the call's result: no notification repeats it.
    assert_eq!(user_messages(&seen[1].body), 1, "{:?}", seen[1].body);
}
