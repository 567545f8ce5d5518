//! What the dashboard lets through: states, owners, groups, labels and a text to look for.

use aside_protocol::TaskRecord;

use crate::commands::ls::StateFilter;

/// The state filters `f` steps through, in order; the empty one lets every task through.
const CYCLE: &[&[StateFilter]] = &[
    &[],
    &[StateFilter::Queued, StateFilter::Running],
    &[StateFilter::Running],
    &[StateFilter::Paused],
    &[StateFilter::Queued],
    &[StateFilter::Ended],
    &[StateFilter::Failed],
];

/// Each part, when set, must match (any of its values).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub states: Vec<StateFilter>,
    pub owners: Vec<String>,
    pub groups: Vec<String>,
    /// Labels the task must have: the key, with this value where one is given.
    pub labels: Vec<(String, Option<String>)>,
    /// Looked for in a task's id, name, command, group, owner and labels; lowercase, as
    /// they are searched, so that case does not count.
    pub text: String,
}

impl Filter {
    /// Whether `t`, whose searchable text is `haystack` (lowercase), is let through.
    pub fn lets(&self, t: &TaskRecord, haystack: &str) -> bool {
        let state = self.states.is_empty() || self.states.iter().any(|s| s.matches(t));
        let owner = self.owners.is_empty() || self.owners.contains(&t.owner);
        let group = self.groups.is_empty()
            || t.group
                .as_ref()
                .is_some_and(|g| self.groups.iter().any(|want| want == g));
        let labels = self.labels.iter().all(|(k, v)| {
            t.labels
                .get(k)
                .is_some_and(|have| v.as_ref().is_none_or(|want| want == have))
        });
        let text = self.text.is_empty() || haystack.contains(&self.text);
        state && owner && group && labels && text
    }

    /// The next state filter of the cycle (from a set given on the command line, the first).
    pub fn cycle_states(&mut self) {
        let at = CYCLE.iter().position(|c| *c == self.states.as_slice());
        let next = at.map_or(0, |i| (i + 1) % CYCLE.len());
        self.states = CYCLE[next].to_vec();
    }

    /// The filters in force, for the title line: `state=running group=build /text`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.states.is_empty() {
            let names: Vec<String> = self.states.iter().map(|s| state_name(*s)).collect();
            parts.push(format!("state={}", names.join(",")));
        }
        if !self.owners.is_empty() {
            parts.push(format!("owner={}", self.owners.join(",")));
        }
        if !self.groups.is_empty() {
            parts.push(format!("group={}", self.groups.join(",")));
        }
        for (k, v) in &self.labels {
            match v {
                Some(v) => parts.push(format!("label {k}={v}")),
                None => parts.push(format!("label {k}")),
            }
        }
        if !self.text.is_empty() {
            parts.push(format!("/{}", self.text));
        }
        parts.join(" ")
    }
}

fn state_name(s: StateFilter) -> String {
    use clap::ValueEnum;
    s.to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

/// What the text filter searches in a task, lowercase: its parts never change.
pub fn haystack(t: &TaskRecord) -> String {
    format!(
        "{} {} {} {} {} {}",
        t.id,
        t.name.as_deref().unwrap_or(""),
        t.kind.display(),
        t.group.as_deref().unwrap_or(""),
        t.owner,
        crate::render::labels(t)
    )
    .to_lowercase()
}

/// Reads `--label K=V`, or `K` for the key whatever its value.
pub fn parse_label(l: &str) -> (String, Option<String>) {
    match l.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (l.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_cycle_comes_back_round() {
        let mut f = Filter {
            states: vec![StateFilter::Lost],
            ..Filter::default()
        };
        f.cycle_states();
        assert!(f.states.is_empty(), "a set of its own starts the cycle");
        let mut seen = vec![f.describe()];
        for _ in 0..CYCLE.len() {
            f.cycle_states();
            seen.push(f.describe());
        }
        assert_eq!(seen[1], "state=queued,running");
        assert_eq!(seen.first(), seen.last());
    }
}
