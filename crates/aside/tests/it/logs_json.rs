//! `aside logs --json`: the output as JSON lines, `{"offset", "encoding", "data"}`, every
//! byte accounted for, binary included, with and without -f.

use base64::Engine as _;
use serde_json::Value;

use crate::support::*;

/// The lines of `aside logs --json`, each checked for its shape.
fn lines(out: &Out) -> Vec<Value> {
    assert_eq!(out.code, 0, "{out:?}");
    out.text()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .inspect(|v| {
            let keys: Vec<&String> = v.as_object().expect("an object").keys().collect();
            assert_eq!(keys, ["data", "encoding", "offset"], "{v}");
        })
        .collect()
}

/// The bytes the lines carry, checking that each starts where the one before ended.
fn bytes(lines: &[Value], start: u64) -> Vec<u8> {
    let mut all = Vec::new();
    for l in lines {
        assert_eq!(l["offset"], start + all.len() as u64, "{lines:?}");
        let data = l["data"].as_str().expect("data");
        match l["encoding"].as_str() {
            Some("utf8") => all.extend_from_slice(data.as_bytes()),
            Some("base64") => all.extend(
                base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .expect("base64"),
            ),
            other => panic!("encoding {other:?}"),
        }
    }
    all
}

#[test]
fn binary_output_survives_as_base64_and_text_stays_text() {
    let a = Aside::new();
    let id = a.bg(r"printf 'text\n\377\376\000end'");
    a.wait_end(&id);
    let got = lines(&a.run(&["logs", &id, "--json"]));
    assert!(got.iter().any(|l| l["encoding"] == "base64"), "{got:?}");
    assert_eq!(bytes(&got, 0), b"text\n\xff\xfe\x00end");

    let text = a.bg(r"printf 'caf\303\251\nsecond line\n'");
    a.wait_end(&text);
    let got = lines(&a.run(&["logs", &text, "--json"]));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["encoding"], "utf8");
    assert_eq!(got[0]["data"], "café\nsecond line\n");
    // --tail: the offset says where the lines start.
    let tail = lines(&a.run(&["logs", &text, "--json", "--tail", "1"]));
    assert_eq!(bytes(&tail, 6), b"second line\n");
    // A task with no output: no lines.
    let quiet = a.bg("true");
    a.wait_end(&quiet);
    assert!(lines(&a.run(&["logs", &quiet, "--json"])).is_empty());
}

#[test]
fn follow_prints_a_line_per_piece_as_it_comes() {
    let a = Aside::new();
    let id = a.bg(&format!(
        r"printf 'one\n'; {}; printf '\377two\n'; {}; printf 'three\n'",
        a.gate("g1"),
        a.gate("g2")
    ));
    let follow = a.spawn(&["logs", &id, "-f", "--json"]);
    follow.wait_stdout(br#""data":"one\n""#);
    a.open("g1");
    follow.wait_stdout(br#""offset":4"#);
    a.open("g2");
    let out = follow.finish();
    let got = lines(&out);
    assert!(got.len() >= 3, "one line per piece: {got:?}");
    assert_eq!(bytes(&got, 0), b"one\n\xfftwo\nthree\n");
    assert_eq!(a.state(&id), "succeeded");
}

#[test]
fn until_prints_json_lines_up_to_the_match() {
    let a = Aside::new();
    let id = a.bg(&format!(
        r"printf 'booting\nready on :8080\n'; {}",
        a.gate("stop")
    ));
    let got = lines(&a.run(&["logs", &id, "--until", r"ready on :\d+", "--json"]));
    assert_eq!(bytes(&got, 0), b"booting\nready on :8080");
    a.open("stop");
    a.wait_end(&id);
}
