use super::*;
use crate::tools::files::test_support::{glob_args, set_mtime, setup};

#[test]
fn glob_star_stays_in_one_directory() {
    let dir = setup(&[
        ("top.rs", ""),
        ("src/a.rs", ""),
        ("src/deep/b.rs", ""),
        ("c.txt", ""),
    ]);
    let limits = Limits::default();
    let out = glob(dir.path(), &glob_args("*.rs", None), &limits).unwrap();
    assert_eq!(out, "top.rs");
    let out = glob(dir.path(), &glob_args("**/*.rs", None), &limits).unwrap();
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(lines, ["src/a.rs", "src/deep/b.rs", "top.rs"]);
    let out = glob(dir.path(), &glob_args("./src/*.rs", None), &limits).unwrap();
    assert_eq!(out, "src/a.rs");
}

#[test]
fn glob_in_a_subdirectory_shows_paths_relative_to_cwd() {
    let dir = setup(&[("src/a.rs", ""), ("src/deep/b.rs", "")]);
    let out = glob(
        dir.path(),
        &glob_args("*.rs", Some("src")),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(out, "src/a.rs");
}

#[test]
fn glob_respects_gitignore_and_skips_hidden() {
    let dir = setup(&[
        (".gitignore", "target/\n*.log\n"),
        ("target/debug/x.rs", ""),
        ("keep.rs", ""),
        ("app.log", ""),
        (".git/config.rs", ""),
        (".hidden/h.rs", ""),
    ]);
    let limits = Limits::default();
    let out = glob(dir.path(), &glob_args("**/*.rs", None), &limits).unwrap();
    assert_eq!(out, "keep.rs");
    let out = glob(dir.path(), &glob_args("*.log", None), &limits).unwrap();
    assert!(out.starts_with("no files match *.log"), "{out}");
}

#[test]
fn glob_sorts_newest_first_and_truncates() {
    let dir = setup(&[("old.rs", ""), ("mid.rs", ""), ("new.rs", "")]);
    set_mtime(&dir.path().join("old.rs"), 300);
    set_mtime(&dir.path().join("mid.rs"), 200);
    set_mtime(&dir.path().join("new.rs"), 100);
    let out = glob(dir.path(), &glob_args("*.rs", None), &Limits::default()).unwrap();
    assert_eq!(out, "new.rs\nmid.rs\nold.rs");

    let limits = Limits {
        max_results: 2,
        ..Limits::default()
    };
    let out = glob(dir.path(), &glob_args("*.rs", None), &limits).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..2], ["new.rs", "mid.rs"]);
    assert!(lines[3].contains("showing 2 of 3"), "{out}");
}

#[test]
fn glob_errors() {
    let dir = setup(&[("a.rs", "")]);
    let limits = Limits::default();
    let err = glob(dir.path(), &glob_args("a[", None), &limits).unwrap_err();
    assert!(matches!(err, FileToolError::InvalidGlob { .. }));
    assert!(
        err.to_string().starts_with("invalid glob pattern `a[`"),
        "{err}"
    );
    let err = glob(dir.path(), &glob_args("*", Some("missing")), &limits).unwrap_err();
    assert!(matches!(err, FileToolError::NoSuchDirectory { .. }));
    let err = glob(dir.path(), &glob_args("*", Some("a.rs")), &limits).unwrap_err();
    assert!(matches!(err, FileToolError::NotADirectory { .. }));
    let out = glob(dir.path(), &glob_args("*.py", None), &limits).unwrap();
    assert_eq!(out, "no files match *.py in .");
}
