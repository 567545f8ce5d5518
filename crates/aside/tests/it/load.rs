//! Many tasks at once.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

const TASKS: usize = 1000;

#[test]
fn a_thousand_tasks_started_at_once_all_succeed_and_the_daemon_survives() {
    let a = Aside::new();
    a.ok(&["daemon", "start"]);
    let daemon = a.daemon_pid().expect("daemon pid");
    let mut w = a.wire();
    w.hello();
    let cwd = a.home.display().to_string();

    // Every request written in one go, then the answers read.
    let mut batch = Vec::new();
    for i in 0..TASKS {
        let req = json!({
            "jsonrpc": "2.0", "id": i, "method": "task.start",
            "params": {"kind": "shell", "command": {"argv": ["true"]}, "mode": "background", "cwd": cwd},
        });
        serde_json::to_writer(&mut batch, &req).expect("encode");
        batch.push(b'\n');
    }
    let mut writer = w.writer().try_clone().expect("clone");
    let sender = std::thread::spawn(move || writer.write_all(&batch));
    let mut ids = Vec::with_capacity(TASKS);
    let mut answered = vec![false; TASKS];
    for _ in 0..TASKS {
        let r = w.response();
        let n = r["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("response without an id: {r}")) as usize;
        assert!(r.get("error").is_none(), "start {n} failed: {r}");
        assert!(
            !std::mem::replace(&mut answered[n], true),
            "request {n} answered twice"
        );
        assert_eq!(r["result"]["deduplicated"], false);
        ids.push(r["result"]["task"]["id"].clone());
    }
    sender.join().expect("sender").expect("write the requests");
    let mut unique: Vec<String> = ids
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), TASKS, "every start got its own task");

    // All end, each succeeded.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = w.call("task.wait", json!({"ids": ids, "timeout_ms": 10_000}));
        if r["done"] == true {
            let tasks = r["tasks"].as_array().expect("tasks");
            assert_eq!(tasks.len(), TASKS);
            let failed: Vec<&Value> = tasks.iter().filter(|t| t["state"] != "succeeded").collect();
            assert!(
                failed.is_empty(),
                "{} tasks did not succeed, e.g. {}",
                failed.len(),
                failed[0]
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the tasks did not all end within 120 s"
        );
    }

    let status = w.call("daemon.status", json!({}));
    assert_eq!(status["pid"], daemon);
    assert_eq!(status["queued"], 0);
    assert_eq!(status["running"], 0);
    assert!(!is_dead(daemon));
    let listed = a.list_all();
    assert_eq!(listed.len(), TASKS);
}
