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
