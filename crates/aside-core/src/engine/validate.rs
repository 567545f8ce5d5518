//! Checks a task spec before anything is recorded. Runs without the engine's lock: it looks
//! at the file system (the working directory).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use aside_protocol::{Limit, ShellCommand, TaskKind, TaskSpec};

use super::SpecError;
use crate::config::{self, MAX_DURATION};

pub(super) fn validate(spec: &TaskSpec) -> Result<(), SpecError> {
    match &spec.kind {
        TaskKind::Shell { command } => match command {
            ShellCommand::Argv(a) if a.first().is_none_or(|p| p.is_empty()) => {
                return Err(SpecError::EmptyCommand)
            }
            ShellCommand::Script(s) if s.trim().is_empty() => return Err(SpecError::EmptyCommand),
            _ => {}
        },
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
    check_env(&spec.env_extra)
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
}
