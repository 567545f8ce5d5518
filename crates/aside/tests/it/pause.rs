//! `aside pause`, `aside resume` and `aside restart`: a paused task's whole tree stops and
//! goes on again, the record and the events say so, a stop still ends it, a new daemon
//! keeps it paused; a finished task runs again as a new one.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::escapes::{in_task_group, setup, Cgroups};
use crate::support::*;

/// A shell loop printing a counter every 50 ms, to stdout or appended to a file.
const COUNTER: &str = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done";

/// How long a stopped tree's output is watched for not growing.
const STILL: Duration = Duration::from_millis(600);

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Waits until the file has grown past `than` bytes.
fn assert_grows(path: &Path, than: u64, what: &str) {
    let grew = eventually(SOON, || size(path) > than);
    assert!(grew, "{what}: {} stayed at {than} bytes", path.display());
}

/// Gives what was under way when the pause landed time to be written, then asserts that
/// nothing more is; returns the size it stayed at.
fn assert_still(path: &Path, what: &str) -> u64 {
    std::thread::sleep(Duration::from_millis(300));
    let before = size(path);
    std::thread::sleep(STILL);
    let after = size(path);
    assert_eq!(
        before,
        after,
        "{what}: {} grew while paused",
        path.display()
    );
    after
}

/// A process's state letter (`T` when stopped) from /proc.
fn proc_state(pid: i32) -> char {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, r)| r.trim_start().chars().next())
        })
        .unwrap_or('?')
}

fn pause(a: &Aside, id: &str) -> Value {
    a.ok(&["pause", id, "--json"]).json()[0].clone()
}

fn resume(a: &Aside, id: &str) -> Value {
    a.ok(&["resume", id, "--json"]).json()[0].clone()
}

#[test]
fn a_paused_task_prints_nothing_until_it_is_resumed_and_its_record_says_so() {
    let a = Aside::new();
    let id = a.bg(COUNTER);
    let log = a.log_file(&id);
    assert_grows(&log, 0, "before the pause");

    let rec = pause(&a, &id);
    assert_eq!(rec["paused"], true, "{rec}");
    assert_eq!(
        rec["state"], "running",
        "paused is not a state of its own: {rec}"
    );
    let stayed = assert_still(&log, "after aside pause");
    assert_eq!(a.info(&id)["paused"], true);
    let listed = a.ok(&["ls", "--json"]).json();
    let mine = listed
        .as_array()
        .and_then(|l| l.iter().find(|t| t["id"] == id.as_str()))
        .cloned()
        .expect("ls shows the task");
    assert_eq!(mine["paused"], true, "{mine}");
    let table = a.ok(&["ls"]).text();
    assert!(table.contains("paused"), "{table}");
    // Found by that word too; a running task that is not paused is not.
    let other = a.bg("sleep 30");
    let only = a.ok(&["ls", "--state", "paused", "--json"]).json();
    let ids: Vec<&str> = only
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()], "{only}");
    a.ok(&["stop", &other]);
    assert!(a.ok(&["info", &id]).text().contains(", paused"));
    // Agents and MCP hosts read it in the task tools' results.
    let mut w = a.wire();
    w.hello();
    let args = json!({"name": "task_output", "arguments": {"task_id": id}});
    let text = w.call("tools.call", args)["text"].clone();
    assert!(text.to_string().contains("paused"), "{text}");
    // Pausing again changes nothing.
    assert_eq!(pause(&a, &id)["paused"], true);
    assert_eq!(a.ok(&["pause", &id]).text(), format!("{id} paused\n"));

    let rec = resume(&a, &id);
    assert!(rec.get("paused").is_none(), "absent once resumed: {rec}");
    assert_grows(&log, stayed, "after aside resume");
    assert_eq!(a.ok(&["resume", &id]).text(), format!("{id} running\n"));
    let end = a.ok(&["stop", &id, "--json"]).json()[0].clone();
    assert_eq!(end["state"], "cancelled", "{end}");
}

/// Every process of the tree stops: the task's own, and a child that left its process
/// group (setsid) while its parent lives, which only the task's cgroup or its tag find.
fn tree(mode: Cgroups) {
    let Some(a) = setup(mode) else { return };
    let script = format!(
        "setsid sh -c 'echo $$ > child.pid; while :; do echo c >> child.out; sleep 0.05; done' &
         echo $$ > parent.pid; {COUNTER}"
    );
    let id = a.bg(&script);
    let (parent, child) = (a.read_pid("parent.pid"), a.read_pid("child.pid"));
    if mode == Cgroups::Hidden {
        assert!(!in_task_group(child), "no task group without cgroup v2");
    }
    let (log, out) = (a.log_file(&id), a.path("child.out"));
    assert_grows(&log, 0, "the parent, before the pause");
    assert_grows(&out, 0, "the child, before the pause");

    pause(&a, &id);
    let (logged, written) = (
        assert_still(&log, "the parent"),
        assert_still(&out, "the child"),
    );
    for (pid, who) in [(parent, "parent"), (child, "child")] {
        assert_eq!(proc_state(pid), 'T', "the {who} ({pid}) is stopped");
    }

    resume(&a, &id);
    assert_grows(&log, logged, "the parent, resumed");
    assert_grows(&out, written, "the child, resumed");
    for (pid, who) in [(parent, "parent"), (child, "child")] {
        let state = proc_state(pid);
        assert!(state != 'T', "the {who} ({pid}) runs again: {state}");
    }
    a.ok(&["stop", &id]);
    assert_all_dead(&[parent, child], SOON, "after the stop");
}

#[test]
fn a_pause_stops_every_process_of_the_tree() {
    tree(Cgroups::AsIs);
}

#[test]
fn a_pause_stops_every_process_of_the_tree_without_cgroups() {
    tree(Cgroups::Hidden);
}

#[test]
fn subscribers_hear_of_a_pause_and_a_resume() {
    let a = Aside::new();
    let id = a.bg(COUNTER);
    let mut w = a.wire();
    w.hello();
    w.call("events.subscribe", json!({}));
    pause(&a, &id);
    resume(&a, &id);
    // Through the protocol, as a program would (on a connection of its own: this one's
    // events must not be skipped while it waits for an answer).
    let mut program = a.wire();
    program.hello();
    let r = program.call("task.pause", json!({"ids": [id]}));
    assert_eq!(r["tasks"][0]["paused"], true, "{r}");
    a.ok(&["stop", &id]);
    let mut kinds = Vec::new();
    while kinds.last() != Some(&"finished".to_string()) {
        let msg = w.recv();
        let event = &msg["params"]["event"];
        let kind = event["event"].as_str().unwrap_or_default().to_string();
        // Its start may come after the subscription.
        if msg["method"] == "event" && event["task_id"] == id.as_str() && kind != "started" {
            kinds.push(kind);
        }
    }
    assert_eq!(kinds, ["paused", "resumed", "paused", "finished"]);
    let end = a.info(&id);
    assert!(
        end.get("paused").is_none(),
        "an ended task is not paused: {end}"
    );
}

/// SIGTERM does not wake a stopped process: the stop continues the tree, so a paused task
/// ends at once, not after the grace (here 60 s) and SIGKILL.
#[test]
fn stopping_a_paused_task_ends_it_at_once() {
    let a = Aside::with_config("kill_grace = \"60s\"\n");
    let id = a.bg(&format!("trap 'echo got TERM; exit 7' TERM; {COUNTER}"));
    assert_grows(&a.log_file(&id), 0, "before the pause");
    pause(&a, &id);
    assert_still(&a.log_file(&id), "paused");
    let began = Instant::now();
    let end = a.ok(&["stop", &id, "--json"]).json()[0].clone();
    let took = began.elapsed();
    assert_eq!(end["state"], "cancelled", "{end}");
    assert!(took < Duration::from_secs(10), "the stop took {took:?}");
    let log = String::from_utf8(a.logs(&id)).unwrap();
    assert!(
        log.contains("got TERM"),
        "the task acted on its SIGTERM: {log}"
    );
}

#[test]
fn a_paused_task_stays_paused_across_a_daemon_restart() {
    let a = Aside::new();
    let id = a.bg(COUNTER);
    let log = a.log_file(&id);
    assert_grows(&log, 0, "before the pause");
    pause(&a, &id);
    let stayed = assert_still(&log, "paused");
    let out = a.run(&["daemon", "restart"]);
    assert_eq!(out.code, 0, "{out:?}");
    let rec = a.info(&id);
    assert_eq!(rec["state"], "running", "{rec}");
    assert_eq!(rec["paused"], true, "adopted paused: {rec}");
    assert_eq!(size(&log), stayed, "still stopped under the new daemon");
    // The new daemon resumes it through the same supervisor.
    assert!(resume(&a, &id).get("paused").is_none());
    assert_grows(&log, stayed, "resumed by the new daemon");
    assert!(a.info(&id).get("paused").is_none());
    a.ok(&["stop", &id]);
}

#[test]
fn what_cannot_be_paused_is_refused_with_the_reason() {
    let a = Aside::with_config("max_running = 1\n");
    let gate = a.gate("go");
    let first = a.bg(&gate);
    let queued = a.bg("echo hi");
    assert_eq!(a.state(&queued), "queued");
    for (verb, word) in [("pause", "paused"), ("resume", "resumed")] {
        let out = a.run(&[verb, &queued]);
        assert_eq!(out.code, 125, "{out:?}");
        let want = format!("task {queued} cannot be {word}: it has not started (it is queued)");
        assert!(out.stderr.contains(&want), "{out:?}");
    }
    // One refusal changes nothing: the running task named with it is not paused.
    let out = a.run(&["pause", &first, &queued]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(a.info(&first).get("paused").is_none());
    let mut w = a.wire();
    w.hello();
    let r = w.request("task.pause", json!({"ids": [queued]}));
    assert_eq!(r["error"]["code"], -32002, "invalid state: {r}");
    let out = a.run(&["pause", "99"]);
    assert!(out.stderr.contains("no task with id 99"), "{out:?}");

    a.open("go");
    a.wait_end(&first);
    a.wait_end(&queued);
    let out = a.run(&["pause", &first]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("task {first} has already ended (succeeded)")),
        "{out:?}"
    );
}

#[test]
fn a_finished_task_restarts_as_a_new_one_with_this_shells_environment() {
    let a = Aside::new();
    std::fs::create_dir(a.path("sub")).unwrap();
    let args = [
        "run",
        "--bg",
        "--name",
        "again",
        "--timeout",
        "1h",
        "--cwd",
        "sub",
        "--env",
        "EXTRA=kept-not",
        "--label",
        "env=prod",
        "--",
        "sh",
        "-c",
        "pwd; echo \"FOO=$FOO EXTRA=$EXTRA\"; exit 3",
    ];
    let mut first = a.cmd(&args);
    first.env("FOO", "first");
    let id = a.spawn_cmd(first, &args).finish().text().trim().to_string();
    assert_eq!(a.wait_end(&id)["exit_code"], 3);

    // The stored spec keeps no environment.
    let mut w = a.wire();
    w.hello();
    let spec = w.call("task.spec", json!({"id": id}));
    assert_eq!(spec["name"], "again", "{spec}");
    assert!(
        spec.get("env").is_none() && spec.get("env_extra").is_none(),
        "{spec}"
    );

    let mut again = a.cmd(&["restart", &id]);
    again.env("FOO", "second");
    let out = a.spawn_cmd(again, &["restart", &id]).finish();
    assert_eq!(out.code, 0, "{out:?}");
    let new = out.text().trim().to_string();
    assert!(new.parse::<u64>().is_ok() && new != id, "a new id: {out:?}");
    let end = a.wait_end(&new);
    assert_eq!(end["exit_code"], 3, "{end}");
    assert_eq!(end["name"], "again");
    assert_eq!(end["labels"]["env"], "prod", "{end}");
    assert_eq!(end["timeout_ms"], 3_600_000);
    let sub = a.path("sub").display().to_string();
    assert_eq!(end["cwd"], sub.as_str());
    let log = String::from_utf8(a.logs(&new)).unwrap();
    assert_eq!(log, format!("{sub}\nFOO=second EXTRA=\n"));

    // In the foreground: its output and its exit code, as aside run.
    let out = a.run(&["restart", &new, "--fg"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.text().starts_with(&format!("{sub}\n")), "{out:?}");
    assert_eq!(a.list_all().len(), 3);
}

#[test]
fn a_running_task_is_not_restarted() {
    let a = Aside::new();
    let id = a.bg(&a.gate("go"));
    let out = a.run(&["restart", &id]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "task {id} is running: only a finished task can be restarted"
        )),
        "{out:?}"
    );
    assert_eq!(a.list_all().len(), 1, "nothing was started");
    a.open("go");
    a.wait_end(&id);
}
