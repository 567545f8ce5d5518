//! The daemon itself: schema, status, and how it is started.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use crate::support::*;

#[test]
fn schema_is_valid_json_describing_the_methods() {
    let a = Aside::new();
    let out = a.ok(&["schema"]);
    let schema = out.json();
    assert!(schema.is_object(), "{schema}");
    let text = out.text();
    for method in [
        "task.start",
        "task.stop",
        "task.read",
        "events.subscribe",
        "notifications.take",
    ] {
        assert!(
            text.contains(&format!("\"{method}\"")),
            "the schema does not mention {method}"
        );
    }
    assert!(!a.socket().exists(), "schema needs no daemon");
}

#[test]
fn daemon_status_reports_pid_and_socket_and_stop_ends_it() {
    let a = Aside::new();
    let out = a.run(&["daemon", "status", "--json"]);
    assert_eq!(out.code, 1, "no daemon yet: {out:?}");
    assert_eq!(out.json()["alive"], false);

    let started = a.ok(&["daemon", "start"]);
    let status = a.ok(&["daemon", "status", "--json"]).json();
    assert_eq!(status["alive"], true);
    let pid = status["pid"].as_i64().expect("pid") as i32;
    assert!(started.text().contains(&pid.to_string()), "{started:?}");
    assert_eq!(status["socket"], a.socket().display().to_string());
    assert_eq!(status["home"], a.home.display().to_string());
    assert!(!is_dead(pid));
    assert_eq!(a.daemon_processes(), vec![pid]);
    // Starting again reuses it.
    a.ok(&["daemon", "start"]);
    assert_eq!(a.daemon_pid(), Some(pid));

    let stopped = a.ok(&["daemon", "stop"]);
    assert!(stopped.text().contains("stopped"), "{stopped:?}");
    assert!(is_dead(pid), "daemon stop returns once the daemon is gone");
    assert_eq!(a.run(&["daemon", "status"]).code, 1);
    assert_eq!(a.ok(&["daemon", "stop"]).text(), "no daemon running\n");
}

#[test]
fn daemon_status_json_keeps_the_running_task_count() {
    let a = Aside::new();
    let id = a.bg(&a.gate("go"));
    a.wait_state(&id, "running");
    let status = a.ok(&["daemon", "status", "--json"]).json();
    // daemon.status on the wire says "running": 1 (tasks); the CLI replaces it with a bool,
    // so the count is lost to scripts.
    let mut w = a.wire();
    w.hello();
    let wire = w.call("daemon.status", serde_json::json!({}));
    assert_eq!(wire["running"], 1);
    assert_eq!(
        status["running"], 1,
        "the CLI's status --json lost the count: {status}"
    );
    a.open("go");
    a.wait_end(&id);
}

#[test]
fn two_clis_started_at_the_same_instant_share_one_daemon() {
    for round in 0..3 {
        let a = Aside::new();
        let barrier = Arc::new(Barrier::new(2));
        let clis: Vec<_> = (0..2)
            .map(|_| {
                let cmd = a.cmd(&["daemon", "start"]);
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let mut cmd = cmd;
                    barrier.wait();
                    cmd.output().expect("run aside")
                })
            })
            .collect();
        let outs: Vec<_> = clis
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect();
        let pids: Vec<String> = outs
            .iter()
            .map(|o| {
                assert!(o.status.success(), "round {round}: {o:?}");
                String::from_utf8_lossy(&o.stdout).trim().to_string()
            })
            .collect();
        assert_eq!(
            pids[0], pids[1],
            "round {round}: the two CLIs talked to different daemons"
        );
        let pid = a.daemon_pid().expect("daemon pid");
        assert!(
            pids[0].contains(&format!("pid {pid}")),
            "round {round}: {pids:?} vs {pid}"
        );
        // A losing daemon may take a moment to notice and exit; then one remains.
        let mut seen = Vec::new();
        let one = eventually(Duration::from_secs(10), || {
            seen = a.daemon_processes();
            seen == vec![pid]
        });
        assert!(
            one,
            "round {round}: daemon processes {seen:?}, expected only {pid}"
        );
    }
}

#[test]
fn daemon_stop_cancels_running_tasks_and_keeps_queued_ones_for_the_next_start() {
    let a = Aside::with_config("max_running = 1\n");
    let d = a.home.display();
    let running = a.bg(&format!("echo $$ > '{d}/r.pid'; {}", a.gate("never")));
    let pid = a.read_pid("r.pid");
    let queued = a.bg("echo later");
    assert_eq!(a.state(&queued), "queued");
    let daemon = a.daemon_pid().expect("daemon");

    a.ok(&["daemon", "stop"]);
    assert!(is_dead(daemon));
    assert!(is_dead(pid), "daemon stop leaves no task process behind");

    // The next call starts a daemon that runs what was queued.
    let rec = a.info(&running);
    assert_eq!(rec["state"], "cancelled", "{rec}");
    assert_eq!(rec["reason"]["cause"], "shutdown", "{rec}");
    let q = a.wait_end(&queued);
    assert_eq!(q["state"], "succeeded", "{q}");
    assert_eq!(a.logs(&queued), b"later\n");
}

#[test]
fn the_state_directory_and_socket_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let a = Aside::new();
    a.ok(&["daemon", "start"]);
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&a.home), 0o700);
    assert_eq!(mode(&a.socket()), 0o600);
}

#[test]
fn finished_tasks_past_retention_are_removed_with_their_logs() {
    let a = Aside::with_config("retention = \"1s\"\n");
    let id = a.bg("echo kept for a second");
    a.wait_end(&id);
    let log = a.log_file(&id);
    assert!(log.exists());
    std::thread::sleep(Duration::from_millis(1200));
    // The sweep runs when the daemon starts (and every 10 minutes after).
    a.ok(&["daemon", "stop"]);
    a.ok(&["daemon", "start"]);
    assert!(
        eventually(Duration::from_secs(10), || a.list_all().is_empty()),
        "{:?}",
        a.list_all()
    );
    assert!(!log.exists(), "the log went with the task");
}

/// A daemon whose state directory is deleted under it exits (its running tasks stopped)
/// instead of serving on unseen while the next CLI starts a second one.
#[test]
fn a_daemon_whose_state_directory_is_deleted_exits() {
    let a = Aside::new();
    let id = a.bg("sleep 300");
    a.wait_state(&id, "running");
    let pid = a.info(&id)["pid"].as_i64().expect("pid") as i32;
    let daemon = a.daemon_pid().expect("daemon");
    std::fs::remove_dir_all(&a.home).expect("remove the state directory");
    assert!(
        eventually(SOON, || is_dead(daemon)),
        "the daemon runs on without its state directory"
    );
    assert_all_dead(&[pid], SOON, "the task of the removed directory");
    // The next CLI starts a daemon of its own on a fresh directory.
    std::fs::create_dir_all(&a.home).expect("recreate");
    assert!(a.list_all().is_empty());
    let next = a.daemon_pid().expect("a new daemon");
    assert_ne!(next, daemon);
}

/// A daemon started from a binary that is then replaced (an upgrade): the CLI says so, and
/// `aside daemon restart` replaces it without stopping a running task.
#[test]
fn a_daemon_running_a_replaced_binary_is_pointed_out_and_restarted_without_a_stop() {
    let a = Aside::new();
    let old = a.path("aside-old");
    std::fs::copy(BIN, &old).unwrap();
    std::fs::copy(
        std::path::Path::new(BIN).with_file_name("aside-shim"),
        a.path("aside-shim"),
    )
    .unwrap();
    let cmd = a.cmd(&["daemon", "start"]);
    let mut old_cmd = std::process::Command::new(&old);
    old_cmd.args(["daemon", "start"]);
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            old_cmd.env(k, v);
        }
    }
    assert!(old_cmd.status().unwrap().success());
    let id = a.bg(&a.gate("go"));
    a.wait_state(&id, "running");
    let quiet = a.run(&["ls"]);
    assert!(!quiet.stderr.contains("daemon restart"), "{quiet:?}");
    // The upgrade: the old binary is replaced.
    std::fs::remove_file(&old).unwrap();
    std::fs::copy(BIN, &old).unwrap();
    let told = a.run(&["ls"]);
    assert!(
        told.stderr.contains("replaced") && told.stderr.contains("aside daemon restart"),
        "{told:?}"
    );
    let before = a.daemon_pid().unwrap();
    let out = a.ok(&["daemon", "restart"]);
    assert!(out.text().contains("1 running tasks kept"), "{out:?}");
    assert_ne!(a.daemon_pid().unwrap(), before);
    let after = a.run(&["ls"]);
    assert!(!after.stderr.contains("daemon restart"), "{after:?}");
    a.open("go");
    assert_eq!(a.wait_end(&id)["state"], "succeeded");
}
