//! Foreground runs: live output, the command's exit code, one ordered stream.

use crate::support::*;

#[test]
fn foreground_run_streams_live_output_in_order_and_passes_the_exit_code_through() {
    let a = Aside::new();
    let script = format!(
        "echo out1; echo err1 >&2; echo out2; {}; echo err2 >&2; echo out3; exit 3",
        a.gate("go")
    );
    let mut cli = a.spawn(&["run", "--", "sh", "-c", &script]);
    // Live: the first lines reach the terminal while the command still waits on the gate.
    cli.wait_stdout(b"out1\nerr1\nout2\n");
    assert!(cli.running(), "the CLI ended before the task did");
    a.open("go");
    let out = cli.finish();
    assert_eq!(out.code, 3, "exit 3 must come back as 3: {out:?}");
    let expected = b"out1\nerr1\nout2\nerr2\nout3\n";
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(expected)
    );

    let tasks = a.list_all();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let t = &tasks[0];
    assert_eq!(t["state"], "failed");
    assert_eq!(t["failure"], "exit");
    assert_eq!(t["exit_code"], 3);
    assert_eq!(t["mode"], "foreground");
    assert_eq!(t["detached"], false);
    let id = t["id"].as_str().expect("id");
    // stdout and stderr share one stream, kept in arrival order.
    assert_eq!(
        String::from_utf8_lossy(&a.logs(id)),
        String::from_utf8_lossy(expected)
    );
}

#[test]
fn foreground_exit_codes_follow_shell_conventions() {
    let a = Aside::new();
    for (script, code) in [
        ("exit 0", 0),
        ("exit 42", 42),
        ("kill -KILL $$", 128 + 9),
        ("kill -TERM $$", 128 + 15),
    ] {
        let out = a.run(&["run", "--", "sh", "-c", script]);
        assert_eq!(out.code, code, "sh -c {script:?}: {out:?}");
    }
    // A signal the task got from elsewhere is a failure, not a stop.
    let killed = a
        .list_all()
        .into_iter()
        .find(|t| t["command"]["argv"][2] == "kill -KILL $$");
    let killed = killed.expect("the killed task is listed");
    assert_eq!(killed["state"], "failed");
    assert_eq!(killed["failure"], "signal");
    assert_eq!(killed["signal"], 9);
}

/// A task starts as any program would from a shell: no signal blocked, none ignored, no
/// handler (its supervisor blocks SIGCHLD and SIGXFSZ for itself, Rust ignores SIGPIPE, and
/// glibc's posix_spawn ignores its two internal signals, 32 and 33, in what it starts: none
/// of that reaches the task).
#[test]
fn a_task_starts_with_no_signal_blocked_or_ignored_whatever_its_input() {
    let a = Aside::new();
    // Read by the task's own first process (grep), not by a shell that may reset it.
    let signals = |flags: &[&str]| {
        let mut args = vec!["run", "--bg"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--", "grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]);
        let id = a.ok(&args).text().trim().to_string();
        assert_eq!(a.wait_end(&id)["state"], "succeeded");
        String::from_utf8_lossy(&a.logs(&id)).replace("\r", "")
    };
    for flags in [&[][..], &["--stdin"], &["--pty"]] {
        assert_eq!(
            signals(flags).trim(),
            "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000",
            "a task run with {flags:?}"
        );
    }
}

/// Where `clone3` cannot be had, supervisors start tasks with std's spawn (glibc's
/// posix_spawn): the same output, exit codes, terminal, cgroup and signal mask. Only glibc's
/// two internal signals (32 and 33) are ignored there, as posix_spawn makes them.
#[test]
fn tasks_start_the_same_through_std_spawn() {
    let a = Aside::new();
    a.spawn_daemon("export ASIDE_SHIM_STD_SPAWN=1");
    let out = a.run(&["run", "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!((out.code, out.text()), (3, "out\nerr\n".to_string()));
    assert_eq!(a.run(&["run", "--", "no-such-command-here"]).code, 127);
    let tty = a.run(&[
        "run",
        "--pty",
        "--",
        "sh",
        "-c",
        "tty >/dev/null && echo tty",
    ]);
    assert_eq!(tty.text().replace('\r', ""), "tty\n");
    let signals = a.ok(&[
        "run",
        "--",
        "grep",
        "-E",
        "^Sig(Blk|Ign)",
        "/proc/self/status",
    ]);
    assert_eq!(
        signals.text(),
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000180000000\n"
    );
    let group = a
        .ok(&["run", "--", "grep", "^0::", "/proc/self/cgroup"])
        .text();
    if a.path("cgroup").exists() {
        assert!(
            group.contains("/sup-"),
            "born in its supervisor's group: {group}"
        );
    }
}

#[test]
fn tasks_run_in_the_callers_directory_and_environment_with_stdin_closed() {
    let a = Aside::new();
    std::fs::create_dir(a.path("sub")).expect("mkdir");
    let out = a.ok(&[
        "run",
        "--cwd",
        "sub",
        "--env",
        "EXTRA=x y",
        "--",
        "sh",
        "-c",
        "pwd; echo \"$EXTRA|$ASIDE_TASK_ID|$ASIDE_IT_MARKER\"; cat; echo stdin-done",
    ]);
    let marker = &a.marker;
    assert_eq!(
        out.text(),
        format!("{}\nx y|1|{marker}\nstdin-done\n", a.path("sub").display())
    );
}

#[test]
fn a_foreground_task_is_cancelled_when_its_cli_dies_before_detaching() {
    let a = Aside::new();
    let d = a.home.display();
    let script = format!("echo $$ > '{d}/sh.pid'; echo up; {}", a.gate("never"));
    let fg = a.spawn(&["run", "--", "sh", "-c", &script]);
    fg.wait_stdout(b"up\n");
    let pid = a.read_pid("sh.pid");
    let id = a.wait_live(1)[0]["id"].as_str().expect("id").to_string();
    fg.signal(libc::SIGKILL);
    let _ = fg.finish();
    let rec = a.wait_end(&id);
    assert_eq!(rec["state"], "cancelled", "{rec}");
    assert_eq!(rec["reason"]["cause"], "owner_gone", "{rec}");
    assert_all_dead(&[pid], SOON, "the abandoned task");
}

#[test]
fn a_foreground_cli_whose_reader_goes_away_stops_the_task_and_exits_125_saying_so() {
    use std::io::Read;
    let a = Aside::new();
    let d = a.home.display();
    let script = format!("echo $$ > '{d}/yes.pid'; exec yes");
    let mut cmd = a.cmd(&["run", "--", "sh", "-c", &script]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut first = [0u8; 4];
    stdout.read_exact(&mut first).expect("read");
    assert_eq!(&first, b"y\ny\n");
    drop(stdout);
    let mut status = None;
    assert!(eventually(SOON, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    }));
    assert_eq!(status.and_then(|s| s.code()), Some(125));
    let mut said = String::new();
    stderr.read_to_string(&mut said).expect("stderr");
    assert!(
        said.contains("standard output") && said.contains("stopped"),
        "{said}"
    );
    let rec = &a.list_all()[0];
    assert_eq!(rec["state"], "cancelled", "{rec}");
    assert!(
        rec["reason"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("reader"),
        "{rec}"
    );
    assert_all_dead(&[a.read_pid("yes.pid")], SOON, "yes");
}

#[test]
fn a_trivial_run_returns_at_once_with_no_timer_keeping_it() {
    // The wait budget (2 minutes) and the daemon's retention timer must not hold the CLI.
    let a = Aside::new();
    a.ok(&["daemon", "start"]);
    let started = std::time::Instant::now();
    let out = a.run(&["run", "--", "true"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "aside run -- true took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_grandchild_holding_the_pipe_does_not_hold_the_task() {
    let a = Aside::new();
    let started = std::time::Instant::now();
    let out = a.run(&["run", "--", "sh", "-c", "sleep 60 & echo parent done"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.text(), "parent done\n");
    // Bounded by the drain time (2 s) and the kill grace, never by the sleep.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let tasks = a.list_all();
    assert_eq!(tasks[0]["state"], "succeeded", "{tasks:?}");
}
