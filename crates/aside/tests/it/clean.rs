//! `aside clean`: finished tasks and their logs go, running ones stay.

use crate::support::*;

#[test]
fn clean_removes_finished_tasks_and_their_logs_and_keeps_running_ones() {
    let a = Aside::new();
    let ok = a.bg("echo ok");
    let bad = a.bg("echo bad; exit 1");
    a.wait_end(&ok);
    a.wait_end(&bad);
    let running = a.bg(&format!("echo running; {}", a.gate("go")));
    a.wait_state(&running, "running");
    for id in [&ok, &bad, &running] {
        assert!(a.log_file(id).exists(), "task {id} has a log");
    }

    // Nothing ended an hour ago.
    let out = a.ok(&["clean", "--older-than", "1h"]);
    assert_eq!(out.text(), "removed 0 finished tasks\n");
    assert_eq!(a.list_all().len(), 3);

    let out = a.ok(&["clean"]);
    assert_eq!(out.text(), "removed 2 finished tasks\n");
    let left: Vec<String> = a
        .list_all()
        .iter()
        .filter_map(|t| t["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(left, std::slice::from_ref(&running));
    for id in [&ok, &bad] {
        assert!(
            !a.log_file(id).exists(),
            "the log of task {id} is still there"
        );
        let info = a.run(&["info", id]);
        assert_eq!(info.code, 125, "{info:?}");
        assert!(info.stderr.contains(&format!("no task with id {id}")));
    }
    assert!(a.log_file(&running).exists());

    a.open("go");
    assert_eq!(a.wait_end(&running)["state"], "succeeded");
    assert_eq!(String::from_utf8_lossy(&a.logs(&running)), "running\n");
    assert_eq!(a.ok(&["clean"]).text(), "removed 1 finished task\n");
    assert!(a.list_all().is_empty());
    // Ids are not reused after a clean.
    let next = a.bg("true");
    assert!(
        next.parse::<u64>().unwrap_or(0) > running.parse::<u64>().unwrap_or(u64::MAX),
        "id {next} reused"
    );
}
