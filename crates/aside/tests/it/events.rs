//! The event stream: live notifications in order, and replay from a sequence number.

use serde_json::{json, Value};

use crate::support::*;

/// Reads `event` notifications for `task` until its `finished` one.
fn events_of(w: &mut Wire, task: &str) -> Vec<Value> {
    let mut got = Vec::new();
    loop {
        let msg = w.recv();
        if msg["method"] != "event" {
            continue;
        }
        let event = msg["params"]["event"].clone();
        if event["task_id"] != task {
            continue;
        }
        let finished = event["event"] == "finished";
        got.push(event);
        if finished {
            return got;
        }
    }
}

#[test]
fn subscribers_get_queued_started_finished_in_order_and_can_replay_after_a_seq() {
    let a = Aside::new();
    a.ok(&["daemon", "start"]);
    let mut w = a.wire();
    w.hello();
    let sub = w.call("events.subscribe", json!({}));
    let latest = sub["latest_seq"].as_u64().expect("latest_seq");

    let id = a.bg("echo hi");
    let events = events_of(&mut w, &id);
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds, ["queued", "started", "finished"], "{events:?}");
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs.len(), 3);
    assert!(
        seqs[0] > latest,
        "new events come after latest_seq: {seqs:?} vs {latest}"
    );
    assert!(
        seqs.windows(2).all(|p| p[0] < p[1]),
        "seq increases: {seqs:?}"
    );
    for e in &events {
        assert_eq!(
            e["detached"], true,
            "a background task is detached throughout: {e}"
        );
        assert!(e["at"].is_string(), "{e}");
    }
    assert!(
        events[1]["pid"].as_u64().is_some(),
        "started carries the pid: {}",
        events[1]
    );
    assert_eq!(events[2]["outcome"]["state"], "succeeded", "{}", events[2]);

    // A second task, then a new subscriber replays everything after the first queued event.
    let id2 = a.bg("exit 2");
    let more = events_of(&mut w, &id2);
    let mut r = a.wire();
    r.hello();
    r.call("events.subscribe", json!({"after": seqs[0]}));
    let mut replayed = Vec::new();
    while replayed
        .last()
        .map(|e: &Value| e["task_id"] != id2.as_str() || e["event"] != "finished")
        .unwrap_or(true)
    {
        let msg = r.recv();
        if msg["method"] == "event" {
            replayed.push(msg["params"]["event"].clone());
        }
    }
    let expected: Vec<Value> = events[1..].iter().chain(more.iter()).cloned().collect();
    assert_eq!(
        replayed, expected,
        "replay gives exactly the events after the seq, in order"
    );
}

#[test]
fn a_foreground_task_reports_detached_false_until_it_is_detached() {
    let a = Aside::new();
    a.ok(&["daemon", "start"]);
    let mut w = a.wire();
    w.hello();
    w.call("events.subscribe", json!({}));
    let fg = a.spawn(&[
        "run",
        "--",
        "sh",
        "-c",
        &format!("echo x; {}", a.gate("go")),
    ]);
    fg.wait_stdout(b"x\n");
    let id = a.wait_live(1)[0]["id"].as_str().expect("id").to_string();
    a.ok(&["detach", &id]);
    assert_eq!(fg.finish().code, 148);
    a.open("go");
    let events = events_of(&mut w, &id);
    let summary: Vec<(String, bool)> = events
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap_or("").to_string(),
                e["detached"] == true,
            )
        })
        .collect();
    let expected = [
        ("queued", false),
        ("started", false),
        ("detached", true),
        ("finished", true),
    ]
    .map(|(k, d)| (k.to_string(), d));
    assert_eq!(summary, expected, "{events:?}");
    assert_eq!(events[2]["cause"], "request");
}

#[test]
fn event_seq_keeps_increasing_across_clean_and_a_daemon_restart() {
    let a = Aside::new();
    a.ok(&["daemon", "start"]);
    let mut w = a.wire();
    w.hello();
    w.call("events.subscribe", json!({}));
    let id = a.bg("true");
    let seen = events_of(&mut w, &id);
    let last = seen.last().and_then(|e| e["seq"].as_u64()).expect("seq");
    drop(w);

    // The finished task and its events go; the daemon restarts.
    a.ok(&["clean"]);
    a.ok(&["daemon", "stop"]);
    a.ok(&["daemon", "start"]);

    // New events must be numbered after every event handed out before.
    let mut w = a.wire();
    w.hello();
    let sub = w.call("events.subscribe", json!({}));
    let latest = sub["latest_seq"].as_u64().expect("latest_seq");
    let id2 = a.bg("true");
    let next = events_of(&mut w, &id2);
    let first_new = next[0]["seq"].as_u64().expect("seq");
    assert!(
        latest >= last && first_new > last,
        "seq went back: events up to {last} were handed out, yet after the restart latest_seq is \
         {latest} and the next event is {first_new}; a client resuming with after={last} misses them"
    );
}

#[test]
fn clean_announces_removed_tasks_to_subscribers() {
    let a = Aside::new();
    let id = a.bg("true");
    a.wait_end(&id);
    let mut w = a.wire();
    w.hello();
    w.call("events.subscribe", json!({}));
    a.ok(&["clean"]);
    // Something else happens afterwards, so the stream has an event to deliver either way.
    let next = a.bg("true");
    loop {
        let msg = w.recv();
        if msg["method"] != "event" {
            continue;
        }
        let e = &msg["params"]["event"];
        if e["task_id"] == id.as_str() {
            assert_eq!(e["event"], "removed", "{e}");
            return;
        }
        assert_ne!(
            e["task_id"],
            next.as_str(),
            "task {next} came first: no removed event for {id}"
        );
    }
}

#[test]
fn a_subscriber_that_falls_behind_still_gets_every_event_once_in_order() {
    const TASKS: u64 = 2500;
    let a = Aside::new();
    a.ok(&["daemon", "start"]);
    let mut slow = a.wire();
    slow.hello();
    let latest = slow.call("events.subscribe", json!({}))["latest_seq"]
        .as_u64()
        .expect("latest_seq");

    // 7,500 events: more than the live buffer (4,096), the connection queue and the socket
    // buffer hold together, while the subscriber reads nothing.
    let mut w = a.wire();
    w.hello();
    let cwd = a.home.display().to_string();
    let mut ids = Vec::new();
    for _ in 0..TASKS {
        let r = w.call(
            "task.start",
            json!({"kind": "shell", "command": {"argv": ["true"]}, "mode": "background", "cwd": cwd}),
        );
        ids.push(r["task"]["id"].clone());
    }
    let done = w.call("task.wait", json!({"ids": ids, "timeout_ms": 120_000}));
    assert_eq!(done["done"], true);

    let expected = latest + 3 * TASKS;
    let mut next = latest + 1;
    while next <= expected {
        let msg = slow.recv();
        if msg["method"] != "event" {
            continue;
        }
        let seq = msg["params"]["event"]["seq"].as_u64().expect("seq");
        assert_eq!(
            seq, next,
            "event {next} expected, got {seq}: lost, doubled or out of order"
        );
        next += 1;
    }
}
