//! Supervisors between two tasks. A supervisor whose task is over, told and swept up, is
//! not thrown away: it tells the keeper it is idle, with a socket of its own, and the keeper
//! hands it the next launch. A fork, the copying of the pages it writes and its exit cost
//! more than the task itself for a short command; an idle supervisor skips all three.
//!
//! A supervisor runs one task at a time, so a crash still loses that task alone. Idle ones
//! are few ([`MAX_IDLE`]) and short-lived ([`IDLE_FOR`]): the keeper closes their sockets,
//! and a supervisor whose socket closes exits. When the daemon goes away the keeper exits,
//! and so do the idle supervisors.

use std::collections::VecDeque;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::listen::Listen;
use crate::supervise;

/// Idle supervisors kept at most: enough for the slots of a busy daemon to find one free
/// while the last tasks' ends are still being made durable.
pub const MAX_IDLE: usize = 16;
/// How long an idle supervisor is kept for a next task.
pub const IDLE_FOR: Duration = Duration::from_secs(10);

/// What a socket gave.
pub(crate) enum Received {
    /// A launch of `len` bytes, and the control socket that came with it.
    Launch { len: usize, control: OwnedFd },
    /// A message without a socket.
    NoSocket,
    /// The other end is closed.
    Closed,
}

/// Reads one launch message (with the descriptor it carries) from `from` into `buf`.
pub(crate) fn receive(from: RawFd, buf: &mut [u8], flags: MsgFlags) -> nix::Result<Received> {
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        from,
        &mut iov,
        Some(&mut cmsg),
        flags | MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fd = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for raw in fds {
                // SAFETY: the kernel just gave this process the descriptor; nothing else
                // owns it (a second one is closed when its `OwnedFd` drops).
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                fd.get_or_insert(owned);
            }
        }
    }
    Ok(match (msg.bytes, fd) {
        (0, _) => Received::Closed,
        (len, Some(control)) => Received::Launch { len, control },
        (_, None) => Received::NoSocket,
    })
}

/// Sends `bytes` with `fd` attached.
fn send_with(to: &OwnedFd, bytes: &[u8], fd: RawFd, flags: MsgFlags) -> nix::Result<usize> {
    sendmsg::<()>(
        to.as_raw_fd(),
        &[IoSlice::new(bytes)],
        &[ControlMessage::ScmRights(&[fd])],
        flags | MsgFlags::MSG_NOSIGNAL,
        None,
    )
}

/// The keeper's idle supervisors: the socket each takes its next launch on.
pub(crate) struct Pool {
    idle: VecDeque<(OwnedFd, Instant)>,
    /// How long one is kept ([`IDLE_FOR`]; tests shorten it).
    keep_for: Duration,
}

impl Default for Pool {
    fn default() -> Self {
        Self {
            idle: VecDeque::new(),
            keep_for: IDLE_FOR,
        }
    }
}

impl Pool {
    /// Takes in the supervisors that said they are idle.
    pub fn hear(&mut self, heard: &OwnedFd) {
        let mut byte = [0u8; 1];
        loop {
            match receive(heard.as_raw_fd(), &mut byte, MsgFlags::MSG_DONTWAIT) {
                Ok(Received::Launch { control, .. }) => {
                    if self.idle.len() >= MAX_IDLE {
                        // The longest idle one goes: its socket closes and it exits.
                        self.idle.pop_front();
                    }
                    self.idle.push_back((control, Instant::now()));
                }
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }

    /// Gives the launch to an idle supervisor, the newest first; the control socket back
    /// when none takes it.
    pub fn hand(&mut self, launch: &[u8], control: OwnedFd) -> Result<(), OwnedFd> {
        while let Some((to, at)) = self.idle.pop_back() {
            // The supervisor waits for it: the send does not block (one message, at most as
            // large as what came from the daemon on a socket of the same kind).
            match send_with(&to, launch, control.as_raw_fd(), MsgFlags::empty()) {
                // Its socket is dropped: an idle supervisor takes one launch on it.
                Ok(_) => return Ok(()),
                // Too large for this socket: a new supervisor takes it.
                Err(Errno::EMSGSIZE | Errno::ENOBUFS) => {
                    self.idle.push_back((to, at));
                    break;
                }
                // Gone (killed while idle): passed over.
                Err(_) => {}
            }
        }
        Err(control)
    }

    /// Lets go of the supervisors idle for too long.
    pub fn expire(&mut self) {
        while self
            .idle
            .front()
            .is_some_and(|(_, at)| at.elapsed() >= self.keep_for)
        {
            self.idle.pop_front();
        }
    }

    /// How long until the next one is let go.
    pub fn next_expiry(&self) -> Option<Duration> {
        self.idle.front().map(|(_, at)| {
            self.keep_for
                .saturating_sub(at.elapsed())
                .max(Duration::from_millis(1))
        })
    }

    /// Closes every idle supervisor's socket (in a new supervisor, which holds none).
    pub fn forget(&mut self) {
        self.idle.clear();
    }
}

/// A supervisor that serves one task after another.
pub(crate) struct Idle {
    /// Where it tells the keeper it is idle.
    announce: OwnedFd,
    /// Room for the largest launch.
    buf: Vec<u8>,
    /// Its socket, set aside between two tasks (removed when it goes).
    socket: Option<Listen>,
}

impl Idle {
    pub fn new(announce: OwnedFd, buf: Vec<u8>) -> Self {
        Self {
            announce,
            buf,
            socket: None,
        }
    }

    /// Serves the launch in its buffer's first `len` bytes, then every launch the keeper
    /// hands it while idle; the process's exit code.
    pub fn serve(mut self, mut len: usize, mut control: OwnedFd) -> i32 {
        loop {
            let (code, socket) = supervise::serve(&self.buf[..len], control, self.socket.take());
            self.socket = socket;
            if code != 0 || !childless() {
                return code;
            }
            match self.next() {
                Some((l, c)) => (len, control) = (l, c),
                None => return 0,
            }
        }
    }

    /// Says it is idle and waits for a launch; `None` when the keeper lets it go (or is gone).
    fn next(&mut self) -> Option<(usize, OwnedFd)> {
        let (mine, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .ok()?;
        // Not waited for: a keeper that cannot take it now lets this supervisor go.
        send_with(
            &self.announce,
            &[0],
            theirs.as_raw_fd(),
            MsgFlags::MSG_DONTWAIT,
        )
        .ok()?;
        drop(theirs);
        loop {
            match receive(mine.as_raw_fd(), &mut self.buf, MsgFlags::empty()) {
                Ok(Received::Launch { len, control }) => return Some((len, control)),
                Err(Errno::EINTR) => {}
                Ok(Received::Closed | Received::NoSocket) | Err(_) => return None,
            }
        }
    }
}

/// Nothing the last task started is left (not even a zombie): the supervisor is as it was.
fn childless() -> bool {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Err(Errno::ECHILD) => return true,
            Err(Errno::EINTR) => {}
            // A zombie reaped: look again.
            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => {}
            Ok(_) | Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(kind: SockType) -> (OwnedFd, OwnedFd) {
        socketpair(AddressFamily::Unix, kind, None, SockFlag::SOCK_CLOEXEC).unwrap()
    }

    /// A supervisor saying it is idle: its end of the socket it takes its launch on.
    fn idle(announce: &OwnedFd) -> OwnedFd {
        let (mine, theirs) = pair(SockType::SeqPacket);
        send_with(announce, &[0], theirs.as_raw_fd(), MsgFlags::MSG_DONTWAIT).unwrap();
        mine
    }

    /// What a supervisor's socket gives now, without waiting.
    fn peek(mine: &OwnedFd) -> nix::Result<Received> {
        let mut buf = [0u8; 64];
        receive(mine.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT)
    }

    #[test]
    fn a_full_pool_lets_the_longest_idle_go() {
        let (heard, announce) = pair(SockType::Datagram);
        let mut pool = Pool::default();
        let mine: Vec<OwnedFd> = (0..=MAX_IDLE).map(|_| idle(&announce)).collect();
        pool.hear(&heard);
        assert_eq!(pool.idle.len(), MAX_IDLE);
        assert!(
            matches!(peek(&mine[0]), Ok(Received::Closed)),
            "the first one goes"
        );
        assert_eq!(peek(&mine[1]).err(), Some(Errno::EAGAIN), "the others wait");
    }

    #[test]
    fn a_launch_goes_to_the_newest_live_one() {
        let (heard, announce) = pair(SockType::Datagram);
        let mut pool = Pool::default();
        let older = idle(&announce);
        let newer = idle(&announce);
        let gone = idle(&announce);
        drop(gone);
        pool.hear(&heard);
        let (control, _daemon) = pair(SockType::Stream);
        assert!(pool.hand(b"launch", control).is_ok());
        match peek(&newer) {
            Ok(Received::Launch { len, .. }) => assert_eq!(len, 6),
            _ => panic!("the newest live one takes it"),
        }
        assert_eq!(peek(&older).err(), Some(Errno::EAGAIN));
        // Only the older one is left; then none: the launch comes back.
        assert_eq!(pool.idle.len(), 1);
        drop(older);
        let (control, _daemon) = pair(SockType::Stream);
        assert!(pool.hand(b"launch", control).is_err());
        assert!(pool.idle.is_empty());
    }

    #[test]
    fn idle_ones_are_let_go_in_time() {
        let (heard, announce) = pair(SockType::Datagram);
        let mut pool = Pool {
            keep_for: Duration::from_millis(50),
            ..Pool::default()
        };
        let mine = idle(&announce);
        pool.hear(&heard);
        pool.expire();
        assert_eq!(peek(&mine).err(), Some(Errno::EAGAIN), "kept for now");
        let next = pool.next_expiry().unwrap();
        assert!(next <= Duration::from_millis(50), "{next:?}");
        std::thread::sleep(next);
        pool.expire();
        assert!(matches!(peek(&mine), Ok(Received::Closed)));
        assert_eq!(pool.next_expiry(), None);
    }
}
