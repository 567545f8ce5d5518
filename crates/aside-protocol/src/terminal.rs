//! Input to tasks: a pipe or a terminal, the bytes and signals sent to them, and the screen
//! of a terminal as the daemon renders it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a shell task reads as its standard input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// `/dev/null`: the task takes no input.
    #[default]
    None,
    /// A pipe the task reads; `task.write` feeds it, `eof` closes it.
    Pipe,
    /// A pseudo-terminal of this size for stdin, stdout and stderr (TERM=xterm-256color):
    /// `task.write` types on it, and `task.read` can render its screen.
    Pty(TermSize),
}

impl Input {
    pub fn is_none(&self) -> bool {
        matches!(self, Input::None)
    }

    /// The terminal's size, for a task on one.
    pub fn pty(&self) -> Option<TermSize> {
        match self {
            Input::Pty(size) => Some(*size),
            Input::None | Input::Pipe => None,
        }
    }
}

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TermSize {
    pub cols: u16,
    pub rows: u16,
}

impl TermSize {
    /// A terminal task's size when none is given.
    pub const DEFAULT: TermSize = TermSize {
        cols: 120,
        rows: 40,
    };
    /// The largest size taken, each way.
    pub const MAX: u16 = 1000;

    /// Whether both sides are between 1 and [`TermSize::MAX`].
    pub fn is_valid(&self) -> bool {
        (1..=Self::MAX).contains(&self.cols) && (1..=Self::MAX).contains(&self.rows)
    }

    /// Parses `120x40`.
    pub fn parse(text: &str) -> Option<Self> {
        let (c, r) = text.split_once(['x', 'X'])?;
        let size = TermSize {
            cols: c.trim().parse().ok()?,
            rows: r.trim().parse().ok()?,
        };
        size.is_valid().then_some(size)
    }
}

impl Default for TermSize {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl std::fmt::Display for TermSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.cols, self.rows)
    }
}

/// A signal `task.signal` sends: to a terminal task's foreground process group (what Ctrl+C
/// on a terminal reaches), else to the task's process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "signal", rename_all = "UPPERCASE")]
pub enum TaskSignal {
    Int,
    Term,
    Hup,
    Quit,
    Kill,
    Usr1,
    Usr2,
    /// Stops the processes until `CONT`.
    Stop,
    Cont,
    /// A terminal task's new size: the terminal is resized and its programs are told.
    Winch {
        cols: u16,
        rows: u16,
    },
}

impl TaskSignal {
    /// Every name, as the CLI takes them.
    pub const NAMES: &'static [&'static str] = &[
        "INT", "TERM", "HUP", "QUIT", "KILL", "USR1", "USR2", "STOP", "CONT", "WINCH",
    ];

    /// Parses a signal's name (`INT`, `SIGINT`, `int`); WINCH takes its size apart.
    pub fn parse(name: &str, size: Option<TermSize>) -> Option<Self> {
        let upper = name.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        Some(match bare {
            "INT" => TaskSignal::Int,
            "TERM" => TaskSignal::Term,
            "HUP" => TaskSignal::Hup,
            "QUIT" => TaskSignal::Quit,
            "KILL" => TaskSignal::Kill,
            "USR1" => TaskSignal::Usr1,
            "USR2" => TaskSignal::Usr2,
            "STOP" => TaskSignal::Stop,
            "CONT" => TaskSignal::Cont,
            "WINCH" => {
                let s = size?;
                TaskSignal::Winch {
                    cols: s.cols,
                    rows: s.rows,
                }
            }
            _ => return None,
        })
    }
}

/// How `task.read` renders a terminal task's screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScreenFormat {
    /// The characters on the screen, one line per row, trailing blanks trimmed.
    Text,
    /// Also the escape sequences that draw it (colours, attributes, the cursor): what a
    /// terminal that attaches writes to show it.
    Ansi,
}

/// A terminal task's screen, as its output up to `offset` drew it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Screen {
    pub cols: u16,
    pub rows: u16,
    /// The rows' text, joined with `\n`, trailing blanks and blank last rows trimmed.
    pub text: String,
    /// The cursor's row and column, from 0.
    pub cursor_row: u16,
    pub cursor_col: u16,
    /// Bytes of output the screen shows: live output to draw on it starts here.
    pub offset: u64,
    /// With [`ScreenFormat::Ansi`]: the escape sequences that draw the screen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ansi: Option<String>,
}

/// Where the pattern `task.read` waited for matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Match {
    /// Byte offsets in the output of the match's start and end.
    pub offset: u64,
    pub end: u64,
    /// The matched text, escape sequences left out.
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_on_the_wire() {
        assert_eq!(serde_json::to_value(Input::Pipe).unwrap(), "pipe");
        let pty = Input::Pty(TermSize { cols: 80, rows: 24 });
        let v = serde_json::to_value(pty).unwrap();
        assert_eq!(v, serde_json::json!({"pty": {"cols": 80, "rows": 24}}));
        assert_eq!(serde_json::from_value::<Input>(v).unwrap(), pty);
    }

    #[test]
    fn signals_by_name() {
        assert_eq!(TaskSignal::parse("sigint", None), Some(TaskSignal::Int));
        assert_eq!(TaskSignal::parse("WINCH", None), None);
        let w = TaskSignal::parse("winch", TermSize::parse("100x30")).unwrap();
        assert_eq!(
            w,
            TaskSignal::Winch {
                cols: 100,
                rows: 30
            }
        );
        let v = serde_json::to_value(w).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"signal": "WINCH", "cols": 100, "rows": 30})
        );
        assert_eq!(TaskSignal::parse("nope", None), None);
        assert_eq!(TermSize::parse("0x5"), None);
    }
}
