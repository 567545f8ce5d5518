//! Supervisors between two tasks. A supervisor whose task is over, told and swept up, is
//! not thrown away: its end said it is `reusable` (nothing of the task is left), and once
//! the daemon has acknowledged that end it may send the next launch on that same
//! connection. A fork, the copying of the pages it writes and its exit cost more than the
//! task itself for a short command; an idle supervisor skips all three, and the launch goes
//! from the daemon to it with no process in between.
//!
//! A supervisor runs one task at a time, so a crash still loses that task alone. Idle ones
//! are few (the daemon keeps at most [`MAX_IDLE`]) and short-lived: after [`IDLE_FOR`]
//! without a launch a supervisor closes its side for reading (a launch sent after that
//! fails at the daemon, which then uses another), serves a launch that came before, or
//! exits. One whose daemon goes away exits at once.

use std::io::{ErrorKind, Read};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::conn::Conn;
use crate::env::BaseEnv;
use crate::listen::Listen;
use crate::supervise;
use crate::tree::childless;

/// Idle supervisors a daemon keeps at most: enough for the slots of a busy daemon to find one
/// free while the last tasks' ends are still being made durable.
pub const MAX_IDLE: usize = 16;
/// How long an idle supervisor waits for a next task.
pub const IDLE_FOR: Duration = Duration::from_secs(10);

/// A supervisor that serves one task after another.
pub(crate) struct Idle {
    /// Room for the largest launch.
    buf: Vec<u8>,
    /// Its socket, kept between two tasks under the last one's name (removed when it goes).
    socket: Option<Listen>,
    /// Its cgroup, kept between two tasks.
    group: Option<Group>,
    /// The environment its tasks start from, until a launch gives another.
    base: Option<BaseEnv>,
}

/// A supervisor's cgroup: its tasks start there one after another, and it is removed when
/// the supervisor goes (or is given another). It is empty between two tasks: a supervisor
/// serves another task only once nothing of the last one is left (`childless`), and it is
/// the subreaper of everything in the group.
struct Group(String);

impl Drop for Group {
    fn drop(&mut self) {
        // Refused while a process is left in it: the next daemon removes it then.
        let _ = std::fs::remove_dir(&self.0);
    }
}

impl Idle {
    pub fn new(buf: Vec<u8>) -> Self {
        Self {
            buf,
            socket: None,
            group: None,
            base: None,
        }
    }

    /// Serves the launch in its buffer's first `len` bytes, then every launch the daemon
    /// sends it while idle; the process's exit code. Its group goes with it.
    pub fn serve(mut self, mut len: usize, mut conn: Conn) -> i32 {
        loop {
            let served =
                supervise::serve(&self.buf[..len], conn, self.socket.take(), &mut self.base);
            // A group the launch did not name again (the daemon gave it another) goes.
            if self.group.as_ref().map(|g| &g.0) != served.group.as_ref() {
                self.group = served.group.map(Group);
            }
            self.socket = served.socket;
            // One whose end did not say it can serve another task gets none: it goes (the
            // daemon lets go of its connection too).
            if served.code != 0 || !served.reusable || !childless() {
                return served.code;
            }
            // Told its end to no daemon (it went to the status file): nobody to serve.
            let Some(kept) = served.conn else { return 0 };
            match next_launch(kept, &mut self.buf, IDLE_FOR) {
                Some((l, c)) => (len, conn) = (l, c),
                None => return 0,
            }
        }
    }
}

/// Waits up to `wait` for a launch on `conn`: its length in `buf` (the newline left out)
/// and the connection. `None` when the daemon goes, sends something else, or sends nothing
/// in time.
fn next_launch(mut conn: Conn, buf: &mut [u8], wait: Duration) -> Option<(usize, Conn)> {
    let mut len = conn.take_unread(buf)?;
    let deadline = Instant::now() + wait;
    loop {
        if let Some(nl) = buf[..len].iter().position(|b| *b == b'\n') {
            // What came after the launch is the daemon's next message.
            conn.put_back(&buf[nl + 1..len]);
            return Some((nl, conn));
        }
        if len == buf.len() {
            return None;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // No launch may come after this (the daemon's send fails); one that is here
            // already is served.
            let _ = conn.stream.shutdown(Shutdown::Read);
            while len < buf.len() {
                match conn.stream.read(&mut buf[len..]) {
                    Ok(0) => break,
                    Ok(n) => len += n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let nl = buf[..len].iter().position(|b| *b == b'\n')?;
            conn.put_back(&buf[nl + 1..len]);
            return Some((nl, conn));
        }
        let timeout =
            PollTimeout::try_from(left.max(Duration::from_millis(1))).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(conn.stream.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return None,
        }
        match conn.stream.read(&mut buf[len..]) {
            Ok(0) => return None,
            Ok(n) => len += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    use super::*;

    /// A supervisor's connection and the daemon's end of it.
    fn pair() -> (Conn, UnixStream) {
        let (shim, daemon) = UnixStream::pair().unwrap();
        (Conn::new(shim).unwrap(), daemon)
    }

    #[test]
    fn an_idle_supervisor_takes_the_launch_sent_on_its_connection() {
        let (conn, daemon) = pair();
        let sender = std::thread::spawn(move || {
            // In two pieces, the second after a pause.
            (&daemon).write_all(b"{\"task\":").unwrap();
            std::thread::sleep(Duration::from_millis(30));
            (&daemon).write_all(b"7}\n").unwrap();
            daemon
        });
        let mut buf = vec![0u8; 1024];
        let (len, _conn) = next_launch(conn, &mut buf, Duration::from_secs(5)).unwrap();
        assert_eq!(&buf[..len], b"{\"task\":7}");
        drop(sender.join().unwrap());
    }

    #[test]
    fn a_message_right_behind_the_launch_is_kept_for_the_supervisor() {
        let (conn, daemon) = pair();
        (&daemon)
            .write_all(b"{\"task\":9}\n{\"type\":\"ack\"}\n")
            .unwrap();
        let mut buf = vec![0u8; 1024];
        let (len, mut conn) = next_launch(conn, &mut buf, Duration::from_secs(5)).unwrap();
        assert_eq!(&buf[..len], b"{\"task\":9}");
        match conn.read() {
            crate::conn::Incoming::Messages(m) => {
                assert!(matches!(m.as_slice(), [crate::wire::ToShim::Ack]))
            }
            crate::conn::Incoming::Closed => panic!("closed"),
        }
    }

    #[test]
    fn an_idle_supervisor_goes_with_its_daemon() {
        let (conn, daemon) = pair();
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            drop(daemon);
        });
        let mut buf = vec![0u8; 1024];
        assert!(next_launch(conn, &mut buf, Duration::from_secs(5)).is_none());
        closer.join().unwrap();
    }

    #[test]
    fn a_launch_sent_after_the_wait_fails_at_the_daemon() {
        let (conn, daemon) = pair();
        let mut buf = vec![0u8; 1024];
        assert!(next_launch(conn, &mut buf, Duration::from_millis(20)).is_none());
        let sent = nix::sys::socket::send(
            std::os::fd::AsRawFd::as_raw_fd(&daemon),
            b"{}\n",
            nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
        );
        assert_eq!(
            sent,
            Err(Errno::EPIPE),
            "the daemon learns it was not taken"
        );
    }

    #[test]
    fn a_launch_that_came_before_the_wait_ended_is_served() {
        let (conn, daemon) = pair();
        // Sent before the supervisor even looks: it is in the socket when the wait ends.
        (&daemon).write_all(b"{\"task\":8}\n").unwrap();
        let mut buf = vec![0u8; 1024];
        let (len, _conn) = next_launch(conn, &mut buf, Duration::ZERO).unwrap();
        assert_eq!(&buf[..len], b"{\"task\":8}");
    }

    #[test]
    fn a_launch_too_large_for_the_buffer_is_not_served() {
        let (conn, daemon) = pair();
        (&daemon).write_all(&[b'x'; 64]).unwrap();
        let mut buf = vec![0u8; 32];
        assert!(next_launch(conn, &mut buf, Duration::from_secs(5)).is_none());
    }
}
