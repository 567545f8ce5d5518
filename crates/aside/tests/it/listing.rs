//! `aside ls`: its columns (how each task ended, its group) and its filters (`--state`,
//! `--group`), with and without `--all`.

use serde_json::Value;

use crate::support::*;

/// The table's row for task `id`.
fn row<'a>(table: &'a str, id: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .unwrap_or_else(|| panic!("no row for task {id} in\n{table}"))
}

/// The ids `aside ARGS --json` lists, in order.
fn ids(a: &Aside, args: &[&str]) -> Vec<String> {
    let mut args = args.to_vec();
    args.push("--json");
    a.ok(&args)
        .json()
        .as_array()
        .expect("an array")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_string())
        .collect()
}

/// Tasks that ended every way a test can make one end, and two live ones: one running and
/// one queued behind it in a group of one slot.
struct Zoo {
    ok: String,
    exit3: String,
    killed: String,
    timed: String,
    stopped: String,
    running: String,
    queued: String,
}

fn zoo(a: &Aside) -> Zoo {
    let ok = a.bg_with(&["--group", "build"], "true");
    let exit3 = a.bg_with(&["--group", "build"], "exit 3");
    let killed = a.bg("kill -9 $$");
    let timed = a.bg_with(&["--timeout", "300ms"], "sleep 30");
    let stopped = a.bg(&a.gate("never"));
    for id in [&ok, &exit3, &killed, &timed] {
        a.wait_end(id);
    }
    a.ok(&["stop", &stopped, "--reason", "enough"]);
    let running = a.bg_with(&["--group", "serial"], &a.gate("go"));
    a.wait_state(&running, "running");
    let queued = a.bg_with(&["--group", "serial"], "true");
    assert_eq!(a.state(&queued), "queued");
    Zoo {
        ok,
        exit3,
        killed,
        timed,
        stopped,
        running,
        queued,
    }
}

#[test]
fn the_table_shows_how_each_task_ended_and_its_group() {
    let a = Aside::with_config("[groups]\nserial = 1\n");
    let z = zoo(&a);
    let fg = a
        .ok(&["run", "--", "sh", "-c", "echo $ASIDE_TASK_ID"])
        .text();
    let fg = fg.trim();
    let table = a.ok(&["ls", "--all"]).text();
    let header = table.lines().next().unwrap_or_default();
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        columns,
        ["ID", "KIND", "STATE", "RESULT", "DETACHED", "GROUP", "AGE", "COMMAND"],
        "{table}"
    );
    // A cell: the row's text under its column's header, up to the next column's.
    let cell = |id: &str, column: &str| -> String {
        let from = header.find(column).expect("a column");
        let to = header[from..]
            .find(' ')
            .map(|n| from + n)
            .and_then(|end| header[end..].find(|c: char| c != ' ').map(|n| end + n))
            .unwrap_or(header.len());
        let r = row(&table, id);
        r.get(from..to.min(r.len()))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let expect = [
        (&z.ok, "succeeded*", "exit 0", "build"),
        (&z.exit3, "failed*", "exit 3", "build"),
        (&z.killed, "failed*", "signal 9", "-"),
        (&z.timed, "timed_out*", "timed out", "-"),
        // A task stopped here is not announced: no mark.
        (&z.stopped, "cancelled", "stopped: enough", "-"),
        (&z.running, "running", "-", "serial"),
        (&z.queued, "queued", "-", "serial"),
    ];
    for (id, state, result, group) in expect {
        let got = (cell(id, "STATE"), cell(id, "RESULT"), cell(id, "GROUP"));
        assert_eq!(
            got,
            (state.into(), result.into(), group.into()),
            "task {id}:\n{table}"
        );
        assert_eq!(cell(id, "DETACHED"), "yes", "{table}");
    }
    // A foreground task that ran to its end was never detached.
    assert_eq!(
        (cell(fg, "RESULT"), cell(fg, "DETACHED")),
        ("exit 0".into(), "no".into()),
        "{table}"
    );
    a.open("go");
}

#[test]
fn state_and_group_filters() {
    let a = Aside::with_config("[groups]\nserial = 1\n");
    let z = zoo(&a);
    let all = |more: &[&str]| {
        let mut args = vec!["ls", "--all"];
        args.extend_from_slice(more);
        ids(&a, &args)
    };
    assert_eq!(
        all(&["--state", "failed"]),
        [z.exit3.as_str(), z.killed.as_str()]
    );
    // Repeated and comma-separated alike.
    assert_eq!(
        all(&["--state", "succeeded,timed_out", "--state", "cancelled"]),
        [z.ok.as_str(), z.timed.as_str(), z.stopped.as_str()]
    );
    assert_eq!(
        all(&["--state", "ended"]),
        [
            z.ok.as_str(),
            z.exit3.as_str(),
            z.killed.as_str(),
            z.timed.as_str(),
            z.stopped.as_str()
        ]
    );
    assert_eq!(all(&["--state", "running"]), [z.running.as_str()]);
    assert_eq!(all(&["--state", "queued"]), [z.queued.as_str()]);
    assert!(all(&["--state", "lost"]).is_empty());
    assert_eq!(
        all(&["--group", "build"]),
        [z.ok.as_str(), z.exit3.as_str()]
    );
    assert_eq!(
        all(&["--group", "build", "--group", "serial"]),
        [
            z.ok.as_str(),
            z.exit3.as_str(),
            z.running.as_str(),
            z.queued.as_str()
        ]
    );
    // Both filters: each must match.
    assert_eq!(
        all(&["--group", "build", "--state", "failed"]),
        [z.exit3.as_str()]
    );
    assert_eq!(
        all(&["--group", "serial", "--state", "queued"]),
        [z.queued.as_str()]
    );
    // --limit counts the tasks that pass: the newest two failed ones, not the newest two.
    assert_eq!(
        all(&["--state", "ended", "--limit", "2"]),
        [z.timed.as_str(), z.stopped.as_str()]
    );
    assert_eq!(
        all(&["--state", "failed", "--limit", "1"]),
        [z.killed.as_str()]
    );
    // The table says when nothing matches.
    assert_eq!(
        a.ok(&["ls", "--all", "--group", "nope"]).text(),
        "no tasks match\n"
    );
    // A state that does not exist is a usage error that names the ones that do.
    let bad = a.run(&["ls", "--state", "done"]);
    assert_eq!(bad.code, 125, "{bad:?}");
    assert!(bad.stderr.contains("timed_out"), "{bad:?}");
    a.open("go");
}

#[test]
fn without_all_filters_apply_to_live_and_unseen_tasks_and_leave_the_rest_unseen() {
    let a = Aside::new();
    let failed = a.bg("exit 1");
    let done = a.bg("true");
    a.wait_end(&failed);
    a.wait_end(&done);
    let live = a.bg(&a.gate("go"));
    a.wait_state(&live, "running");
    // Without --all: only what `ls` lists (live tasks and unseen ones) is filtered.
    assert_eq!(ids(&a, &["ls", "--state", "running"]), [live.as_str()]);
    // The unseen tasks the filter left out are still unseen...
    let listed = a.ok(&["ls", "--json", "--state", "failed"]).json();
    let rows = listed.as_array().expect("an array");
    assert_eq!(rows.len(), 1, "{listed}");
    assert_eq!(rows[0]["id"], failed.as_str());
    assert_eq!(rows[0]["unseen"], true);
    // ...and the one it showed is seen now: the next plain `ls` marks only the other.
    let rest = a.ok(&["ls", "--json"]).json();
    let unseen: Vec<&Value> = rest
        .as_array()
        .expect("an array")
        .iter()
        .filter(|t| t["unseen"] == true)
        .collect();
    assert_eq!(unseen.len(), 1, "{rest}");
    assert_eq!(unseen[0]["id"], done.as_str());
    assert_eq!(
        a.ok(&["ls", "--state", "cancelled"]).text(),
        "no tasks match (aside ls --all looks through finished ones too)\n"
    );
    a.open("go");
    a.wait_end(&live);
}

#[test]
fn labels_are_shown_and_filtered_on() {
    let a = Aside::new();
    let web = a.bg_with(&["--label", "env=prod", "--label", "team=web"], "true");
    let db = a.bg_with(&["--label", "env=staging"], "true");
    let plain = a.bg("true");
    for id in [&web, &db, &plain] {
        a.wait_end(id);
    }
    let info = a.info(&web);
    assert_eq!(info["labels"]["env"], "prod");
    assert_eq!(info["labels"]["team"], "web");
    assert!(a.info(&plain).get("labels").is_none(), "omitted when empty");

    let table = a.ok(&["ls", "--all"]).text();
    assert!(
        row(&table, &web).contains("{env=prod team=web} sh -c true"),
        "{table}"
    );
    let text = a.ok(&["info", &web]).text();
    assert!(text.contains("labels:     env=prod team=web"), "{text}");

    assert_eq!(
        ids(&a, &["ls", "--all", "--label", "env=prod"]),
        std::slice::from_ref(&web)
    );
    assert_eq!(
        ids(&a, &["ls", "--all", "--label", "env"]),
        [web.clone(), db.clone()],
        "a key alone matches any value"
    );
    assert_eq!(
        ids(
            &a,
            &["ls", "--all", "--label", "env=prod", "--label", "team=db"]
        ),
        Vec::<String>::new(),
        "every label must match"
    );

    for (label, error) in [
        ("nokey", "write it as KEY=VALUE"),
        ("=v", "is 1 to 64 letters"),
        ("sp ace=v", "is 1 to 64 letters"),
    ] {
        let out = a.run(&["run", "--bg", "--label", label, "--", "true"]);
        assert_ne!(out.code, 0);
        assert!(out.stderr.contains(error), "{label}: {}", out.stderr);
    }
}
