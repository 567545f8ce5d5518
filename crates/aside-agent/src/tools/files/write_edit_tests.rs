use super::*;
use crate::tools::files::test_support::setup;

fn edit_args(path: &str, old: &str, new: &str, replace_all: bool) -> EditArgs {
    EditArgs {
        path: path.to_owned(),
        old_string: old.to_owned(),
        new_string: new.to_owned(),
        replace_all,
    }
}

#[test]
fn write_creates_new_file_and_parent_dirs() {
    let dir = setup(&[]);
    let args = WriteArgs {
        path: "deep/er/a.rs".into(),
        content: "fn main() {}\n".into(),
    };
    let out = write(dir.path(), &args).unwrap();
    assert_eq!(out, "wrote 13 bytes to deep/er/a.rs (new file)");
    let written = fs::read_to_string(dir.path().join("deep/er/a.rs")).unwrap();
    assert_eq!(written, "fn main() {}\n");
}

#[test]
fn write_replaces_existing_file() {
    let dir = setup(&[("a.txt", "old content")]);
    let args = WriteArgs {
        path: "a.txt".into(),
        content: "new".into(),
    };
    assert_eq!(
        write(dir.path(), &args).unwrap(),
        "wrote 3 bytes to a.txt (replaced)"
    );
    assert_eq!(fs::read_to_string(dir.path().join("a.txt")).unwrap(), "new");
    let leftovers = fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 1, "no temporary files remain");
}

#[test]
fn write_to_a_directory_is_an_error() {
    let dir = setup(&[("src/a.rs", "")]);
    let args = WriteArgs {
        path: "src".into(),
        content: "x".into(),
    };
    let err = write(dir.path(), &args).unwrap_err();
    assert!(matches!(err, FileToolError::IsDirectory { .. }));
}

#[cfg(unix)]
#[test]
fn write_through_a_symlink_keeps_the_link() {
    let dir = setup(&[("real.txt", "old")]);
    std::os::unix::fs::symlink("real.txt", dir.path().join("link.txt")).unwrap();
    let args = WriteArgs {
        path: "link.txt".into(),
        content: "new".into(),
    };
    write(dir.path(), &args).unwrap();
    let link = dir.path().join("link.txt");
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        fs::read_to_string(dir.path().join("real.txt")).unwrap(),
        "new"
    );
}

#[test]
fn edit_replaces_a_unique_occurrence() {
    let dir = setup(&[("src/a.rs", "let x = 1;\nlet y = 2;\n")]);
    let out = edit(dir.path(), &edit_args("src/a.rs", "y = 2", "y = 3", false)).unwrap();
    assert_eq!(out, "replaced 1 occurrence in src/a.rs");
    let content = fs::read_to_string(dir.path().join("src/a.rs")).unwrap();
    assert_eq!(content, "let x = 1;\nlet y = 3;\n");
}

#[test]
fn edit_not_found() {
    let dir = setup(&[("src/a.rs", "let x = 1;\n")]);
    let err = edit(dir.path(), &edit_args("src/a.rs", "let z", "let w", false)).unwrap_err();
    assert!(matches!(err, FileToolError::OldStringNotFound { .. }));
    assert!(
        err.to_string()
            .starts_with("old_string was not found in src/a.rs"),
        "{err}"
    );
}

#[test]
fn edit_multiple_needs_replace_all() {
    let dir = setup(&[("src/a.rs", "foo foo\nfoo\n")]);
    let err = edit(dir.path(), &edit_args("src/a.rs", "foo", "bar", false)).unwrap_err();
    assert!(matches!(
        err,
        FileToolError::AmbiguousOldString { count: 3, .. }
    ));
    let text = err.to_string();
    assert!(
        text.starts_with("old_string occurs 3 times in src/a.rs"),
        "{text}"
    );
    assert!(text.contains("replace_all"), "{text}");
    assert_eq!(
        fs::read_to_string(dir.path().join("src/a.rs")).unwrap(),
        "foo foo\nfoo\n"
    );

    let out = edit(dir.path(), &edit_args("src/a.rs", "foo", "bar", true)).unwrap();
    assert_eq!(out, "replaced 3 occurrences in src/a.rs");
    assert_eq!(
        fs::read_to_string(dir.path().join("src/a.rs")).unwrap(),
        "bar bar\nbar\n"
    );
}

#[test]
fn edit_rejects_empty_and_identical_strings() {
    let dir = setup(&[("a.txt", "abc")]);
    let err = edit(dir.path(), &edit_args("a.txt", "", "x", false)).unwrap_err();
    assert!(matches!(err, FileToolError::EmptyOldString));
    assert!(err.to_string().contains("use write"), "{err}");
    let err = edit(dir.path(), &edit_args("a.txt", "abc", "abc", false)).unwrap_err();
    assert!(matches!(err, FileToolError::NoChange));
}

#[test]
fn edit_missing_file_and_directory() {
    let dir = setup(&[("src/a.rs", "")]);
    let err = edit(dir.path(), &edit_args("nope.rs", "a", "b", false)).unwrap_err();
    assert!(matches!(err, FileToolError::NotFound { .. }));
    let err = edit(dir.path(), &edit_args("src", "a", "b", false)).unwrap_err();
    assert!(matches!(err, FileToolError::IsDirectory { .. }));
}

#[test]
fn edit_refuses_invalid_utf8() {
    let dir = setup(&[]);
    fs::write(dir.path().join("l.txt"), b"caf\xe9 old\n").unwrap();
    let err = edit(dir.path(), &edit_args("l.txt", "old", "new", false)).unwrap_err();
    assert!(matches!(err, FileToolError::NotUtf8 { .. }));
}

#[test]
fn edit_handles_crlf_files() {
    let dir = setup(&[("w.txt", "one\r\ntwo\r\nthree\r\n")]);
    edit(dir.path(), &edit_args("w.txt", "one\ntwo", "1\n2", false)).unwrap();
    assert_eq!(
        fs::read_to_string(dir.path().join("w.txt")).unwrap(),
        "1\r\n2\r\nthree\r\n"
    );
}

#[cfg(unix)]
#[test]
fn edit_keeps_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = setup(&[("run.sh", "echo old\n")]);
    let path = dir.path().join("run.sh");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o751)).unwrap();
    edit(dir.path(), &edit_args("run.sh", "old", "new", false)).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "echo new\n");
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o751);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn write_and_edit_refuse_read_only_files() {
    let dir = setup(&[("locked.txt", "old")]);
    let path = dir.path().join("locked.txt");
    let mut permissions = fs::metadata(&path).unwrap().permissions();
    permissions.set_readonly(true);
    fs::set_permissions(&path, permissions).unwrap();
    let err = edit(dir.path(), &edit_args("locked.txt", "old", "new", false)).unwrap_err();
    assert!(matches!(err, FileToolError::ReadOnly { .. }));
    let args = WriteArgs {
        path: "locked.txt".into(),
        content: "new".into(),
    };
    let err = write(dir.path(), &args).unwrap_err();
    assert_eq!(
        err.to_string(),
        "locked.txt is read-only; it was left unchanged"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), "old");
}

#[test]
fn edit_args_are_lenient() {
    let args: EditArgs = serde_json::from_value(serde_json::json!({
        "file_path": "a", "old_string": "x", "new_string": "y", "replace_all": null, "extra": true
    }))
    .unwrap();
    assert!(!args.replace_all);
    assert_eq!(args.path, "a");
}

#[cfg(unix)]
#[test]
fn write_gives_a_new_file_the_mode_new_files_get() {
    use std::os::unix::fs::PermissionsExt;
    // Made by fs::write: 0666 less the umask.
    let dir = setup(&[("plain.txt", "")]);
    let args = WriteArgs {
        path: "new.txt".into(),
        content: "x".into(),
    };
    write(dir.path(), &args).unwrap();
    let mode = |name: &str| {
        fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("new.txt"), mode("plain.txt"));
}
