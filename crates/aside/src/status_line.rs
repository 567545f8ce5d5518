//! The status line of a foreground `aside run` on a terminal: once the task has run for
//! [`SHOW_AFTER`], a line on stderr says how long it has run and how much output it made,
//! redrawn in place about once a second. It is erased before any output is written and at
//! the end, so it never mixes with the task's output; with the output on the same terminal
//! it is drawn only where a line of output has ended, since erasing a line would take half a
//! written line with it. Nothing of it is drawn when stderr is not a terminal.

use std::io::Write;
use std::os::fd::AsFd;
use std::time::Duration;

use aside_protocol::{TaskId, TaskKind, TaskRecord, TaskState, Timestamp};
use tokio::time::Instant;

/// A foreground task gets a status line once it has run this long.
pub const SHOW_AFTER: Duration = Duration::from_secs(3);
/// How often the line is brought up to date.
const EVERY: Duration = Duration::from_secs(1);
/// Back to the start of the line, and erase it.
const ERASE: &[u8] = b"\r\x1b[K";

pub struct StatusLine {
    id: TaskId,
    /// stderr is a terminal and the line has not been put away for good.
    on: bool,
    /// The task's output goes to a terminal too (taken to be the same one).
    shares: bool,
    /// The line is on the screen now.
    shown: bool,
    /// The output written so far ends a line (or there is none).
    at_line_start: bool,
    next: Instant,
    /// What the last look at the task found; nothing is drawn before the first.
    seen: Option<Seen>,
    bytes: u64,
}

struct Seen {
    queued: bool,
    since: Timestamp,
}

impl StatusLine {
    /// The status line of a shell task followed in the foreground.
    pub fn new(task: &TaskRecord) -> Self {
        let tty = |fd: std::os::fd::BorrowedFd<'_>| nix::unistd::isatty(fd).unwrap_or(false);
        Self {
            id: task.id,
            on: matches!(task.kind, TaskKind::Shell { .. }) && tty(std::io::stderr().as_fd()),
            shares: tty(std::io::stdout().as_fd()),
            shown: false,
            at_line_start: true,
            next: Instant::now() + SHOW_AFTER,
            seen: None,
            bytes: task.output_bytes,
        }
    }

    /// Whether the line may still be drawn: only then is [`StatusLine::due`] worth awaiting.
    pub fn on(&self) -> bool {
        self.on
    }

    /// Returns when it is time to look at the task again.
    pub async fn due(&self) {
        tokio::time::sleep_until(self.next).await
    }

    /// A fresh look at the task (None: it could not be had): draws the line.
    pub fn update(&mut self, task: Option<&TaskRecord>) {
        self.next = Instant::now() + EVERY;
        let Some(t) = task else { return };
        self.bytes = self.bytes.max(t.output_bytes);
        self.seen = match &t.state {
            TaskState::Queued => Some(Seen {
                queued: true,
                since: t.created_at,
            }),
            TaskState::Running { started_at, .. } => Some(Seen {
                queued: false,
                since: *started_at,
            }),
            // It has ended: its last output and its end are on their way.
            _ => None,
        };
        match self.seen {
            Some(_) => self.draw(),
            None => self.erase(),
        }
    }

    /// Writes the task's output (`total`: its bytes so far) to `out`, with the line erased
    /// first and drawn again after it where it can be.
    pub fn output(&mut self, out: &mut impl Write, data: &[u8], total: u64) -> std::io::Result<()> {
        self.bytes = self.bytes.max(total);
        if data.is_empty() {
            return Ok(());
        }
        if self.shares {
            self.erase();
            self.at_line_start = data.ends_with(b"\n");
        }
        out.write_all(data)?;
        out.flush()?;
        if self.seen.is_some() {
            self.draw();
        }
        Ok(())
    }

    /// Erases the line for good: before a message of aside's own, and at the end.
    pub fn clear(&mut self) {
        self.erase();
        self.on = false;
    }

    fn draw(&mut self) {
        let Some(seen) = &self.seen else { return };
        if !self.on || (self.shares && !self.at_line_start) {
            return;
        }
        let elapsed = clock(seen.since.until(Timestamp::now()));
        let mut text = match seen.queued {
            true => format!("aside: task {} queued {elapsed}", self.id),
            false => format!(
                "aside: task {} running {elapsed}, {}",
                self.id,
                amount(self.bytes)
            ),
        };
        // A line that wraps could not be erased whole.
        if let Some(cols) = crate::terminal::size_of(std::io::stderr().as_fd()).map(|s| s.cols) {
            text = text
                .chars()
                .take(usize::from(cols).saturating_sub(1))
                .collect();
        }
        let mut err = std::io::stderr().lock();
        // A status line that cannot be written is no reason to fail the run.
        let _ = err
            .write_all(ERASE)
            .and_then(|_| err.write_all(text.as_bytes()))
            .and_then(|_| err.flush());
        self.shown = true;
    }

    fn erase(&mut self) {
        if self.shown {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(ERASE).and_then(|_| err.flush());
            self.shown = false;
        }
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        self.erase();
    }
}

/// "0:07", "12:34", "1:02:03".
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match s / 3600 {
        0 => format!("{}:{:02}", s / 60, s % 60),
        h => format!("{h}:{:02}:{:02}", s / 60 % 60, s % 60),
    }
}

/// "no output yet", "512 bytes of output", "1.2 MiB of output".
fn amount(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes == 0 {
        return "no output yet".into();
    }
    if bytes == 1 {
        return "1 byte of output".into();
    }
    if bytes < 1024 {
        return format!("{bytes} bytes of output");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {} of output", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_and_amount_read_as_people_write_them() {
        assert_eq!(clock(Duration::from_secs(7)), "0:07");
        assert_eq!(clock(Duration::from_secs(754)), "12:34");
        assert_eq!(clock(Duration::from_secs(3723)), "1:02:03");
        assert_eq!(amount(0), "no output yet");
        assert_eq!(amount(1), "1 byte of output");
        assert_eq!(amount(1023), "1023 bytes of output");
        assert_eq!(amount(1024), "1.0 KiB of output");
        assert_eq!(amount(1_258_291), "1.2 MiB of output");
        assert_eq!(amount(5 << 30), "5.0 GiB of output");
    }
}
