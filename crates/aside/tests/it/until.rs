//! Waiting for output: `aside logs --until REGEX` and `task.read`'s `until`, matched against
//! the text without escape sequences but answered in raw offsets; `plain` reads; and tools
//! that show output to a model without escape sequences.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

const READY: &str = r"ready on http://\S+";

/// A dev server: a few lines, then, once the gate `go` opens, a coloured `ready on URL` (an
/// escape sequence inside the URL too), then it keeps running until the gate `stop` opens.
fn dev_server(a: &Aside) -> String {
    a.bg(&format!(
        "printf 'compiling\\n'; printf 'bundling\\r\\n'; {}; \
         printf '\\033[1;32mready\\033[0m on \\033[4mhttp://127.0.0.1:\\033[1m4321\\033[0m/\\n'; \
         printf 'serving\\n'; {}",
        a.gate("go"),
        a.gate("stop")
    ))
}

/// The dev server's output up to and including the end of its URL.
const UP_TO_URL: &[u8] =
    b"compiling\nbundling\r\n\x1b[1;32mready\x1b[0m on \x1b[4mhttp://127.0.0.1:\x1b[1m4321\x1b[0m/";

/// The task's output, as the log holds it.
fn log_of(a: &Aside, id: &str) -> Vec<u8> {
    std::fs::read(a.log_file(id)).unwrap_or_default()
}

fn wait_log_len(a: &Aside, id: &str, len: usize) {
    let found = eventually(SOON, || log_of(a, id).len() >= len);
    assert!(
        found,
        "task {id} never wrote {len} bytes: {:?}",
        log_of(a, id)
    );
}

#[test]
fn logs_until_waits_for_a_dev_server_to_be_ready_and_prints_up_to_the_match() {
    let a = Aside::new();
    let id = dev_server(&a);
    wait_log_len(&a, &id, 20);

    // Started before the line exists: it waits, printing nothing yet.
    let waiting = a.spawn(&["logs", &id, "--until", READY]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        waiting.stdout_now().is_empty(),
        "{:?}",
        waiting.stdout_now()
    );
    let opened = Instant::now();
    a.open("go");
    let out = waiting.finish();
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, UP_TO_URL, "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    assert!(opened.elapsed() < SOON, "took {:?}", opened.elapsed());

    // Once it is there, at once; with -f as well, and from --tail on.
    let started = Instant::now();
    assert_eq!(a.ok(&["logs", &id, "--until", READY]).stdout, UP_TO_URL);
    assert_eq!(
        a.ok(&["logs", &id, "-f", "--until", READY]).stdout,
        UP_TO_URL
    );
    assert!(started.elapsed() < SOON, "took {:?}", started.elapsed());
    let tail = a.ok(&["logs", &id, "--tail", "1", "--until", "serving"]);
    assert_eq!(tail.text(), "serving");
    // A pattern over lines: ^ and $ match at their ends, and \r\n ends a line.
    let lines = a.ok(&["logs", &id, "--until", "^bundling$"]);
    assert_eq!(lines.stdout, b"compiling\nbundling");
    a.open("stop");
    a.wait_end(&id);
}

#[test]
fn logs_follow_until_prints_as_output_comes_and_stops_at_the_match() {
    let a = Aside::new();
    let id = dev_server(&a);
    let follower = a.spawn(&["logs", &id, "-f", "--until", READY, "--timeout", "60s"]);
    follower.wait_stdout(b"compiling\nbundling\r\n");
    a.open("go");
    let out = follower.finish();
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, UP_TO_URL, "{out:?}");
    a.open("stop");
}

#[test]
fn the_read_answers_with_the_match_in_raw_offsets() {
    let a = Aside::new();
    let id = dev_server(&a);
    a.open("go");
    wait_log_len(&a, &id, UP_TO_URL.len() + b"\nserving\n".len());
    let mut w = a.wire();
    w.hello();
    let r = w.call(
        "task.read",
        json!({"id": id, "until": READY, "wait_ms": 20_000}),
    );
    let m = &r["matched"];
    assert_eq!(m["text"], "ready on http://127.0.0.1:4321/", "{r}");
    let log = log_of(&a, &id);
    let (start, end) = (offset(&m["offset"]), offset(&m["end"]));
    // From the `r` of ready (after its colour) to the `/` after the URL.
    assert_eq!(start, b"compiling\nbundling\r\n\x1b[1;32m".len());
    assert_eq!(end, UP_TO_URL.len());
    assert_eq!(
        &log[start..end],
        b"ready\x1b[0m on \x1b[4mhttp://127.0.0.1:\x1b[1m4321\x1b[0m/"
    );
    assert_eq!(r["data"].as_str().unwrap().as_bytes(), UP_TO_URL, "{r}");
    assert_eq!(r["offset"], 0);
    assert_eq!(offset(&r["next"]), end);
    assert_eq!(r["eof"], false);

    // Plain: the same answer without the escape sequences.
    let plain = w.call(
        "task.read",
        json!({"id": id, "until": READY, "plain": true, "wait_ms": 20_000}),
    );
    assert_eq!(
        plain["data"], "compiling\nbundling\nready on http://127.0.0.1:4321/",
        "{plain}"
    );
    assert_eq!(offset(&plain["next"]), end);

    // At most max_bytes, the last of them: the answer still ends with the match.
    let short = w.call(
        "task.read",
        json!({"id": id, "until": READY, "max_bytes": 10, "wait_ms": 20_000}),
    );
    assert_eq!(offset(&short["offset"]), end - 10, "{short}");
    assert_eq!(
        short["data"].as_str().unwrap().as_bytes(),
        &log[end - 10..end]
    );
    assert_eq!(short["matched"], r["matched"]);

    // From after the match: the next one is not there, and time runs out.
    let none = w.call(
        "task.read",
        json!({"id": id, "after": end, "until": READY, "wait_ms": 200}),
    );
    assert!(none.get("matched").is_none(), "{none}");
    assert_eq!(none["eof"], false);
    assert_eq!(none["data"], "\nserving\n", "{none}");

    // A pattern that is not one is refused as such.
    let bad = w.request("task.read", json!({"id": id, "until": "(unclosed"}));
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    let message = bad["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("regular expression"), "{bad}");
    let out = a.run(&["logs", &id, "--until", "(unclosed"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("regular expression"), "{out:?}");
    a.open("stop");
}

fn offset(v: &Value) -> usize {
    v.as_u64().unwrap_or_else(|| panic!("not an offset: {v}")) as usize
}

#[test]
fn a_task_that_ends_before_matching_exits_1_and_says_so() {
    let a = Aside::new();
    let id = a.bg(&format!("printf 'starting\\n'; {}; exit 3", a.gate("go")));
    let waiting = a.spawn(&["logs", &id, "--until", "ready"]);
    wait_log_len(&a, &id, 9);
    a.open("go");
    let out = waiting.finish();
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.text(), "starting\n");
    assert!(
        out.stderr
            .contains(&format!("task {id} ended (failed: exited with code 3)")),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("before its output matched 'ready'"),
        "{out:?}"
    );
    // Over the wire: eof, and no match.
    let mut w = a.wire();
    w.hello();
    let r = w.call("task.read", json!({"id": id, "until": "ready"}));
    assert_eq!(r["eof"], true, "{r}");
    assert!(r.get("matched").is_none(), "{r}");
    assert_eq!(r["data"], "starting\n");
}

#[test]
fn no_match_in_time_exits_124_and_leaves_the_task_running() {
    let a = Aside::new();
    let id = a.bg(&format!("printf 'waiting\\n'; {}", a.gate("stop")));
    wait_log_len(&a, &id, 8);
    for follow in [false, true] {
        let mut args = vec!["logs", &id, "--until", "ready", "--timeout", "700ms"];
        if follow {
            args.push("-f");
        }
        let started = Instant::now();
        let out = a.run(&args);
        assert_eq!(out.code, 124, "{out:?}");
        assert!(started.elapsed() >= Duration::from_millis(700));
        assert_eq!(out.text(), "waiting\n", "{out:?}");
        assert!(
            out.stderr.contains(&format!(
                "the output of task {id} did not match 'ready' within 700ms"
            )),
            "{out:?}"
        );
    }
    assert_eq!(a.state(&id), "running");
    let usage = a.run(&["logs", &id, "--timeout", "1s"]);
    assert_eq!(usage.code, 125, "--timeout needs --until: {usage:?}");
    a.open("stop");
}

/// Half the line, a pause, the rest: the match spans two writes (and two scans), even when
/// the first write ends inside an escape sequence or inside the word.
#[test]
fn a_match_split_across_two_writes_is_found() {
    let a = Aside::new();
    let halves = [
        ("boot\\n\\033[32mrea", "dy\\033[0m on http://h:1\\n"),
        ("boot\\n\\033[3", "2mready on http://h:1\\n"),
    ];
    for (i, (first, rest)) in halves.into_iter().enumerate() {
        let gate = format!("rest{i}");
        let id = a.bg(&format!(
            "printf '{first}'; {}; printf '{rest}'; {}",
            a.gate(&gate),
            a.gate("stop")
        ));
        wait_log_len(&a, &id, 6);
        // One request that waits across the pause, and -f, which asks again and again.
        let waiting = a.spawn(&["logs", &id, "--until", READY]);
        let following = a.spawn(&["logs", &id, "-f", "--until", READY]);
        following.wait_stdout(b"boot\n");
        std::thread::sleep(Duration::from_millis(300));
        a.open(&gate);
        for out in [waiting.finish(), following.finish()] {
            assert_eq!(out.code, 0, "{first:?}: {out:?}");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(text.starts_with("boot\n"), "{first:?}: {text:?}");
            assert!(text.ends_with("http://h:1"), "{first:?}: {text:?}");
        }
        let mut w = a.wire();
        w.hello();
        let r = w.call("task.read", json!({"id": id, "until": READY}));
        assert_eq!(r["matched"]["text"], "ready on http://h:1", "{r}");
    }
    a.open("stop");
}

/// More output before the match than one answer holds: the CLI prints all of it, in order.
#[test]
fn all_the_output_before_a_late_match_is_printed() {
    let a = Aside::new();
    let id = a.bg(&format!(
        "yes 'line of output' | head -n 200000; printf 'ready on http://h:1\\n'; {}",
        a.gate("stop")
    ));
    let lines = "line of output\n".repeat(200_000);
    let want = format!("{lines}ready on http://h:1");
    for follow in [false, true] {
        let mut args = vec!["logs", &id, "--until", READY];
        if follow {
            args.push("-f");
        }
        let out = a.run(&args);
        assert_eq!(out.code, 0, "{out:?}");
        assert!(out.stdout == want.as_bytes(), "-f {follow}: {out:?}");
    }
    a.open("stop");
}

/// A terminal task's output (\r\n line ends, colours) matches line by line.
#[test]
fn a_terminal_tasks_output_matches_too() {
    let a = Aside::new();
    let script = format!(
        "printf 'loading\\n'; {}; printf '\\033[1mPROMPT>\\033[0m '; {}",
        a.gate("go"),
        a.gate("stop")
    );
    let out = a.ok(&["run", "--bg", "--pty", "--", "sh", "-c", &script]);
    let id = out.text().trim().to_string();
    let waiting = a.spawn(&["logs", &id, "--until", "^PROMPT> $"]);
    wait_log_len(&a, &id, 9);
    a.open("go");
    let out = waiting.finish();
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, b"loading\r\n\x1b[1mPROMPT>\x1b[0m ", "{out:?}");
    a.open("stop");
}

/// A plain read of output that stops inside an escape sequence holds the sequence back:
/// `next` stops before it, and the next read takes it up whole.
#[test]
fn a_plain_read_holds_back_a_sequence_cut_by_the_end_of_the_output() {
    let a = Aside::new();
    let id = a.bg(&format!(
        "printf 'ab\\033[3'; {}; printf '1mc\\033[0m\\n'",
        a.gate("go")
    ));
    wait_log_len(&a, &id, 5);
    let mut w = a.wire();
    w.hello();
    let first = w.call("task.read", json!({"id": id, "plain": true}));
    assert_eq!(first["data"], "ab", "{first}");
    assert_eq!(first["next"], 2);
    assert_eq!(first["total"], 5);
    a.open("go");
    let rest = w.call(
        "task.read",
        json!({"id": id, "after": 2, "plain": true, "wait_ms": 20_000}),
    );
    assert_eq!(rest["data"], "c\n", "{rest}");
    assert_eq!(rest["next"], 13);
    a.wait_end(&id);
    let raw = w.call("task.read", json!({"id": id}));
    assert_eq!(raw["data"], "ab\x1b[31mc\x1b[0m\n");
}

/// What the task tools show a model carries no escape sequences.
#[test]
fn tools_show_output_without_escape_sequences() {
    let a = Aside::new();
    let script = "printf '\\033[31mred\\033[0m and \\033]0;title\\007plain\\r\\n'";
    // In the background (its output in the log), and so the daemon runs.
    let id = a.bg(script);
    a.wait_end(&id);
    let mut w = a.wire();
    w.hello();
    let fg = w.call(
        "tools.call",
        json!({"name": "bash", "arguments": {"command": script}, "cwd": a.home}),
    );
    let text = fg["text"].as_str().unwrap_or_default();
    assert!(text.contains("red and plain\n"), "{fg}");
    assert!(!text.contains('\x1b'), "{fg}");

    let read = w.call(
        "tools.call",
        json!({"name": "task_output", "arguments": {"task_id": id}}),
    );
    let text = read["text"].as_str().unwrap_or_default();
    assert!(text.contains("red and plain\n"), "{read}");
    assert!(!text.contains('\x1b'), "{read}");
}
