//! Terminals through the tools: `bash` with `pty: true`, `task_input`, and `task_output` with
//! `screen: true`, driven by an MCP client and by an agent's scripted model.

use serde_json::{json, Value};

use crate::mcp::{is_error, task_id, text, Mcp};
use crate::model_server::{self as ms, ModelServer, Reply};
use crate::support::*;

/// Polls the screen of task `id` until it shows `needle`; the last result's text.
fn screen_showing(m: &Mcp, id: &str, needle: &str) -> String {
    let mut last = String::new();
    let seen = eventually(SOON, || {
        let r = m.call("task_output", json!({"task_id": id, "screen": true}));
        assert!(!is_error(&r), "{}", text(&r));
        last = text(&r);
        last.contains(needle)
    });
    assert!(
        seen,
        "the screen of task {id} never showed {needle:?}:\n{last}"
    );
    last
}

#[test]
fn an_mcp_client_types_into_a_python_repl_and_reads_its_screen() {
    let a = Aside::new();
    let m = Mcp::start(&a, &[]);
    let tools = m.tools();
    let input = tools
        .iter()
        .find(|t| t.name == "task_input")
        .expect("task_input is offered");
    let d = input.description.as_deref().unwrap_or_default();
    assert!(d.contains("Enter") && d.contains("C-<letter>"), "{d}");
    let bash = tools.iter().find(|t| t.name == "bash").expect("bash");
    assert_eq!(bash.input_schema["properties"]["pty"]["type"], "boolean");

    let r = m.call(
        "bash",
        json!({"command": "python3 -q", "pty": true, "cols": 100, "rows": 30,
               "run_in_background": true}),
    );
    assert!(!is_error(&r), "{}", text(&r));
    assert!(text(&r).contains("task_input"), "{}", text(&r));
    let id = task_id(&r);
    let info = a.info(&id);
    assert_eq!(
        info["input"]["pty"],
        json!({"cols": 100, "rows": 30}),
        "{info}"
    );

    let prompt = screen_showing(&m, &id, ">>>");
    assert!(
        prompt.contains("screen (100x30, cursor at row 0"),
        "{prompt}"
    );
    assert!(prompt.contains("running"), "{prompt}");

    let r = m.call(
        "task_input",
        json!({"task_id": id, "text": "def sq(x): return x * x", "keys": ["Enter", "Enter"]}),
    );
    assert!(!is_error(&r), "{}", text(&r));
    assert!(
        text(&r).contains("sent 25 bytes (the text, Enter, Enter)"),
        "{}",
        text(&r)
    );
    // One key may come as a string rather than a list.
    let r = m.call(
        "task_input",
        json!({"task_id": id, "text": "sq(12345)", "keys": "Enter"}),
    );
    assert!(!is_error(&r), "{}", text(&r));
    let screen = screen_showing(&m, &id, "152399025");
    assert!(screen.contains(">>> sq(12345)"), "{screen}");

    // Ctrl+D at the prompt ends the REPL.
    let r = m.call("task_input", json!({"task_id": id, "keys": ["C-d"]}));
    assert!(!is_error(&r), "{}", text(&r));
    let end = a.wait_end(&id);
    assert_eq!(end["state"], "succeeded", "{end}");
    // The screen outlives the task, drawn from its log.
    let r = m.call("task_output", json!({"task_id": id, "screen": true}));
    assert!(!is_error(&r), "{}", text(&r));
    let last = text(&r);
    assert!(
        last.contains("succeeded") && last.contains("152399025"),
        "{last}"
    );
    let r = m.call("task_input", json!({"task_id": id, "text": "1"}));
    assert!(is_error(&r));
    assert!(
        text(&r).contains(&format!("task {id} has already ended (succeeded)")),
        "{}",
        text(&r)
    );
    m.close();
}

#[test]
fn a_foreground_pty_command_answers_with_its_screen() {
    let a = Aside::new();
    let m = Mcp::start(&a, &[]);
    // Moves the cursor home and overwrites: the raw output holds both words, the screen one.
    let r = m.call(
        "bash",
        json!({"command": "printf 'first\\033[Hsecond\\n'; test -t 0 && echo on-a-tty",
               "pty": true}),
    );
    assert!(!is_error(&r), "{}", text(&r));
    let t = text(&r);
    assert!(t.contains("succeeded (exit code 0)"), "{t}");
    let (_, screen) = t.split_once("screen (120x40").expect("a screen");
    assert!(screen.contains("second\non-a-tty"), "{t}");
    assert!(!screen.contains("first") && !t.contains('\u{1b}'), "{t}");
    m.close();
}

#[test]
fn input_errors_say_what_to_do_and_send_nothing() {
    let a = Aside::new();
    let m = Mcp::start(&a, &[]);
    let plain = task_id(&m.call(
        "bash",
        json!({"command": "sleep 30", "run_in_background": true}),
    ));
    let r = m.call("task_input", json!({"task_id": plain, "keys": ["Enter"]}));
    assert!(is_error(&r));
    assert!(
        text(&r).contains(&format!(
            "task {plain} takes no input: start it with bash pty: true"
        )),
        "{}",
        text(&r)
    );
    let r = m.call("task_output", json!({"task_id": plain, "screen": true}));
    assert!(is_error(&r));
    assert!(
        text(&r).contains("has no terminal: start it with bash pty: true"),
        "{}",
        text(&r)
    );
    let r = m.call("bash", json!({"command": "true", "cols": 80}));
    assert!(is_error(&r));
    assert!(text(&r).contains("set pty: true"), "{}", text(&r));

    // cat echoes what it reads: anything sent would show.
    let pty = task_id(&m.call(
        "bash",
        json!({"command": "cat", "pty": true, "run_in_background": true}),
    ));
    let r = m.call(
        "task_input",
        json!({"task_id": pty, "text": "typed", "keys": ["Enter", "Hyper", "C-1"]}),
    );
    assert!(is_error(&r));
    let e = text(&r);
    assert!(
        e.contains("no key named \"Hyper\", \"C-1\"; nothing was sent"),
        "{e}"
    );
    assert!(
        e.contains("Enter, Tab") && e.contains("F12") && e.contains("M-<key>"),
        "{e}"
    );
    let r = m.call("task_input", json!({"task_id": pty, "eof": true}));
    assert!(is_error(&r));
    assert!(text(&r).contains("send keys [\"C-d\"]"), "{}", text(&r));
    let r = m.call("task_input", json!({"task_id": pty}));
    assert!(is_error(&r));
    assert!(text(&r).contains("nothing to send"), "{}", text(&r));
    let r = m.call("task_output", json!({"task_id": pty, "screen": true}));
    assert!(!is_error(&r), "{}", text(&r));
    assert!(!text(&r).contains("typed"), "{}", text(&r));
    // And a key that exists reaches it.
    m.call(
        "task_input",
        json!({"task_id": pty, "text": "typed", "keys": ["Enter"]}),
    );
    screen_showing(&m, &pty, "typed\ntyped");

    let r = m.call("task_input", json!({"task_id": "999", "text": "x"}));
    assert!(is_error(&r));
    assert!(text(&r).contains("no task with id 999"), "{}", text(&r));
    for id in [plain, pty] {
        m.call("task_stop", json!({"task_id": id}));
    }
    m.close();
}

#[test]
fn a_pipe_takes_long_text_and_its_end_from_any_caller() {
    let a = Aside::new();
    // Started by the CLI: the MCP connection is another owner, and may send to it as it may
    // stop it.
    let id = a.bg_with(&["--stdin"], "wc -c");
    let m = Mcp::start(&a, &[]);
    let long = "x".repeat(100_000);
    let r = m.call(
        "task_input",
        json!({"task_id": id, "text": long, "keys": ["Enter"], "eof": true}),
    );
    assert!(!is_error(&r), "{}", text(&r));
    assert!(
        text(&r).contains("sent 100001 bytes (the text, Enter, end of file)"),
        "{}",
        text(&r)
    );
    let end = a.wait_end(&id);
    assert_eq!(end["state"], "succeeded", "{end}");
    assert_eq!(String::from_utf8_lossy(&a.logs(&id)).trim(), "100001");
    let r = m.call("task_output", json!({"task_id": id, "screen": true}));
    assert!(is_error(&r));
    assert!(text(&r).contains("has no terminal"), "{}", text(&r));
    m.close();
}

/// The line a screen shows below the prompt where `typed` was entered: the REPL's answer.
fn answer_below(result: &str, typed: &str) -> Option<String> {
    let mut lines = result.lines();
    lines.find(|l| *l == format!(">>> {typed}"))?;
    lines
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

#[test]
fn an_agent_runs_python_on_a_terminal_and_quotes_what_it_computed() {
    const TYPED: &str = "6 * 7 * 1000 + 1";
    let server = ModelServer::start(|req| {
        let results = ms::tool_results(req);
        let Some(first) = results.first() else {
            return Reply::tool(
                "bash",
                json!({"command": "python3 -q", "pty": true, "run_in_background": true}),
            );
        };
        let id = first
            .lines()
            .find_map(|l| l.strip_prefix("task_id: "))
            .unwrap_or("0")
            .to_string();
        let read = json!({"task_id": id, "screen": true, "wait_seconds": 1});
        if results.len() == 1 {
            return Reply::tool(
                "task_input",
                json!({"task_id": id, "text": TYPED, "keys": ["Enter"]}),
            );
        }
        let answer = results.iter().find_map(|r| answer_below(r, TYPED));
        let ended = results.iter().any(|r| r.contains("(C-d)"));
        match answer {
            Some(value) if ended => Reply::Text(format!("python says {value}")),
            Some(_) => Reply::tool("task_input", json!({"task_id": id, "keys": ["C-d"]})),
            None if results.len() > 30 => Reply::text("the screen never showed the answer"),
            None => Reply::tool("task_output", read),
        }
    });
    let a = Aside::with_config(&server.config());
    let out = a.run(&["exec", "compute on a terminal"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.text().contains("python says 42001"), "{out:?}");
    let python = a.info("2");
    assert_eq!(python["command"]["script"], "python3 -q", "{python}");
    assert_eq!(
        python["input"]["pty"],
        json!({"cols": 120, "rows": 40}),
        "{python}"
    );
    let python = a.wait_end("2");
    assert_eq!(python["state"], "succeeded", "{python}");
    let requests = server.requests();
    let offered = ms::tool_names(&requests[0].body);
    assert!(offered.iter().any(|t| t == "task_input"), "{offered:?}");
    let screens: Vec<Value> = requests
        .iter()
        .flat_map(|s| ms::tool_results(&s.body))
        .filter(|r| r.contains("screen (120x40"))
        .map(Value::String)
        .collect();
    assert!(!screens.is_empty(), "no screen was read");
    // Its end is announced with its last screen, not its escape sequences.
    let notice = requests
        .iter()
        .flat_map(|s| ms::messages(&s.body))
        .filter_map(|m| m["content"].as_str().map(str::to_string))
        .find(|c| c.contains("<task-notification>"))
        .expect("python's end is announced");
    assert!(
        notice.contains("last screen (120x40") && notice.contains("\n42001\n"),
        "{notice}"
    );
    assert!(!notice.contains('\u{1b}'), "{notice}");
}

#[test]
fn task_output_waits_for_a_pattern_in_the_output() {
    let a = Aside::new();
    let m = Mcp::start(&a, &[]);
    let tools = m.tools();
    let out = tools.iter().find(|t| t.name == "task_output").unwrap();
    assert_eq!(
        out.input_schema["properties"]["until"]["type"],
        json!(["string", "null"]),
        "{:?}",
        out.input_schema
    );
    let r = m.call(
        "bash",
        json!({"command": "echo booting; sleep 0.5; printf 'ready on \\033[1mhttp://127.0.0.1:4321\\033[0m\\n'; sleep 30",
               "pty": true, "run_in_background": true}),
    );
    let id = task_id(&r);
    let r = m.call(
        "task_output",
        json!({"task_id": id, "until": "ready on http://\\S+", "wait_seconds": 20}),
    );
    assert!(!is_error(&r), "{}", text(&r));
    let t = text(&r);
    assert!(
        t.contains("matched \"ready on http://127.0.0.1:4321\""),
        "{t}"
    );
    // The output up to the match, without its escape sequences.
    assert!(t.contains("booting"), "{t}");
    assert!(!t.contains('\u{1b}'), "{t}");
    assert!(t.contains("still running"), "{t}");

    // A task that ends first is its own answer; a bad pattern is refused.
    let r = m.call(
        "bash",
        json!({"command": "echo done", "run_in_background": true}),
    );
    let done = task_id(&r);
    let r = m.call(
        "task_output",
        json!({"task_id": done, "until": "never here", "wait_seconds": 20}),
    );
    assert!(text(&r).contains("the task ended first"), "{}", text(&r));
    let r = m.call(
        "task_output",
        json!({"task_id": done, "until": "(unclosed"}),
    );
    assert!(is_error(&r), "{}", text(&r));
    assert!(text(&r).contains("until"), "{}", text(&r));
    m.call("task_stop", json!({"task_id": id}));
}
