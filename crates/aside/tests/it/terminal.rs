//! Terminals and input: programs on a pseudo-terminal driven through `aside send` and screen
//! reads, a pipe for input, signals and resizes, `aside attach` under tmux as a person uses
//! it, and a terminal that outlives a daemon restart.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{eventually, Aside};
use crate::tmux::{has_tmux, Tmux};

const LONG: Duration = Duration::from_secs(20);

/// The task's screen as the daemon renders it.
fn screen(a: &Aside, id: &str) -> Value {
    let mut w = a.wire();
    w.hello();
    let r = w.call(
        "task.read",
        json!({"id": id, "after": 0, "max_bytes": 1, "screen": "text"}),
    );
    r["screen"].clone()
}

fn screen_text(a: &Aside, id: &str) -> String {
    screen(a, id)["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Waits until the screen shows `needle`; the screen either way.
fn screen_shows(a: &Aside, id: &str, needle: &str) -> String {
    let mut last = String::new();
    let found = eventually(LONG, || {
        last = screen_text(a, id);
        last.contains(needle)
    });
    assert!(
        found,
        "the screen never showed {needle:?}; it shows:\n{last}"
    );
    last
}

fn start_pty(a: &Aside, size: &str, argv: &[&str]) -> String {
    let mut args = vec!["run", "--bg", "--pty", "--size", size, "--"];
    args.extend_from_slice(argv);
    let id = a.ok(&args).text().trim().to_string();
    assert!(id.bytes().all(|b| b.is_ascii_digit()), "not an id: {id:?}");
    id
}

#[test]
fn a_python_repl_is_driven_through_send_and_read_from_its_screen() {
    let a = Aside::new();
    let id = start_pty(&a, "80x24", &["python3", "-q"]);
    screen_shows(&a, &id, ">>>");
    a.ok(&["send", &id, "def f(x):", "--key", "Enter"]);
    a.ok(&[
        "send",
        &id,
        "    return x * 7",
        "--key",
        "Enter",
        "--key",
        "Enter",
    ]);
    a.ok(&["send", &id, "f(6)", "--key", "Enter"]);
    let text = screen_shows(&a, &id, "\n42\n");
    assert!(text.contains(">>> f(6)"), "{text}");
    // People read the same screen with `aside logs --screen`.
    let shown = a.ok(&["logs", &id, "--screen"]).text();
    assert!(shown.contains(">>> f(6)\n42\n>>>"), "{shown}");
    let s = screen(&a, &id);
    assert_eq!(
        (s["cols"].as_u64(), s["rows"].as_u64()),
        (Some(80), Some(24))
    );
    // The cursor waits after the last prompt.
    let last = text.lines().count() as u64 - 1;
    assert_eq!(s["cursor_row"].as_u64(), Some(last), "{s}");
    assert_eq!(s["cursor_col"].as_u64(), Some(4), "{s}");
    // Ctrl+D ends the REPL like any terminal's.
    a.ok(&["send", &id, "--key", "C-d"]);
    let end = a.wait_end(&id);
    assert_eq!(end["state"], "succeeded", "{end}");
    // The screen of an ended task is still there, from its log.
    assert!(screen_text(&a, &id).contains("42"));
}

#[test]
fn a_prompt_is_answered_through_a_pipe_and_through_a_terminal() {
    let a = Aside::new();
    let script = r#"read -p "name? " n; echo "hello, $n""#;
    // Foreground, this process's stdin is the task's.
    let mut cmd = a.cmd(&["run", "--stdin", "--", "bash", "-c", script]);
    cmd.stdin(std::process::Stdio::piped());
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"alice\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello, alice\n");

    // In the background, through `aside send`; the pipe's end of file closes it.
    let id = a
        .ok(&["run", "--bg", "--stdin", "--", "bash", "-c", script])
        .text()
        .trim()
        .to_string();
    a.ok(&["send", &id, "bob", "--key", "Enter", "--eof"]);
    assert_eq!(a.wait_end(&id)["state"], "succeeded");
    assert_eq!(a.logs(&id), b"hello, bob\n");

    // On a terminal, the prompt shows (bash prints it only to a terminal).
    let id = start_pty(&a, "80x24", &["bash", "-c", script]);
    screen_shows(&a, &id, "name?");
    a.ok(&["send", &id, "carol", "--key", "Enter"]);
    assert_eq!(a.wait_end(&id)["state"], "succeeded");
    let log = String::from_utf8_lossy(&a.logs(&id)).to_string();
    assert!(log.contains("name? carol\r\nhello, carol"), "{log:?}");
}

#[test]
fn a_curses_screen_reads_back_with_its_box_where_it_was_drawn() {
    let a = Aside::new();
    let prog = a.script(
        "box.py",
        r#"import curses, time
def main(s):
    curses.curs_set(0)
    s.addstr(2, 4, "+" + "-" * 18 + "+")
    for r in range(3, 6):
        s.addstr(r, 4, "|")
        s.addstr(r, 23, "|")
    s.addstr(6, 4, "+" + "-" * 18 + "+")
    n = 0
    while True:
        s.addstr(4, 8, "count %5d" % n)
        s.refresh()
        n += 1
        time.sleep(0.05)
curses.wrapper(main)
"#,
    );
    let id = start_pty(&a, "40x12", &["python3", &prog]);
    // Waiting for the first drawing (curses then sends only what changes: the stream is not
    // the screen), then the screen as it is.
    let shown = a
        .ok(&[
            "logs",
            &id,
            "--until",
            "count +0",
            "--screen",
            "--timeout",
            "20s",
        ])
        .text();
    assert!(shown.contains("|   count "), "{shown}");
    assert!(!shown.contains('\u{1b}'), "{shown}");
    // The counter moves on while the box stays.
    let first = screen_text(&a, &id);
    assert!(eventually(LONG, || screen_text(&a, &id) != first));
    let text = screen_text(&a, &id);
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows[2], format!("    +{}+", "-".repeat(18)), "{text}");
    assert_eq!(&rows[3][4..], format!("|{}|", " ".repeat(18)), "{text}");
    assert!(rows[4].starts_with("    |   count "), "{text}");
    assert_eq!(rows[4].chars().nth(23), Some('|'), "{text}");
    assert_eq!(rows[6], format!("    +{}+", "-".repeat(18)), "{text}");
    a.ok(&["signal", &id, "INT"]);
    let end = a.wait_end(&id);
    assert_ne!(end["state"], "running");
}

#[test]
fn a_resize_reaches_the_program() {
    let a = Aside::new();
    let id = start_pty(
        &a,
        "90x20",
        &[
            "bash",
            "-c",
            r#"echo "cols $(tput cols)"; trap 'echo "now $(tput cols)x$(tput lines)"' WINCH; while :; do sleep 0.05; done"#,
        ],
    );
    screen_shows(&a, &id, "cols 90");
    a.ok(&["signal", &id, "WINCH", "--size", "100x30"]);
    screen_shows(&a, &id, "now 100x30");
    let s = screen(&a, &id);
    assert_eq!(
        (s["cols"].as_u64(), s["rows"].as_u64()),
        (Some(100), Some(30))
    );
    // WINCH needs a size; a task without a terminal cannot be resized.
    let out = a.run(&["signal", &id, "WINCH"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("--size"), "{out:?}");
    let plain = a.bg("sleep 30");
    let out = a.run(&["signal", &plain, "WINCH", "--size", "80x24"]);
    assert!(out.stderr.contains("has no terminal"), "{out:?}");
    a.ok(&["signal", &id, "TERM"]);
    a.wait_end(&id);
}

#[test]
fn input_to_a_task_that_takes_none_is_refused_clearly() {
    let a = Aside::new();
    let id = a.bg("sleep 30");
    let out = a.run(&["send", &id, "hi"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("takes no input"), "{out:?}");
    assert!(out.stderr.contains("--stdin"), "{out:?}");
    let out = a.run(&["send", &id, "--key", "Hyper"]);
    assert!(out.stderr.contains("is not a key"), "{out:?}");
    let out = a.run(&["signal", &id, "BOGUS"]);
    assert!(out.stderr.contains("INT, TERM"), "{out:?}");
    let out = a.run(&["run", "--size", "80x24", "--", "true"]);
    assert_ne!(out.code, 0, "--size without --pty: {out:?}");
    let out = a.run(&["run", "--bg", "--pty", "--size", "0x10", "--", "true"]);
    assert!(out.stderr.contains("COLSxROWS"), "{out:?}");
    // Signals reach a task without input all the same.
    a.ok(&["signal", &id, "TERM"]);
    let end = a.wait_end(&id);
    assert_eq!(end["signal"], 15, "{end}");
}

#[test]
fn a_terminal_outlives_a_daemon_restart_with_its_screen() {
    let a = Aside::new();
    let id = start_pty(&a, "80x24", &["python3", "-q"]);
    screen_shows(&a, &id, ">>>");
    a.ok(&["send", &id, "x = 6 * 7; print('x is', x)", "--key", "Enter"]);
    screen_shows(&a, &id, "x is 42");
    let before = screen_text(&a, &id);
    a.ok(&["daemon", "restart"]);
    assert_eq!(a.state(&id), "running");
    assert_eq!(screen_text(&a, &id), before);
    // Still the same interpreter, still taking keys.
    a.ok(&["send", &id, "print('again', x)", "--key", "Enter"]);
    screen_shows(&a, &id, "again 42");
    a.ok(&["send", &id, "--key", "C-d"]);
    assert_eq!(a.wait_end(&id)["state"], "succeeded");
}

#[test]
fn attach_and_detach_under_tmux_with_two_viewers() {
    assert!(has_tmux(), "tmux is needed (apt-get install tmux)");
    let a = Aside::new();
    let bin = env!("CARGO_BIN_EXE_aside");
    let t = Tmux::new(&a);
    // A foreground `aside run --pty` is attached from the start.
    t.window(&a, "run", &format!("{bin} run --pty -- python3 -q"));
    t.shows("run", ">>>");
    t.keys("run", &["x = 6 * 7", "Enter", "print(x)", "Enter"]);
    t.shows("run", "42");
    // The program has this terminal's size.
    t.keys(
        "run",
        &["import os; print(os.get_terminal_size())", "Enter"],
    );
    t.shows("run", "columns=100, lines=30");
    // The detach key leaves it running, in the background.
    t.keys("run", &["C-\\"]);
    let pane = t.shows("run", "EXIT=148");
    assert!(pane.contains("continues in the background"), "{pane}");
    let id = a.run(&["ls", "--json"]).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(a.state(&id), "running");

    // Two terminals attach: each gets the screen, then what either types.
    t.window(&a, "one", &format!("{bin} attach {id}"));
    t.window(&a, "two", &format!("{bin} attach {id}"));
    t.shows("one", "print(x)");
    t.shows("two", "print(x)");
    t.keys("one", &["print('from one')", "Enter"]);
    t.shows("two", "from one");
    t.keys("two", &["print('from two')", "Enter"]);
    t.shows("one", "from two");
    // A viewer's terminal resized: the program hears of it (the latest size wins).
    assert!(t
        .cmd(&["resize-window", "-t", "one", "-x", "90", "-y", "25"])
        .status
        .success());
    assert!(eventually(LONG, || screen(&a, &id)["cols"].as_u64() == Some(90)));
    t.keys(
        "one",
        &["import os; print(os.get_terminal_size())", "Enter"],
    );
    t.shows("two", "columns=90, lines=25");
    // One leaves; the other still drives it.
    t.keys("one", &["C-\\"]);
    let pane = t.shows("one", "EXIT=0");
    assert!(pane.contains("detached from task"), "{pane}");
    t.keys("two", &["C-d"]);
    t.shows("two", "EXIT=0");
    assert_eq!(a.wait_end(&id)["state"], "succeeded");
}

#[test]
fn a_program_that_stops_reading_its_input_early_ends_the_run_cleanly() {
    let a = Aside::new();
    // 400 KB of input for a program that takes 5 bytes and exits: the rest has nowhere to go.
    let mut cmd = a.cmd(&["run", "--stdin", "--", "head", "-c", "5"]);
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        let line = b"hello, this is more input than anyone reads\n".repeat(10_000);
        let _ = stdin.write_all(&line);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello");
}
