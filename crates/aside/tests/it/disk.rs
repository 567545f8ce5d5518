//! Logging into a full disk: the task fails with a capture error, the daemon goes on.

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
