//! The output pane: the last lines of one task's output, as it comes (read with escape
//! sequences left out, so it is text to show).

use std::collections::VecDeque;

use aside_protocol::TaskId;

/// Lines kept; the pane shows the last of them.
const KEEP: usize = 5000;

pub struct LogPane {
    pub id: TaskId,
    lines: VecDeque<String>,
    /// The line being written (no newline yet).
    partial: String,
    /// A carriage return came last: the line starts again unless a newline follows.
    returned: bool,
    /// How the task ended, once its output is all read; or why reading stopped.
    pub end: Option<String>,
}

impl LogPane {
    pub fn new(id: TaskId) -> Self {
        Self {
            id,
            lines: VecDeque::new(),
            partial: String::new(),
            returned: false,
            end: None,
        }
    }

    /// Adds output. A carriage return starts its line again (progress bars redraw one line);
    /// tabs become spaces and other control characters are dropped, as the pane draws text.
    pub fn push(&mut self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        for c in text.chars() {
            if std::mem::take(&mut self.returned) && c != '\n' {
                self.partial.clear();
            }
            match c {
                '\n' => {
                    let line = std::mem::take(&mut self.partial);
                    self.lines.push_back(line);
                    if self.lines.len() > KEEP {
                        self.lines.pop_front();
                    }
                }
                '\r' => self.returned = true,
                '\t' => self.partial.push_str("    "),
                c if c.is_control() => {}
                c => self.partial.push(c),
            }
        }
    }

    /// The last `n` lines, the one being written included.
    pub fn tail(&self, n: usize) -> Vec<&str> {
        let partial = (!self.partial.is_empty()).then_some(self.partial.as_str());
        let whole = n.saturating_sub(usize::from(partial.is_some()));
        let skip = self.lines.len().saturating_sub(whole);
        self.lines
            .iter()
            .skip(skip)
            .map(String::as_str)
            .chain(partial)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carriage_returns_and_the_line_being_written() {
        let mut p = LogPane::new(TaskId::new(1).unwrap());
        p.push(b"one\ntwo\r\nthr");
        p.push(b"ee\n10%\r50%\r100%");
        assert_eq!(p.tail(10), ["one", "two", "three", "100%"]);
        assert_eq!(p.tail(2), ["three", "100%"]);
        p.push(b"\n\tx\x07\n");
        assert_eq!(p.tail(2), ["100%", "    x"]);
    }
}
