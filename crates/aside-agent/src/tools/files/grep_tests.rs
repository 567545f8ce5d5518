use tempfile::TempDir;

use super::*;
use crate::tools::files::test_support::{set_mtime, setup};
use crate::tools::files::EditArgs;

fn grep_args(pattern: &str) -> GrepArgs {
    GrepArgs {
        pattern: pattern.to_owned(),
        path: None,
        glob: None,
        case_insensitive: None,
        output_mode: None,
    }
}

fn grep_tree() -> TempDir {
    setup(&[
        ("src/a.rs", "fn main() {\n    println!(\"Hello\");\n}\n"),
        ("src/b.rs", "// hello there\nfn hello() {}\n"),
        ("notes.txt", "nothing here\n"),
        (".gitignore", "ignored/\n"),
        ("ignored/c.rs", "hello\n"),
    ])
}

#[test]
fn grep_files_with_matches_is_the_default() {
    let dir = grep_tree();
    set_mtime(&dir.path().join("src/a.rs"), 100);
    set_mtime(&dir.path().join("src/b.rs"), 200);
    let mut args = grep_args("(?i)hello");
    let out = grep(dir.path(), &args, &Limits::default()).unwrap();
    assert_eq!(out, "src/a.rs\nsrc/b.rs");
    args.output_mode = Some(OutputMode::FilesWithMatches);
    assert_eq!(grep(dir.path(), &args, &Limits::default()).unwrap(), out);
}

#[test]
fn grep_content_and_count_modes() {
    let dir = grep_tree();
    let mut args = grep_args("hello");
    args.output_mode = Some(OutputMode::Content);
    let out = grep(dir.path(), &args, &Limits::default()).unwrap();
    assert_eq!(out, "src/b.rs:1:// hello there\nsrc/b.rs:2:fn hello() {}");

    args.output_mode = Some(OutputMode::Count);
    args.case_insensitive = Some(true);
    let out = grep(dir.path(), &args, &Limits::default()).unwrap();
    assert_eq!(out, "src/a.rs:1\nsrc/b.rs:2");
}

#[test]
fn grep_output_mode_parses_from_json() {
    let args: GrepArgs = serde_json::from_value(serde_json::json!({
        "pattern": "x", "output_mode": "content", "glob": null
    }))
    .unwrap();
    assert_eq!(args.output_mode, Some(OutputMode::Content));
    let bad = serde_json::from_value::<GrepArgs>(
        serde_json::json!({"pattern": "x", "output_mode": "lines"}),
    );
    assert!(bad.is_err());
}

#[test]
fn grep_case_insensitive() {
    let dir = grep_tree();
    let mut args = grep_args("HELLO");
    assert!(grep(dir.path(), &args, &Limits::default())
        .unwrap()
        .starts_with("no matches for HELLO"));
    args.case_insensitive = Some(true);
    let out = grep(dir.path(), &args, &Limits::default()).unwrap();
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(lines, ["src/a.rs", "src/b.rs"]);
}

#[test]
fn grep_glob_filter() {
    let dir = grep_tree();
    let mut args = grep_args("here");
    args.glob = Some("*.txt".into());
    assert_eq!(
        grep(dir.path(), &args, &Limits::default()).unwrap(),
        "notes.txt"
    );
    args.glob = Some("*.rs".into());
    assert_eq!(
        grep(dir.path(), &args, &Limits::default()).unwrap(),
        "src/b.rs"
    );
    args.glob = Some("src/*.{txt,md}".into());
    let out = grep(dir.path(), &args, &Limits::default()).unwrap();
    assert!(out.starts_with("no matches for here"), "{out}");
    args.glob = Some("[".into());
    let err = grep(dir.path(), &args, &Limits::default()).unwrap_err();
    assert!(matches!(err, FileToolError::InvalidGlob { .. }));
}

#[test]
fn grep_respects_gitignore() {
    let dir = grep_tree();
    let mut args = grep_args("^hello$");
    let out = grep(dir.path(), &args, &Limits::default()).unwrap();
    assert!(out.starts_with("no matches"), "{out}");
    // Naming an ignored file explicitly still searches it.
    args.path = Some("ignored/c.rs".into());
    let out = grep(dir.path(), &args, &Limits::default()).unwrap();
    assert_eq!(out, "ignored/c.rs");
}

#[test]
fn grep_invalid_regex() {
    let dir = grep_tree();
    let err = grep(dir.path(), &grep_args("fn main("), &Limits::default()).unwrap_err();
    assert!(matches!(err, FileToolError::InvalidRegex { .. }));
    let text = err.to_string();
    assert!(text.starts_with("invalid regex `fn main(`"), "{text}");
    assert!(text.contains("unclosed group"), "{text}");
}

#[test]
fn grep_skips_binary_files() {
    let dir = grep_tree();
    fs::write(dir.path().join("blob.bin"), b"hello\x00world").unwrap();
    let out = grep(dir.path(), &grep_args("world"), &Limits::default()).unwrap();
    assert!(out.starts_with("no matches for world"), "{out}");
    let mut args = grep_args("world");
    args.path = Some("blob.bin".into());
    let err = grep(dir.path(), &args, &Limits::default()).unwrap_err();
    assert!(matches!(err, FileToolError::Binary { .. }));
}

#[test]
fn grep_truncates_results_and_long_lines() {
    let dir = setup(&[("many.txt", &"match here\n".repeat(10))]);
    let limits = Limits {
        max_results: 3,
        max_line_chars: 5,
        ..Limits::default()
    };
    let mut args = grep_args("match");
    args.output_mode = Some(OutputMode::Content);
    let out = grep(dir.path(), &args, &limits).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "many.txt:1:match… [line cut at 5 characters]");
    assert_eq!(lines[2], "many.txt:3:match… [line cut at 5 characters]");
    assert_eq!(lines[3], "");
    assert!(lines[4].contains("showing 3 of 10 matching lines"), "{out}");
    assert_eq!(lines.len(), 5);
}

#[test]
fn grep_truncates_file_lists() {
    let files: Vec<(String, &str)> = (0..5).map(|i| (format!("f{i}.txt"), "x\n")).collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    let dir = setup(&refs);
    let limits = Limits {
        max_results: 2,
        ..Limits::default()
    };
    let out = grep(dir.path(), &grep_args("x"), &limits).unwrap();
    assert_eq!(out.lines().count(), 4);
    assert!(out.contains("showing 2 of 5 matching files"), "{out}");
}

#[test]
fn grep_missing_path() {
    let dir = grep_tree();
    let mut args = grep_args("x");
    args.path = Some("nowhere".into());
    let err = grep(dir.path(), &args, &Limits::default()).unwrap_err();
    assert!(matches!(err, FileToolError::NoSuchPath { .. }));
}

#[test]
fn schemas_carry_field_descriptions() {
    let schema = serde_json::to_value(schemars::schema_for!(GrepArgs)).unwrap();
    let props = &schema["properties"];
    for field in ["pattern", "path", "glob", "case_insensitive", "output_mode"] {
        assert!(props[field]["description"].is_string(), "{field}: {schema}");
    }
    let required = schema["required"].as_array().unwrap();
    assert_eq!(required, &[serde_json::json!("pattern")]);
    let schema = serde_json::to_value(schemars::schema_for!(EditArgs)).unwrap();
    assert!(schema["properties"]["replace_all"]["description"].is_string());
}

#[test]
fn grep_streams_files_larger_than_its_buffer() {
    let text: String = (1..=200_000)
        .map(|n| {
            if n % 50_000 == 0 {
                "needle\n"
            } else {
                "hay hay hay\n"
            }
        })
        .collect();
    let dir = setup(&[("big.txt", &text)]);
    let mut args = grep_args("^needle$");
    args.output_mode = Some(OutputMode::Content);
    let out = grep(dir.path(), &args, &Limits::default()).unwrap();
    assert_eq!(
        out,
        "big.txt:50000:needle\nbig.txt:100000:needle\nbig.txt:150000:needle\nbig.txt:200000:needle"
    );
    args.output_mode = Some(OutputMode::Count);
    assert_eq!(
        grep(dir.path(), &args, &Limits::default()).unwrap(),
        "big.txt:4"
    );
}

#[test]
fn grep_crlf_lines_match_at_their_end_and_show_without_the_cr() {
    let dir = setup(&[("w.txt", "one\r\ntwo\r\n")]);
    let mut args = grep_args("^two$");
    args.output_mode = Some(OutputMode::Content);
    assert_eq!(
        grep(dir.path(), &args, &Limits::default()).unwrap(),
        "w.txt:2:two"
    );
}

#[test]
fn grep_shows_invalid_utf8_lossily_and_nul_after_the_sniffed_prefix_is_text() {
    let dir = setup(&[]);
    fs::write(dir.path().join("l.txt"), b"caf\xe9 x\n").unwrap();
    let mut late = "a".repeat(crate::tools::files::BINARY_SNIFF_BYTES + 10);
    late.push_str("\nlate\0 x\n");
    fs::write(dir.path().join("m.txt"), late).unwrap();
    let mut args = grep_args(" x$");
    args.output_mode = Some(OutputMode::Content);
    assert_eq!(
        grep(dir.path(), &args, &Limits::default()).unwrap(),
        "l.txt:1:caf\u{fffd} x\nm.txt:2:late\0 x"
    );
}
