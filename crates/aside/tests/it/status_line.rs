//! The status line of a foreground `aside run` on a terminal: after a few seconds, how long
//! the task has run and how much output it made, on stderr, redrawn in place and erased
//! before output and at the end; never when stderr is not a terminal.

use std::time::{Duration, Instant};

use crate::support::*;
use crate::tmux::{has_tmux, Tmux};

/// The pane's lines that have text.
fn lines(pane: &str) -> Vec<&str> {
    pane.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn a_long_foreground_run_shows_a_status_line_and_leaves_no_trace_of_it() {
    assert!(has_tmux(), "tmux is needed (apt-get install tmux)");
    let a = Aside::new();
    let bin = env!("CARGO_BIN_EXE_aside");
    let t = Tmux::new(&a);
    t.window(
        &a,
        "full",
        &format!("{bin} run -- sh -c 'echo start; sleep 6; echo done'"),
    );
    // Output that stops inside a line: a status line would erase it, so none is drawn.
    t.window(
        &a,
        "partial",
        &format!("{bin} run -- sh -c 'printf partial; sleep 6; echo; echo done'"),
    );
    // The output goes to a file: the terminal is the status line's alone.
    let file = a.path("out.txt");
    t.window(
        &a,
        "piped",
        &format!(
            "{bin} run -- sh -c 'printf partial; sleep 6; echo done' > {}",
            file.display()
        ),
    );
    // Below the output, on a line of its own.
    let pane = t.shows("full", "running 0:0");
    let shown = lines(&pane);
    assert_eq!(shown.first(), Some(&"start"), "{pane}");
    let status = shown.get(1).copied().unwrap_or_default();
    assert!(
        status.starts_with("aside: task ") && status.ends_with("6 bytes of output"),
        "{pane}"
    );
    assert_eq!(shown.len(), 2, "{pane}");
    // Redrawn in place as time goes by.
    let first = status.to_string();
    let mut last = pane.clone();
    let redrawn = eventually(SOON, || {
        last = t.pane("full");
        let l = lines(&last);
        l.len() == 2 && l[1] != first && l[1].contains("running 0:0")
    });
    assert!(redrawn, "the status line was not redrawn in place:\n{last}");
    let piped = t.shows("piped", "running 0:0");
    assert!(lines(&piped)[0].starts_with("aside: task "), "{piped}");

    // Meanwhile, the window whose output stopped inside a line showed none once that output
    // was there (before it, on a slow machine, one may have been drawn and erased); and once
    // each run ended, only its output is left.
    t.shows("partial", "partial");
    let deadline = Instant::now() + CLI_DEADLINE;
    loop {
        let pane = t.pane("partial");
        assert!(!pane.contains("aside:"), "{pane}");
        if pane.contains("EXIT=") {
            assert_eq!(lines(&pane), ["partial", "done", "EXIT=0"], "{pane}");
            break;
        }
        assert!(Instant::now() < deadline, "the run never ended:\n{pane}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pane = t.shows("full", "EXIT=");
    assert_eq!(lines(&pane), ["start", "done", "EXIT=0"], "{pane}");
    let pane = t.shows("piped", "EXIT=");
    assert_eq!(lines(&pane), ["EXIT=0"], "{pane}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "partialdone\n");
}

#[test]
fn no_status_line_when_stderr_is_not_a_terminal() {
    let a = Aside::new();
    let out = a.run(&["run", "--", "sh", "-c", "echo start; sleep 4.5; echo done"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, b"start\ndone\n");
    assert_eq!(out.stderr, "", "{out:?}");
}
