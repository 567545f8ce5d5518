//! Moving a foreground task to the background: `aside detach`, Ctrl+Z, the wait budget; and
//! Ctrl+C, which stops it.

use std::time::Duration;

use crate::support::*;

/// The only live task's id.
fn live_id(a: &Aside) -> String {
    let live = a.wait_live(1);
    live[0]["id"].as_str().expect("id").to_string()
}

#[test]
fn detach_from_another_terminal_releases_the_foreground_cli_and_the_task_finishes() {
    let a = Aside::new();
    let script = format!("echo a; {}; echo b", a.gate("go"));
    let fg = a.spawn(&["run", "--", "sh", "-c", &script]);
    fg.wait_stdout(b"a\n");
    let id = live_id(&a);
    assert_eq!(a.info(&id)["detached"], false);

    let d = a.ok(&["detach", &id]);
    assert!(d.text().contains(&format!("aside logs -f {id}")), "{d:?}");

    let out = fg.finish();
    assert_eq!(
        out.code, 148,
        "the foreground CLI exits 148 on detach: {out:?}"
    );
    assert!(
        out.stderr.contains(&format!("task {id}"))
            && out.stderr.contains(&format!("aside logs -f {id}")),
        "stderr names the task and how to follow it: {:?}",
        out.stderr
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a\n");

    // The task itself was not touched.
    let rec = a.info(&id);
    assert_eq!(rec["state"], "running", "{rec}");
    assert_eq!(rec["detached"], true);
    a.open("go");
    let end = a.wait_end(&id);
    assert_eq!(end["state"], "succeeded", "{end}");
    assert_eq!(
        String::from_utf8_lossy(&a.logs(&id)),
        "a\nb\n",
        "no byte lost across the detach"
    );
    // Detaching a finished task is refused.
    let again = a.run(&["detach", &id]);
    assert_eq!(again.code, 125, "{again:?}");
    assert!(again.stderr.contains("already ended"), "{again:?}");
}

#[test]
fn detach_while_output_flows_loses_no_byte() {
    let a = Aside::new();
    // Numbers as fast as the shell can write them, until the gate opens.
    let script = format!(
        "i=0; while [ ! -e '{}' ]; do echo $i; i=$((i+1)); done; echo end",
        a.path("go").display()
    );
    let fg = a.spawn(&["run", "--", "sh", "-c", &script]);
    fg.wait_stdout(b"\n100\n");
    let id = live_id(&a);
    a.ok(&["detach", &id]);
    let out = fg.finish();
    assert_eq!(out.code, 148, "{out:?}");
    // Output keeps flowing into the log after the detach.
    let log_size = || {
        std::fs::metadata(a.log_file(&id))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let before = log_size();
    assert!(
        eventually(SOON, || log_size() > before + 1000),
        "the log stopped growing after the detach"
    );
    a.open("go");
    assert_eq!(a.wait_end(&id)["state"], "succeeded");

    let log = a.logs(&id);
    let text = String::from_utf8(log).expect("the log is text");
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.pop(), Some("end"), "the log ends with the last line");
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(
            *line,
            n.to_string(),
            "line {n} of the log is wrong: a byte was lost or doubled"
        );
    }
    assert!(
        text.as_bytes().starts_with(&out.stdout),
        "what the terminal saw is the log's beginning"
    );
    assert!(lines.len() > 100);
}

#[test]
fn sigtstp_to_the_foreground_cli_detaches_and_the_task_continues() {
    let a = Aside::new();
    let script = format!("echo a; {}; echo b", a.gate("go"));
    let fg = a.spawn(&["run", "--", "sh", "-c", &script]);
    fg.wait_stdout(b"a\n");
    let id = live_id(&a);
    fg.signal(libc::SIGTSTP);
    let out = fg.finish();
    assert_eq!(out.code, 148, "Ctrl+Z exits 148: {out:?}");
    assert!(
        out.stderr.contains(&format!("aside logs -f {id}")),
        "{out:?}"
    );

    let rec = a.info(&id);
    assert_eq!(rec["state"], "running", "{rec}");
    assert_eq!(rec["detached"], true);
    a.open("go");
    assert_eq!(a.wait_end(&id)["state"], "succeeded");
    assert_eq!(String::from_utf8_lossy(&a.logs(&id)), "a\nb\n");
}

#[test]
fn sigint_to_the_foreground_cli_cancels_the_task_and_exits_130() {
    let a = Aside::new();
    let script = format!(
        "echo $$ > '{}'; echo a; {}; echo b",
        a.path("sh.pid").display(),
        a.gate("go")
    );
    let fg = a.spawn(&["run", "--", "sh", "-c", &script]);
    fg.wait_stdout(b"a\n");
    let id = live_id(&a);
    let pid = a.read_pid("sh.pid");
    fg.signal(libc::SIGINT);
    let out = fg.finish();
    assert_eq!(out.code, 130, "Ctrl+C exits 130: {out:?}");
    // One line says so, as Ctrl+Z's does.
    let said: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(said.len(), 1, "{out:?}");
    assert!(
        said[0].contains(&format!("task {id}")) && said[0].contains("stopped"),
        "{out:?}"
    );

    let rec = a.info(&id);
    assert_eq!(rec["state"], "cancelled", "{rec}");
    assert_eq!(rec["reason"]["cause"], "user_stop");
    assert!(
        rec["reason"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("Ctrl+C"),
        "{rec}"
    );
    assert_all_dead(&[pid], Duration::from_secs(5), "the cancelled task's shell");
    assert!(!a.logs(&id).ends_with(b"b\n"), "the task did not go on");
}

#[test]
fn wait_budget_moves_a_foreground_task_to_the_background_with_148() {
    let a = Aside::new();
    let script = format!("{}; echo done", a.gate("go"));
    // The gate stays shut, so only the budget can end this call.
    let out = a.run(&["run", "--wait", "500ms", "--", "sh", "-c", &script]);
    assert_eq!(out.code, 148, "{out:?}");
    let id = live_id(&a);
    assert!(
        out.stderr.contains(&format!("aside logs -f {id}")),
        "{out:?}"
    );
    let rec = a.info(&id);
    assert_eq!(rec["state"], "running", "{rec}");
    assert_eq!(rec["detached"], true);

    a.open("go");
    let end = a.wait_end(&id);
    assert_eq!(end["state"], "succeeded", "{end}");
    assert_eq!(String::from_utf8_lossy(&a.logs(&id)), "done\n");
}

#[test]
fn stop_from_another_terminal_ends_the_foreground_cli_with_130() {
    let a = Aside::new();
    let fg = a.spawn(&[
        "run",
        "--",
        "sh",
        "-c",
        &format!("echo a; {}", a.gate("never")),
    ]);
    fg.wait_stdout(b"a\n");
    let id = live_id(&a);
    a.ok(&["stop", &id, "--reason", "enough"]);
    let out = fg.finish();
    assert_eq!(out.code, 130, "{out:?}");
    assert!(
        out.stderr.contains(&format!("task {id}")) && out.stderr.contains("enough"),
        "the foreground CLI says why: {:?}",
        out.stderr
    );
}

#[test]
fn a_queued_foreground_task_can_be_detached_and_runs_later_with_its_output_logged() {
    let a = Aside::with_config("max_running = 1\n");
    let holder = a.bg(&a.gate("go"));
    a.wait_state(&holder, "running");
    let fg = a.spawn(&["run", "--", "sh", "-c", "echo from the queue"]);
    let live = a.wait_live(2);
    let id = live
        .iter()
        .find(|t| t["state"] == "queued")
        .and_then(|t| t["id"].as_str())
        .expect("the queued task")
        .to_string();
    assert_eq!(a.info(&id)["mode"], "foreground");
    a.ok(&["detach", &id]);
    let out = fg.finish();
    assert_eq!(out.code, 148, "{out:?}");
    assert_eq!(a.state(&id), "queued");

    a.open("go");
    let rec = a.wait_end(&id);
    assert_eq!(rec["state"], "succeeded", "{rec}");
    assert_eq!(rec["detached"], true);
    assert_eq!(a.logs(&id), b"from the queue\n");
    assert!(
        a.log_file(&id).exists(),
        "a detached task's output is on disk"
    );
}
