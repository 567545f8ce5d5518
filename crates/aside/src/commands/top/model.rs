//! The table of records the dashboard shows, kept current from events: every known task by
//! id, the events of tasks whose record is on its way, and the filtered view (newest first)
//! with the selection. An event costs O(log n); the view is rebuilt (O(n)) at most once a
//! frame, and only after something changed.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use aside_protocol::{Event, EventKind, TaskId, TaskRecord, TaskState};

use super::filter::{self, Filter};

/// A task as the dashboard knows it.
pub struct Row {
    pub rec: TaskRecord,
    /// What the text filter searches (lowercase).
    haystack: String,
    /// Bytes of output per second, from the last two samples of a running task.
    pub rate: Option<u64>,
    sample: Option<(u64, Instant)>,
}

impl Row {
    fn new(rec: TaskRecord) -> Self {
        Self {
            haystack: filter::haystack(&rec),
            rec,
            rate: None,
            sample: None,
        }
    }

    pub fn running(&self) -> bool {
        matches!(self.rec.state, TaskState::Running { .. })
    }
}

/// Counts for the header, over every known task.
#[derive(Default)]
pub struct Tally {
    pub total: usize,
    /// By state name, in the order states come in a task's life.
    pub states: Vec<(&'static str, usize)>,
    pub paused: usize,
    /// Running tasks per group (slots in use); tasks of no group are not counted here.
    pub groups: BTreeMap<String, usize>,
}

const STATE_ORDER: [&str; 7] = [
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "timed_out",
    "lost",
];

#[derive(Default)]
pub struct Model {
    rows: BTreeMap<TaskId, Row>,
    /// Events for tasks whose record was asked for (`task.get`), applied when it comes.
    held: HashMap<TaskId, Vec<Event>>,
    pub filter: Filter,
    /// The ids the filter lets through, newest first.
    view: Vec<TaskId>,
    stale: bool,
    tally: Tally,
    /// The selection, kept on its task as rows come and go.
    sel: usize,
    sel_id: Option<TaskId>,
    /// The first row shown.
    offset: usize,
}

impl Model {
    pub fn new(filter: Filter) -> Self {
        Self {
            filter,
            stale: true,
            ..Self::default()
        }
    }

    /// Starts again from a listing (the first, or after reconnecting).
    pub fn load(&mut self, records: Vec<TaskRecord>) {
        self.rows = records.into_iter().map(|t| (t.id, Row::new(t))).collect();
        self.held.clear();
        self.stale = true;
    }

    /// Applies an event; the id of a task whose record must be fetched, when it is unknown.
    pub fn apply(&mut self, e: Event) -> Option<TaskId> {
        let id = e.task_id;
        if let Some(held) = self.held.get_mut(&id) {
            held.push(e);
            return None;
        }
        let Some(row) = self.rows.get_mut(&id) else {
            if e.kind == EventKind::Removed {
                return None;
            }
            self.held.insert(id, vec![e]);
            return Some(id);
        };
        if e.kind == EventKind::Removed {
            self.rows.remove(&id);
        } else {
            update(row, &e);
        }
        self.stale = true;
        None
    }

    /// The record asked for by [`apply`](Self::apply) came (`None`: the task is gone): it
    /// joins the table with the events held for it applied in order.
    pub fn fetched(&mut self, id: TaskId, rec: Option<TaskRecord>) {
        let held = self.held.remove(&id).unwrap_or_default();
        let Some(rec) = rec else { return };
        // A listing after a reconnect may have brought it meanwhile: the events still apply.
        let row = self.rows.entry(id).or_insert_with(|| Row::new(rec));
        for e in &held {
            if e.kind == EventKind::Removed {
                self.rows.remove(&id);
                break;
            }
            update(row, e);
        }
        self.stale = true;
    }

    /// A running task's output size at `at`: its rate from the sample before.
    pub fn sampled(&mut self, id: TaskId, bytes: u64, at: Instant) {
        let Some(row) = self.rows.get_mut(&id) else {
            return;
        };
        if let Some((before, then)) = row.sample {
            let secs = at.duration_since(then).as_secs_f64();
            if secs > 0.0 {
                row.rate = Some((bytes.saturating_sub(before) as f64 / secs).round() as u64);
            }
        }
        row.sample = Some((bytes, at));
        row.rec.output_bytes = row.rec.output_bytes.max(bytes);
        self.stale = true;
    }

    /// Marks the view for a rebuild (the filter changed).
    pub fn touch(&mut self) {
        self.stale = true;
    }

    /// Rebuilds the view and the counts when something changed.
    pub fn refresh(&mut self) {
        if !self.stale {
            return;
        }
        self.stale = false;
        let mut counts = [0usize; STATE_ORDER.len()];
        let mut tally = Tally {
            total: self.rows.len(),
            ..Tally::default()
        };
        self.view.clear();
        for (id, row) in self.rows.iter().rev() {
            let t = &row.rec;
            if let Some(i) = STATE_ORDER.iter().position(|s| *s == t.state.name()) {
                counts[i] += 1;
            }
            if row.running() {
                tally.paused += usize::from(t.paused);
                if let Some(g) = &t.group {
                    *tally.groups.entry(g.clone()).or_default() += 1;
                }
            }
            if self.filter.lets(t, &row.haystack) {
                self.view.push(*id);
            }
        }
        tally.states = STATE_ORDER
            .iter()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| (*s, n))
            .collect();
        self.tally = tally;
        // The selection stays on its task while it is shown, else at the same height.
        if let Some(at) = self
            .sel_id
            .and_then(|id| self.view.binary_search_by(|v| id.cmp(v)).ok())
        {
            self.sel = at;
        }
        self.sel = self.sel.min(self.view.len().saturating_sub(1));
        self.sel_id = self.view.get(self.sel).copied();
    }

    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    pub fn shown(&self) -> usize {
        self.view.len()
    }

    pub fn row(&self, id: TaskId) -> Option<&Row> {
        self.rows.get(&id)
    }

    pub fn selected(&self) -> Option<TaskId> {
        self.sel_id
    }

    /// Moves the selection by `delta` rows (clamped to the view).
    pub fn step(&mut self, delta: isize) {
        let last = self.view.len().saturating_sub(1) as isize;
        self.sel = (self.sel as isize + delta).clamp(0, last.max(0)) as usize;
        self.sel_id = self.view.get(self.sel).copied();
    }

    pub fn first(&mut self) {
        self.step(isize::MIN / 2);
    }

    pub fn last(&mut self) {
        self.step(isize::MAX / 2);
    }

    /// Selects `id` when the filter shows it (now or once it comes).
    pub fn select(&mut self, id: TaskId) {
        self.sel_id = Some(id);
        self.stale = true;
    }

    /// The rows of a window `height` rows high that keeps the selection in sight, and the
    /// selection's place in it.
    pub fn window(&mut self, height: usize) -> (&[TaskId], Option<usize>) {
        if height == 0 {
            return (&[], None);
        }
        if self.sel < self.offset {
            self.offset = self.sel;
        } else if self.sel >= self.offset + height {
            self.offset = self.sel + 1 - height;
        }
        // No blank rows at the bottom while there are rows above.
        self.offset = self.offset.min(self.view.len().saturating_sub(height));
        let end = (self.offset + height).min(self.view.len());
        let shown = &self.view[self.offset..end];
        let sel = (!shown.is_empty()).then(|| self.sel - self.offset);
        (shown, sel)
    }

    /// The running tasks of the window last drawn, `height` rows high.
    pub fn running_in_window(&self, height: usize) -> Vec<TaskId> {
        let end = (self.offset + height).min(self.view.len());
        self.view[self.offset.min(end)..end]
            .iter()
            .filter(|id| self.rows.get(id).is_some_and(Row::running))
            .copied()
            .collect()
    }
}

/// An event's change to a record. Events come in order, but a record fetched or listed may
/// already include some: a state never goes back (queued, running, ended), so an older
/// event changes nothing that a newer record says.
fn update(row: &mut Row, e: &Event) {
    let t = &mut row.rec;
    t.detached |= e.detached;
    match &e.kind {
        EventKind::Queued | EventKind::Removed => {}
        EventKind::Started { pid } => match &mut t.state {
            TaskState::Queued => {
                t.state = TaskState::Running {
                    started_at: e.at,
                    pid: *pid,
                }
            }
            TaskState::Running { pid: known, .. } if known.is_none() => *known = *pid,
            _ => {}
        },
        EventKind::Detached { .. } => t.detached = true,
        EventKind::Finished { outcome } => {
            t.state = outcome.clone();
            t.paused = false;
            row.rate = None;
        }
        EventKind::Progress { progress } => t.progress = Some(progress.clone()),
        EventKind::Paused | EventKind::Resumed if t.is_terminal() => {}
        EventKind::Paused => t.paused = true,
        EventKind::Resumed => t.paused = false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aside_protocol::{DetachCause, Timestamp};

    /// A record as the daemon writes it, built from JSON so that it needs no field it
    /// leaves out.
    fn record(id: u64, state: &str) -> TaskRecord {
        let mut v = serde_json::json!({
            "id": id.to_string(), "kind": "shell", "command": {"argv": ["true"]}, "owner": "cli",
            "cwd": "/", "mode": "background", "detached": true,
            "created_at": "2026-01-01T00:00:00.000Z", "state": state, "output_bytes": 0,
        });
        if state == "running" {
            v["started_at"] = "2026-01-01T00:00:01.000Z".into();
        }
        serde_json::from_value(v).unwrap()
    }

    fn event(seq: u64, id: u64, kind: EventKind) -> Event {
        Event {
            seq,
            at: Timestamp::now(),
            task_id: TaskId::new(id).unwrap(),
            detached: true,
            kind,
        }
    }

    fn id(n: u64) -> TaskId {
        TaskId::new(n).unwrap()
    }

    fn states(m: &mut Model) -> Vec<(u64, &'static str, bool)> {
        m.refresh();
        let ids: Vec<TaskId> = m.window(100).0.to_vec();
        ids.iter()
            .map(|i| {
                let r = &m.row(*i).unwrap().rec;
                (i.to_string().parse().unwrap(), r.state.name(), r.paused)
            })
            .collect()
    }

    #[test]
    fn events_move_records_on_and_never_back() {
        let mut m = Model::new(Filter::default());
        m.load(vec![record(1, "queued"), record(2, "running")]);
        assert_eq!(
            m.apply(event(1, 1, EventKind::Started { pid: Some(9) })),
            None
        );
        assert_eq!(m.apply(event(2, 2, EventKind::Paused)), None);
        assert_eq!(
            states(&mut m),
            [(2, "running", true), (1, "running", false)],
            "newest first"
        );
        let outcome = TaskState::Cancelled {
            started_at: None,
            ended_at: Timestamp::now(),
            reason: aside_protocol::CancelReason::Shutdown,
        };
        m.apply(event(3, 2, EventKind::Finished { outcome }));
        // Older news of a task that ended changes nothing.
        m.apply(event(4, 2, EventKind::Started { pid: None }));
        m.apply(event(5, 2, EventKind::Paused));
        assert_eq!(states(&mut m)[0], (2, "cancelled", false));
        m.apply(event(6, 1, EventKind::Removed));
        assert_eq!(states(&mut m), [(2, "cancelled", false)]);
    }

    #[test]
    fn an_unknown_task_is_fetched_and_its_events_wait_for_it() {
        let mut m = Model::new(Filter::default());
        m.load(vec![]);
        assert_eq!(m.apply(event(1, 5, EventKind::Queued)), Some(id(5)));
        // Asked for once; what follows waits with it.
        assert_eq!(m.apply(event(2, 5, EventKind::Started { pid: None })), None);
        m.apply(event(
            3,
            5,
            EventKind::Detached {
                cause: DetachCause::Request,
            },
        ));
        assert!(states(&mut m).is_empty(), "not shown before its record");
        m.fetched(id(5), Some(record(5, "queued")));
        assert_eq!(states(&mut m), [(5, "running", false)]);
        // One that was removed before its record came stays out.
        assert_eq!(m.apply(event(4, 6, EventKind::Queued)), Some(id(6)));
        m.apply(event(5, 6, EventKind::Removed));
        m.fetched(id(6), Some(record(6, "queued")));
        assert_eq!(states(&mut m).len(), 1);
        // A removal of a task never seen asks for nothing.
        assert_eq!(m.apply(event(6, 7, EventKind::Removed)), None);
    }

    #[test]
    fn the_selection_stays_on_its_task_and_the_window_follows_it() {
        let mut m = Model::new(Filter::default());
        m.load((1..=10).map(|i| record(i, "queued")).collect());
        m.refresh();
        assert_eq!(m.selected(), Some(id(10)));
        m.step(3);
        assert_eq!(m.selected(), Some(id(7)));
        // A new task above it: the selection stays on task 7.
        m.apply(event(1, 11, EventKind::Queued));
        m.fetched(id(11), Some(record(11, "queued")));
        m.refresh();
        assert_eq!(m.selected(), Some(id(7)));
        let (rows, sel) = m.window(3);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[sel.unwrap()], id(7));
        m.last();
        let (rows, sel) = m.window(3);
        assert_eq!((rows[sel.unwrap()], rows.len()), (id(1), 3));
        // Filtered out, it leaves the selection at the same height.
        m.filter.text = "nothing matches this".into();
        m.touch();
        m.refresh();
        assert_eq!((m.shown(), m.selected()), (0, None));
    }

    #[test]
    fn the_tally_counts_states_and_slots_per_group() {
        let mut m = Model::new(Filter::default());
        let mut grouped = record(3, "running");
        grouped.group = Some("build".into());
        m.load(vec![record(1, "queued"), record(2, "running"), grouped]);
        m.apply(event(1, 2, EventKind::Paused));
        m.refresh();
        let t = m.tally();
        assert_eq!(t.total, 3);
        assert_eq!(t.states, [("queued", 1), ("running", 2)]);
        assert_eq!(t.paused, 1);
        assert_eq!(t.groups.get("build"), Some(&1));
    }

    #[test]
    fn rates_come_from_two_samples() {
        let mut m = Model::new(Filter::default());
        m.load(vec![record(1, "running")]);
        let t0 = Instant::now();
        m.sampled(id(1), 100, t0);
        assert_eq!(m.row(id(1)).unwrap().rate, None);
        m.sampled(id(1), 2100, t0 + std::time::Duration::from_secs(2));
        let row = m.row(id(1)).unwrap();
        assert_eq!((row.rate, row.rec.output_bytes), (Some(1000), 2100));
    }
}
