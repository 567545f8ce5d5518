//! Checks a task spec before anything is recorded. Runs without the engine's lock: it looks
//! at the file system (the working directory).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use aside_protocol::{Limit, ShellCommand, TaskKind, TaskSpec};

use super::SpecError;
use crate::config::{self, MAX_DURATION};

/// The longest name, dedupe key or agent name, in bytes.
pub const MAX_NAME: usize = 256;
/// The longest working directory (Linux's PATH_MAX).
pub const MAX_PATH: usize = 4096;
/// The longest single argument, script or `KEY=value` (the kernel's own limit per string).
pub const MAX_ARG: usize = 128 << 10;
/// The most bytes of arguments and environment together (the kernel's usual ARG_MAX).
pub const MAX_ARGS_TOTAL: usize = 2 << 20;
/// The longest agent prompt.
pub const MAX_PROMPT: usize = 1 << 20;
/// The most labels on a task, the longest key and the longest value.
pub const MAX_LABELS: usize = 32;
pub const MAX_LABEL_KEY: usize = 64;
pub const MAX_LABEL_VALUE: usize = 256;
/// The most tasks one task may run after.
pub const MAX_AFTER: usize = 64;

fn at_most(what: &'static str, text: &str, max: usize) -> Result<(), SpecError> {
    if text.len() > max {
        return Err(SpecError::TooBig {
            what,
            len: text.len(),
            max,
        });
    }
    Ok(())
}

/// Every string of a spec is bounded: what a client sends is kept in the record and shown in
/// every listing, so one oversized field would cost every reader.
fn check_sizes(spec: &TaskSpec) -> Result<(), SpecError> {
    for (what, field) in [("name", &spec.name), ("dedupe key", &spec.dedupe_key)] {
        if let Some(text) = field {
            at_most(what, text, MAX_NAME)?;
        }
    }
    if let Some(cwd) = &spec.cwd {
        at_most("working directory", cwd, MAX_PATH)?;
    }
    let mut total = 0;
    match &spec.kind {
        TaskKind::Shell { command, .. } => {
            let args: Vec<&String> = match command {
                ShellCommand::Argv(a) => a.iter().collect(),
                ShellCommand::Script(s) => vec![s],
            };
            for a in args {
                at_most("command argument", a, MAX_ARG)?;
                total += a.len() + 1;
            }
        }
        TaskKind::Agent { agent, prompt, .. } => {
            at_most("agent name", agent, MAX_NAME)?;
            at_most("prompt", prompt, MAX_PROMPT)?;
        }
    }
    for (k, v) in spec.env.iter().flatten().chain(&spec.env_extra) {
        let len = k.len() + 1 + v.len();
        if len > MAX_ARG {
            return Err(SpecError::TooBig {
                what: "environment variable",
                len,
                max: MAX_ARG,
            });
        }
        total += len + 1;
    }
    if total > MAX_ARGS_TOTAL {
        return Err(SpecError::TooBig {
            what: "command and environment together",
            len: total,
            max: MAX_ARGS_TOTAL,
        });
    }
    Ok(())
}

pub(super) fn validate(spec: &TaskSpec) -> Result<(), SpecError> {
    check_sizes(spec)?;
    match &spec.kind {
        TaskKind::Shell { command, input } => {
            match command {
                ShellCommand::Argv(a) if a.first().is_none_or(|p| p.is_empty()) => {
                    return Err(SpecError::EmptyCommand)
                }
                ShellCommand::Script(s) if s.trim().is_empty() => {
                    return Err(SpecError::EmptyCommand)
                }
                _ => {}
            }
            if let Some(size) = input.pty().filter(|s| !s.is_valid()) {
                return Err(SpecError::BadSize { size });
            }
        }
        TaskKind::Agent {
            agent,
            prompt,
            session_id,
            ..
        } => {
            if agent.trim().is_empty() {
                return Err(SpecError::EmptyAgent);
            }
            if prompt.trim().is_empty() {
                return Err(SpecError::EmptyPrompt);
            }
            if let Some(s) = session_id {
                if !aside_protocol::valid_session_id(s) {
                    return Err(SpecError::BadSessionId(s.clone()));
                }
            }
        }
    }
    if let Some(cwd) = &spec.cwd {
        let p = Path::new(cwd);
        if !p.is_absolute() {
            return Err(SpecError::RelativeCwd(cwd.clone()));
        }
        if !p.is_dir() {
            return Err(SpecError::MissingCwd(cwd.clone()));
        }
    }
    if let Some(group) = &spec.group {
        config::validate_group(group)?;
    }
    for (what, limit) in [("timeout", spec.timeout), ("wait", spec.wait)] {
        if let Some(Limit::Millis(ms)) = limit {
            let limit = Duration::from_millis(ms);
            if limit > MAX_DURATION {
                return Err(SpecError::TooLong { what, limit });
            }
        }
    }
    if spec.timeout == Some(Limit::Millis(0)) {
        return Err(SpecError::ZeroTimeout);
    }
    if let Some(env) = &spec.env {
        check_env(env)?;
    }
    check_env(&spec.env_extra)?;
    check_labels(&spec.labels)?;
    if spec.after.len() > MAX_AFTER {
        return Err(SpecError::TooManyDependencies {
            count: spec.after.len(),
        });
    }
    Ok(())
}

/// Labels are shown in every listing and typed in filters (`--label K=V`): keys are plain
/// words, values one line.
fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), SpecError> {
    if labels.len() > MAX_LABELS {
        return Err(SpecError::TooManyLabels {
            count: labels.len(),
        });
    }
    for (k, v) in labels {
        let key_ok = !k.is_empty()
            && k.len() <= MAX_LABEL_KEY
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b));
        if !key_ok {
            return Err(SpecError::BadLabel(k.clone()));
        }
        at_most("label value", v, MAX_LABEL_VALUE)?;
        if v.chars().any(char::is_control) {
            return Err(SpecError::BadLabel(format!("{k}={v}")));
        }
    }
    Ok(())
}

fn check_env(env: &BTreeMap<String, String>) -> Result<(), SpecError> {
    for (k, v) in env {
        if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
            return Err(SpecError::BadEnv(k.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> TaskSpec {
        TaskSpec::shell(ShellCommand::Script(script.into()))
    }

    #[test]
    fn refuses_what_cannot_run() {
        assert!(matches!(
            validate(&shell("  ")),
            Err(SpecError::EmptyCommand)
        ));
        let argv = TaskSpec::shell(ShellCommand::Argv(vec![String::new()]));
        assert!(matches!(validate(&argv), Err(SpecError::EmptyCommand)));
        let mut s = shell("true");
        s.cwd = Some("relative".into());
        assert!(matches!(validate(&s), Err(SpecError::RelativeCwd(_))));
        s.cwd = Some("/no/such/dir/anywhere".into());
        assert!(matches!(validate(&s), Err(SpecError::MissingCwd(_))));
        let mut s = shell("true");
        s.timeout = Some(Limit::Millis(0));
        assert!(matches!(validate(&s), Err(SpecError::ZeroTimeout)));
        s.timeout = Some(Limit::Millis(u64::MAX));
        assert!(matches!(
            validate(&s),
            Err(SpecError::TooLong {
                what: "timeout",
                ..
            })
        ));
        let mut s = shell("true");
        s.env_extra.insert("A=B".into(), "x".into());
        assert!(matches!(validate(&s), Err(SpecError::BadEnv(_))));
        let mut s = shell("true");
        s.group = Some("no spaces".into());
        assert!(matches!(validate(&s), Err(SpecError::Group(_))));
        assert!(validate(&shell("true")).is_ok());
    }

    #[test]
    fn every_string_is_bounded() {
        let big = |n: usize| "x".repeat(n);
        let mut s = shell("true");
        s.name = Some(big(MAX_NAME + 1));
        assert!(matches!(
            validate(&s),
            Err(SpecError::TooBig { what: "name", .. })
        ));
        s.name = Some(big(MAX_NAME));
        assert!(validate(&s).is_ok());
        let mut s = shell("true");
        s.dedupe_key = Some(big(MAX_NAME + 1));
        assert!(validate(&s).is_err());
        assert!(validate(&shell(&big(MAX_ARG + 1))).is_err());
        let mut s = shell("true");
        s.env_extra.insert("K".into(), big(MAX_ARG));
        assert!(validate(&s).is_err());
        // Many arguments each within bounds, too many together.
        let argv = vec![big(MAX_ARG / 2); 2 * MAX_ARGS_TOTAL / MAX_ARG + 2];
        let s = TaskSpec::shell(ShellCommand::Argv(argv));
        assert!(matches!(
            validate(&s),
            Err(SpecError::TooBig {
                what: "command and environment together",
                ..
            })
        ));
        let agent = TaskSpec::new(TaskKind::Agent {
            agent: "general".into(),
            prompt: big(MAX_PROMPT + 1),
            session_id: None,
            depth: 0,
        });
        assert!(validate(&agent).is_err());
    }
}
