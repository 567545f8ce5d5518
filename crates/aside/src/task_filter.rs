//! What `--state`, `--group` and `--label` let through, for `aside ls` and `aside top`
//! alike: each part, when given, must match.

use std::convert::Infallible;
use std::str::FromStr;

use aside_protocol::TaskRecord;
use clap::ValueEnum;

/// A state `--state` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateFilter {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    #[value(name = "timed_out")]
    TimedOut,
    Lost,
    /// Any state a task ends in.
    Ended,
    /// Running, and paused (`aside pause`).
    Paused,
}

impl StateFilter {
    pub fn matches(self, t: &TaskRecord) -> bool {
        let state = &t.state;
        match self {
            StateFilter::Ended => state.is_terminal(),
            StateFilter::Paused => t.paused,
            // By the record's own name for its state, so the two cannot drift apart.
            s => s
                .to_possible_value()
                .is_some_and(|v| v.get_name() == state.name()),
        }
    }

    /// Its name on the command line.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

/// `--label K=V`: the key with that value; `--label K`: the key, whatever its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFilter {
    pub key: String,
    pub value: Option<String>,
}

impl FromStr for LabelFilter {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Infallible> {
        Ok(match s.split_once('=') {
            Some((k, v)) => Self {
                key: k.to_string(),
                value: Some(v.to_string()),
            },
            None => Self {
                key: s.to_string(),
                value: None,
            },
        })
    }
}

impl LabelFilter {
    pub fn matches(&self, t: &TaskRecord) -> bool {
        t.labels
            .get(&self.key)
            .is_some_and(|have| self.value.as_ref().is_none_or(|want| want == have))
    }
}

impl std::fmt::Display for LabelFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={v}", self.key),
            None => write!(f, "{}", self.key),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub states: Vec<StateFilter>,
    pub groups: Vec<String>,
    /// Every one must match.
    pub labels: Vec<LabelFilter>,
}

impl TaskFilter {
    pub fn is_active(&self) -> bool {
        !self.states.is_empty() || !self.groups.is_empty() || !self.labels.is_empty()
    }

    pub fn lets(&self, t: &TaskRecord) -> bool {
        let state = self.states.is_empty() || self.states.iter().any(|s| s.matches(t));
        let group = self.groups.is_empty()
            || t.group
                .as_ref()
                .is_some_and(|g| self.groups.iter().any(|want| want == g));
        state && group && self.labels.iter().all(|l| l.matches(t))
    }
}
