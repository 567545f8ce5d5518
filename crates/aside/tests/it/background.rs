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
