//! This process's own terminal: its size, and raw mode for as long as a session is attached
//! (restored on every way out, a panic included, since the guard's drop runs on unwind).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use aside_protocol::TermSize;
use nix::sys::termios::{self, SetArg, Termios};

/// Whether stdin and stdout are both a terminal: a session is interactive only then.
pub fn interactive() -> bool {
    nix::unistd::isatty(std::io::stdin().as_fd()).unwrap_or(false)
        && nix::unistd::isatty(std::io::stdout().as_fd()).unwrap_or(false)
}

/// The size of the terminal on stdout (else stdin), when there is one.
pub fn size() -> Option<TermSize> {
    size_of(std::io::stdout().as_fd()).or_else(|| size_of(std::io::stdin().as_fd()))
}

/// The size of the terminal on `fd`, when it is one.
pub fn size_of(fd: BorrowedFd<'_>) -> Option<TermSize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct passed, which lives on this
    // stack frame for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    let size = TermSize {
        cols: ws.ws_col,
        rows: ws.ws_row,
    };
    (rc == 0 && size.is_valid()).then_some(size)
}

/// Raw mode on stdin's terminal while it lives: keys reach the task as they are typed, Ctrl+C
/// and Ctrl+Z included (as bytes, not as signals to this process).
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    pub fn enter() -> std::io::Result<Self> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd())?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSADRAIN, &raw)?;
        Ok(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}
