//! One line from a supervisor's socket, read before the connection is handed to the runtime
//! (a supervisor's answer to its launch, or its hello to a new daemon): by a deadline, and
//! not a byte more than the line.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{recv, MsgFlags};

/// Reads from a socket until a deadline, however the bytes come: the socket's timeout is
/// lowered as the deadline nears (not at every byte: one system call per halving).
pub(super) struct By<'a> {
    stream: &'a UnixStream,
    deadline: std::time::Instant,
    /// The timeout the socket has now.
    set: Option<Duration>,
}

impl<'a> By<'a> {
    pub(super) fn new(stream: &'a UnixStream, within: Duration) -> Self {
        Self {
            stream,
            deadline: std::time::Instant::now() + within,
            set: None,
        }
    }
}

impl By<'_> {
    /// Lowers the socket's timeout to what is left (not at every call: once per halving).
    fn arm(&mut self) -> std::io::Result<()> {
        let left = self
            .deadline
            .saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        if self.set.is_none_or(|set| left < set / 2) {
            self.stream.set_read_timeout(Some(left))?;
            self.set = Some(left);
        }
        Ok(())
    }

    /// One line, its newline included (empty at the end of the stream), and not a byte
    /// more: what follows is left in the socket. It looks before it takes (`MSG_PEEK`), so
    /// a line costs two system calls, not one per byte.
    pub(super) fn line(mut self, max: usize) -> std::io::Result<Vec<u8>> {
        let mut line = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            self.arm()?;
            let seen = match recv(self.stream.as_raw_fd(), &mut buf, MsgFlags::MSG_PEEK) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Err(std::io::ErrorKind::TimedOut.into()),
                Err(e) => return Err(e.into()),
            };
            if seen == 0 {
                return Ok(line);
            }
            let take = buf[..seen]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(seen, |i| i + 1);
            // What was seen is there: this takes it without waiting.
            let mut stream = self.stream;
            let got = stream.read(&mut buf[..take])?;
            line.extend_from_slice(&buf[..got]);
            if line.last() == Some(&b'\n') {
                return Ok(line);
            }
            if line.len() >= max {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "a line too long",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn reading_a_line_leaves_the_next_one_unread() {
        let (a, b) = UnixStream::pair().unwrap();
        (&a).write_all(b"{\"a\":1}\n{\"b\":2}\n").unwrap();
        let first = By::new(&b, Duration::from_secs(5)).line(100).unwrap();
        assert_eq!(first, b"{\"a\":1}\n");
        let mut rest = [0u8; 8];
        (&b).read_exact(&mut rest).unwrap();
        assert_eq!(&rest, b"{\"b\":2}\n");
    }

    #[test]
    fn a_line_may_come_in_pieces_and_ends_with_the_stream() {
        let (a, b) = UnixStream::pair().unwrap();
        let writer = std::thread::spawn(move || {
            (&a).write_all(b"{\"a\":").unwrap();
            std::thread::sleep(Duration::from_millis(50));
            (&a).write_all(b"1}\nnext").unwrap();
            drop(a);
        });
        let first = By::new(&b, Duration::from_secs(5)).line(100).unwrap();
        assert_eq!(first, b"{\"a\":1}\n");
        writer.join().unwrap();
        // Without a newline the stream's end ends the line.
        assert_eq!(
            By::new(&b, Duration::from_secs(5)).line(100).unwrap(),
            b"next"
        );
        assert_eq!(By::new(&b, Duration::from_secs(5)).line(100).unwrap(), b"");
    }

    #[test]
    fn a_line_too_long_or_too_slow_is_an_error() {
        let (a, b) = UnixStream::pair().unwrap();
        (&a).write_all(b"0123456789").unwrap();
        let e = By::new(&b, Duration::from_secs(5)).line(4).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        let (_a, b) = UnixStream::pair().unwrap();
        let e = By::new(&b, Duration::from_millis(50)).line(4).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    }
}
