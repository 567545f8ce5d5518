//! The completion hook (`on_end`): run when a task ends, with the record on stdin and
//! variables in its environment; it never holds up the daemon, and its failures are logged.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// A config whose hook writes the record it got to `ends/ID.json` and its variables to
/// `ends/ID.env`, then runs `then`.
fn hook_config(a_dir: &std::path::Path, then: &str) -> String {
    let ends = a_dir.join("ends");
    std::fs::create_dir_all(&ends).unwrap();
    let script = format!(
        "cat > {e}/$ASIDE_TASK_ID.tmp; \
         echo \"$ASIDE_TASK_STATE|${{ASIDE_TASK_EXIT_CODE-unset}}|$ASIDE_TASK_NAME|$ASIDE_TASK_GROUP|$ASIDE_TASK_OWNER|$PWD\" > {e}/$ASIDE_TASK_ID.env; \
         mv {e}/$ASIDE_TASK_ID.tmp {e}/$ASIDE_TASK_ID.json; {then}",
        e = ends.display()
    );
    format!("on_end = {}\n", toml_string(&script))
}

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// What the hook saw for task `id`: the record and the variables line.
fn seen(a: &Aside, id: &str) -> (Value, String) {
    let json = a.path("ends").join(format!("{id}.json"));
    let found = eventually(SOON, || json.exists());
    assert!(found, "no hook ran for task {id}");
    let record: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let env = std::fs::read_to_string(a.path("ends").join(format!("{id}.env"))).unwrap();
    (record, env.trim_end().to_string())
}

#[test]
fn the_hook_gets_the_record_on_stdin_and_the_variables() {
    let a = Aside::new();
    a.write_config(&hook_config(&a.home, "true"));
    let dir = a.path("work");
    std::fs::create_dir_all(&dir).unwrap();
    let ok = a.bg_with(
        &[
            "--name",
            "build",
            "--group",
            "ci",
            "--cwd",
            dir.to_str().unwrap(),
        ],
        "true",
    );
    let failed = a.bg("exit 3");
    a.wait_end(&ok);
    a.wait_end(&failed);

    let (record, env) = seen(&a, &ok);
    assert_eq!(record["id"], ok.as_str());
    assert_eq!(record["state"], "succeeded");
    assert_eq!(record["exit_code"], 0);
    assert_eq!(env, format!("succeeded|0|build|ci|cli|{}", dir.display()));

    let (record, env) = seen(&a, &failed);
    assert_eq!(record["failure"], "exit");
    assert!(env.starts_with("failed|3|||cli|"), "{env}");

    let stopped = a.bg(&a.gate("never"));
    a.wait_state(&stopped, "running");
    a.ok(&["stop", &stopped]);
    let (_, env) = seen(&a, &stopped);
    assert!(env.starts_with("cancelled|unset|"), "{env}");
}

#[test]
fn a_slow_or_failing_hook_holds_up_nothing_and_is_logged() {
    let a = Aside::new();
    // Every hook fails after a long time: the daemon must not wait for it.
    a.write_config(&hook_config(&a.home, "sleep 30; exit 7"));
    let started = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..6 {
        let out = a.ok(&["run", "--", "true"]);
        assert_eq!(out.code, 0);
        ids.push(
            a.list_all().last().unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "six foreground runs took {:?} behind slow hooks",
        started.elapsed()
    );
    // Four run at once: the first four tasks' hooks have started, the rest wait.
    for id in &ids[..4] {
        seen(&a, id);
    }
    std::thread::sleep(Duration::from_millis(300));
    let fifth = a.path("ends").join(format!("{}.json", ids[4]));
    assert!(!fifth.exists(), "a fifth hook ran beside four");
    a.ok(&["ls"]);

    let b = Aside::new();
    b.write_config("on_end = \"echo hook-output-here; exit 7\"\n");
    let id = b.bg("true");
    b.wait_end(&id);
    let log = b.home.join("daemon.log");
    let mut text = String::new();
    let found = eventually(SOON, || {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains(&format!("completion hook for task {id}"))
    });
    assert!(found, "no failure logged: {text}");
    assert!(text.contains("exited with code 7"), "{text}");
    assert!(
        text.contains("hook-output-here"),
        "its output goes to the log: {text}"
    );
    assert_eq!(b.state(&id), "succeeded", "the task is not touched");
}

#[test]
fn a_task_that_ended_while_no_daemon_ran_gets_its_hook_from_the_next() {
    let a = Aside::new();
    a.write_config(&hook_config(&a.home, "true"));
    let id = a.bg(&a.gate("go"));
    a.wait_state(&id, "running");
    a.ok(&["daemon", "stop", "--keep-tasks"]);
    a.open("go");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!a.path("ends").join(format!("{id}.json")).exists());
    assert_eq!(a.wait_end(&id)["state"], "succeeded");
    let (record, _) = seen(&a, &id);
    assert_eq!(record["state"], "succeeded");
}
