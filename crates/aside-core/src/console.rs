//! A running shell task's way in, through its supervisor: bytes for its input (a pipe or
//! its terminal), signals, pausing, its terminal's size, and the screen its output drew.
//!
//! Input is bounded end to end: at most [`MAX_UNDER_WAY`] bytes may be sent and not yet
//! taken by the task (the supervisor counts what the task took and says so), so a task that
//! does not read its input makes writes fail with a clear error instead of growing a buffer.

use std::num::NonZeroU16;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aside_protocol::{Input, Screen, ScreenFormat, TaskId, TaskSignal, TermSize};
use aside_shim::wire::{self, ToShim};
use base64::Engine as _;
use tokio::sync::mpsc;

use crate::output::Output;

/// Bytes one write may carry (one message to the supervisor).
pub use aside_shim::wire::MAX_WRITE;
/// Bytes of input sent to a task and not yet taken by it, at most.
pub const MAX_UNDER_WAY: u64 = 1 << 20;
/// Messages queued for one supervisor at most (each a write of at most [`MAX_WRITE`]).
const QUEUE: usize = 64;
/// A screen is drawn from at most this much of the output's end: a terminal program
/// redraws what it shows often, and replaying a huge log would stall the read.
const REPLAY_MAX: u64 = 8 << 20;
/// Bytes of the log read at a time while drawing a screen.
const REPLAY_CHUNK: usize = 1 << 20;

/// Why a write or signal was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("task {0} takes no input: start it with --stdin (a pipe) or --pty (a terminal)")]
    NoInput(TaskId),
    #[error("the input of task {0} is closed")]
    Closed(TaskId),
    #[error(
        "task {id} is not reading its input: {} bytes written to it are still waiting",
        MAX_UNDER_WAY
    )]
    Full { id: TaskId },
    #[error("a write carries at most {} bytes; this one has {len}", MAX_WRITE)]
    TooLarge { len: usize },
    #[error("task {0} has no terminal: start it with --pty")]
    NoTerminal(TaskId),
    #[error("the supervisor of task {0} is gone")]
    Gone(TaskId),
    #[error(
        "task {0} was started by an older aside, whose supervisor takes no signals: stop it \
         with aside stop"
    )]
    Older(TaskId),
    #[error(
        "task {0} was started by an older aside, whose supervisor cannot pause it (aside \
         signal {0} STOP stops its process group)"
    )]
    NoPause(TaskId),
    #[error(
        "a terminal is 1 to {} cells each way; {cols}x{rows} is not",
        TermSize::MAX
    )]
    BadSize { cols: u16, rows: u16 },
}

pub(crate) struct Console {
    id: TaskId,
    input: Input,
    tx: mpsc::Sender<ToShim>,
    /// Bytes of input sent, and taken by the task (or dropped, its input being closed), as
    /// the supervisor counts them.
    sent: AtomicU64,
    done: AtomicU64,
    closed: AtomicBool,
    /// Its supervisor's wire version: an older one takes no signals and resizes, or does not
    /// pause.
    version: u32,
    size: Mutex<TermSize>,
    /// The screen, drawn from the output as far as `fed`; made at the first screen read.
    screen: Mutex<Option<Drawn>>,
}

struct Drawn {
    parser: vt100::Parser,
    fed: u64,
}

impl Console {
    /// A console for task `id`, and the receiving end its follower forwards to the
    /// supervisor. `done` is what the supervisor counted already (an adopted one), `version`
    /// the wire version it speaks.
    pub fn new(
        id: TaskId,
        input: Input,
        size: Option<TermSize>,
        done: u64,
        version: u32,
    ) -> (Arc<Self>, mpsc::Receiver<ToShim>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let console = Console {
            id,
            input,
            tx,
            sent: AtomicU64::new(done),
            done: AtomicU64::new(done),
            closed: AtomicBool::new(false),
            version,
            size: Mutex::new(size.or(input.pty()).unwrap_or_default()),
            screen: Mutex::new(None),
        };
        (Arc::new(console), rx)
    }

    /// The supervisor's count of input taken.
    pub fn set_done(&self, done: u64) {
        self.done.fetch_max(done, Ordering::Relaxed);
    }

    /// Sends `data` to the task's input; with `eof`, closes the input after it.
    pub fn write(&self, data: &[u8], eof: bool) -> Result<u64, ConsoleError> {
        if self.input.is_none() {
            return Err(ConsoleError::NoInput(self.id));
        }
        if data.len() > MAX_WRITE {
            return Err(ConsoleError::TooLarge { len: data.len() });
        }
        if self.closed.load(Ordering::Relaxed) {
            return Err(ConsoleError::Closed(self.id));
        }
        let len = data.len() as u64;
        let under_way = self
            .sent
            .load(Ordering::Relaxed)
            .saturating_sub(self.done.load(Ordering::Relaxed));
        if under_way + len > MAX_UNDER_WAY {
            return Err(ConsoleError::Full { id: self.id });
        }
        if !data.is_empty() {
            let msg = ToShim::Write {
                data: base64::engine::general_purpose::STANDARD.encode(data),
            };
            self.send(msg)?;
            self.sent.fetch_add(len, Ordering::Relaxed);
        }
        if eof && !matches!(self.input, Input::Pty(_)) {
            self.send(ToShim::CloseInput)?;
            self.closed.store(true, Ordering::Relaxed);
        }
        Ok(len)
    }

    /// Sends a signal; WINCH resizes the terminal (and redraws the screen at the new size
    /// from there on).
    pub fn signal(&self, signal: TaskSignal, output: &Output) -> Result<(), ConsoleError> {
        if self.version < wire::SIGNALS {
            return Err(ConsoleError::Older(self.id));
        }
        let TaskSignal::Winch { cols, rows } = signal else {
            return self.send(ToShim::Signal {
                signal: signal_number(signal),
            });
        };
        if self.input.pty().is_none() {
            return Err(ConsoleError::NoTerminal(self.id));
        }
        let size = TermSize { cols, rows };
        if !size.is_valid() {
            return Err(ConsoleError::BadSize { cols, rows });
        }
        // What was drawn at the old size is drawn first.
        let mut screen = self.screen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(drawn) = screen.as_mut() {
            catch_up(drawn, output);
            if let (Some(r), Some(c)) = (NonZeroU16::new(rows), NonZeroU16::new(cols)) {
                drawn.parser.set_size(r, c);
            }
        }
        *self.size.lock().unwrap_or_else(|e| e.into_inner()) = size;
        drop(screen);
        self.send(ToShim::Resize { cols, rows })
    }

    /// Whether its supervisor can pause the task.
    pub fn pauses(&self) -> Result<(), ConsoleError> {
        match self.version < wire::PAUSE {
            true => Err(ConsoleError::NoPause(self.id)),
            false => Ok(()),
        }
    }

    /// Stops (`paused`) or continues every process of the task, through its supervisor.
    pub fn pause(&self, paused: bool) -> Result<(), ConsoleError> {
        self.pauses()?;
        self.send(if paused {
            ToShim::Pause
        } else {
            ToShim::Resume
        })
    }

    /// The terminal's screen as the output so far drew it.
    pub fn screen(&self, output: &Output, format: ScreenFormat) -> Result<Screen, ConsoleError> {
        if self.input.pty().is_none() {
            return Err(ConsoleError::NoTerminal(self.id));
        }
        let size = *self.size.lock().unwrap_or_else(|e| e.into_inner());
        let mut screen = self.screen.lock().unwrap_or_else(|e| e.into_inner());
        let drawn = screen.get_or_insert_with(|| Drawn::new(size, output.total()));
        catch_up(drawn, output);
        Ok(render(&drawn.parser, drawn.fed, format))
    }

    fn send(&self, msg: ToShim) -> Result<(), ConsoleError> {
        self.tx.try_send(msg).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ConsoleError::Full { id: self.id },
            mpsc::error::TrySendError::Closed(_) => ConsoleError::Gone(self.id),
        })
    }
}

impl Drawn {
    /// A blank screen, to draw the output on from its last [`REPLAY_MAX`] bytes.
    fn new(size: TermSize, total: u64) -> Self {
        let rows = NonZeroU16::new(size.rows).unwrap_or(NonZeroU16::MIN);
        let cols = NonZeroU16::new(size.cols).unwrap_or(NonZeroU16::MIN);
        Self {
            parser: vt100::Parser::new(rows, cols, 0),
            fed: total.saturating_sub(REPLAY_MAX),
        }
    }
}

/// Draws what the output holds past what was drawn.
fn catch_up(drawn: &mut Drawn, output: &Output) {
    while drawn.fed < output.total() {
        match output.read(drawn.fed, REPLAY_CHUNK) {
            Ok(bytes) if !bytes.is_empty() => {
                drawn.parser.process(&bytes);
                drawn.fed += bytes.len() as u64;
            }
            Ok(_) => return,
            Err(e) => {
                tracing::debug!("drawing a screen: {e}");
                return;
            }
        }
    }
}

/// The screen of a task that has ended, drawn from its log.
pub(crate) fn final_screen(log: &[u8], total: u64, size: TermSize, format: ScreenFormat) -> Screen {
    let mut drawn = Drawn::new(size, total);
    let skip = drawn.fed.saturating_sub(total - log.len() as u64) as usize;
    drawn.parser.process(log.get(skip..).unwrap_or_default());
    drawn.fed = total;
    render(&drawn.parser, total, format)
}

/// How many bytes of the log's end [`final_screen`] needs.
pub(crate) const FINAL_SCREEN_BYTES: u64 = REPLAY_MAX;

fn render(parser: &vt100::Parser, offset: u64, format: ScreenFormat) -> Screen {
    let s = parser.screen();
    let (rows, cols) = s.size();
    let mut lines: Vec<String> = s
        .rows(0, cols.get())
        .map(|r| r.trim_end().to_string())
        .collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let (cursor_row, cursor_col) = s.cursor_position();
    Screen {
        cols: cols.get(),
        rows: rows.get(),
        text: lines.join("\n"),
        cursor_row,
        cursor_col,
        offset,
        ansi: matches!(format, ScreenFormat::Ansi).then(|| s.state_formatted()),
    }
}

/// The signal's number on this system.
pub(crate) fn signal_number(signal: TaskSignal) -> i32 {
    match signal {
        TaskSignal::Int => libc::SIGINT,
        TaskSignal::Term => libc::SIGTERM,
        TaskSignal::Hup => libc::SIGHUP,
        TaskSignal::Quit => libc::SIGQUIT,
        TaskSignal::Kill => libc::SIGKILL,
        TaskSignal::Usr1 => libc::SIGUSR1,
        TaskSignal::Usr2 => libc::SIGUSR2,
        TaskSignal::Stop => libc::SIGSTOP,
        TaskSignal::Cont => libc::SIGCONT,
        TaskSignal::Winch { .. } => libc::SIGWINCH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_screen_is_drawn_from_the_bytes() {
        let size = TermSize { cols: 20, rows: 5 };
        let log = b"hello\r\n\x1b[31mred\x1b[0m\r\n\x1b[2J\x1b[Hclean\x1b[3;4Hx";
        let s = final_screen(log, log.len() as u64, size, ScreenFormat::Text);
        assert_eq!(s.text, "clean\n\n   x");
        assert_eq!((s.cursor_row, s.cursor_col), (2, 4));
        assert_eq!((s.cols, s.rows), (20, 5));
        assert!(s.ansi.is_none());
        let a = final_screen(log, log.len() as u64, size, ScreenFormat::Ansi);
        assert!(a.ansi.unwrap().contains("clean"));
    }
}
