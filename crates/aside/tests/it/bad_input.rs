//! Bad input: every mistake gets a clear message and the right exit code.

use crate::support::*;

#[test]
fn unknown_ids_exit_125_naming_the_id() {
    let a = Aside::new();
    for args in [
        &["logs", "999"][..],
        &["stop", "999"],
        &["wait", "999"],
        &["info", "999"],
        &["detach", "999"],
    ] {
        let out = a.run(args);
        assert_eq!(out.code, 125, "aside {args:?}: {out:?}");
        assert!(
            out.stderr.contains("no task with id 999"),
            "aside {args:?}: {:?}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "aside {args:?}: {out:?}");
    }
    // One unknown id among known ones is refused before anything is stopped.
    let id = a.bg(&a.gate("go"));
    let out = a.run(&["stop", &id, "999"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert_eq!(a.state(&id), "running");
    a.open("go");
    a.wait_end(&id);
}

#[test]
fn malformed_ids_are_refused_before_reaching_the_daemon() {
    let a = Aside::new();
    for bad in ["../x", "0", "042", "-1", "1.5", "12345678901234567", "x"] {
        for cmd in ["logs", "stop", "wait", "info", "detach"] {
            let out = a.run(&[cmd, "--", bad]);
            assert_eq!(out.code, 125, "aside {cmd} {bad:?}: {out:?}");
            assert!(
                out.stderr.contains("invalid task id") && out.stderr.contains(bad),
                "aside {cmd} {bad:?}: {:?}",
                out.stderr
            );
        }
    }
    assert!(!a.socket().exists(), "a malformed id started the daemon");
}

#[test]
fn a_command_that_does_not_exist_exits_127_and_the_task_failed() {
    let a = Aside::new();
    let out = a.run(&["run", "--", "aside-no-such-command-xyz", "arg"]);
    assert_eq!(out.code, 127, "{out:?}");
    assert!(
        out.stderr.contains("aside-no-such-command-xyz"),
        "{:?}",
        out.stderr
    );
    // It never waited for a slot: nothing says it was queued.
    assert!(!out.stderr.contains("queued"), "{:?}", out.stderr);
    let tasks = a.list_all();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["state"], "failed");
    assert_eq!(tasks[0]["failure"], "spawn");
    assert_eq!(tasks[0]["not_found"], true);

    let id = a.bg_with(&[], "true");
    a.wait_end(&id);
    // Through `run --bg` and `wait` as well.
    let bg = a
        .ok(&["run", "--bg", "--", "aside-no-such-command-xyz"])
        .text()
        .trim()
        .to_string();
    assert_eq!(a.run(&["wait", &bg]).code, 127);
}

#[test]
fn a_file_that_cannot_be_executed_exits_126() {
    let a = Aside::new();
    std::fs::write(a.path("not-exec"), "#!/bin/sh\necho hi\n").expect("write");
    let out = a.run(&["run", "--", "./not-exec"]);
    assert_eq!(out.code, 126, "{out:?}");
    let t = &a.list_all()[0];
    assert_eq!(t["state"], "failed");
    assert_eq!(t["failure"], "spawn");
    assert_eq!(t["not_found"], false);
}

#[test]
fn a_missing_working_directory_exits_125_and_creates_no_task() {
    let a = Aside::new();
    let out = a.run(&["run", "--cwd", "/nonexistent/aside-dir", "--", "true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains("/nonexistent/aside-dir"),
        "{:?}",
        out.stderr
    );
    let bg = a.run(&["run", "--bg", "--cwd", "no-such-subdir", "--", "true"]);
    assert_eq!(bg.code, 125, "{bg:?}");
    assert!(bg.stdout.is_empty(), "no id printed: {bg:?}");
    assert!(bg.stderr.contains("no-such-subdir"), "{:?}", bg.stderr);
    assert!(a.list_all().is_empty(), "a task was created");
}

#[test]
fn a_group_limit_of_zero_stops_the_daemon_from_starting_with_a_message_naming_it() {
    let a = Aside::with_config("[groups]\nbuild = 0\n");
    for args in [&["ls"][..], &["daemon", "start"]] {
        let out = a.run(args);
        assert_eq!(out.code, 125, "aside {args:?}: {out:?}");
        assert!(
            out.stderr.contains("did not start")
                && out.stderr.contains("config.toml")
                && out.stderr.contains("\"build\"")
                && out.stderr.contains("at least 1"),
            "aside {args:?}: {:?}",
            out.stderr
        );
    }
    assert!(a.daemon_processes().is_empty());
    assert_eq!(a.run(&["daemon", "status"]).code, 1);
}

#[test]
fn other_bad_config_values_name_their_key() {
    for (config, key) in [
        ("max_running = 0\n", "max_running"),
        ("spill = \"lots\"\n", "spill"),
        ("kill_grace = \"soon\"\n", "kill_grace"),
        ("max_runing = 2\n", "max_runing"),
    ] {
        let a = Aside::with_config(config);
        let out = a.run(&["ls"]);
        assert_eq!(out.code, 125, "{config:?}: {out:?}");
        assert!(out.stderr.contains(key), "{config:?}: {:?}", out.stderr);
    }
}

#[test]
fn absurd_durations_are_refused_with_a_clear_message() {
    let a = Aside::new();
    for (flag, value) in [
        ("--timeout", "1000000000h"),
        ("--wait", "1000000000h"),
        ("--timeout", "soon"),
        ("--timeout", "0s"),
    ] {
        let out = a.run(&["run", flag, value, "--", "true"]);
        assert_eq!(out.code, 125, "{flag} {value}: {out:?}");
        assert!(
            !out.stderr.is_empty() && out.stderr.len() < 400,
            "{flag} {value}: {:?}",
            out.stderr
        );
        if value != "0s" {
            assert!(
                out.stderr.contains(flag) && out.stderr.contains(value),
                "{flag} {value}: {:?}",
                out.stderr
            );
        }
    }
    let out = a.run(&["wait", "1", "--timeout", "1000000000h"]);
    assert_eq!(out.code, 125);
    assert!(out.stderr.contains("10 years"), "{:?}", out.stderr);
    let out = a.run(&["clean", "--older-than", "forever"]);
    assert_eq!(out.code, 125);
    assert!(out.stderr.contains("--older-than"), "{:?}", out.stderr);
    assert!(a.list_all().is_empty(), "no task was created");
}

#[test]
fn a_malformed_env_flag_is_refused() {
    let a = Aside::new();
    let out = a.run(&["run", "--env", "NOEQUALS", "--", "true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("NOEQUALS"), "{:?}", out.stderr);
    let out = a.ok(&[
        "run",
        "--env",
        "GREETING=hi there",
        "--",
        "sh",
        "-c",
        "echo $GREETING $ASIDE_TASK_ID",
    ]);
    assert_eq!(out.text(), "hi there 1\n");
}

#[test]
fn a_state_directory_too_deep_for_a_socket_is_refused_clearly() {
    let a = Aside::new();
    let deep = a.home.join("d".repeat(60)).join("e".repeat(60));
    std::fs::create_dir_all(&deep).expect("mkdir");
    let mut cmd = a.cmd(&["ls"]);
    cmd.env("ASIDE_HOME", &deep);
    let out = a.spawn_cmd(cmd, &["ls"]).finish();
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains("too long") && out.stderr.contains("ASIDE_HOME"),
        "{:?}",
        out.stderr
    );
}

#[test]
fn bad_groups_and_owners_are_refused() {
    let a = Aside::new();
    let out = a.run(&["run", "--group", "no spaces", "--", "true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("no spaces"), "{:?}", out.stderr);
    let mut cmd = a.cmd(&["ls"]);
    cmd.env("ASIDE_OWNER", "o".repeat(300));
    let out = a.spawn_cmd(cmd, &["ls"]).finish();
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("owner"), "{:?}", out.stderr);
    // A group the config does not name is allowed: only the global limit applies.
    let id = a.bg_with(&["--group", "unnamed"], "true");
    assert_eq!(a.wait_end(&id)["group"], "unnamed");
    assert_eq!(a.list_all().len(), 1);
}

/// Twenty CLIs at once, half of them starting commands that do not exist, three times over:
/// std waits itself for a child whose exec failed, and the daemon's reaper (`waitpid(-1)`)
/// must never reap that child first (it used to, about 1 in 20, and panicked, leaving the
/// task queued for ever with its slot taken). Every task ends, failed with the OS error or
/// succeeded; foreground runs of missing commands exit 127 at once; no slot stays taken;
/// nothing panics.
#[test]
fn parallel_spawn_failures_all_end_with_the_os_error_and_free_their_slots() {
    let a = Aside::with_config("max_running = 64\n");
    a.ok(&["daemon", "start"]);
    // Three ways to fail: no such name in PATH, no such path, a file that cannot be run.
    let not_runnable = a.path("not-runnable");
    std::fs::write(&not_runnable, "#!/bin/sh\n").unwrap();
    let failing = |round: usize, n: usize| match n % 3 {
        0 => format!("aside-no-such-command-{round}-{n}"),
        1 => a
            .path(&format!("no-such-dir/cmd-{round}-{n}"))
            .display()
            .to_string(),
        _ => not_runnable.display().to_string(),
    };
    let mut started = Vec::new();
    for round in 0..3 {
        let runs: Vec<(Option<usize>, Spawned)> = (0..20)
            .map(|n| {
                let fails = (n % 2 == 0).then_some(n / 2);
                let command = match fails {
                    Some(k) => failing(round, k),
                    None => "true".to_string(),
                };
                (fails, a.spawn(&["run", "--bg", "--", &command]))
            })
            .collect();
        for (fails, run) in runs {
            let out = run.finish();
            assert_eq!(out.code, 0, "{out:?}");
            started.push((fails, out.text().trim().to_string()));
        }
    }
    let foreground: Vec<Spawned> = (0..6)
        .map(|n| a.spawn(&["run", "--", &format!("aside-no-such-command-fg-{n}")]))
        .collect();
    for run in foreground {
        let out = run
            .finish_within(SOON)
            .expect("a foreground run of a missing command hung");
        assert_eq!(out.code, 127, "{out:?}");
    }
    for (fails, id) in &started {
        let end = a.wait_end(id);
        match fails {
            Some(k) => {
                assert_eq!(end["state"], "failed", "{end}");
                assert_eq!(end["failure"], "spawn", "{end}");
                // Not found (exit 127), or found but not runnable (126), with the OS's words.
                assert_eq!(end["not_found"], k % 3 != 2, "{end}");
                let error = end["error"].as_str().unwrap_or_default();
                let words = if k % 3 == 2 {
                    "ermission denied"
                } else {
                    "not found"
                };
                assert!(error.contains(words), "{end}");
            }
            None => assert_eq!(end["state"], "succeeded", "{end}"),
        }
    }
    let status = a.wire().call("daemon.status", serde_json::json!({}));
    assert_eq!(status["queued"], 0, "{status}");
    assert_eq!(status["running"], 0, "{status}");
    let log = std::fs::read_to_string(a.path("daemon.log")).unwrap_or_default();
    assert!(!log.contains("panicked"), "the daemon panicked: {log}");
}

/// A flag `run` does not know, before `--`, is a usage error (exit 125, as the README's
/// table says for a bad flag), not the command to run; after `--` and after the command's
/// first word everything is the command's.
#[test]
fn unknown_flags_of_run_are_refused_not_run() {
    let a = Aside::new();
    for args in [
        &["run", "--depends-on", "1", "--", "true"][..],
        &["run", "--session", "s999", "--", "true"],
        &["run", "--bg", "--no-such-flag", "--", "true"],
        &["run"],
        &["no-such-command"],
        &[],
    ] {
        let out = a.run(args);
        assert_eq!(out.code, 125, "aside {args:?}: {out:?}");
        assert!(
            out.stderr.contains("error:") || out.stderr.contains("Usage"),
            "aside {args:?}: {:?}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "aside {args:?}: {out:?}");
    }
    assert!(!a.socket().exists(), "a usage error started the daemon");
    // Help and version still succeed.
    assert_eq!(a.run(&["run", "--help"]).code, 0);
    assert_eq!(a.run(&["--version"]).code, 0);
    // The command's own flags stay the command's.
    let out = a.ok(&["run", "--", "sh", "-c", "echo $1", "sh", "--after"]);
    assert_eq!(out.text(), "--after\n");
    let out = a.ok(&["run", "echo", "-n", "--bg"]);
    assert_eq!(out.text(), "--bg");
}

/// Every command whose standard output is full or closed says so and exits 125: no panic
/// (101), no silent success.
#[test]
fn a_full_or_closed_stdout_is_an_error_of_every_command() {
    let a = Aside::new();
    let id = a.bg("echo some output");
    a.wait_end(&id);
    let commands: [&[&str]; 11] = [
        &["ls"],
        &["ls", "--all"],
        &["ls", "--all", "--json"],
        &["info", &id],
        &["logs", &id],
        &["wait", &id],
        &["stop", &id],
        &["run", "--bg", "--", "true"],
        &["run", "--", "echo", "from the task"],
        &["daemon", "status"],
        &["agents"],
    ];
    for args in commands {
        for (what, target) in [("full", "/dev/full"), ("closed", "")] {
            let mut cmd = a.cmd(args);
            if target.is_empty() {
                // A pipe whose reader is gone before the command starts.
                let (reader, writer) = std::io::pipe().unwrap();
                drop(reader);
                cmd.stdout(writer);
            } else {
                let full = std::fs::OpenOptions::new()
                    .write(true)
                    .open(target)
                    .unwrap();
                cmd.stdout(full);
            }
            let child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
            drop(cmd);
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(125),
                "aside {args:?} with its stdout {what}: {stderr}"
            );
            assert!(
                stderr.contains("standard output"),
                "aside {args:?} with its stdout {what}: {stderr}"
            );
        }
    }
}
