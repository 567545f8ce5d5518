//! A connection to the daemon, non-blocking: lines in, lines out through an outbox that
//! `poll` drains, so a daemon that stops reading never stalls the supervisor.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;

use crate::wire::{self, FromShim, ToShim};

/// A line longer than the daemon's longest message (a write of [`wire::MAX_WRITE`] bytes in
/// base64, with its JSON around it) is not one of ours: the connection is dropped.
const MAX_LINE: usize = wire::MAX_WRITE.div_ceil(3) * 4 + 1024;

pub(crate) struct Conn {
    pub stream: UnixStream,
    inbuf: Vec<u8>,
    outbox: Vec<u8>,
}

/// What reading found.
pub(crate) enum Incoming {
    Messages(Vec<ToShim>),
    /// The daemon is gone (or spoke nonsense).
    Closed,
}

impl Conn {
    pub fn new(stream: UnixStream) -> std::io::Result<Self> {
        stream.set_nonblocking(true)?;
        Ok(Self {
            stream,
            inbuf: Vec::new(),
            outbox: Vec::new(),
        })
    }

    /// Queues a message.
    pub fn send(&mut self, msg: &FromShim) {
        self.outbox.extend_from_slice(&wire::line(msg));
    }

    /// Queues the output total only when nothing else waits to go: totals only grow, so a
    /// later one says all an earlier one would have.
    pub fn send_total(&mut self, total: u64) -> bool {
        if !self.outbox.is_empty() {
            return false;
        }
        self.send(&FromShim::Output { total });
        true
    }

    /// The same for the input done.
    pub fn send_done(&mut self, done: u64) -> bool {
        if !self.outbox.is_empty() {
            return false;
        }
        self.send(&FromShim::Input { done });
        true
    }

    pub fn wants_write(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// Writes what it can; `false` once the daemon is gone.
    pub fn flush(&mut self) -> bool {
        while !self.outbox.is_empty() {
            match self.stream.write(&self.outbox) {
                Ok(0) => return false,
                Ok(n) => {
                    self.outbox.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Writes all that is queued, waiting as long as it takes; `false` once the daemon is
    /// gone.
    pub fn flush_all(&mut self) -> bool {
        if self.stream.set_nonblocking(false).is_err() {
            return false;
        }
        let flushed = self.flush();
        self.stream.set_nonblocking(true).is_ok() && flushed && self.outbox.is_empty()
    }

    /// Moves what was read but not yet taken as a message to the start of `buf`: its length,
    /// `None` when it does not fit.
    pub fn take_unread(&mut self, buf: &mut [u8]) -> Option<usize> {
        let n = self.inbuf.len();
        buf.get_mut(..n)?.copy_from_slice(&self.inbuf);
        self.inbuf.clear();
        Some(n)
    }

    /// Gives back bytes read past a message taken elsewhere: they are read first.
    pub fn put_back(&mut self, bytes: &[u8]) {
        self.inbuf.splice(0..0, bytes.iter().copied());
    }

    /// Whether a whole line is waiting in what was read.
    pub fn has_line(&self) -> bool {
        self.inbuf.contains(&b'\n')
    }

    /// What the daemon sent: every whole line up to the first `Ack` (included).
    pub fn read(&mut self) -> Incoming {
        let mut buf = [0u8; 4096];
        let mut closed = false;
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => self.inbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        let mut msgs = Vec::new();
        while let Some(nl) = self.inbuf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.inbuf.drain(..=nl).collect();
            match serde_json::from_slice(&line) {
                // What follows the acknowledgement of an end may be the next task's launch,
                // which is no message: it is left for whoever serves that task (see
                // `take_unread`), and so is anything behind an early one.
                Ok(ToShim::Ack) => {
                    msgs.push(ToShim::Ack);
                    return Incoming::Messages(msgs);
                }
                Ok(m) => msgs.push(m),
                Err(_) => return Incoming::Closed,
            }
        }
        if self.inbuf.len() > MAX_LINE {
            return Incoming::Closed;
        }
        if closed && msgs.is_empty() {
            return Incoming::Closed;
        }
        Incoming::Messages(msgs)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use base64::Engine as _;

    use super::*;

    #[test]
    fn a_launch_right_behind_an_ack_is_left_unread() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let mut conn = Conn::new(ours).unwrap();
        (&theirs)
            .write_all(b"{\"type\":\"ack\"}\n{\"version\":3,\"task\":8}\n")
            .unwrap();
        match conn.read() {
            Incoming::Messages(m) => assert_eq!(m, vec![ToShim::Ack]),
            Incoming::Closed => panic!("the launch was taken for a message"),
        }
        let mut buf = [0u8; 64];
        let n = conn.take_unread(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"{\"version\":3,\"task\":8}\n");
    }

    /// The largest write the daemon sends, as it sends it.
    fn largest_write() -> Vec<u8> {
        let data = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; wire::MAX_WRITE]);
        wire::line(&ToShim::Write { data })
    }

    #[test]
    fn the_largest_write_is_taken_even_when_it_comes_in_pieces() {
        let (shim, daemon) = UnixStream::pair().unwrap();
        let mut conn = Conn::new(shim).unwrap();
        let line = largest_write();
        let (first, rest) = line.split_at(line.len() - 10);
        // Most of it, read before the rest is there.
        (&daemon).write_all(first).unwrap();
        match conn.read() {
            Incoming::Messages(m) => assert!(m.is_empty()),
            Incoming::Closed => panic!("a write cut in two closed the connection"),
        }
        (&daemon).write_all(rest).unwrap();
        match conn.read() {
            Incoming::Messages(m) => assert!(matches!(m.as_slice(), [ToShim::Write { .. }])),
            Incoming::Closed => panic!("the write closed the connection"),
        }
    }

    #[test]
    fn a_line_longer_than_any_message_closes_the_connection() {
        let (shim, daemon) = UnixStream::pair().unwrap();
        let mut conn = Conn::new(shim).unwrap();
        let junk = vec![b'x'; MAX_LINE + 1];
        let writer = std::thread::spawn(move || (&daemon).write_all(&junk));
        let mut closed = false;
        for _ in 0..1000 {
            if matches!(conn.read(), Incoming::Closed) {
                closed = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(closed);
        let _ = writer.join();
    }
}
