//! `aside top`, driven as a person would: in a tmux window of the test's own, keys typed
//! with send-keys, the screen read with capture-pane.

use std::time::Duration;

use crate::support::*;
use crate::tmux::{has_tmux, Tmux};

/// After `aside top` exits: its code, then whether the terminal is back in canonical mode
/// with echo, as `stty` reports it.
const AFTER: &str =
    "echo TOP=$?; stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '";

/// Opens `aside top ARGS` in window `name`, with `env` (`K=V ...`) set for it.
fn open(t: &Tmux, a: &Aside, name: &str, env: &str, args: &str) {
    let bin = env!("CARGO_BIN_EXE_aside");
    t.window(a, name, &format!("{env} {bin} top {args}; {AFTER}"));
    t.shows(name, "aside top");
}

/// The screen's line for task `id` (the first column), if it shows.
fn row(pane: &str, id: &str) -> Option<String> {
    pane.lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .map(|l| l.trim_end().to_string())
}

/// Waits until task `id`'s line has every one of `words`; returns it.
fn row_shows(t: &Tmux, name: &str, id: &str, words: &[&str]) -> String {
    let mut last = String::new();
    let found = eventually(SOON, || {
        last = t.pane(name);
        row(&last, id).is_some_and(|r| words.iter().all(|w| r.contains(w)))
    });
    assert!(found, "task {id}'s row never showed {words:?}:\n{last}");
    row(&last, id).unwrap_or_default()
}

/// Types `text` as keys, then Enter.
fn filter(t: &Tmux, name: &str, text: &str) {
    t.keys(name, &["/"]);
    t.keys(name, &["-l", text]);
    t.keys(name, &["Enter"]);
    t.shows(name, &format!("/{text})"));
}

/// Quits with `q`; the terminal must be as it was: the main screen, canonical mode, echo.
fn quit_leaves_the_terminal_restored(t: &Tmux, name: &str) {
    t.keys(name, &["q"]);
    let pane = t.shows(name, "EXIT=");
    assert!(pane.contains("TOP=0"), "{pane}");
    assert!(
        pane.contains("icanon echo "),
        "raw mode was not undone:\n{pane}"
    );
    assert!(
        !pane.contains("aside top"),
        "the dashboard stayed on the main screen:\n{pane}"
    );
}

fn tmux_or_fail() {
    assert!(has_tmux(), "tmux is needed (apt-get install tmux)");
}

#[test]
fn the_dashboard_shows_every_task_and_new_ones_without_a_key() {
    tmux_or_fail();
    let a = Aside::new();
    let running = a.bg_with(&["--group", "build"], "sleep 300");
    let failed = a.bg("exit 3");
    let named = a.ok(&["run", "--bg", "--name", "greeting", "--", "echo", "hi"]);
    let named = named.text().trim().to_string();
    a.wait_end(&failed);
    a.wait_end(&named);
    let stopped = a.bg("sleep 300");
    a.ok(&["stop", &stopped, "--reason", "enough"]);
    let t = Tmux::new(&a);
    open(&t, &a, "top", "", "");
    row_shows(&t, "top", &running, &["shell", "running", "build", "pid "]);
    row_shows(&t, "top", &failed, &["failed", "exit 3"]);
    row_shows(
        &t,
        "top",
        &named,
        &["succeeded", "exit 0", "[greeting] echo hi"],
    );
    let pane = row_shows(&t, "top", &stopped, &["cancelled", "stopped: enough"]);
    assert!(
        t.pane("top")
            .contains("4 tasks: 1 running, 1 succeeded, 1 failed, 1 cancelled"),
        "{pane}"
    );
    let limits = eventually(SOON, || t.pane("top").contains("slots in use: 1/"));
    assert!(limits, "{}", t.pane("top"));
    assert!(t.pane("top").contains("; build 1"), "{}", t.pane("top"));
    // Newest first.
    let ids: Vec<String> = t
        .pane("top")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.bytes().all(|b| b.is_ascii_digit()))
        .map(String::from)
        .collect();
    assert_eq!(
        ids,
        [
            stopped.clone(),
            named.clone(),
            failed.clone(),
            running.clone()
        ]
    );
    // Started after the dashboard opened, shown by the events alone; and so is its end.
    let later = a.bg("sleep 0.5; exit 7");
    row_shows(&t, "top", &later, &["sh -c 'sleep 0.5"]);
    row_shows(&t, "top", &later, &["failed", "exit 7"]);
    // Removed tasks go.
    a.ok(&["clean"]);
    let found = eventually(SOON, || row(&t.pane("top"), &failed).is_none());
    assert!(found, "a removed task stayed:\n{}", t.pane("top"));
    row_shows(&t, "top", &running, &["running"]);
    quit_leaves_the_terminal_restored(&t, "top");
}

#[test]
fn labels_show_in_a_column_of_their_own_and_filter_with_slot_limits_in_the_header() {
    tmux_or_fail();
    let a = Aside::new();
    a.ok(&["slots", "web", "3"]);
    let prod = a.bg_with(&["--label", "env=prod", "--group", "web"], "sleep 300");
    let dev = a.bg_with(&["--label", "env=dev", "--label", "team=ui"], "sleep 300");
    let bare = a.bg("sleep 300");
    let t = Tmux::new(&a);
    open(&t, &a, "all", "", "");
    let pane = t.shows("all", "LABELS");
    row_shows(&t, "all", &prod, &["env=prod"]);
    row_shows(&t, "all", &dev, &["env=dev team=ui"]);
    let header = eventually(SOON, || t.pane("all").contains("; web 1/3"));
    assert!(header, "{}", t.pane("all"));
    assert!(row(&pane, &bare).is_some());
    // --label K=V, and K whatever its value.
    open(&t, &a, "prod", "", "--label env=prod");
    row_shows(&t, "prod", &prod, &["running"]);
    let pane = t.shows("prod", "showing 1 of 3 (label env=prod)");
    assert!(
        row(&pane, &dev).is_none() && row(&pane, &bare).is_none(),
        "{pane}"
    );
    open(&t, &a, "env", "", "--label env --state running");
    let pane = t.shows("env", "showing 2 of 3 (state=running label env)");
    assert!(
        row(&pane, &prod).is_some() && row(&pane, &dev).is_some(),
        "{pane}"
    );
    // The text filter looks in labels too; without labels in sight there is no column.
    filter(&t, "all", "team=ui");
    let pane = t.shows("all", "showing 1 of 3");
    assert!(row(&pane, &dev).is_some(), "{pane}");
    filter(&t, "all", "zzz");
    let gone = eventually(SOON, || !t.pane("all").contains("LABELS"));
    assert!(gone, "{}", t.pane("all"));
    quit_leaves_the_terminal_restored(&t, "all");
}

#[test]
fn keys_stop_pause_follow_and_restart_the_selected_task() {
    tmux_or_fail();
    let a = Aside::new();
    let victim = a.bg_with(&["--name", "victim"], "sleep 300");
    let napper = a.bg_with(&["--name", "napper"], "sleep 300");
    let talker = a.bg_with(
        &["--name", "talker"],
        "echo first-line; while :; do echo tick; sleep 0.2; done",
    );
    let once = a.bg_with(&["--name", "once"], "echo ran-once; exit 4");
    a.wait_end(&once);
    let t = Tmux::new(&a);
    open(&t, &a, "top", "", "");
    row_shows(&t, "top", &talker, &["running"]);

    // s asks, y stops: on screen and in aside ls.
    filter(&t, "top", "victim");
    t.keys("top", &["s"]);
    t.shows("top", &format!("stop task {victim} (sh -c 'sleep 300')"));
    t.keys("top", &["y"]);
    row_shows(&t, "top", &victim, &["cancelled", "stopped"]);
    let listed = a.ok(&["ls", "--all"]).text();
    assert!(
        row(&listed, &victim).is_some_and(|r| r.contains("cancelled")),
        "{listed}"
    );
    // Any other answer stops nothing.
    filter(&t, "top", "napper");
    t.keys("top", &["s"]);
    t.shows("top", &format!("stop task {napper}"));
    t.keys("top", &["n"]);
    t.keys("top", &["p"]);
    row_shows(&t, "top", &napper, &["paused"]);
    assert_eq!(a.info(&napper)["paused"], true);
    assert_eq!(a.state(&napper), "running");
    t.keys("top", &["p"]);
    row_shows(&t, "top", &napper, &["running"]);
    assert!(a.info(&napper).get("paused").is_none());

    // Enter follows the output as it comes; Esc goes back to the table.
    filter(&t, "top", "talker");
    t.keys("top", &["Enter"]);
    t.shows("top", &format!("output of task {talker} (running)"));
    let pane = t.shows("top", "first-line");
    let ticks = pane.matches("tick").count();
    let more = eventually(SOON, || t.pane("top").matches("tick").count() > ticks);
    assert!(more, "the output did not move on:\n{}", t.pane("top"));
    t.keys("top", &["Escape"]);
    row_shows(&t, "top", &talker, &["running", "/s"]);

    // r runs a finished task again: the new task shows, and it runs the same command.
    filter(&t, "top", "once");
    t.keys("top", &["r"]);
    let pane = t.shows("top", &format!("task {once} restarted as task "));
    let new = pane
        .split(&format!("task {once} restarted as task "))
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_default()
        .to_string();
    a.wait_end(&new);
    assert_eq!(a.logs(&new), b"ran-once\n");
    row_shows(&t, "top", &new, &["failed", "exit 4", "[once]"]);
    quit_leaves_the_terminal_restored(&t, "top");
}

#[test]
fn a_attaches_to_a_terminal_task_and_the_detach_key_comes_back() {
    tmux_or_fail();
    let a = Aside::new();
    let shell = a.ok(&["run", "--bg", "--pty", "--name", "console", "--", "sh"]);
    let shell = shell.text().trim().to_string();
    let plain = a.bg_with(&["--name", "plain"], "sleep 300");
    let t = Tmux::new(&a);
    open(&t, &a, "top", "", "");
    filter(&t, "top", "plain");
    t.keys("top", &["a"]);
    t.shows("top", &format!("task {plain} has no terminal"));
    filter(&t, "top", "console");
    t.keys("top", &["a"]);
    // The session is aside attach's: keys go to the task.
    std::thread::sleep(Duration::from_millis(500));
    t.keys("top", &["-l", "echo inside-$((6*7))"]);
    t.keys("top", &["Enter"]);
    t.shows("top", "inside-42");
    t.keys("top", &["C-\\"]);
    t.shows("top", &format!("back from task {shell}"));
    row_shows(&t, "top", &shell, &["running"]);
    // The dashboard has its keys again.
    t.keys("top", &["?"]);
    t.shows("top", "any key closes this");
    t.keys("top", &["x"]);
    quit_leaves_the_terminal_restored(&t, "top");
    assert_eq!(a.state(&shell), "running");
}

/// The colours of SGR sequences (`ESC [ ... m`) in `screen`: foreground, background, or
/// 256-colour and RGB ones; not 39 and 49, which give the terminal's own colours back.
fn colours(screen: &str) -> Vec<String> {
    screen
        .split("\x1b[")
        .skip(1)
        .filter_map(|s| s.split_once('m').map(|(params, _)| params))
        .filter(|params| {
            params.split(';').any(|p| {
                p.parse::<u32>().is_ok_and(|n| {
                    ((30..=49).contains(&n) && n != 39 && n != 49) || (90..=107).contains(&n)
                })
            })
        })
        .map(String::from)
        .collect()
}

#[test]
fn no_color_leaves_only_reverse_video() {
    tmux_or_fail();
    let a = Aside::new();
    let running = a.bg("sleep 300");
    let failed = a.bg("exit 1");
    a.wait_end(&failed);
    let t = Tmux::new(&a);
    open(&t, &a, "plain", "NO_COLOR=1", "");
    open(&t, &a, "coloured", "", "");
    row_shows(&t, "plain", &running, &["running"]);
    row_shows(&t, "coloured", &running, &["running"]);
    let escapes = |name: &str| {
        String::from_utf8_lossy(&t.cmd(&["capture-pane", "-e", "-p", "-t", name]).stdout)
            .to_string()
    };
    let coloured = escapes("coloured");
    assert!(
        !colours(&coloured).is_empty(),
        "colours are drawn without NO_COLOR:\n{coloured:?}"
    );
    let plain = escapes("plain");
    assert_eq!(colours(&plain), Vec::<String>::new(), "{plain:?}");
    assert!(plain.contains("\x1b[7m"), "the selection is reverse video");
    quit_leaves_the_terminal_restored(&t, "plain");
}

#[test]
fn sigterm_and_sighup_leave_the_terminal_as_it_was() {
    tmux_or_fail();
    let a = Aside::new();
    a.bg("sleep 300");
    let t = Tmux::new(&a);
    for (name, signal) in [("term", libc::SIGTERM), ("hup", libc::SIGHUP)] {
        open(&t, &a, name, "", "");
        let shell: i32 = String::from_utf8_lossy(
            &t.cmd(&["display-message", "-p", "-t", name, "#{pane_pid}"])
                .stdout,
        )
        .trim()
        .parse()
        .unwrap();
        let children =
            std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
        let top: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
        // SAFETY: a signal to the test's own child process.
        assert_eq!(unsafe { libc::kill(top, signal) }, 0);
        let pane = t.shows(name, "EXIT=");
        assert!(pane.contains("TOP=0"), "{pane}");
        assert!(
            pane.contains("icanon echo "),
            "raw mode was not undone:\n{pane}"
        );
        assert!(!pane.contains("aside top"), "{pane}");
    }
}

#[test]
fn after_a_daemon_restart_it_connects_again_and_goes_on() {
    tmux_or_fail();
    let a = Aside::new();
    let before = a.bg("sleep 300");
    let t = Tmux::new(&a);
    open(&t, &a, "top", "", "");
    row_shows(&t, "top", &before, &["running"]);
    a.ok(&["daemon", "restart"]);
    t.shows("top", "connected again to the daemon");
    let after = a.bg("sleep 0.2; exit 5");
    row_shows(&t, "top", &after, &["failed", "exit 5"]);
    row_shows(&t, "top", &before, &["running"]);
    quit_leaves_the_terminal_restored(&t, "top");
}

#[test]
fn without_a_terminal_it_says_it_needs_one() {
    let a = Aside::new();
    let out = a.run(&["top"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("aside top needs a terminal"), "{out:?}");
}
