//! Logging into a full disk: the task fails with a capture error, the daemon goes on.

use std::io::Write;

use crate::support::*;

#[test]
fn a_log_write_past_the_file_size_limit_fails_the_task_and_the_daemon_keeps_serving() {
    let a = Aside::new();
    // dash counts ulimit -f in 512-byte blocks: 2048 blocks = 1 MiB per file.
    a.spawn_daemon("ulimit -f 2048");
    let daemon = a.daemon_pid().expect("daemon pid");

    let id = a.bg("head -c 5000000 /dev/zero; echo unreachable");
    let rec = a.wait_end(&id);
    assert_eq!(rec["state"], "failed", "{rec}");
    assert_eq!(rec["failure"], "capture", "{rec}");
    let error = rec["error"].as_str().unwrap_or("");
    let log = a.log_file(&id).display().to_string();
    assert!(
        error.contains(&log),
        "the error names the log {log}: {error:?}"
    );
    // 1 MiB with dash, 2 MiB where sh counts in KiB: in any case short of everything.
    assert!(
        rec["output_bytes"].as_u64().unwrap_or(0) <= 2 << 20,
        "{rec}"
    );
    assert_eq!(a.run(&["wait", &id]).code, 1);
    let shown = a.ok(&["info", &id]).text();
    assert!(shown.contains("output capture failed"), "{shown}");

    // The daemon is the same and still works.
    assert!(!is_dead(daemon));
    assert_eq!(a.daemon_pid(), Some(daemon));
    let out = a.ok(&["run", "--", "echo", "still here"]);
    assert_eq!(out.text(), "still here\n");
    let small = a.bg("echo small log");
    assert_eq!(a.wait_end(&small)["state"], "succeeded");
    assert_eq!(a.logs(&small), b"small log\n");
    // What reached the log before the limit can still be read.
    let partial = a.logs(&id);
    assert!(
        !partial.is_empty() && partial.iter().all(|b| *b == 0),
        "{} bytes",
        partial.len()
    );
}

#[test]
fn a_full_disk_leaves_aside_usable_and_keeps_every_end_state() {
    let Some(a) = Aside::on_small_disk(20) else {
        eprintln!("skipped: no tmpfs can be mounted here (needs root)");
        return;
    };
    let waiting = a.bg(&a.gate("go"));
    let stopped = a.bg(&a.gate("never"));
    // One task's log fills the disk (all but what aside keeps for its state): that task
    // fails, saying why.
    let filler = a.bg("head -c 40000000 /dev/zero");
    let rec = a.wait_end(&filler);
    assert_eq!(rec["state"], "failed", "{rec}");
    let error = rec["error"].as_str().unwrap_or_default();
    assert!(error.contains("No space left on device"), "{rec}");

    // Reading works on a full disk.
    let ls = a.ok(&["ls"]).text();
    assert!(ls.contains(&waiting), "{ls}");
    a.ok(&["info", &filler]);
    assert!(!a.logs(&filler).is_empty());
    // Starting says why it cannot.
    let run = a.run(&["run", "--", "true"]);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(run.stderr.contains("no space left"), "{run:?}");
    // A task that ends meanwhile keeps its end state; stopping one works.
    a.open("go");
    assert_eq!(a.wait_end(&waiting)["state"], "succeeded");
    let stop = a.ok(&["stop", &stopped]);
    assert!(stop.text().contains("cancelled"), "{stop:?}");
    // A restart (kill -9) loses none of it.
    let pid = a.daemon_pid().expect("daemon");
    kill(pid, 9);
    assert!(eventually(SOON, || is_dead(pid)));
    assert_eq!(a.info(&waiting)["state"], "succeeded");
    assert_eq!(a.info(&stopped)["state"], "cancelled");
    assert_eq!(a.info(&filler)["state"], "failed");

    // Cleaning frees the space, and aside runs again.
    a.ok(&["clean"]);
    assert_eq!(a.ok(&["run", "--", "echo", "back"]).text(), "back\n");
}

#[test]
fn starts_go_on_under_a_file_size_limit() {
    let a = Aside::new();
    // dash counts ulimit -f in 512-byte blocks: 2048 blocks = 1 MiB per file.
    a.spawn_daemon("ulimit -f 2048");
    let mut w = a.wire();
    w.hello();
    let mut ids = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..300 {
        let r = w.request(
            "task.start",
            serde_json::json!({"kind": "shell", "command": {"argv": ["true"]},
                               "mode": "background", "cwd": "/"}),
        );
        match r["result"]["task"]["id"].as_str() {
            Some(id) => ids.push(id.to_string()),
            None => refused.push(r["error"]["message"].to_string()),
        }
    }
    assert!(
        refused.is_empty(),
        "{} refused: {:?}",
        refused.len(),
        &refused[..refused.len().min(3)]
    );
    for id in &ids {
        assert_eq!(a.wait_end(id)["state"], "succeeded", "task {id}");
    }
}

/// Fills the file system holding `path` to the last byte with a file of the test's own.
fn fill(path: &std::path::Path) {
    let mut f = std::fs::File::create(path).expect("filler");
    let block = vec![0u8; 64 << 10];
    while f.write_all(&block).is_ok() {}
    let small = [0u8; 512];
    while f.write_all(&small).is_ok() {}
}

#[test]
fn tasks_that_end_while_others_fill_the_disk_keep_their_end_state() {
    let Some(a) = Aside::on_small_disk(20) else {
        eprintln!("skipped: no tmpfs can be mounted here (needs root)");
        return;
    };
    let first = a.bg(&a.gate("first"));
    let second = a.bg(&a.gate("second"));
    // Someone else fills the disk: the store keeps room for the ends.
    fill(&a.path("fill-1"));
    a.open("first");
    assert_eq!(a.wait_end(&first)["state"], "succeeded");
    // Full again: still no end is dropped, and new tasks are refused.
    fill(&a.path("fill-2"));
    a.open("second");
    assert_eq!(a.wait_state(&second, "succeeded")["state"], "succeeded");
    let run = a.run(&["run", "--", "true"]);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(run.stderr.contains("no space left"), "{run:?}");
    // Room again: a kill -9 after that loses nothing.
    std::fs::remove_file(a.path("fill-2")).expect("free space");
    std::fs::remove_file(a.path("fill-1")).expect("free space");
    assert!(eventually(SOON, || a.run(&["run", "--", "true"]).code == 0));
    let pid = a.daemon_pid().expect("daemon");
    kill(pid, 9);
    assert!(eventually(SOON, || is_dead(pid)));
    assert_eq!(a.info(&first)["state"], "succeeded");
    assert_eq!(a.info(&second)["state"], "succeeded");
}
