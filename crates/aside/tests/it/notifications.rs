//! Notifications: a background task that ended is announced to its owner once.

use serde_json::Value;

use crate::support::*;

fn ls(a: &Aside, args: &[&str]) -> Vec<Value> {
    a.ok(args).json().as_array().cloned().unwrap_or_default()
}

fn row<'a>(rows: &'a [Value], id: &str) -> Option<&'a Value> {
    rows.iter().find(|t| t["id"] == id)
}

#[test]
fn an_ended_background_task_shows_as_unseen_exactly_once() {
    let a = Aside::new();
    let id = a.bg("echo done");
    a.wait_end(&id);

    let first = ls(&a, &["ls", "--json"]);
    let t = row(&first, &id).unwrap_or_else(|| panic!("the ended task is announced: {first:?}"));
    assert_eq!(t["unseen"], true, "{t}");
    assert_eq!(t["state"], "succeeded");

    let second = ls(&a, &["ls", "--json"]);
    assert!(row(&second, &id).is_none(), "announced twice: {second:?}");
    let all = ls(&a, &["ls", "--all", "--json"]);
    assert_eq!(row(&all, &id).expect("listed with --all")["unseen"], false);
    // The text listing marks nothing any more either.
    assert!(!a.ok(&["ls", "--all"]).text().contains('*'));
}

#[test]
fn the_text_listing_marks_an_unseen_task_with_a_star() {
    let a = Aside::new();
    let id = a.bg("true");
    a.wait_end(&id);
    let text = a.ok(&["ls"]).text();
    assert!(text.contains("succeeded*"), "{text}");
    assert!(text.contains("ended since you last looked"), "{text}");
    assert!(!a.ok(&["ls", "--all"]).text().contains("succeeded*"));
}

#[test]
fn a_task_stopped_by_its_owner_is_not_announced_but_one_stopped_by_another_is() {
    let a = Aside::new();
    let mine = a.bg(&a.gate("never"));
    let out = a.ok(&["stop", &mine]);
    assert!(out.text().contains("cancelled"), "{out:?}");
    let rows = ls(&a, &["ls", "--json"]);
    assert!(
        row(&rows, &mine).is_none(),
        "the owner stopped it and knows: {rows:?}"
    );

    // Started by "cli", stopped by someone else: the owner hears of it.
    let theirs = a.bg(&a.gate("never"));
    let mut cmd = a.cmd(&["stop", &theirs]);
    cmd.env("ASIDE_OWNER", "someone-else");
    let other = a.spawn_cmd(cmd, &["stop", &theirs]).finish();
    assert_eq!(other.code, 0, "{other:?}");
    let rows = ls(&a, &["ls", "--json"]);
    let t = row(&rows, &theirs).unwrap_or_else(|| panic!("not announced: {rows:?}"));
    assert_eq!(t["unseen"], true);
    assert_eq!(t["state"], "cancelled");
}

#[test]
fn notifications_go_to_the_owner_only_and_foreground_tasks_are_not_announced() {
    let a = Aside::new();
    let mut cmd = a.cmd(&["run", "--bg", "--", "true"]);
    cmd.env("ASIDE_OWNER", "agent-7");
    let started = a.spawn_cmd(cmd, &["run"]).finish();
    assert_eq!(started.code, 0, "{started:?}");
    let id = started.text().trim().to_string();
    assert_eq!(a.wait_end(&id)["owner"], "agent-7");
    a.ok(&["run", "--", "true"]);

    let rows = ls(&a, &["ls", "--json"]);
    assert!(rows.is_empty(), "cli is told of nothing: {rows:?}");
    let mut cmd = a.cmd(&["ls", "--json"]);
    cmd.env("ASIDE_OWNER", "agent-7");
    let theirs = a.spawn_cmd(cmd, &["ls"]).finish().json();
    let rows = theirs.as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["id"], id.as_str());
    assert_eq!(rows[0]["unseen"], true);
}

#[test]
fn a_listing_that_cannot_be_written_leaves_its_notices_for_the_next() {
    let a = Aside::new();
    let id = a.bg("echo done");
    a.wait_end(&id);
    let mut cmd = a.cmd(&["ls", "--json"]);
    cmd.stdout(std::fs::File::create("/dev/full").expect("/dev/full"));
    let full = cmd.status().expect("run aside ls");
    assert_eq!(full.code(), Some(125), "{full:?}");
    // Not lost: the next listing that is written shows it, once.
    let rows = ls(&a, &["ls", "--json"]);
    let t = row(&rows, &id).unwrap_or_else(|| panic!("the notice was lost: {rows:?}"));
    assert_eq!(t["unseen"], true, "{t}");
    assert!(row(&ls(&a, &["ls", "--json"]), &id).is_none());
}

#[test]
fn a_take_whose_client_hangs_up_unacknowledged_is_handed_out_again() {
    let a = Aside::new();
    let id = a.bg("true");
    a.wait_end(&id);
    // A client takes and hangs up without acknowledging (crash, broken pipe).
    {
        let mut w = a.wire();
        w.hello();
        assert_eq!(taken(&mut w, vec![]).len(), 1);
        // Meanwhile it is held for that client: a second connection is not handed it too.
        let mut other = a.wire();
        other.hello();
        assert!(taken(&mut other, vec![]).is_empty());
    }
    // A client that sends the take and hangs up before reading the answer loses nothing.
    {
        let mut w = a.wire();
        w.hello();
        w.send(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "notifications.take"}));
    }
    let mut w = a.wire();
    w.hello();
    let again = eventually_taken(&mut w);
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0]["task"]["id"], id.as_str());
    let seq = again[0]["seq"].as_u64().expect("seq");
    // Acknowledged with the next take: never handed out again.
    assert!(taken(&mut w, vec![seq]).is_empty());
    drop(w);
    let mut w = a.wire();
    w.hello();
    assert!(taken(&mut w, vec![]).is_empty());
}

/// One `notifications.take` acknowledging `ack`: what it handed out.
fn taken(w: &mut Wire, ack: Vec<u64>) -> Vec<Value> {
    w.call("notifications.take", serde_json::json!({ "ack": ack }))["notifications"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Takes until something is handed out: a connection that hung up releases what it held
/// once the daemon has seen it go.
fn eventually_taken(w: &mut Wire) -> Vec<Value> {
    let mut got = Vec::new();
    eventually(std::time::Duration::from_secs(10), || {
        got = taken(w, vec![]);
        !got.is_empty()
    });
    got
}

#[test]
fn a_client_that_hangs_up_mid_long_poll_releases_its_notices_at_once() {
    let a = Aside::new();
    let done = a.bg("true");
    a.wait_end(&done);
    let gate = a.bg(&a.gate("never"));
    {
        let mut w = a.wire();
        w.hello();
        let got = w.call("notifications.take", serde_json::json!({}));
        assert_eq!(got["notifications"].as_array().map(Vec::len), Some(1));
        // A long-poll of its own is still running when it hangs up.
        w.send(
            &serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": "task.wait",
                                   "params": {"ids": [gate], "timeout_ms": 600000}}),
        );
    }
    let mut w = a.wire();
    w.hello();
    let again = eventually_taken(&mut w);
    assert_eq!(again.len(), 1, "{again:?}");
    a.ok(&["stop", &gate]);
}

#[test]
fn an_ack_on_a_new_connection_holds_while_the_old_one_still_holds_the_notice() {
    // The owner handled a notice from one connection, lost that connection (a broken pipe
    // the daemon has not noticed yet) and acknowledges on a new one: that is final, even
    // though the old connection still holds the notice when the ack arrives.
    let a = Aside::new();
    let id = a.bg("true");
    a.wait_end(&id);
    let mut old = a.wire();
    old.hello();
    let got = taken(&mut old, vec![]);
    assert_eq!(got.len(), 1, "{got:?}");
    let seq = got[0]["seq"].as_u64().expect("seq");

    let mut new = a.wire();
    new.hello();
    assert!(taken(&mut new, vec![seq]).is_empty());
    // The old connection goes; what it held was acknowledged and does not come back.
    drop(old);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        taken(&mut new, vec![]).is_empty(),
        "handed out again after its ack"
    );
    let mut third = a.wire();
    third.hello();
    assert!(
        taken(&mut third, vec![]).is_empty(),
        "handed out again after its ack"
    );
}
