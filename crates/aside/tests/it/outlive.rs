//! Running tasks outlive their daemon: a killed or restarted daemon leaves them running
//! under their supervisors, and the next one adopts them with their output, slots, timeouts
//! and ends; only a task whose supervisor dies is lost.

use std::time::Duration;

use crate::support::*;

/// A task that writes numbered lines (`PREFIX N`, from 0) until `gate` opens, then `end` and
/// exits with `code`.
fn writer(prefix: &str, gate: &str, code: i32) -> String {
    format!(
        "i=0; until {gate_test}; do echo \"{prefix} $i\"; i=$((i+1)); sleep 0.2; done; echo {prefix} end; exit {code}",
        gate_test = gate_test(gate)
    )
}

/// The shell test that is true once `gate` (a path) exists.
fn gate_test(gate: &str) -> String {
    format!("[ -e '{gate}' ]")
}

/// Checks that `log` holds `PREFIX 0`, `PREFIX 1`, ... with none missing or doubled, then
/// `PREFIX end` (interleaved with other prefixes' lines, which are ignored).
fn assert_numbered(log: &str, prefix: &str, what: &str) {
    let mine: Vec<&str> = log
        .lines()
        .filter(|l| l.split(' ').next() == Some(prefix))
        .collect();
    let Some((last, numbered)) = mine.split_last() else {
        panic!("{what}: no line of {prefix} in {log:?}");
    };
    assert_eq!(*last, format!("{prefix} end"), "{what}: {log:?}");
    assert!(!numbered.is_empty(), "{what}: {log:?}");
    for (i, l) in numbered.iter().enumerate() {
        assert_eq!(*l, format!("{prefix} {i}"), "{what}: line {i} of {log:?}");
    }
}

/// The test: `kill -9` of the daemon with 100 running tasks, some writing all the
/// time, some with process trees; every task is still running under the next daemon, its
/// output byte-exact across the gap, and each ends with its real exit code.
#[test]
fn a_hundred_running_tasks_outlive_a_killed_daemon_byte_exact_to_their_real_exit() {
    let a = Aside::with_config("max_running = 200\n");
    let gate = a.path("go").display().to_string();
    let mut tasks = Vec::new();
    for n in 0..100 {
        let code = n % 7;
        let script = if n % 4 == 0 {
            // A tree: two writers in the background and the task's own, waited for.
            format!(
                "sh -c '{a}' & sh -c '{b}' & {c}; wait",
                a = writer(&format!("t{n}a"), &gate, 0).replace('\'', "'\\''"),
                b = writer(&format!("t{n}b"), &gate, 0).replace('\'', "'\\''"),
                c = writer(&format!("t{n}"), &gate, code),
            )
        } else {
            writer(&format!("t{n}"), &gate, code)
        };
        tasks.push((n, code, a.bg(&script)));
    }
    // Every task runs and has written.
    let all_writing = eventually(Duration::from_secs(60), || {
        let live = a.ok(&["ls", "--json"]).json();
        let live = live.as_array().cloned().unwrap_or_default();
        live.len() == 100
            && live
                .iter()
                .all(|t| t["state"] == "running" && t["output_bytes"].as_u64() > Some(0))
    });
    assert!(all_writing, "not all 100 tasks ran and wrote");

    let daemon = a.kill_daemon();
    // They write on while no daemon is there.
    std::thread::sleep(Duration::from_millis(600));

    let after = a.list_all();
    assert_ne!(a.daemon_pid(), Some(daemon));
    assert_eq!(after.len(), 100);
    for t in &after {
        assert_eq!(t["state"], "running", "adopted: {t}");
    }
    a.open("go");
    for (n, code, id) in &tasks {
        let end = a.wait_end(id);
        let expected = if *code == 0 { "succeeded" } else { "failed" };
        assert_eq!(end["state"], expected, "task {n}: {end}");
        assert_eq!(end["exit_code"], *code, "task {n}: {end}");
        let log = String::from_utf8(a.logs(id)).expect("text");
        assert_eq!(end["output_bytes"], log.len() as u64, "task {n}: {end}");
        assert_numbered(&log, &format!("t{n}"), &format!("task {n}"));
        if n % 4 == 0 {
            assert_numbered(&log, &format!("t{n}a"), &format!("task {n}'s child a"));
            assert_numbered(&log, &format!("t{n}b"), &format!("task {n}'s child b"));
        }
    }
}

/// `kill -9` of one supervisor: that task alone ends `lost`, its tree killed; its
/// neighbours run on.
#[test]
fn a_killed_supervisor_loses_its_task_alone_and_kills_its_tree() {
    let a = Aside::new();
    let d = a.home.display();
    let ids: Vec<String> = (0..3)
        .map(|n| {
            a.bg(&format!(
                "sleep 300 & echo $! > '{d}/child{n}.pid'; setsid sleep 301 & echo $! > '{d}/setsid{n}.pid'; wait"
            ))
        })
        .collect();
    let children: Vec<(i32, i32)> = (0..3)
        .map(|n| {
            (
                a.read_pid(&format!("child{n}.pid")),
                a.read_pid(&format!("setsid{n}.pid")),
            )
        })
        .collect();
    for id in &ids {
        a.wait_state(id, "running");
    }
    let shim = a.supervisor_of(&ids[1]);
    kill(shim, libc::SIGKILL);
    let lost = a.wait_end(&ids[1]);
    assert_eq!(lost["state"], "lost", "{lost}");
    assert!(
        lost["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("supervisor"),
        "{lost}"
    );
    assert_all_dead(
        &[children[1].0, children[1].1],
        SOON,
        "the lost task's processes",
    );
    for n in [0, 2] {
        assert_eq!(a.state(&ids[n]), "running", "neighbour {n}");
        assert!(!is_dead(children[n].0) && !is_dead(children[n].1));
    }
    a.ok(&["stop", &ids[0], &ids[2]]);
}

/// A task that ends while no daemon is there gets its real end (code and time) from the
/// next daemon, and its owner's notice.
#[test]
fn a_task_that_ends_while_no_daemon_runs_gets_its_real_end_and_its_notice() {
    let a = Aside::new();
    let id = a.bg(&format!(
        "echo before; {}; echo after; exit 7",
        a.gate("go")
    ));
    a.wait_state(&id, "running");
    a.kill_daemon();
    a.open("go");
    std::thread::sleep(Duration::from_millis(500));
    let end = a.wait_end(&id);
    assert_eq!(end["state"], "failed", "{end}");
    assert_eq!(end["exit_code"], 7, "{end}");
    assert_eq!(a.logs(&id), b"before\nafter\n");
    let listed = a.list_all();
    let t = listed.iter().find(|t| t["id"] == id.as_str()).unwrap();
    assert_eq!(t["unseen"], true, "its owner is told: {t}");
}

/// A supervisor whose task ended while no daemon ran, leaving a process behind, lets go of
/// its socket before it stops what is left (for up to the grace): a daemon that starts
/// meanwhile finds the end in the status file at once, not a socket nobody answers.
#[test]
fn a_supervisor_stopping_what_its_task_left_lets_go_of_its_socket_first() {
    let a = Aside::with_config("kill_grace = \"60s\"\n");
    let d = a.home.display();
    let id = a.bg(&format!(
        "trap '' TERM; sleep 300 & echo $! > '{d}/left.pid'; {}; exit 3",
        a.gate("go")
    ));
    a.wait_state(&id, "running");
    let left = a.read_pid("left.pid");
    a.kill_daemon();
    a.open("go");
    let run_dir = a.home.join("run");
    assert!(
        eventually(SOON, || run_dir.join(format!("{id}.end")).exists()),
        "the end is kept in the status file"
    );
    assert!(!is_dead(left), "what the task left ignores SIGTERM");
    assert!(
        eventually(SOON, || !run_dir.join(format!("{id}.sock")).exists()),
        "the socket goes before the stop of what is left"
    );
    let end = a.wait_end(&id);
    assert_eq!(
        (end["state"].as_str(), end["exit_code"].as_i64()),
        (Some("failed"), Some(3)),
        "{end}"
    );
    kill(left, libc::SIGKILL);
}

/// The timeout counts from the task's real start, not from its adoption; its slot carries
/// across, so a queued task waits for it as before.
#[test]
fn slots_and_timeouts_carry_across_a_daemon_restart() {
    let a = Aside::with_config("max_running = 1\n");
    let limited = a.bg_with(&["--timeout", "3s"], "sleep 30.789");
    a.wait_state(&limited, "running");
    let queued = a.bg("echo ran");
    assert_eq!(a.state(&queued), "queued");
    a.kill_daemon();
    std::thread::sleep(Duration::from_millis(1500));
    // The next daemon: the adopted task holds the only slot.
    assert_eq!(a.state(&limited), "running");
    assert_eq!(a.state(&queued), "queued");
    let end = a.wait_end(&limited);
    assert_eq!(end["state"], "timed_out", "{end}");
    let ms = |field: &str| {
        serde_json::from_value::<aside_protocol::Timestamp>(end[field].clone())
            .expect("a time")
            .unix_ms()
    };
    let ran = Duration::from_millis(ms("ended_at") - ms("started_at"));
    assert!(
        ran < Duration::from_millis(4500),
        "a 3 s timeout counted from the adoption, not the start: ran {ran:?}"
    );
    assert_eq!(a.wait_end(&queued)["state"], "succeeded");
}

/// The test: `aside daemon restart` twenty times in a row while ten tasks stream
/// output and a foreground `aside run` follows one of them.
#[test]
fn twenty_restarts_lose_no_byte_of_ten_streams_and_a_foreground_follower() {
    let a = Aside::with_config("max_running = 20\n");
    let gate = a.path("go").display().to_string();
    let ids: Vec<String> = (0..10)
        .map(|n| a.bg(&writer(&format!("s{n}"), &gate, n)))
        .collect();
    let fg_script = writer("fg", &gate, 42);
    let follower = a.spawn(&["run", "--", "sh", "-c", &fg_script]);
    follower.wait_stdout(b"fg 0\n");
    for round in 0..20 {
        let out = a.run(&["daemon", "restart"]);
        assert_eq!(out.code, 0, "restart {round}: {out:?}");
        assert!(out.text().contains("11 running tasks kept"), "{out:?}");
    }
    a.open("go");
    let out = follower
        .finish_within(Duration::from_secs(60))
        .expect("the foreground run ends");
    assert_eq!(out.code, 42, "{out:?}");
    assert_numbered(&out.text(), "fg", "the foreground follower's output");
    for (n, id) in ids.iter().enumerate() {
        let end = a.wait_end(id);
        assert_eq!(end["exit_code"], n as i64, "{end}");
        let log = String::from_utf8(a.logs(id)).unwrap();
        assert_numbered(&log, &format!("s{n}"), &format!("stream {n}"));
    }
}

/// The keeper that forks supervisors holds no task: killed, it takes none with it, and the
/// next task start gets a new one.
#[test]
fn a_killed_keeper_loses_nothing_and_is_replaced_at_the_next_start() {
    let a = Aside::new();
    let first = a.bg(&format!("{}; echo first", a.gate("go")));
    a.wait_state(&first, "running");
    let daemon = a.daemon_pid().expect("daemon pid");
    let keeper = std::fs::read_dir(format!("/proc/{daemon}/task"))
        .unwrap()
        .flatten()
        .flat_map(|t| {
            std::fs::read_to_string(t.path().join("children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
                .collect::<Vec<_>>()
        })
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == "aside-shim")
        })
        .expect("the daemon's keeper");
    assert_ne!(
        a.supervisor_of(&first),
        keeper,
        "supervisors are its children, not it"
    );
    let victim = a.bg("sleep 300");
    a.wait_state(&victim, "running");
    kill(keeper, libc::SIGKILL);
    assert_all_dead(&[keeper], SOON, "the keeper");
    // The supervisors come back to the daemon: a stop of what a lost task left (here the
    // victim's) must not take them for strays.
    kill(a.supervisor_of(&victim), libc::SIGKILL);
    assert_eq!(a.wait_end(&victim)["state"], "lost");
    std::thread::sleep(Duration::from_millis(300));
    let second = a.bg("echo second");
    assert_eq!(a.wait_end(&second)["state"], "succeeded");
    assert_eq!(a.logs(&second), b"second\n");
    assert_eq!(a.state(&first), "running");
    a.open("go");
    assert_eq!(a.wait_end(&first)["state"], "succeeded");
    assert_eq!(a.logs(&first), b"first\n");
}

/// A supervisor whose task is over serves the next one: the same process, holding nothing
/// of the last task (as many descriptors), in its own cgroup while its task is in the
/// supervisor's group (the same group from task to task), its socket moved from task to task
/// (kept under the last task's name while idle, and adopted under the next one's across a
/// restart). One killed while idle is passed over and what it left is swept; idle ones go
/// with the daemon, and their groups with them.
#[test]
fn an_idle_supervisor_serves_the_next_task_and_goes_with_the_daemon() {
    let a = Aside::new();
    let run_dir = a.home.join("run");
    let socket = |id: &str| run_dir.join(format!("{id}.sock"));
    let cgroup = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .unwrap()
            .lines()
            .find(|l| l.starts_with("0::"))
            .unwrap_or_default()
            .to_string()
    };
    // A task held running until `go` opens: its id and supervisor.
    let mut n = 0;
    let mut hold = || {
        n += 1;
        let gate = format!("go{n}");
        let id = a.bg(&a.gate(&gate));
        a.wait_state(&id, "running");
        (id.clone(), a.supervisor_of(&id), gate)
    };
    // Once the task is `running` its supervisor has said it started, and has let go of what
    // the start took: its descriptors, its cgroup and the task's.
    let look = |id: &str, sup: i32| {
        let fds = std::fs::read_dir(format!("/proc/{sup}/fd"))
            .unwrap()
            .count();
        let task = a.info(id)["pid"].as_i64().unwrap() as i32;
        (fds, cgroup(sup), cgroup(task))
    };
    let finish = |id: &str, gate: &str| {
        a.open(gate);
        assert_eq!(a.wait_end(id)["state"], "succeeded");
    };
    let (id, first, gate) = hold();
    let (fds, own, task) = look(&id, first);
    let grouped = task.contains("/sup-");
    if grouped {
        assert_ne!(own, task, "the supervisor steps out of its task's cgroup");
    }
    finish(&id, &gate);
    until_idle(first);
    assert!(socket(&id).exists(), "kept under its last task's name");
    let mut last = id;
    for _ in 0..2 {
        let (id, again, gate) = hold();
        assert_eq!(again, first, "the idle supervisor serves the next task");
        let (fds_again, own_again, task_again) = look(&id, again);
        assert_eq!(
            (fds_again, own_again),
            (fds, own.clone()),
            "nothing is left"
        );
        assert_eq!(
            task_again, task,
            "the next task starts in the supervisor's group"
        );
        assert!(socket(&id).exists());
        assert!(
            !socket(&last).exists(),
            "its socket moved to the task's name"
        );
        finish(&id, &gate);
        until_idle(first);
        assert!(socket(&id).exists());
        last = id;
    }
    // A task on a reused supervisor is adopted across a restart; the new daemon gives an
    // adopted supervisor no other task, so it goes once its task is over, its socket with it.
    let (id, again, gate) = hold();
    assert_eq!(again, first);
    a.ok(&["daemon", "restart"]);
    finish(&id, &gate);
    assert_all_dead(&[first], SOON, "a supervisor whose keeper is gone");
    assert!(!socket(&id).exists());
    // One killed while idle is passed over; what it left goes at the next daemon's start.
    let (killed_id, killed, gate) = hold();
    finish(&killed_id, &gate);
    until_idle(killed);
    kill(killed, libc::SIGKILL);
    assert_all_dead(&[killed], SOON, "the idle supervisor");
    assert!(
        socket(&killed_id).exists(),
        "a killed supervisor leaves its socket"
    );
    let (id, next, gate) = hold();
    assert_ne!(next, killed);
    finish(&id, &gate);
    until_idle(next);
    a.ok(&["daemon", "stop"]);
    assert_all_dead(&[next], SOON, "an idle supervisor after its daemon stopped");
    assert!(!socket(&id).exists());
    if grouped {
        let groups = std::fs::read_to_string(a.path("cgroup")).map_or(0, |dir| {
            std::fs::read_dir(dir.trim_end())
                .map_or(0, |d| d.flatten().filter(|e| e.path().is_dir()).count())
        });
        assert_eq!(groups, 0, "no supervisor's group is left after the stop");
    }
    a.ok(&["daemon", "start"]);
    assert!(
        eventually(SOON, || !socket(&killed_id).exists()),
        "a killed idle supervisor's socket is swept"
    );
}

/// A supervisor whose task left a process behind (swept up after the end) serves no other
/// task: it exits once the end is acknowledged and the leftover is gone.
#[test]
fn a_supervisor_whose_task_left_a_process_behind_exits_after_its_end() {
    let a = Aside::new();
    let id = a.bg(&format!(
        "{}; sleep 300 >/dev/null 2>&1 & exit 0",
        a.gate("go")
    ));
    a.wait_state(&id, "running");
    let sup = a.supervisor_of(&id);
    a.open("go");
    assert_eq!(a.wait_end(&id)["state"], "succeeded");
    assert_all_dead(
        &[sup],
        Duration::from_secs(5),
        "the supervisor of a task with a leftover",
    );
}

/// A burst of short tasks through two slots: each slot that frees goes at once to a task that
/// waits, on a supervisor whose last end was just acknowledged (the launch right behind the
/// acknowledgement). Every one of them runs and succeeds.
#[test]
fn a_burst_of_short_tasks_through_two_slots_all_succeed() {
    let a = Aside::with_config("max_running = 2\n");
    a.ok(&["daemon", "start"]);
    let mut wire = a.wire();
    wire.hello();
    let n = 300;
    for i in 0..n {
        wire.send(&serde_json::json!({
            "jsonrpc": "2.0", "id": i, "method": "task.start",
            "params": {"kind": "shell", "command": {"argv": ["true"]}, "mode": "background"},
        }));
    }
    let ids: Vec<String> = (0..n)
        .map(|_| {
            wire.response()["result"]["task"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let done = wire.call(
        "task.wait",
        serde_json::json!({"ids": ids, "timeout_ms": 60_000}),
    );
    let failed: Vec<&serde_json::Value> = done["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] != "succeeded")
        .collect();
    assert_eq!(done["done"], true, "{done}");
    assert!(
        failed.is_empty(),
        "{} of {n} did not succeed: {:?}",
        failed.len(),
        failed.first()
    );
}

/// Only the daemon talks to a supervisor: another connection to its socket is turned away
/// and takes nothing from the task.
#[test]
fn a_stranger_on_a_supervisors_socket_changes_nothing() {
    let a = Aside::new();
    let id = a.bg(&format!("echo before; {}; echo after", a.gate("go")));
    a.wait_state(&id, "running");
    let socket = a.home.join("run").join(format!("{id}.sock"));
    let stranger = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
    std::thread::sleep(Duration::from_millis(300));
    drop(stranger);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(a.state(&id), "running");
    a.open("go");
    let end = a.wait_end(&id);
    assert_eq!(end["state"], "succeeded", "{end}");
    assert_eq!(a.logs(&id), b"before\nafter\n");
}

/// A follower (`aside wait` on a queued task) whose daemon was stopped on purpose waits for
/// one instead of starting one: the stop holds until someone starts a daemon.
#[test]
fn a_follower_does_not_undo_a_daemon_stop() {
    let a = Aside::with_config("max_running = 1\n");
    let holder = a.bg(&a.gate("never"));
    a.wait_state(&holder, "running");
    let queued = a.bg("echo ran");
    assert_eq!(a.state(&queued), "queued");
    let mut follower = a.spawn(&["wait", &queued]);
    std::thread::sleep(Duration::from_millis(300));
    a.ok(&["daemon", "stop"]);
    std::thread::sleep(Duration::from_secs(2));
    let status = a.run(&["daemon", "status"]);
    assert_eq!(
        status.code, 1,
        "a daemon runs again after the stop: {status:?}"
    );
    assert!(follower.running(), "the follower waits for a daemon");
    // Any other command starts the next daemon; the queued task runs; the follower sees it.
    assert_eq!(a.state(&holder), "cancelled");
    let out = follower
        .finish_within(Duration::from_secs(40))
        .expect("the follower ends");
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(a.logs(&queued), b"ran\n");
}

/// A daemon that stops and leaves its tasks running lets go of the state directory's lock
/// only once its connections to their supervisors are closed: a next daemon that takes the
/// lock at once finds each supervisor free to be adopted (one still held by the last daemon
/// turns a newcomer away, and its task would be recorded as lost).
#[test]
fn a_stopping_daemon_lets_go_of_its_supervisors_before_its_lock() {
    use std::io::BufRead;
    use std::os::fd::AsRawFd;
    let a = Aside::new();
    let id = a.bg(&a.gate("go"));
    a.wait_state(&id, "running");
    let socket = a.home.join("run").join(format!("{id}.sock"));
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(a.home.join("daemon.lock"))
        .unwrap();
    for round in 0..10 {
        let stop = a.spawn(&["daemon", "stop", "--keep-tasks"]);
        // Taken the moment the stopping daemon lets go of it, as a next daemon would.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        // SAFETY: flock on a descriptor this test holds open.
        while unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            assert!(std::time::Instant::now() < deadline, "the lock stays taken");
            std::hint::spin_loop();
        }
        let adopter = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        adopter
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut hello = String::new();
        let _ = std::io::BufReader::new(&adopter).read_line(&mut hello);
        assert!(
            hello.contains("\"type\":\"hello\""),
            "round {round}: the task's supervisor turned away the next holder of the lock: {hello:?}"
        );
        drop(adopter);
        // SAFETY: as above.
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_UN) };
        assert_eq!(stop.finish_within(Duration::from_secs(30)).unwrap().code, 0);
        a.ok(&["daemon", "start"]);
        assert_eq!(a.state(&id), "running", "round {round}");
    }
    a.open("go");
    assert_eq!(a.wait_end(&id)["state"], "succeeded");
}
