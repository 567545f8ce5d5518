//! `aside completions SHELL`: scripts generated from the CLI's definition.

use std::process::Command;

use crate::support::*;

#[test]
fn every_shell_gets_a_script_that_knows_the_commands() {
    let a = Aside::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = a.ok(&["completions", shell]).text();
        for word in ["attach", "logs", "completions", "follow"] {
            assert!(script.contains(word), "{shell}: no {word:?} in\n{script}");
        }
    }
    // It needs no daemon: none was started for it.
    assert!(!a.socket().exists());
}

#[test]
fn the_bash_script_registers_completion_for_aside() {
    let a = Aside::new();
    let script = a.path("aside.bash");
    std::fs::write(&script, a.ok(&["completions", "bash"]).stdout).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{}' && complete -p aside",
            script.display()
        ))
        .output()
        .expect("bash");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(said.contains("-F _aside aside"), "{said}");
    // What bash offers after `aside lo` and after `aside logs --f`.
    let offer = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let probe = format!(
            "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT={}; \
             _aside aside '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display(),
            words.join(" "),
            words.len() - 1,
            line.len(),
            words[words.len() - 1],
            words[words.len() - 2],
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(probe)
            .output()
            .expect("bash");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(offer("aside lo").trim(), "logs");
    assert!(offer("aside logs --f").contains("--follow"));
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let a = Aside::new();
    let out = a.run(&["completions", "tcsh"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("bash"), "{out:?}");
}
