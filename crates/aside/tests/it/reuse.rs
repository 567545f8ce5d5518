//! A supervisor serves one task after another: each task still starts as if it had a
//! supervisor of its own.

use crate::support::*;

/// A supervisor keeps the bulk of its tasks' environment from one task to the next (it is
/// sent only when it differs): each task still starts with its own caller's environment,
/// with nothing left of the last one's, its `--env` over it, `TERM` for a terminal, or the
/// daemon's environment when its caller sent none.
#[test]
fn a_reused_supervisor_starts_each_task_with_that_tasks_environment() {
    let a = Aside::new();
    // The daemon starts from a caller without V, W or TERM.
    a.ok(&["daemon", "start"]);
    // The task prints its supervisor (its parent) and what it has of V, W and TERM.
    let probe = "echo \"$PPID ${V-unset} ${W-unset} ${TERM-unset}\"";
    let mut supervisor = None;
    let mut seen = |out: &str| {
        let (sup, vars) = out.trim_end().split_once(' ').expect("pid and values");
        let sup: i32 = sup.parse().expect("a pid");
        if let Some(first) = supervisor {
            assert_eq!(sup, first, "the idle supervisor serves the next task");
        }
        supervisor = Some(sup);
        until_idle(sup);
        vars.to_string()
    };
    let run = |flags: &[&str], vars: &[(&str, &str)]| {
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--", "sh", "-c", probe]);
        let mut cmd = a.cmd(&args);
        cmd.envs(vars.iter().copied());
        let out = a.spawn_cmd(cmd, &args).finish();
        assert_eq!(out.code, 0, "{out:?}");
        out.text()
    };
    assert_eq!(seen(&run(&[], &[("V", "one")])), "one unset unset");
    assert_eq!(
        seen(&run(&[], &[("V", "one")])),
        "one unset unset",
        "the same base"
    );
    assert_eq!(seen(&run(&[], &[("V", "two"), ("W", "w")])), "two w unset");
    assert_eq!(
        seen(&run(&[], &[])),
        "unset unset unset",
        "nothing of the last task's"
    );
    assert_eq!(
        seen(&run(&["--env", "V=flag"], &[("V", "one")])),
        "flag unset unset",
        "--env over the caller's"
    );
    // A terminal task names its terminal over the caller's TERM; the next task has the
    // caller's again.
    let id = run(&["--bg", "--pty"], &[("V", "one"), ("TERM", "dumb")]);
    let id = id.trim();
    assert_eq!(a.wait_end(id)["state"], "succeeded");
    let screen = String::from_utf8(a.logs(id)).expect("text");
    assert_eq!(seen(screen.trim_end()), "one unset xterm-256color");
    assert_eq!(seen(&run(&[], &[("TERM", "dumb")])), "unset unset dumb");
    // A caller that sends no environment: the task gets the daemon's.
    let mut wire = a.wire();
    wire.hello();
    let started = wire.call(
        "task.start",
        serde_json::json!({"kind": "shell", "command": {"argv": ["sh", "-c", probe]},
               "mode": "background", "cwd": a.home.display().to_string()}),
    );
    let id = started["task"]["id"].as_str().expect("an id").to_string();
    assert_eq!(a.wait_end(&id)["state"], "succeeded");
    let text = String::from_utf8(a.logs(&id)).expect("text");
    assert_eq!(seen(&text), "unset unset unset");
    assert_eq!(seen(&run(&[], &[("W", "again")])), "unset again unset");
}
