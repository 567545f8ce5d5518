//! `aside --help`: the settings with their defaults, the files and the exit codes.

use crate::support::*;

#[test]
fn help_shows_every_setting_with_its_default_and_the_exit_codes() {
    let a = Aside::new();
    for args in [&["--help"][..], &["-h"], &["help"]] {
        let out = a.ok(args).text();
        for line in [
            "max_running = 16",
            "wait = \"2m\"",
            "[agent]",
            "max_turns = 50",
        ] {
            assert!(out.contains(line), "{args:?}: no {line:?} in\n{out}");
        }
        assert!(out.contains("Exit codes:"), "{out}");
        assert!(
            out.contains(&a.home.display().to_string()),
            "the state directory: {out}"
        );
    }
}
