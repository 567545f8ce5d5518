//! Secrets: a task's environment leaves no copy in the store's files once the task has
//! started, and the daemon's own model key never reaches a task.

use serde_json::json;

use crate::support::*;

const SECRET: &str = "s3cr3t-v4lue-e5f1c0de";

/// The bytes of the store's files (database and WAL) contain `needle`.
fn stored(a: &Aside, needle: &[u8]) -> bool {
    ["aside.db", "aside.db-wal"].iter().any(|f| {
        std::fs::read(a.path(f))
            .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
            .unwrap_or(false)
    })
}

#[test]
fn a_started_tasks_environment_leaves_no_copy_in_the_store() {
    let a = Aside::new();
    a.ok(&["daemon", "start"]);
    let mut cmd = a.cmd(&[
        "run",
        "--bg",
        "--",
        "sh",
        "-c",
        "test -n \"$GITHUB_TOKEN\" && sleep 300",
    ]);
    cmd.env("GITHUB_TOKEN", SECRET);
    let out = a.spawn_cmd(cmd, &["run", "--bg"]).finish();
    assert_eq!(out.code, 0, "{out:?}");
    let id = out.text().trim().to_string();
    a.wait_state(&id, "running");
    // While it runs: the environment was needed to start it, and is gone from the files.
    assert!(
        eventually(SOON, || !stored(&a, SECRET.as_bytes())),
        "the environment stays in the store's files while the task runs"
    );
    a.ok(&["stop", &id]);
    a.ok(&["daemon", "stop"]);
    assert!(
        !stored(&a, SECRET.as_bytes()),
        "the environment is in the store's files after the daemon stopped"
    );
}

#[test]
fn a_task_started_without_an_environment_does_not_get_the_daemons_model_key() {
    let a = Aside::new();
    let mut start = a.cmd(&["daemon", "start"]);
    start.env("OPENAI_API_KEY", SECRET);
    let out = a.spawn_cmd(start, &["daemon", "start"]).finish();
    assert_eq!(out.code, 0, "{out:?}");
    let mut w = a.wire();
    w.hello();
    let script = "echo \"key=${OPENAI_API_KEY:-none} path=${PATH:+set}\"";
    let started = w.call(
        "task.start",
        json!({"kind": "shell", "command": {"script": script}, "mode": "background"}),
    );
    let id = started["task"]["id"].as_str().expect("id").to_string();
    a.wait_end(&id);
    assert_eq!(String::from_utf8_lossy(&a.logs(&id)), "key=none path=set\n");
    // An environment the client sends is the task's, as it sent it.
    let started = w.call(
        "task.start",
        json!({"kind": "shell", "command": {"script": script}, "mode": "background",
               "env": {"OPENAI_API_KEY": "mine", "PATH": "/usr/bin:/bin"}}),
    );
    let id = started["task"]["id"].as_str().expect("id").to_string();
    a.wait_end(&id);
    assert_eq!(String::from_utf8_lossy(&a.logs(&id)), "key=mine path=set\n");
}
