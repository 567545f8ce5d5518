//! The task's way in: the write end of its stdin pipe, or its terminal's master side. What
//! the daemon sends waits here until the task takes it; the daemon never lets more than
//! [`MAX_PENDING`](crate::wire) bytes be under way, so this never grows past that.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

pub(crate) struct InputEnd {
    fd: OwnedFd,
    /// The fd is a terminal's master side (else a pipe).
    pty: bool,
    pending: Vec<u8>,
    /// Bytes written to the task, or dropped because it closed its input.
    pub done: u64,
    /// Close once `pending` is written.
    close_after: bool,
}

/// What a flush left.
pub(crate) enum Flushed {
    /// Open, with or without bytes waiting.
    Open,
    /// Closed: asked to, or the task closed its end.
    Closed,
}

impl InputEnd {
    pub fn new(fd: OwnedFd, pty: bool) -> Self {
        Self {
            fd,
            pty,
            pending: Vec::new(),
            done: 0,
            close_after: false,
        }
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn wants_write(&self) -> bool {
        !self.pending.is_empty()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    pub fn close_when_written(&mut self) {
        self.close_after = true;
    }

    /// Writes what the task takes now.
    pub fn flush(&mut self) -> Flushed {
        while !self.pending.is_empty() {
            match nix::unistd::write(&self.fd, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                    self.done += n as u64;
                }
                Err(Errno::EAGAIN) => return Flushed::Open,
                Err(Errno::EINTR) => {}
                // The task closed its end (EPIPE), or its terminal is gone (EIO): what waits
                // can never be read.
                Err(_) => {
                    self.done += self.pending.len() as u64;
                    self.pending.clear();
                    return Flushed::Closed;
                }
            }
        }
        // A terminal stays open: its end of file is the program's business (Ctrl+D).
        if self.close_after && !self.pty {
            return Flushed::Closed;
        }
        Flushed::Open
    }

    /// A terminal's new size: the kernel tells its foreground process group (SIGWINCH).
    pub fn resize(&self, cols: u16, rows: u16) {
        if self.pty {
            set_size(&self.fd, cols, rows);
        }
    }

    /// A terminal's size now.
    pub fn size(&self) -> Option<(u16, u16)> {
        if !self.pty {
            return None;
        }
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one winsize into the struct passed, which lives on this
        // stack frame for the call.
        let rc = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        (rc == 0).then_some((ws.ws_col, ws.ws_row))
    }

    /// The terminal's foreground process group: what a key such as Ctrl+C reaches.
    pub fn foreground(&self) -> Option<Pid> {
        if !self.pty {
            return None;
        }
        nix::unistd::tcgetpgrp(&self.fd).ok()
    }
}

/// Sets a terminal's size through either side.
pub(crate) fn set_size(fd: &impl AsRawFd, cols: u16, rows: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, valid for the call.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

/// Sends `signal` to a terminal task's foreground process group when it has one, else to
/// the task's own group.
pub(crate) fn signal(input: Option<&InputEnd>, pgid: i32, signal: i32) {
    let Ok(sig) = Signal::try_from(signal) else {
        return;
    };
    let target = input
        .and_then(InputEnd::foreground)
        .unwrap_or(Pid::from_raw(pgid));
    let _ = killpg(target, sig);
    // Stopping, continuing and killing are meant for the whole task: its own group too.
    if !matches!(sig, Signal::SIGSTOP | Signal::SIGCONT | Signal::SIGKILL) {
        return;
    }
    if target.as_raw() != pgid {
        let _ = killpg(Pid::from_raw(pgid), sig);
    }
}
