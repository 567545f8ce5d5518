//! Slots, FIFO order, cancelling queued tasks, dedupe keys.

use crate::support::*;

/// Runs four tasks that log their start and end to one file; returns the ids.
fn four_markers(a: &Aside, flags: &[&str]) -> Vec<String> {
    let f = a.path("order");
    (1..=4)
        .map(|n| {
            a.bg_with(
                flags,
                &format!(
                    "echo start {n} >> '{f}'; sleep 0.2; echo end {n} >> '{f}'",
                    f = f.display()
                ),
            )
        })
        .collect()
}

fn assert_serial_in_order(a: &Aside, ids: &[String]) {
    let mut ended = Vec::new();
    for id in ids {
        let rec = a.wait_end(id);
        assert_eq!(rec["state"], "succeeded", "{rec}");
        ended.push(rec);
    }
    let order = std::fs::read_to_string(a.path("order")).expect("order file");
    assert_eq!(
        order, "start 1\nend 1\nstart 2\nend 2\nstart 3\nend 3\nstart 4\nend 4\n",
        "tasks overlapped or ran out of order"
    );
    // Each one started only once the one before it had ended.
    for pair in ended.windows(2) {
        let (prev_end, next_start) = (pair[0]["ended_at"].as_str(), pair[1]["started_at"].as_str());
        assert!(
            prev_end <= next_start,
            "task {} started before {} ended",
            pair[1]["id"],
            pair[0]["id"]
        );
    }
}

#[test]
fn max_running_one_runs_tasks_one_at_a_time_in_fifo_order() {
    let a = Aside::with_config("max_running = 1\n");
    let ids = four_markers(&a, &[]);
    assert_serial_in_order(&a, &ids);
}

#[test]
fn group_limit_one_serializes_its_tasks_but_not_other_tasks() {
    let a = Aside::with_config("max_running = 8\n[groups]\nserial = 1\n");
    let holder = a.bg_with(&["--group", "serial"], &a.gate("go"));
    a.wait_state(&holder, "running");
    let ids = four_markers(&a, &["--group", "serial"]);
    // Held back by the group's limit, not by the global one: an ungrouped task runs now.
    let free = a.bg("echo free");
    assert_eq!(a.wait_end(&free)["state"], "succeeded");
    for id in &ids {
        assert_eq!(a.state(id), "queued", "task {id} ignored its group's limit");
    }
    assert!(!a.path("order").exists());
    a.open("go");
    assert_serial_in_order(&a, &ids);
}

#[test]
fn a_task_stopped_while_queued_is_cancelled_and_never_starts() {
    let a = Aside::with_config("max_running = 1\n");
    let holder = a.bg(&a.gate("go"));
    a.wait_state(&holder, "running");
    let ran = a.path("ran");
    let queued = a.bg(&format!("touch '{}'", ran.display()));
    assert_eq!(a.state(&queued), "queued");

    let rec = a.ok(&["stop", &queued, "--json"]).json()[0].clone();
    assert_eq!(rec["state"], "cancelled", "{rec}");
    assert!(rec.get("started_at").is_none(), "it never started: {rec}");

    // The slot frees; the queue moves on without it.
    a.open("go");
    assert_eq!(a.wait_end(&holder)["state"], "succeeded");
    let later = a.bg("echo later");
    assert_eq!(a.wait_end(&later)["state"], "succeeded");
    assert!(!ran.exists(), "the cancelled task ran after all");
    assert_eq!(a.state(&queued), "cancelled");
}

#[test]
fn dedupe_returns_the_live_task_then_a_new_one_after_it_ends() {
    let a = Aside::new();
    let first = a.bg_with(&["--dedupe", "K"], &format!("echo first; {}", a.gate("go")));
    let second = a.bg_with(&["--dedupe", "K"], "echo second");
    assert_eq!(first, second, "a live task holds the key");
    let other = a.bg_with(&["--dedupe", "L"], "echo other");
    assert_ne!(other, first, "another key is another task");
    assert_eq!(a.wait_end(&other)["state"], "succeeded");

    a.open("go");
    assert_eq!(a.wait_end(&first)["state"], "succeeded");
    assert_eq!(
        String::from_utf8_lossy(&a.logs(&first)),
        "first\n",
        "the duplicate never ran"
    );
    let third = a.bg_with(&["--dedupe", "K"], "echo third");
    assert_ne!(third, first, "the key is free once its task ended");
    assert_eq!(a.wait_end(&third)["state"], "succeeded");
    assert_eq!(String::from_utf8_lossy(&a.logs(&third)), "third\n");
    assert_eq!(a.list_all().len(), 3);
}

/// A foreground run whose dedupe key a background task holds follows that task to its end:
/// its output, then its exit code (it used to say "following it" and exit 148 at once).
#[test]
fn a_foreground_dedupe_hit_follows_the_task_it_found_to_its_end() {
    let a = Aside::new();
    let held = a.bg_with(
        &["--dedupe", "dev"],
        &format!("echo before; {}; echo after; exit 3", a.gate("go")),
    );
    assert!(eventually(SOON, || a.logs(&held) == b"before\n"));
    let mut follower = a.spawn(&["run", "--dedupe", "dev", "--", "echo", "never runs"]);
    follower.wait_stdout(b"before\n");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        follower.running(),
        "the follower left before the task ended"
    );
    a.open("go");
    let out = follower.finish();
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.stdout, b"before\nafter\n");
    assert!(out.stderr.contains("following it"), "{out:?}");
    assert_eq!(a.list_all().len(), 1, "the duplicate never ran");
}

/// A foreground run that has to wait for a slot says so once, with how many wait ahead.
#[test]
fn a_queued_foreground_run_says_once_that_it_waits_and_behind_how_many() {
    let a = Aside::with_config("max_running = 1\n");
    let holder = a.bg(&a.gate("go"));
    a.wait_state(&holder, "running");
    let ahead = a.bg("echo ahead");
    assert_eq!(a.state(&ahead), "queued");
    let fg = a.spawn(&["run", "--", "echo", "mine"]);
    assert!(eventually(SOON, || fg.stderr_now().contains("queued")));
    let said = fg.stderr_now();
    assert!(said.contains("1 queued ahead"), "{said:?}");
    a.open("go");
    let out = fg.finish();
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, b"mine\n");
    let lines = out.stderr.lines().filter(|l| l.contains("queued")).count();
    assert_eq!(lines, 1, "said once: {out:?}");
}

#[test]
fn config_defaults_for_timeout_and_wait_apply_and_flags_override_them() {
    let a = Aside::with_config("timeout = \"1s\"\nwait = \"300ms\"\n");
    let out = a.run(&["run", "--wait", "none", "--", "sleep", "30.789"]);
    assert_eq!(out.code, 124, "the configured timeout applies: {out:?}");
    let out = a.run(&[
        "run",
        "--timeout",
        "none",
        "--wait",
        "none",
        "--",
        "sleep",
        "1.5",
    ]);
    assert_eq!(out.code, 0, "--timeout none lifts it: {out:?}");
    let out = a.run(&["run", "--timeout", "none", "--", "sh", "-c", &a.gate("go")]);
    assert_eq!(out.code, 148, "the configured wait budget applies: {out:?}");
    let id = a.wait_live(1)[0]["id"].as_str().expect("id").to_string();
    assert!(a.info(&id).get("timeout_ms").is_none());
    a.open("go");
    assert_eq!(a.wait_end(&id)["state"], "succeeded");
}

#[test]
fn a_detached_foreground_task_keeps_its_slot() {
    let a = Aside::with_config("max_running = 1\n");
    let cli = a.spawn(&["run", "--", "sh", "-c", &a.gate("go")]);
    let first = a.wait_live(1)[0]["id"].as_str().expect("id").to_string();
    a.wait_state(&first, "running");
    a.ok(&["detach", &first]);
    let _ = cli.finish();
    let second = a.bg("echo second");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        a.state(&second),
        "queued",
        "the detached task still holds the slot"
    );
    a.open("go");
    a.wait_end(&first);
    assert_eq!(a.wait_end(&second)["state"], "succeeded");
}

#[test]
fn slots_change_at_runtime_and_the_change_outlives_the_daemon() {
    let a = Aside::with_config("max_running = 1\n[groups]\nbuild = 1\n");
    let gate = a.gate("go");
    let ids: Vec<String> = (0..3).map(|_| a.bg(&gate)).collect();
    a.wait_state(&ids[0], "running");
    assert_eq!(a.state(&ids[2]), "queued");

    let out = a.ok(&["slots", "3"]);
    assert!(
        out.text()
            .contains("all: 3 running of 3 (set with aside slots)"),
        "{out:?}"
    );
    for id in &ids {
        a.wait_state(id, "running");
    }
    a.ok(&["slots", "build", "2"]);
    let status = a.json(&["daemon", "status", "--json"]);
    assert_eq!(status["slots"]["limit"], 3);
    assert_eq!(status["slots"]["changed"], true);
    let build = &status["slots"]["groups"][0];
    assert_eq!(
        (&build["group"], &build["limit"]),
        (&"build".into(), &2.into())
    );
    let text = a.ok(&["daemon", "status"]).text();
    assert!(
        text.contains("  build: 0 running of 2, 0 queued (set with aside slots)"),
        "{text}"
    );

    // Kept across a restart, ahead of the config file.
    a.ok(&["daemon", "restart"]);
    let kept = a.json(&["slots", "--json"]);
    assert_eq!(kept["limit"], 3, "{kept}");
    assert_eq!(kept["running"], 3, "{kept}");
    let group = a.ok(&["slots", "build"]).text();
    assert_eq!(
        group,
        "build: 0 running of 2, 0 queued (set with aside slots)\n"
    );

    // Lowered, running tasks go on; back to the config's, fewer start.
    let back = a.json(&["slots", "default", "--json"]);
    assert_eq!((&back["limit"], back.get("changed")), (&1.into(), None));
    a.ok(&["slots", "build", "default"]);
    let waiting = a.bg("true");
    assert_eq!(a.state(&waiting), "queued");
    for id in &ids {
        assert_eq!(a.state(id), "running");
    }
    a.open("go");
    assert_eq!(a.wait_end(&waiting)["state"], "succeeded");

    for (args, error) in [
        (&["slots", "0"][..], "a slot limit is 1 to 10000; 0 is not"),
        (
            &["slots", "build", "many"],
            "\"many\" is not a number of slots",
        ),
        (&["slots", "no such", "2"], "group"),
    ] {
        let out = a.run(args);
        assert_ne!(out.code, 0, "{args:?}");
        assert!(out.stderr.contains(error), "{args:?}: {}", out.stderr);
    }
    assert_eq!(
        a.json(&["slots", "--json"])["limit"],
        1,
        "a refused change changes nothing"
    );
}
