//! Background runs: the id at once, the exit code from `wait`, the output from `logs`.

use crate::support::*;

#[test]
fn background_run_prints_only_the_id_at_once_then_wait_and_logs_report_the_task() {
    let a = Aside::new();
    let script = format!("echo started; {}; echo finished; exit 7", a.gate("go"));
    let out = a.ok(&["run", "--bg", "--", "sh", "-c", &script]);
    let text = out.text();
    let id = text.trim_end_matches('\n');
    assert!(
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && text == format!("{id}\n"),
        "stdout must be the id alone, got {text:?}"
    );
    assert!(out.stderr.is_empty(), "nothing on stderr: {:?}", out.stderr);
    // At once: the command has not finished (it cannot until the gate opens).
    let rec = a.info(id);
    assert!(
        matches!(rec["state"].as_str(), Some("queued" | "running")),
        "{rec}"
    );
    assert_eq!(rec["mode"], "background");
    assert_eq!(rec["detached"], true);

    a.open("go");
    let waited = a.run(&["wait", id]);
    assert_eq!(
        waited.code, 7,
        "wait passes the exit code through: {waited:?}"
    );
    assert!(waited.text().contains(id), "{waited:?}");
    assert_eq!(String::from_utf8_lossy(&a.logs(id)), "started\nfinished\n");
}

#[test]
fn wait_with_a_timeout_exits_148_and_leaves_the_task_running() {
    let a = Aside::new();
    let id = a.bg(&a.gate("go"));
    let out = a.run(&["wait", &id, "--timeout", "300ms"]);
    assert_eq!(out.code, 148, "{out:?}");
    assert!(
        out.stderr.contains(&id),
        "names the task still running: {out:?}"
    );
    assert_eq!(a.state(&id), "running");
    a.open("go");
    assert_eq!(a.wait_end(&id)["state"], "succeeded");
}

#[test]
fn wait_on_several_tasks_exits_with_the_first_failing_code() {
    let a = Aside::new();
    let ok = a.bg("true");
    let bad = a.bg("exit 5");
    let worse = a.bg("exit 6");
    let out = a.run(&["wait", &ok, &bad, &worse, "--json"]);
    assert_eq!(out.code, 5, "{out:?}");
    let recs = out.json();
    let ids: Vec<&str> = recs
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [ok.as_str(), bad.as_str(), worse.as_str()],
        "records in request order"
    );
}

#[test]
fn background_run_with_json_prints_the_record() {
    let a = Aside::new();
    let rec = a
        .ok(&[
            "run", "--bg", "--json", "--name", "label", "--", "sh", "-c", "echo hi",
        ])
        .json();
    let id = rec["id"].as_str().expect("id");
    assert_eq!(rec["name"], "label");
    assert_eq!(rec["kind"], "shell");
    assert_eq!(rec["mode"], "background");
    assert_eq!(rec["owner"], "cli");
    assert_eq!(rec["cwd"], a.home.display().to_string());
    assert!(
        matches!(rec["state"].as_str(), Some("queued" | "running")),
        "{rec}"
    );
    assert_eq!(a.wait_end(id)["state"], "succeeded");
    let table = a.ok(&["ls", "--all"]).text();
    assert!(table.contains("[label] sh -c 'echo hi'"), "{table}");
}

#[test]
fn ls_with_nothing_running_says_so() {
    let a = Aside::new();
    assert_eq!(
        a.ok(&["ls"]).text(),
        "no tasks running (aside ls --all shows finished ones)\n"
    );
    assert_eq!(a.ok(&["ls", "--json"]).json(), serde_json::json!([]));
}

/// A running background task's record counts its output as it comes, wherever it is read
/// from: `info`, `ls`, `task.get`, `task.list`, as `task.read` does.
#[test]
fn a_running_tasks_output_bytes_are_live_in_every_view() {
    let a = Aside::new();
    let id = a.bg(&format!("printf 'hello, world\\n'; {}", a.gate("go")));
    let mut w = a.wire();
    w.hello();
    assert!(eventually(SOON, || {
        w.call("task.read", serde_json::json!({"id": id}))["total"] == 13
    }));
    assert_eq!(a.info(&id)["output_bytes"], 13);
    let listed = a.json(&["ls", "--json"]);
    let row = listed
        .as_array()
        .and_then(|rows| rows.iter().find(|t| t["id"] == id.as_str()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(row["output_bytes"], 13, "{listed}");
    assert_eq!(
        w.call("task.get", serde_json::json!({"id": id}))["output_bytes"],
        13
    );
    let page = w.call("task.list", serde_json::json!({}));
    assert_eq!(page["tasks"][0]["output_bytes"], 13, "{page}");
    let waited = w.call(
        "task.wait",
        serde_json::json!({"ids": [id], "timeout_ms": 10}),
    );
    assert_eq!(waited["tasks"][0]["output_bytes"], 13, "{waited}");
    let stopped = w.call("task.detach", serde_json::json!({"id": id}));
    assert_eq!(stopped["output_bytes"], 13, "{stopped}");
    assert_eq!(a.state(&id), "running");
    a.open("go");
    assert_eq!(a.wait_end(&id)["output_bytes"], 13);
}
