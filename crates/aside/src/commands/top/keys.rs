//! Keys and what they do, by what the dashboard is showing.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What the dashboard is showing, which decides what a key means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The table of tasks.
    Table,
    /// A task's output, as it comes.
    Log,
    /// Typing the text filter.
    Filter,
    /// Asking whether to stop a task.
    Confirm,
    /// The list of keys.
    Help,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Quit,
    /// Moves the selection by this many rows.
    Move(isize),
    /// A page down (1) or up (-1).
    Page(isize),
    First,
    Last,
    Follow,
    Back,
    Stop,
    /// The answer to "stop it?".
    Confirm(bool),
    Detach,
    PauseResume,
    Restart,
    Attach,
    EditFilter,
    Type(char),
    Erase,
    /// Keep the text typed (true) or drop it (false).
    EndFilter(bool),
    CycleState,
    Help,
}

/// The footer: the keys of the table, in a line.
pub const FOOTER: &str =
    "j/k move  Enter log  s stop  d detach  p pause  r restart  a attach  / filter  f state  ? help  q quit";
/// The footer while a task's output is shown.
pub const LOG_FOOTER: &str =
    "Esc back  s stop  d detach  p pause  r restart  a attach  ? help  q quit";

/// The help screen's lines.
pub const HELP: &[(&str, &str)] = &[
    ("Up/Down, j/k", "move the selection"),
    ("PgUp/PgDn, Home/End", "a page, the first or last task"),
    (
        "Enter, l",
        "follow the selected task's output (Esc goes back)",
    ),
    ("s", "stop the task and its whole process tree (asks y/n)"),
    ("d", "detach: a foreground task goes on in the background"),
    ("p", "pause the task's processes, or resume them"),
    (
        "r",
        "restart a finished task (a new task, in the background)",
    ),
    (
        "a",
        "attach to a terminal task (--pty); its detach key comes back here",
    ),
    (
        "/",
        "a text to filter by: id, name, command, group, owner (Enter keeps it)",
    ),
    (
        "f",
        "next state filter: all, live, running, paused, queued, ended, failed",
    ),
    ("q, Ctrl+C", "quit"),
];

/// What `key` does in `mode`; `None` for a key that does nothing there.
pub fn action(mode: Mode, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('C')) {
        return Some(Action::Quit);
    }
    // Alt and a key (or Esc typed just before it) means nothing here.
    if key.modifiers.contains(KeyModifiers::ALT) {
        return None;
    }
    match mode {
        Mode::Help => Some(Action::Back),
        Mode::Confirm => Some(Action::Confirm(matches!(
            key.code,
            KeyCode::Char('y') | KeyCode::Char('Y')
        ))),
        Mode::Filter => match key.code {
            KeyCode::Enter => Some(Action::EndFilter(true)),
            KeyCode::Esc => Some(Action::EndFilter(false)),
            KeyCode::Backspace => Some(Action::Erase),
            KeyCode::Char(c) if !ctrl => Some(Action::Type(c)),
            _ => None,
        },
        Mode::Table | Mode::Log => {
            let common = match key.code {
                KeyCode::Char('q') => Action::Quit,
                KeyCode::Char('s') => Action::Stop,
                KeyCode::Char('d') => Action::Detach,
                KeyCode::Char('p') => Action::PauseResume,
                KeyCode::Char('r') => Action::Restart,
                KeyCode::Char('a') => Action::Attach,
                KeyCode::Char('?') => Action::Help,
                _ if mode == Mode::Log => return log_key(key.code),
                _ => return table_key(key.code),
            };
            Some(common)
        }
    }
}

fn table_key(code: KeyCode) -> Option<Action> {
    Some(match code {
        KeyCode::Up | KeyCode::Char('k') => Action::Move(-1),
        KeyCode::Down | KeyCode::Char('j') => Action::Move(1),
        KeyCode::PageUp => Action::Page(-1),
        KeyCode::PageDown | KeyCode::Char(' ') => Action::Page(1),
        KeyCode::Home | KeyCode::Char('g') => Action::First,
        KeyCode::End | KeyCode::Char('G') => Action::Last,
        KeyCode::Enter | KeyCode::Char('l') | KeyCode::Right => Action::Follow,
        KeyCode::Char('/') => Action::EditFilter,
        KeyCode::Char('f') => Action::CycleState,
        _ => return None,
    })
}

fn log_key(code: KeyCode) -> Option<Action> {
    match code {
        KeyCode::Esc | KeyCode::Char('h') | KeyCode::Left | KeyCode::Backspace => {
            Some(Action::Back)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn ctrl_c_quits_whatever_is_shown() {
        let c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        for mode in [
            Mode::Table,
            Mode::Log,
            Mode::Filter,
            Mode::Confirm,
            Mode::Help,
        ] {
            assert_eq!(action(mode, c), Some(Action::Quit), "{mode:?}");
        }
    }

    #[test]
    fn letters_are_text_while_filtering_and_only_y_confirms() {
        assert_eq!(
            action(Mode::Filter, key(KeyCode::Char('q'))),
            Some(Action::Type('q'))
        );
        assert_eq!(
            action(Mode::Table, key(KeyCode::Char('q'))),
            Some(Action::Quit)
        );
        assert_eq!(
            action(Mode::Confirm, key(KeyCode::Char('y'))),
            Some(Action::Confirm(true))
        );
        assert_eq!(
            action(Mode::Confirm, key(KeyCode::Enter)),
            Some(Action::Confirm(false))
        );
        assert_eq!(action(Mode::Log, key(KeyCode::Esc)), Some(Action::Back));
        assert_eq!(action(Mode::Log, key(KeyCode::Char('j'))), None);
    }
}
