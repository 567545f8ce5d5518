//! `aside run --after ID...`: a task that starts only once the tasks it names have
//! succeeded, and fails without running when one of them does not.

use crate::support::*;

/// The lines of the file the test's tasks append to, in order.
fn lines(a: &Aside, name: &str) -> Vec<String> {
    std::fs::read_to_string(a.path(name))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_task_starts_once_the_tasks_it_names_have_succeeded() {
    let a = Aside::new();
    let order = a.path("order");
    let first = a.bg(&format!(
        "{}; echo first >> '{}'",
        a.gate("one"),
        order.display()
    ));
    let second = a.bg(&format!(
        "{}; echo second >> '{}'",
        a.gate("two"),
        order.display()
    ));
    let after = a.bg_with(
        &["--after", &format!("{first},{second}")],
        &format!("echo after >> '{}'", order.display()),
    );
    // Named one flag each too.
    let also = a.bg_with(
        &["--after", &first, "--after", &second],
        &format!("echo also >> '{}'", order.display()),
    );
    let waiting = a.info(&after);
    assert_eq!(waiting["state"], "queued");
    assert_eq!(waiting["after"], serde_json::json!([first, second]));
    let table = a.ok(&["ls"]).text();
    let row = table
        .lines()
        .find(|l| l.starts_with(&after))
        .expect("a row");
    assert!(row.contains(&format!("after {first},{second}")), "{table}");

    a.open("one");
    a.wait_end(&first);
    assert_eq!(a.state(&after), "queued", "one of two has succeeded");
    a.open("two");
    assert_eq!(a.wait_end(&after)["state"], "succeeded");
    assert_eq!(a.wait_end(&also)["state"], "succeeded");
    let got = lines(&a, "order");
    assert_eq!(got[..2].to_vec(), ["first", "second"], "{got:?}");
    assert_eq!(got.len(), 4, "{got:?}");
}

#[test]
fn a_failed_dependency_fails_its_waiters_down_the_chain_without_running_them() {
    let a = Aside::new();
    let ran = a.path("ran");
    let failing = a.bg(&format!("{}; exit 3", a.gate("go")));
    let b = a.bg_with(
        &["--after", &failing],
        &format!("touch '{}'", ran.display()),
    );
    let c = a.bg_with(&["--after", &b], &format!("touch '{}'", ran.display()));
    a.open("go");
    let rb = a.wait_end(&b);
    assert_eq!(rb["state"], "failed");
    assert_eq!(rb["failure"], "dependency");
    assert_eq!(rb["task_id"], failing.as_str());
    assert!(rb.get("started_at").is_none(), "it never started: {rb}");
    let rc = a.wait_end(&c);
    assert_eq!(rc["failure"], "dependency");
    assert_eq!(rc["task_id"], b.as_str());
    assert!(!ran.exists(), "a waiter ran");

    let text = a.ok(&["info", &b]).text();
    assert!(
        text.contains(&format!(
            "dependency failed: task {failing} failed: exited with code 3"
        )),
        "{text}"
    );
    let out = a.run(&["wait", &c]);
    assert_eq!(out.code, 1, "{out:?}");

    // Named after it already ended: the verdict is the same, at once.
    let late = a.run(&[
        "run",
        "--after",
        &failing,
        "--",
        "touch",
        ran.to_str().unwrap(),
    ]);
    assert_eq!(late.code, 1, "{late:?}");
    assert!(late.stderr.contains("dependency failed"), "{late:?}");
    assert!(!ran.exists());
    let ok = a.bg("true");
    a.wait_end(&ok);
    let out = a.run(&["run", "--after", &ok, "--", "echo", "ran"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.text(), "ran\n");
}

#[test]
fn unknown_and_future_ids_are_refused_so_no_cycle_can_form() {
    let a = Aside::new();
    let first = a.bg("true");
    let next: u64 = first.parse::<u64>().unwrap() + 1;
    for id in ["999", &next.to_string()] {
        let out = a.run(&["run", "--bg", "--after", id, "--", "true"]);
        assert_eq!(out.code, 125, "{out:?}");
        assert!(
            out.stderr.contains(&format!("no task {id} to run after")),
            "{out:?}"
        );
    }
    let out = a.run(&["run", "--bg", "--after", "x1", "true"]);
    assert!(out.stderr.contains("--after \"x1\""), "{out:?}");
    assert_eq!(a.list_all().len(), 1, "nothing was recorded");
}

#[test]
fn a_stopped_waiter_stays_stopped_and_waits_survive_a_daemon_restart() {
    let a = Aside::new();
    let dep = a.bg(&a.gate("go"));
    let stopped = a.bg_with(&["--after", &dep], "true");
    let waiter = a.bg_with(&["--after", &dep], "echo done");
    a.ok(&["stop", &stopped]);
    assert_eq!(a.state(&stopped), "cancelled");

    let out = a.ok(&["daemon", "restart"]);
    assert_eq!(out.code, 0);
    let r = a.info(&waiter);
    assert_eq!(r["state"], "queued", "{r}");
    assert_eq!(a.state(&dep), "running");
    a.open("go");
    assert_eq!(a.wait_end(&waiter)["state"], "succeeded");
    assert_eq!(a.logs(&waiter), b"done\n");
    assert_eq!(a.state(&stopped), "cancelled");

    // The task waited for ends while no daemon runs: the next one finds out and goes on.
    let dep2 = a.bg(&a.gate("go2"));
    let waiter2 = a.bg_with(&["--after", &dep2], "echo two");
    a.ok(&["daemon", "stop", "--keep-tasks"]);
    a.open("go2");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(a.wait_end(&waiter2)["state"], "succeeded");
    assert_eq!(a.logs(&waiter2), b"two\n");
}
