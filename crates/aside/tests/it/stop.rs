//! Stopping and timing out: the whole process tree goes, setsid() escapees included.

use crate::support::*;

/// A script whose tree has a child, a grandchild and a child in its own session, each
/// writing its pid into the test's directory, then waiting for ever.
fn tree_script(a: &Aside) -> String {
    let d = a.home.display();
    a.script(
        "tree.sh",
        &format!(
            r#"echo $$ > '{d}/root.pid'
sh -c 'echo $$ > "{d}/child.pid"; sleep 301 & echo $! > "{d}/grandchild.pid"; wait' &
setsid sh -c 'echo $$ > "{d}/setsid.pid"; exec sleep 302' &
echo tree up
wait"#
        ),
    )
}

fn tree_pids(a: &Aside) -> Vec<i32> {
    let pids: Vec<i32> = ["root.pid", "child.pid", "grandchild.pid", "setsid.pid"]
        .iter()
        .map(|f| a.read_pid(f))
        .collect();
    // The setsid child really left the task's session (and so its process group).
    assert_ne!(
        session_of(pids[3]),
        session_of(pids[0]),
        "setsid did not take effect"
    );
    pids
}

fn session_of(pid: i32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After "pid (comm) ": state ppid pgrp session
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

#[test]
fn stop_cancels_with_the_reason_and_kills_the_whole_tree_including_setsid_children() {
    let a = Aside::new();
    let script = tree_script(&a);
    let id = a.bg(&format!("sh '{script}'"));
    let pids = tree_pids(&a);
    assert_eq!(a.state(&id), "running");

    let out = a.ok(&["stop", &id, "--reason", "x", "--json"]);
    let recs = out.json();
    let recs = recs.as_array().expect("stop --json prints a list");
    assert_eq!(recs.len(), 1, "{recs:?}");
    let rec = &recs[0];
    assert_eq!(rec["id"], id.as_str());
    assert_eq!(rec["state"], "cancelled", "{rec}");
    assert_eq!(rec["reason"]["cause"], "user_stop", "{rec}");
    assert_eq!(rec["reason"]["message"], "x", "{rec}");
    // stop returns once the tree is gone: nothing of it may be left when it answers.
    let alive: Vec<i32> = pids.iter().copied().filter(|p| !is_dead(*p)).collect();
    assert!(
        alive.is_empty(),
        "alive after stop returned: {alive:?} of {pids:?}"
    );

    // Idempotent: stopping again returns the same terminal record, first reason kept.
    let again = a.ok(&["stop", &id, "--reason", "y", "--json"]).json();
    assert_eq!(&again[0], rec, "a second stop must return the same record");
    assert_eq!(a.info(&id), *rec);
    assert!(a.logs(&id).starts_with(b"tree up\n"));
}

#[test]
fn what_a_task_leaves_behind_when_it_ends_by_itself_goes_too_and_only_that() {
    let a = Aside::new();
    let d = a.home.display();
    // A neighbour that keeps running: its process is the daemon's child too.
    let neighbour = a.bg(&format!("echo $$ > '{d}/neighbour.pid'; exec sleep 300"));
    let neighbour_pid = a.read_pid("neighbour.pid");
    let id = a.bg(&format!(
        "sleep 303 >/dev/null 2>&1 & echo $! > '{d}/member.pid'
setsid sh -c 'echo $$ > \"{d}/escaped.pid\"; exec sleep 304' >/dev/null 2>&1 &
while [ ! -s '{d}/escaped.pid' ]; do sleep 0.01; done
exit 0"
    ));
    let end = a.wait_end(&id);
    assert_eq!(end["state"], "succeeded", "{end}");
    let member = a.read_pid("member.pid");
    let escaped = a.read_pid("escaped.pid");
    assert!(
        eventually(SOON, || is_dead(member) && is_dead(escaped)),
        "left behind: member {member} dead {}, setsid {escaped} dead {}",
        is_dead(member),
        is_dead(escaped)
    );
    assert_eq!(a.state(&neighbour), "running");
    assert!(!is_dead(neighbour_pid), "the neighbour was killed");
}

#[test]
fn stop_escalates_to_sigkill_after_kill_grace_when_sigterm_is_ignored() {
    let a = Aside::with_config("kill_grace = \"1s\"\n");
    let d = a.home.display();
    let id = a.bg(&format!(
        "trap 'echo got TERM' TERM; echo $$ > '{d}/stubborn.pid'; echo ready; while :; do sleep 0.1; done"
    ));
    let pid = a.read_pid("stubborn.pid");
    assert!(eventually(SOON, || a.logs(&id) == b"ready\n"));
    let asked = std::time::Instant::now();
    let rec = a.ok(&["stop", &id, "--json"]).json()[0].clone();
    let took = asked.elapsed();
    assert_eq!(rec["state"], "cancelled", "{rec}");
    assert!(
        is_dead(pid),
        "the shell that ignored SIGTERM survived the stop"
    );
    assert!(
        took >= std::time::Duration::from_millis(900),
        "SIGKILL came before the 1 s grace was over ({took:?})"
    );
    assert!(
        String::from_utf8_lossy(&a.logs(&id)).contains("got TERM"),
        "SIGTERM came first"
    );
}

#[test]
fn stop_of_a_finished_task_returns_its_record_unchanged() {
    let a = Aside::new();
    let id = a.bg("exit 4");
    let end = a.wait_end(&id);
    assert_eq!(end["state"], "failed");
    let out = a.ok(&["stop", &id, "--json"]).json();
    assert_eq!(out[0], end, "stopping a finished task changes nothing");
}

#[test]
fn hard_timeout_kills_the_tree_and_exits_124() {
    let a = Aside::new();
    let script = tree_script(&a);
    // The tree never ends by itself: only the timeout can end this call.
    let out = a.run(&["run", "--timeout", "3s", "--", "sh", &script]);
    assert_eq!(out.code, 124, "{out:?}");
    let pids = tree_pids_if_written(&a);

    let tasks = a.list_all();
    assert_eq!(tasks.len(), 1);
    let rec = &tasks[0];
    assert_eq!(rec["state"], "timed_out", "{rec}");
    assert_eq!(rec["limit_ms"], 3000, "{rec}");
    assert_eq!(rec["timeout_ms"], 3000, "{rec}");
    let id = rec["id"].as_str().expect("id");
    assert_eq!(a.run(&["wait", id]).code, 124);
    let alive: Vec<i32> = pids.iter().copied().filter(|p| !is_dead(*p)).collect();
    assert!(
        alive.is_empty(),
        "alive after the timeout: {alive:?} of {pids:?}"
    );
}

/// The tree's pids; the tree had three seconds to write them before the timeout.
fn tree_pids_if_written(a: &Aside) -> Vec<i32> {
    let files = ["root.pid", "child.pid", "grandchild.pid", "setsid.pid"];
    let pids: Vec<i32> = files
        .iter()
        .filter_map(|f| std::fs::read_to_string(a.path(f)).ok()?.trim().parse().ok())
        .collect();
    assert_eq!(
        pids.len(),
        files.len(),
        "the tree did not start within its 3 s (machine overloaded?)"
    );
    pids
}

#[test]
fn a_500ms_timeout_on_sleep_30_exits_124_timed_out() {
    let a = Aside::new();
    let out = a.run(&["run", "--timeout", "500ms", "--", "sleep", "30.123"]);
    assert_eq!(out.code, 124, "{out:?}");
    assert!(out.stderr.contains("timed out"), "{:?}", out.stderr);
    let rec = &a.list_all()[0];
    assert_eq!(rec["state"], "timed_out", "{rec}");
    assert_eq!(rec["limit_ms"], 500, "{rec}");
    assert!(
        a.marked_pids().iter().all(|p| {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            !String::from_utf8_lossy(&cmd).contains("30.123")
        }),
        "the sleep survived its timeout"
    );
}

#[test]
fn background_timeout_ends_timed_out_and_frees_the_slot() {
    let a = Aside::with_config("max_running = 1\n");
    let slow = a.bg_with(&["--timeout", "500ms"], "sleep 30");
    let next = a.bg("echo next");
    let end = a.wait_end(&slow);
    assert_eq!(end["state"], "timed_out", "{end}");
    assert_eq!(a.run(&["wait", &slow]).code, 124);
    assert_eq!(a.wait_end(&next)["state"], "succeeded");
}
