//! Agent tasks against the scripted model server.

use std::time::Duration;

use serde_json::json;

use crate::model_server::{self as ms, ModelServer, Reply};
use crate::support::*;

fn aside_with(server: &ModelServer, extra: &str) -> Aside {
    Aside::with_config(&format!("{}{extra}", server.config()))
}

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
    assert_eq!(child["state"], "succeeded");
    assert_eq!(child["answer"], "the child's answer is 42");
    assert_eq!(child["owner"], "session:s1");
    let _ = Duration::from_secs(0);
}
