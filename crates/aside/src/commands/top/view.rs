//! Drawing: the header (counts per state, slots in use per group, the filters), the table
//! of the rows in sight, or one task's output, the status line and the keys. Only the rows
//! on screen are built, whatever the number of records.

use aside_protocol::rpc::SlotsStatus;
use aside_protocol::{TaskId, TaskRecord, TaskState};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Cell, Clear, Paragraph, Row as TableRow, Table, TableState,
};
use ratatui::Frame;

use super::keys::{self, Mode};
use super::log::LogPane;
use super::model::{Model, Row};
use crate::render;

/// What is shown besides the model.
pub struct Ui {
    pub mode: Mode,
    pub theme: Theme,
    /// The status line: what the last action did.
    pub status: String,
    /// The task `s` asks about.
    pub confirm: Option<TaskId>,
    pub log: Option<LogPane>,
    /// Rows of tasks the last frame had room for (paging, sampling).
    pub height: usize,
    /// The slot limits, once the daemon told them.
    pub slots: Option<SlotsStatus>,
}

/// Colours, or none: `NO_COLOR` leaves only reverse video for the selection.
#[derive(Clone, Copy)]
pub struct Theme {
    color: bool,
}

impl Theme {
    pub fn from_env() -> Self {
        Self {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn style(self, s: Style) -> Style {
        match self.color {
            true => s,
            false => Style::default(),
        }
    }

    fn bold(self) -> Style {
        self.style(Style::default().add_modifier(Modifier::BOLD))
    }

    fn selected(self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    fn state(self, t: &TaskRecord) -> Style {
        let color = match &t.state {
            _ if t.paused => Color::Cyan,
            TaskState::Queued => Color::Yellow,
            TaskState::Running { .. } => Color::Green,
            TaskState::Succeeded { .. } => return Style::default(),
            TaskState::Cancelled { .. } => Color::Magenta,
            TaskState::Failed { .. } | TaskState::TimedOut { .. } | TaskState::Lost { .. } => {
                Color::Red
            }
        };
        self.style(Style::default().fg(color))
    }
}

pub fn draw(f: &mut Frame<'_>, ui: &mut Ui, model: &mut Model) {
    model.refresh();
    let [head, body, status, foot] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    header(f, head, ui, model);
    match &ui.log {
        Some(pane) => output(f, body, ui.theme, pane, model),
        None => table(f, body, ui, model),
    }
    status_line(f, status, ui, model);
    let keys = match ui.log.is_some() {
        true => keys::LOG_FOOTER,
        false => keys::FOOTER,
    };
    f.render_widget(Paragraph::new(keys).style(ui.theme.bold()), foot);
    if ui.mode == Mode::Help {
        help(f, body, ui.theme);
    }
}

fn header(f: &mut Frame<'_>, area: Rect, ui: &Ui, model: &Model) {
    let t = model.tally();
    let mut counts: Vec<String> = t
        .states
        .iter()
        .map(|(s, n)| match (*s, t.paused) {
            ("running", p) if p > 0 => format!("{n} running ({p} paused)"),
            _ => format!("{n} {s}"),
        })
        .collect();
    if counts.is_empty() {
        counts.push("none yet".into());
    }
    let first = Line::from(vec![
        Span::styled("aside top", ui.theme.bold()),
        Span::raw(format!("  {} tasks: {}", t.total, counts.join(", "))),
    ]);
    let mut second = format!("slots in use: {}", slots(model, ui.slots.as_ref()));
    let filter = model.filter.describe();
    second.push_str(&format!("   showing {} of {}", model.shown(), t.total));
    if !filter.is_empty() {
        second.push_str(&format!(" ({filter})"));
    }
    f.render_widget(Paragraph::new(vec![first, Line::raw(second)]), area);
}

/// Slots in use over all and per group, with their limits where the daemon has told them:
/// `3/8; build 2/4, test 1`. The counts are the records' own, current with every event.
fn slots(model: &Model, limits: Option<&SlotsStatus>) -> String {
    let t = model.tally();
    let running = t
        .states
        .iter()
        .find(|(s, _)| *s == "running")
        .map_or(0, |(_, n)| *n);
    let mut groups: std::collections::BTreeMap<&str, (usize, Option<usize>)> = t
        .groups
        .iter()
        .map(|(g, n)| (g.as_str(), (*n, None)))
        .collect();
    let mut all = running.to_string();
    if let Some(l) = limits {
        all = format!("{running}/{}", l.limit);
        for g in &l.groups {
            if let Some(limit) = g.limit {
                groups.entry(g.group.as_str()).or_default().1 = Some(limit);
            }
        }
    }
    let groups: Vec<String> = groups
        .iter()
        .map(|(g, (n, limit))| match limit {
            Some(l) => format!("{g} {n}/{l}"),
            None => format!("{g} {n}"),
        })
        .collect();
    match groups.is_empty() {
        true => all,
        false => format!("{all}; {}", groups.join(", ")),
    }
}

const WIDTHS: [Constraint; 10] = [
    Constraint::Length(5),
    Constraint::Length(5),
    Constraint::Length(9),
    Constraint::Length(4),
    Constraint::Length(8),
    Constraint::Length(8),
    Constraint::Length(4),
    Constraint::Length(7),
    Constraint::Length(18),
    Constraint::Fill(1),
];
const TITLES: [&str; 10] = [
    "ID", "KIND", "STATE", "MODE", "GROUP", "OWNER", "AGE", "OUT/S", "RESULT", "COMMAND",
];

fn table(f: &mut Frame<'_>, area: Rect, ui: &mut Ui, model: &mut Model) {
    ui.height = area.height.saturating_sub(1) as usize;
    let theme = ui.theme;
    let (ids, sel) = model.window(ui.height);
    let ids = ids.to_vec();
    let shown: Vec<&Row> = ids.iter().filter_map(|id| model.row(*id)).collect();
    // A LABELS column only while a row in sight has labels, as wide as they need (to a cap).
    let labels: Vec<String> = shown.iter().map(|r| render::labels(&r.rec)).collect();
    let label_width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut widths = WIDTHS.to_vec();
    let mut titles = TITLES.to_vec();
    if label_width > 0 {
        widths.insert(9, Constraint::Length(label_width.clamp(6, 24) as u16));
        titles.insert(9, "LABELS");
    }
    let rows: Vec<TableRow<'_>> = shown
        .iter()
        .zip(labels)
        .map(|(r, labels)| {
            let mut cells = cells(r, theme);
            if label_width > 0 {
                cells.insert(9, labels.into());
            }
            TableRow::new(cells)
        })
        .collect();
    let empty = rows.is_empty();
    let table = Table::new(rows, widths)
        .header(TableRow::new(titles).style(theme.bold()))
        .row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(sel);
    f.render_stateful_widget(table, area, &mut state);
    if empty {
        let note = match model.tally().total {
            0 => "no tasks yet: they show here as they start",
            _ => "no task matches the filters (f and / change them)",
        };
        let below = Rect {
            y: area.y + 1,
            height: area.height.saturating_sub(1),
            ..area
        };
        f.render_widget(Paragraph::new(note), below);
    }
}

fn cells(r: &Row, theme: Theme) -> Vec<Cell<'static>> {
    let t = &r.rec;
    let state = match t.paused {
        true => "paused",
        false => t.state.name(),
    };
    let mode = match t.detached {
        true => "bg",
        false => "fg",
    };
    let rate = match (r.running(), r.rate) {
        (true, Some(b)) => format!("{}/s", bytes(b)),
        _ => "-".into(),
    };
    let command = match &t.name {
        Some(n) => format!("[{n}] {}", t.kind.display()),
        None => t.kind.display(),
    };
    vec![
        Cell::from(t.id.to_string()),
        t.kind.name().into(),
        Cell::from(state).style(theme.state(t)),
        mode.into(),
        t.group.clone().unwrap_or_else(|| "-".into()).into(),
        t.owner.clone().into(),
        render::age(t.created_at).into(),
        rate.into(),
        result(t).into(),
        command.replace('\n', " ").into(),
    ]
}

/// How an ended task ended; how far a running agent is; what a queued task waits for; else
/// a running task's pid.
fn result(t: &TaskRecord) -> String {
    match (&t.state, &t.progress) {
        (TaskState::Running { .. } | TaskState::Queued, Some(p)) => {
            let mut s = format!("turn {}", p.turns);
            if let Some(tool) = &p.last_tool {
                s.push_str(&format!(", {tool}"));
            }
            if p.tokens > 0 {
                s.push_str(&format!(", {} tok", count(p.tokens)));
            }
            s
        }
        (TaskState::Running { pid: Some(pid), .. }, None) => format!("pid {pid}"),
        _ => render::result(t),
    }
}

/// 950, 1.2K, 3.4M: bytes for a narrow column.
fn bytes(n: u64) -> String {
    match n {
        0..=999 => n.to_string(),
        1000..=999_999 => format!("{:.1}K", n as f64 / 1024.0),
        1_000_000..=999_999_999 => format!("{:.1}M", n as f64 / (1024.0 * 1024.0)),
        _ => format!("{:.1}G", n as f64 / (1024.0 * 1024.0 * 1024.0)),
    }
}

/// 950, 12k, 3.4M: a count for a narrow column.
fn count(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{}k", n / 1000),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

fn output(f: &mut Frame<'_>, area: Rect, theme: Theme, pane: &LogPane, model: &Model) {
    let [title, body] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    let about = match model.row(pane.id) {
        Some(r) => format!(
            "output of task {} ({}): {}",
            pane.id,
            match r.rec.paused {
                true => "paused",
                false => r.rec.state.name(),
            },
            r.rec.kind.display().replace('\n', " ")
        ),
        None => format!("output of task {}", pane.id),
    };
    f.render_widget(Paragraph::new(about).style(theme.bold()), title);
    let room = body.height as usize;
    let end = pane.end.as_deref();
    let mut lines: Vec<Line<'_>> = pane
        .tail(room.saturating_sub(usize::from(end.is_some())))
        .into_iter()
        .map(Line::raw)
        .collect();
    if let Some(end) = end {
        lines.push(Line::styled(format!("-- {end} --"), theme.bold()));
    }
    f.render_widget(Paragraph::new(lines), body);
}

fn status_line(f: &mut Frame<'_>, area: Rect, ui: &Ui, model: &Model) {
    let text = match (ui.mode, ui.confirm) {
        (Mode::Filter, _) => format!("filter: {}_", model.filter.text),
        (Mode::Confirm, Some(id)) => {
            let what = model
                .row(id)
                .map(|r| r.rec.kind.display().replace('\n', " "))
                .unwrap_or_default();
            format!("stop task {id} ({what}) and its whole process tree? y/n")
        }
        _ => ui.status.clone(),
    };
    f.render_widget(Paragraph::new(text), area);
}

fn help(f: &mut Frame<'_>, area: Rect, theme: Theme) {
    let width = area.width.min(96);
    let height = (keys::HELP.len() as u16 + 4).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let mut lines: Vec<Line<'_>> = keys::HELP
        .iter()
        .map(|(k, what)| Line::raw(format!(" {k:<20} {what}")))
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::raw(" any key closes this"));
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" keys ", theme.bold())),
        ),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_fit_their_column() {
        assert_eq!(bytes(950), "950");
        assert_eq!(bytes(1536), "1.5K");
        assert_eq!(bytes(3 << 20), "3.0M");
        assert_eq!(count(1200), "1200");
        assert_eq!(count(45_000), "45k");
    }
}
