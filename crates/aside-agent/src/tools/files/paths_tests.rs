use crate::tools::files::test_support::{glob_args, read_args, setup};
use crate::tools::files::{glob, read, Limits};

#[test]
fn paths_outside_cwd_are_absolute() {
    let outer = setup(&[("other/a.txt", "x\n"), ("work/b.txt", "")]);
    let cwd = outer.path().join("work");
    let out = glob(
        &cwd,
        &glob_args("*.txt", Some("../other")),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(out, outer.path().join("other/a.txt").display().to_string());
    let err = read(
        &cwd,
        &read_args("./../work/missing", None, None),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with("no such file: missing"),
        "{err}"
    );
}
