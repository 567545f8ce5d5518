use std::fs;

use super::*;
use crate::tools::files::test_support::{read_args, setup};
use crate::tools::files::BINARY_SNIFF_BYTES;

fn numbered(lines: usize) -> String {
    (1..=lines).map(|n| format!("line {n}\n")).collect()
}

#[test]
fn read_numbers_lines_like_cat_n() {
    let dir = setup(&[("a.txt", "alpha\nbeta\r\n\ngamma")]);
    let out = read(
        dir.path(),
        &read_args("a.txt", None, None),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(out, "     1\talpha\n     2\tbeta\n     3\t\n     4\tgamma");
}

#[test]
fn read_absolute_path_and_file_path_alias() {
    let dir = setup(&[("a.txt", "x\n")]);
    let abs = dir.path().join("a.txt");
    let args: ReadArgs =
        serde_json::from_value(serde_json::json!({"file_path": abs, "unknown": 1})).unwrap();
    let out = read(Path::new("/"), &args, &Limits::default()).unwrap();
    assert_eq!(out, "     1\tx");
}

#[test]
fn read_offset_and_limit_with_continuation_note() {
    let dir = setup(&[("a.txt", &numbered(10))]);
    let out = read(
        dir.path(),
        &read_args("a.txt", Some(3), Some(4)),
        &Limits::default(),
    )
    .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "     3\tline 3");
    assert_eq!(lines[3], "     6\tline 6");
    assert_eq!(lines[4], "");
    assert!(lines[5].contains("lines 3-6 of 10"), "{out}");
    assert!(lines[5].contains("offset 7"), "{out}");
    assert_eq!(lines.len(), 6);
}

#[test]
fn read_to_the_end_has_no_note() {
    let dir = setup(&[("a.txt", &numbered(10))]);
    let out = read(
        dir.path(),
        &read_args("a.txt", Some(8), Some(50)),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(out, "     8\tline 8\n     9\tline 9\n    10\tline 10");
}

#[test]
fn read_default_limit_is_max_read_lines_and_caps_limit() {
    let dir = setup(&[("a.txt", &numbered(30))]);
    let limits = Limits {
        max_read_lines: 5,
        ..Limits::default()
    };
    for limit in [None, Some(100), Some(0)] {
        let out = read(dir.path(), &read_args("a.txt", None, limit), &limits).unwrap();
        assert!(out.starts_with("     1\tline 1\n"));
        assert!(out.contains("     5\tline 5\n"));
        assert!(!out.contains("line 6"));
        assert!(out.contains("lines 1-5 of 30"), "{out}");
        assert!(out.contains("offset 6"), "{out}");
    }
}

#[test]
fn read_offset_past_end_is_an_error() {
    let dir = setup(&[("a.txt", &numbered(3))]);
    let err = read(
        dir.path(),
        &read_args("a.txt", Some(9), None),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, FileToolError::OffsetPastEnd { lines: 3, .. }));
    assert!(err.to_string().contains("has 3 lines"), "{err}");
}

#[test]
fn read_cuts_long_lines() {
    let long = "é".repeat(50);
    let dir = setup(&[("a.txt", &format!("short\n{long}\n"))]);
    let limits = Limits {
        max_line_chars: 10,
        ..Limits::default()
    };
    let out = read(dir.path(), &read_args("a.txt", None, None), &limits).unwrap();
    let second = out.lines().nth(1).unwrap();
    assert!(
        second.starts_with(&format!("     2\t{}…", "é".repeat(10))),
        "{second}"
    );
    assert!(second.contains("line cut at 10 characters"), "{second}");
    assert_eq!(out.lines().next().unwrap(), "     1\tshort");
}

#[test]
fn read_cuts_a_huge_line_without_keeping_it() {
    let dir = setup(&[("a.txt", &format!("{}\nnext\n", "x".repeat(100_000)))]);
    let limits = Limits {
        max_line_chars: 20,
        ..Limits::default()
    };
    let out = read(dir.path(), &read_args("a.txt", None, None), &limits).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("     1\t{}… [line cut at 20 characters]", "x".repeat(20))
    );
    assert_eq!(lines[1], "     2\tnext");
}

#[test]
fn read_refuses_binary_files() {
    let dir = setup(&[]);
    fs::write(dir.path().join("b.bin"), b"\x7fELF\x00\x01\x02").unwrap();
    let err = read(
        dir.path(),
        &read_args("b.bin", None, None),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, FileToolError::Binary { .. }));
    assert_eq!(
        err.to_string(),
        "b.bin is a binary file; only text files can be read"
    );
}

#[test]
fn read_nul_after_the_sniffed_prefix_is_text() {
    let dir = setup(&[]);
    let mut content = "a".repeat(BINARY_SNIFF_BYTES + 10).into_bytes();
    content.push(b'\n');
    content.push(0);
    fs::write(dir.path().join("late.txt"), content).unwrap();
    let out = read(
        dir.path(),
        &read_args("late.txt", None, None),
        &Limits::default(),
    );
    assert!(out.is_ok());
}

#[test]
fn read_invalid_utf8_is_lossy() {
    let dir = setup(&[]);
    fs::write(dir.path().join("l.txt"), b"caf\xe9\n").unwrap();
    let out = read(
        dir.path(),
        &read_args("l.txt", None, None),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(out, "     1\tcaf\u{fffd}");
}

#[test]
fn read_directory_and_missing_file_errors() {
    let dir = setup(&[("src/a.rs", "")]);
    let err = read(
        dir.path(),
        &read_args("src", None, None),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, FileToolError::IsDirectory { .. }));
    assert!(err.to_string().contains("src is a directory"), "{err}");
    assert!(err.to_string().contains("glob"), "{err}");

    let err = read(
        dir.path(),
        &read_args("nope.rs", None, None),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, FileToolError::NotFound { .. }));
    assert!(
        err.to_string().starts_with("no such file: nope.rs"),
        "{err}"
    );
}

#[test]
fn read_empty_file_says_so() {
    let dir = setup(&[("e.txt", "")]);
    let out = read(
        dir.path(),
        &read_args("e.txt", None, None),
        &Limits::default(),
    )
    .unwrap();
    assert!(out.contains("e.txt is empty"), "{out}");
}
