//! A task's environment in its supervisor: the base the supervisor keeps from one task to
//! the next (see [`crate::wire::Base`]), with the task's own variables set over it.

use std::ffi::CString;

/// The base of the tasks' environments as a supervisor keeps it: the pairs, and the same as
/// the `KEY=value` strings an exec takes, made once for every task that shares them.
pub(crate) struct BaseEnv {
    vars: Vec<(String, String)>,
    /// `None` when a variable holds a NUL byte: no exec can take it (std's spawn says so).
    entries: Option<Vec<CString>>,
}

impl BaseEnv {
    pub fn new(vars: Vec<(String, String)>) -> Self {
        let entries = vars
            .iter()
            .map(|(k, v)| CString::new(format!("{k}={v}")).ok())
            .collect();
        Self { vars, entries }
    }
}

/// One task's environment: its base, less what its own variables set, then those.
#[derive(Clone, Copy)]
pub(crate) struct TaskEnv<'a> {
    pub base: &'a BaseEnv,
    pub own: &'a [(String, String)],
}

impl<'a> TaskEnv<'a> {
    fn set_by_task(&self, key: &str) -> bool {
        self.own.iter().any(|(k, _)| k == key)
    }

    /// Every variable, as pairs.
    pub fn pairs(self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.base
            .vars
            .iter()
            .filter(move |(k, _)| !self.set_by_task(k))
            .chain(self.own)
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The base's `KEY=value` strings the task keeps (not set by its own variables), and its
    /// own variables as new ones; `None` when one holds a NUL byte.
    pub fn entries(self) -> Option<(Vec<&'a CString>, Vec<CString>)> {
        let kept = self
            .base
            .entries
            .as_ref()?
            .iter()
            .zip(&self.base.vars)
            .filter(|(_, (k, _))| !self.set_by_task(k))
            .map(|(e, _)| e)
            .collect();
        let own = self
            .own
            .iter()
            .map(|(k, v)| CString::new(format!("{k}={v}")).ok())
            .collect::<Option<Vec<_>>>()?;
        Some((kept, own))
    }

    /// The value of `key`.
    pub fn get(self, key: &str) -> Option<&'a str> {
        self.pairs().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_tasks_own_variables_win_over_the_base() {
        let base = BaseEnv::new(vars(&[("HOME", "/h"), ("PATH", "/bin"), ("TERM", "dumb")]));
        let own = vars(&[("TERM", "xterm-256color"), ("ASIDE_TASK_ID", "7")]);
        let env = TaskEnv {
            base: &base,
            own: &own,
        };
        let pairs: Vec<_> = env.pairs().collect();
        assert_eq!(
            pairs,
            [
                ("HOME", "/h"),
                ("PATH", "/bin"),
                ("TERM", "xterm-256color"),
                ("ASIDE_TASK_ID", "7")
            ]
        );
        let (kept, own) = env.entries().unwrap();
        let all: Vec<&str> = kept
            .into_iter()
            .chain(&own)
            .map(|c| c.to_str().unwrap())
            .collect();
        assert_eq!(
            all,
            [
                "HOME=/h",
                "PATH=/bin",
                "TERM=xterm-256color",
                "ASIDE_TASK_ID=7"
            ]
        );
        assert_eq!(env.get("TERM"), Some("xterm-256color"));
        assert_eq!(env.get("NOPE"), None);
    }

    #[test]
    fn a_nul_byte_anywhere_leaves_no_entries() {
        let base = BaseEnv::new(vars(&[("A", "x\0y")]));
        let env = TaskEnv {
            base: &base,
            own: &[],
        };
        assert!(env.entries().is_none());
        let base = BaseEnv::new(vars(&[("A", "x")]));
        let own = vars(&[("B", "\0")]);
        let env = TaskEnv {
            base: &base,
            own: &own,
        };
        assert!(env.entries().is_none());
    }
}
