//! The raw JSON-RPC wire: every kind of bad request gets the right error, and the daemon
//! goes on serving.

use std::io::Write;

use serde_json::{json, Value};

use crate::support::*;

fn error_code(v: &Value) -> i64 {
    v["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected an error response, got {v}"))
}

#[test]
fn malformed_requests_get_json_rpc_errors_and_the_daemon_keeps_serving() {
    let a = Aside::new();
    let before = a.bg("echo before");
    a.wait_end(&before);
    let mut w = a.wire();
    w.hello();

    // Not JSON at all.
    w.send_line(br#"{"jsonrpc":"2.0","id":1,"method":"#);
    let r = w.response();
    assert_eq!(error_code(&r), -32700, "{r}");
    assert_eq!(r["jsonrpc"], "2.0");
    assert!(r["id"].is_null(), "{r}");

    // Not an object.
    for not_object in [&b"[1,2,3]"[..], b"42", b"\"task.list\"", b"null"] {
        w.send_line(not_object);
        let r = w.response();
        assert_eq!(
            error_code(&r),
            -32600,
            "{} -> {r}",
            String::from_utf8_lossy(not_object)
        );
    }

    // An object that is no request: no method, a method that is not a string, bad jsonrpc.
    for v in [
        json!({"jsonrpc": "2.0", "id": 2}),
        json!({"jsonrpc": "2.0", "id": 3, "method": 7}),
        json!({"jsonrpc": "1.0", "id": 4, "method": "task.list"}),
    ] {
        w.send(&v);
        let r = w.response();
        assert_eq!(error_code(&r), -32600, "{v} -> {r}");
        assert_eq!(r["id"], v["id"], "the error answers the request's id");
    }

    // An id that is an object, an array or a boolean: JSON-RPC allows strings and numbers.
    for id in [json!({"n": 1}), json!([5]), json!(true)] {
        w.send(&json!({"jsonrpc": "2.0", "id": id, "method": "task.start",
                       "params": {"kind": "shell", "command": {"argv": ["true"]}}}));
        let r = w.response();
        assert_eq!(error_code(&r), -32600, "id {id} -> {r}");
        assert!(r["id"].is_null(), "an id that is no id is not echoed: {r}");
    }

    // Unknown method, with the id echoed.
    let r = w.request("task.explode", json!({}));
    assert_eq!(error_code(&r), -32601, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("task.explode"),
        "{r}"
    );

    // Wrong param types.
    for (method, params) in [
        ("task.get", json!({"id": [1]})),
        ("task.get", json!({"id": "../etc"})),
        ("task.get", json!({})),
        ("task.list", json!({"all": "yes"})),
        ("task.read", json!({"id": "1", "after": -5})),
        (
            "task.start",
            json!({"kind": "shell", "command": {"argv": "true"}}),
        ),
        ("task.stop", json!({"ids": "1"})),
        ("daemon.status", json!({"unexpected": 1})),
        // Unknown fields are refused, not ignored: `dedupe` is not `dedupe_key`.
        (
            "task.start",
            json!({"kind": "shell", "command": {"argv": ["true"]}, "dedupe": "dev"}),
        ),
        ("task.list", json!({"al": true})),
        ("task.get", json!({"id": "1", "verbose": true})),
        ("task.read", json!({"id": "1", "offset": 0})),
        ("task.wait", json!({"ids": ["1"], "timeout": 5})),
        ("task.stop", json!({"ids": ["1"], "reason": "x"})),
        ("task.clean", json!({"older": "1h"})),
        ("events.subscribe", json!({"since": 3})),
        ("hello", json!({"protocol_version": "1.0", "ownr": "x"})),
    ] {
        let r = w.request(method, params.clone());
        assert_eq!(error_code(&r), -32602, "{method} {params} -> {r}");
    }
    let r = w.request(
        "task.start",
        json!({"kind": "shell", "command": {"argv": ["true"]}, "dedupe": "dev"}),
    );
    let message = r["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("dedupe") && message.contains("dedupe_key"),
        "{r}"
    );

    // A line over the 8 MiB limit.
    let huge = vec![b'x'; 8 * 1024 * 1024 + 100];
    let writer = w.writer();
    writer
        .write_all(br#"{"jsonrpc":"2.0","id":99,"method":"task.list","params":{"pad":""#)
        .expect("write");
    writer.write_all(&huge).expect("write");
    writer.write_all(b"\"}}\n").expect("write");
    let r = w.response();
    assert_eq!(error_code(&r), -32600, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("longer than"),
        "{r}"
    );

    // The same connection still works, and so does a new one; earlier tasks are still there.
    let list = w.call("task.list", json!({"all": true}));
    let ids: Vec<&str> = list["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, [before.as_str()]);
    let mut fresh = a.wire();
    fresh.hello();
    let got = fresh.call("task.get", json!({"id": before}));
    assert_eq!(got["state"], "succeeded");
    // Ids may come as numbers too.
    let got = fresh.call(
        "task.get",
        json!({"id": before.parse::<u64>().expect("numeric id")}),
    );
    assert_eq!(got["id"], before.as_str());
    // And the CLI does too.
    assert_eq!(a.logs(&before), b"before\n");
}

#[test]
fn daemon_level_errors_carry_their_own_codes() {
    let a = Aside::new();
    a.ok(&["daemon", "start"]);
    let mut w = a.wire();
    let r = w.request("hello", json!({"protocol_version": "2.0"}));
    assert_eq!(error_code(&r), -32005, "version mismatch: {r}");
    w.hello();
    let r = w.request("task.get", json!({"id": "4242"}));
    assert_eq!(error_code(&r), -32001, "unknown task: {r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("4242"),
        "{r}"
    );
    let r = w.request(
        "task.start",
        json!({"kind": "shell", "command": {"argv": ["true"]}, "cwd": "relative/dir"}),
    );
    assert_eq!(error_code(&r), -32003, "bad spec: {r}");
    let r = w.request(
        "task.start",
        json!({"kind": "shell", "command": {"script": "  "}}),
    );
    assert_eq!(error_code(&r), -32003, "empty command: {r}");
}

#[test]
fn failed_notifications_get_no_answer() {
    let a = Aside::new();
    a.ok(&["daemon", "start"]);
    let mut w = a.wire();
    w.hello();
    // JSON-RPC 2.0: "The Server MUST NOT reply to a Notification". A request without an id
    // that names an unknown method, or has bad params, is still a notification.
    w.send(&json!({"jsonrpc": "2.0", "method": "task.explode"}));
    w.send(&json!({"jsonrpc": "2.0", "method": "task.get", "params": {"id": []}}));
    w.send(&json!({"jsonrpc": "2.0", "id": 7, "method": "task.list", "params": {}}));
    let first = w.recv();
    assert_eq!(
        first["id"], 7,
        "the first message must answer request 7, got {first}"
    );
}

/// A request is a whole line: one cut off by a hang-up before its newline is not executed,
/// whatever it would have done.
#[test]
fn a_request_cut_off_before_its_newline_is_not_executed() {
    let a = Aside::new();
    a.ok(&["daemon", "start"]);
    let marker = a.path("ran");
    {
        let mut w = a.wire();
        w.hello();
        let start = json!({"jsonrpc": "2.0", "id": 9, "method": "task.start", "params": {
            "kind": "shell", "command": {"argv": ["touch", marker.display().to_string()]}}});
        let bytes = serde_json::to_vec(&start).expect("encode");
        w.writer().write_all(&bytes).expect("write");
        w.writer()
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
        // The daemon answers nothing and closes its side.
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(w.writer(), &mut rest);
        assert!(rest.is_empty(), "answered a cut-off line: {rest}");
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(a.list_all().is_empty(), "a cut-off request started a task");
    assert!(!marker.exists());
}
