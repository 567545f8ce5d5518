//! The daemon killed with SIGKILL: what the next one makes of the state it left.

use std::time::Duration;

use crate::support::*;

#[test]
fn a_task_whose_daemon_and_supervisor_are_killed_is_lost_and_killed_queued_ones_run_and_records_stay(
) {
    let a = Aside::with_config("max_running = 1\nkill_grace = \"1s\"\n");
    let d = a.home.display();
    // Finished before the crash.
    let done_ok = a.bg("echo finished");
    let done_bad = a.bg("exit 3");
    assert_eq!(a.wait_end(&done_ok)["state"], "succeeded");
    assert_eq!(a.wait_end(&done_bad)["state"], "failed");

    // Running at the crash: wrote something, has a setsid child, never ends by itself.
    let running = a.bg(&format!(
        "echo $$ > '{d}/root.pid'; setsid sh -c 'echo $$ > \"{d}/setsid.pid\"; exec sleep 303' & \
         echo before the crash; {}; echo after",
        a.gate("never")
    ));
    let root = a.read_pid("root.pid");
    let escaped = a.read_pid("setsid.pid");
    a.wait_state(&running, "running");
    assert!(eventually(SOON, || a.logs(&running) == b"before the crash\n"));
    // Queued behind it.
    let ran = a.path("queued-ran");
    let queued = a.bg(&format!("echo queued output; touch '{}'", ran.display()));
    assert_eq!(a.state(&queued), "queued");

    // Its supervisor dies with the daemon (a daemon alone leaves its tasks running: see
    // `outlive`).
    let shim = a.supervisor_of(&running);
    let daemon = a.daemon_pid().expect("daemon pid");
    kill(daemon, libc::SIGKILL);
    kill(shim, libc::SIGKILL);
    assert_all_dead(&[daemon, shim], SOON, "the killed daemon and supervisor");
    assert!(!is_dead(root), "the task outlives them until the restart");

    // The next CLI call starts a new daemon, which settles what the old one left.
    let after = a.list_all();
    let new_daemon = a.daemon_pid().expect("a new daemon");
    assert_ne!(new_daemon, daemon);
    let by_id = |id: &str| {
        after
            .iter()
            .find(|t| t["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("task {id} missing: {after:?}"))
    };
    assert_eq!(by_id(&done_ok)["state"], "succeeded");
    assert_eq!(by_id(&done_bad)["state"], "failed");
    assert_eq!(by_id(&done_bad)["exit_code"], 3);
    let lost = by_id(&running);
    assert_eq!(lost["state"], "lost", "{lost}");
    assert!(
        lost["reason"].as_str().unwrap_or("").contains("supervisor"),
        "{lost}"
    );
    assert_eq!(
        lost["unseen"], true,
        "the owner is told of the lost task: {lost}"
    );
    assert_eq!(
        a.run(&["wait", &running]).code,
        125,
        "a lost task waits as an aside failure"
    );
    assert_all_dead(
        &[root, escaped],
        Duration::from_secs(15),
        "the lost task's processes",
    );

    assert_eq!(
        a.logs(&running),
        b"before the crash\n",
        "the lost task's log keeps what it wrote"
    );
    assert_eq!(String::from_utf8_lossy(&a.logs(&done_ok)), "finished\n");

    let q = a.wait_end(&queued);
    assert_eq!(
        q["state"], "succeeded",
        "the queued task runs after the restart: {q}"
    );
    assert!(ran.exists());
    assert_eq!(String::from_utf8_lossy(&a.logs(&queued)), "queued output\n");
    assert_eq!(a.list_all().len(), 4);
}

#[test]
fn a_queued_task_keeps_its_timeout_across_a_daemon_restart() {
    let a = Aside::with_config("max_running = 1\n");
    let holder = a.bg(&a.gate("never"));
    a.wait_state(&holder, "running");
    let limited = a.bg_with(&["--timeout", "1s"], "sleep 30.456");
    assert_eq!(a.state(&limited), "queued");
    assert_eq!(a.info(&limited)["timeout_ms"], 1000);

    a.ok(&["daemon", "stop"]);
    // The next call starts a daemon, which runs the queued task: it must die after 1 s.
    a.wait_state(&limited, "running");
    let out = a.run(&["wait", &limited, "--timeout", "15s", "--json"]);
    assert_ne!(
        out.code, 148,
        "still running 15 s after starting with a 1 s timeout: {out:?}"
    );
    assert_eq!(out.json()[0]["state"], "timed_out", "{out:?}");
}
