//! What the dashboard lets through: what `aside ls` filters on (states, groups, labels),
//! owners, and a text to look for.

use aside_protocol::TaskRecord;

use crate::task_filter::{StateFilter, TaskFilter};

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
    /// States, groups and labels, as `aside ls` has them.
    pub task: TaskFilter,
    pub owners: Vec<String>,
    /// Looked for in a task's id, name, command, group, owner and labels; lowercase, as
    /// they are searched, so that case does not count.
    pub text: String,
}

impl Filter {
    /// Whether `t`, whose searchable text is `haystack` (lowercase), is let through.
    pub fn lets(&self, t: &TaskRecord, haystack: &str) -> bool {
        let owner = self.owners.is_empty() || self.owners.contains(&t.owner);
        let text = self.text.is_empty() || haystack.contains(&self.text);
        self.task.lets(t) && owner && text
    }

    /// The next state filter of the cycle (from a set given on the command line, the first).
    pub fn cycle_states(&mut self) {
        let states = &mut self.task.states;
        let at = CYCLE.iter().position(|c| *c == states.as_slice());
        let next = at.map_or(0, |i| (i + 1) % CYCLE.len());
        *states = CYCLE[next].to_vec();
    }

    /// The filters in force, for the title line: `state=running group=build /text`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let f = &self.task;
        if !f.states.is_empty() {
            let names: Vec<String> = f.states.iter().map(|s| s.name()).collect();
            parts.push(format!("state={}", names.join(",")));
        }
        if !self.owners.is_empty() {
            parts.push(format!("owner={}", self.owners.join(",")));
        }
        if !f.groups.is_empty() {
            parts.push(format!("group={}", f.groups.join(",")));
        }
        for l in &f.labels {
            parts.push(format!("label {l}"));
        }
        if !self.text.is_empty() {
            parts.push(format!("/{}", self.text));
        }
        parts.join(" ")
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_cycle_comes_back_round() {
        let mut f = Filter::default();
        f.task.states = vec![StateFilter::Lost];
        f.cycle_states();
        assert!(
            f.task.states.is_empty(),
            "a set of its own starts the cycle"
        );
        let mut seen = vec![f.describe()];
        for _ in 0..CYCLE.len() {
            f.cycle_states();
            seen.push(f.describe());
        }
        assert_eq!(seen[1], "state=queued,running");
        assert_eq!(seen.first(), seen.last());
    }
}
