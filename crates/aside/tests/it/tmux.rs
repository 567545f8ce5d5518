//! tmux on a socket of the test's own: a terminal that a person would use, typed into with
//! send-keys and read with capture-pane.

use std::process::Command;

use crate::support::{eventually, Aside, SOON};

/// A tmux server of this test's own (its own socket), killed at the end.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn new(a: &Aside) -> Self {
        Self {
            socket: a.marker.clone(),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux")
    }

    /// A window running `command` (with the test's environment) in a 100x30 terminal.
    pub fn window(&self, a: &Aside, name: &str, command: &str) {
        let env = format!(
            "env -i PATH=\"$PATH\" HOME={h} ASIDE_HOME={h} XDG_RUNTIME_DIR={h} LC_ALL=C {m}={mv} TERM=xterm-256color",
            h = a.home.display(),
            m = crate::support::MARKER_VAR,
            mv = a.marker
        );
        let line = format!("{env} {command}; echo EXIT=$?; sleep 60");
        let out = self.cmd(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "100",
            "-y",
            "30",
            &line,
        ]);
        assert!(out.status.success(), "tmux: {out:?}");
    }

    pub fn keys(&self, name: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", name];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status.success());
    }

    pub fn pane(&self, name: &str) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", name]).stdout).to_string()
    }

    pub fn shows(&self, name: &str, needle: &str) -> String {
        let mut last = String::new();
        let found = eventually(SOON, || {
            last = self.pane(name);
            last.contains(needle)
        });
        assert!(found, "tmux window {name} never showed {needle:?}:\n{last}");
        last
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

pub fn has_tmux() -> bool {
    Command::new("tmux").arg("-V").output().is_ok()
}
