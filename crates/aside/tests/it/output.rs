//! Output: when it reaches a log file, and that every byte survives, binary or not.

use crate::support::*;

fn only_task_id(a: &Aside, skip: &[String]) -> String {
    a.list_all()
        .into_iter()
        .filter_map(|t| t["id"].as_str().map(str::to_string))
        .find(|id| !skip.contains(id))
        .expect("a new task")
}

fn log_dir_entries(a: &Aside) -> Vec<String> {
    std::fs::read_dir(a.home.join("logs"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_shell_tasks_output_is_logged_by_its_supervisor_and_silence_costs_no_file() {
    let a = Aside::new();
    // The supervisor writes the log, so that the output outlives the daemon: foreground
    // output is logged as background output is.
    let small = a.ok(&["run", "--", "sh", "-c", "echo small"]);
    assert_eq!(small.stdout, b"small\n");
    let small_id = only_task_id(&a, &[]);
    assert_eq!(
        std::fs::read(a.log_file(&small_id)).ok().as_deref(),
        Some(&b"small\n"[..])
    );
    assert_eq!(a.logs(&small_id), b"small\n");
    assert_eq!(
        a.info(&small_id)["log_path"],
        a.log_file(&small_id).display().to_string()
    );
    let quiet = a.ok(&["run", "--", "true"]);
    assert!(quiet.stdout.is_empty());
    let quiet_id = only_task_id(&a, std::slice::from_ref(&small_id));
    assert!(
        !a.log_file(&quiet_id).exists(),
        "a task that prints nothing has no log: {:?}",
        log_dir_entries(&a)
    );

    let big = a.ok(&["run", "--", "sh", "-c", "head -c 1200000 /dev/zero"]);
    assert_eq!(big.stdout.len(), 1_200_000);
    assert!(big.stdout.iter().all(|b| *b == 0));
    let big_id = only_task_id(&a, &[small_id.clone(), quiet_id.clone()]);
    let log = a.log_file(&big_id);
    assert_eq!(
        std::fs::metadata(&log).map(|m| m.len()).ok(),
        Some(1_200_000)
    );
    assert_eq!(a.info(&big_id)["log_path"], log.display().to_string());
    assert_eq!(a.info(&big_id)["output_bytes"], 1_200_000);

    let payload: &[u8] = b"line1\nline2\r\n\ttabbed  \nno newline at the end";
    std::fs::write(a.path("payload"), payload).expect("payload");
    let bg = a.bg("cat payload");
    assert_eq!(a.wait_end(&bg)["state"], "succeeded");
    assert_eq!(
        std::fs::read(a.log_file(&bg)).ok().as_deref(),
        Some(payload),
        "a background task always has a log"
    );
    assert_eq!(a.logs(&bg), payload, "aside logs is byte-exact");
}

/// NULs, 0xFF, an invalid UTF-8 sequence, valid multi-byte UTF-8, then 300 KB of
/// pseudo-random bytes; no trailing newline.
fn binary_payload() -> Vec<u8> {
    let mut p =
        b"\0\0NUL\xff\xfe\xc3\x28bad utf8 \xe2\x82\xac euro \xf0\x9f\x98\x80 \x80\x80".to_vec();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..300_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p.push((x >> 24) as u8);
    }
    p.extend_from_slice(b"\xff end");
    p
}

#[test]
fn binary_output_is_byte_exact_in_the_foreground_and_in_logs() {
    let a = Aside::new();
    let payload = binary_payload();
    std::fs::write(a.path("payload.bin"), &payload).expect("payload");

    let fg = a.ok(&["run", "--", "cat", "payload.bin"]);
    assert!(
        fg.stdout == payload,
        "foreground stdout differs ({} bytes, expected {})",
        fg.stdout.len(),
        payload.len()
    );
    let fg_id = only_task_id(&a, &[]);
    assert!(
        a.logs(&fg_id) == payload,
        "logs of the foreground task differ"
    );

    let bg = a.bg("cat payload.bin");
    assert_eq!(a.wait_end(&bg)["output_bytes"], payload.len());
    let logged = a.logs(&bg);
    assert!(
        logged == payload,
        "logs of the background task differ ({} bytes)",
        logged.len()
    );
    assert!(
        std::fs::read(a.log_file(&bg)).expect("log") == payload,
        "the log file differs"
    );
}

#[test]
fn output_without_a_trailing_newline_is_kept_as_is_and_tail_counts_its_last_line() {
    let a = Aside::new();
    let fg = a.ok(&["run", "--", "printf", "a\\nb\\nc"]);
    assert_eq!(fg.stdout, b"a\nb\nc");
    let id = a.bg("printf 'a\\nb\\nc'");
    a.wait_end(&id);
    assert_eq!(a.logs(&id), b"a\nb\nc");
    assert_eq!(a.ok(&["logs", &id, "--tail", "1"]).stdout, b"c");
    assert_eq!(a.ok(&["logs", &id, "--tail", "2"]).stdout, b"b\nc");
    assert_eq!(a.ok(&["logs", &id, "--tail", "0"]).stdout, b"");
    let with_nl = a.bg("printf 'a\\nb\\n'");
    a.wait_end(&with_nl);
    assert_eq!(a.ok(&["logs", &with_nl, "--tail", "1"]).stdout, b"b\n");
}

#[test]
fn logs_follow_streams_until_the_task_ends() {
    let a = Aside::new();
    let id = a.bg(&format!("echo one; {}; echo two", a.gate("go")));
    let follower = a.spawn(&["logs", "-f", &id]);
    follower.wait_stdout(b"one\n");
    a.open("go");
    let out = follower.finish();
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\ntwo\n");
}

#[test]
fn output_past_the_cap_fails_the_task_and_keeps_exactly_the_cap() {
    let a = Aside::with_config("output_cap = \"100KiB\"\n");
    let d = a.home.display();
    let id = a.bg(&format!(
        "echo $$ > '{d}/writer.pid'; while :; do head -c 65536 /dev/zero; done"
    ));
    let rec = a.wait_end(&id);
    assert_eq!(rec["state"], "failed", "{rec}");
    assert_eq!(rec["failure"], "output_cap", "{rec}");
    assert_eq!(rec["limit_bytes"], 100 * 1024, "{rec}");
    assert_eq!(rec["output_bytes"], 100 * 1024, "{rec}");
    assert_eq!(a.logs(&id).len(), 100 * 1024);
    assert_eq!(a.run(&["wait", &id]).code, 1);
    assert_all_dead(&[a.read_pid("writer.pid")], SOON, "the writer past the cap");
}

#[test]
fn a_running_task_reports_its_output_so_far() {
    let a = Aside::new();
    let id = a.bg(&format!("echo hello; {}", a.gate("go")));
    assert!(eventually(SOON, || std::fs::metadata(a.log_file(&id))
        .map(|m| m.len())
        .unwrap_or(0)
        == 6));
    let rec = a.info(&id);
    assert_eq!(rec["state"], "running");
    assert_eq!(
        rec["output_bytes"], 6,
        "the log holds 6 bytes already: {rec}"
    );
    let text = a.ok(&["info", &id]).text();
    assert!(text.contains("output:     6 bytes"), "{text}");
    a.open("go");
    a.wait_end(&id);
}

/// Logs are never written or read through a symbolic link: one planted at `logs/ID.log`
/// is replaced by the real log (its target untouched), one swapped in later is refused by
/// `aside logs`, and a `logs` folder that is a link stops the daemon from starting.
#[test]
fn logs_are_never_written_or_read_through_a_symbolic_link() {
    let a = Aside::new();
    a.ok(&["daemon", "start"]);
    let precious = a.path("precious");
    std::fs::write(&precious, "keep me\n").unwrap();
    // The next task is 1: plant its log.
    std::os::unix::fs::symlink(&precious, a.log_file("1")).unwrap();
    let id = a.bg("echo written");
    assert_eq!(id, "1");
    a.wait_end(&id);
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me\n");
    assert_eq!(a.logs(&id), b"written\n");
    let meta = std::fs::symlink_metadata(a.log_file(&id)).unwrap();
    assert!(meta.file_type().is_file(), "the log is a real file");

    // Swapped for a link after the task ended: refused, nothing of the target shown.
    std::fs::remove_file(a.log_file(&id)).unwrap();
    std::os::unix::fs::symlink(&precious, a.log_file(&id)).unwrap();
    let out = a.run(&["logs", &id]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(!out.stdout.windows(4).any(|w| w == b"keep"), "{out:?}");
    // Cleaning removes the link, not its target.
    a.ok(&["clean"]);
    assert!(std::fs::symlink_metadata(a.log_file(&id)).is_err());
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me\n");

    // A logs folder that is a link: the daemon refuses to start, saying why.
    a.ok(&["daemon", "stop"]);
    let logs = a.path("logs");
    std::fs::remove_dir_all(&logs).unwrap();
    let elsewhere = a.path("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &logs).unwrap();
    let out = a.run(&["ls"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("logs"), "{out:?}");
}
