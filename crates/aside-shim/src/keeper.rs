//! The keeper: a fork server for supervisors. The daemon starts one (`aside-shim keeper`)
//! and, when no supervisor is idle (see [`crate::idle`]), hands it a task as one message on
//! a sequenced-packet socket: the launch, with the supervisor's end of its control socket
//! attached. The keeper forks a new supervisor for it. A fork of this small process shares
//! every page it does not write with the keeper and its siblings, so a supervisor costs a
//! few pages of its own instead of a whole program's start (dynamic linking, relocations):
//! less memory per running task, and a faster start.
//!
//! The keeper holds no task: when the daemon goes away it exits, and the supervisors it
//! forked run on. The next daemon starts a keeper of its own.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::unistd::{fork, ForkResult};

use crate::conn::Conn;
use crate::idle::Idle;
use crate::supervise;

/// The largest launch message (the task's environment travels in it).
pub const MAX_LAUNCH: usize = 1 << 20;

/// What the daemon's socket gave.
enum Received {
    /// A launch of `len` bytes, and the control socket that came with it.
    Launch { len: usize, control: OwnedFd },
    /// A message without a socket.
    NoSocket,
    /// The daemon is gone.
    Closed,
}

/// Serves the daemon on stdin until it goes away; the process's exit code.
pub fn run() -> i32 {
    // Supervisors are reaped by the kernel as they exit: the keeper never waits for one.
    // SAFETY: setting a disposition to SIG_IGN installs no handler code.
    if let Err(e) = unsafe { signal(Signal::SIGCHLD, SigHandler::SigIgn) } {
        supervise::say(&format!("aside-shim keeper: {e}"));
        return 1;
    }
    let daemon: RawFd = 0;
    let mut buf = vec![0u8; MAX_LAUNCH];
    loop {
        let (len, control) = match receive(daemon, &mut buf) {
            Ok(Received::Launch { len, control }) => (len, control),
            Ok(Received::Closed) => return 0,
            Ok(Received::NoSocket) => {
                supervise::say("aside-shim keeper: a launch without its control socket");
                continue;
            }
            Err(Errno::EINTR | Errno::EAGAIN) => continue,
            Err(e) => {
                supervise::say(&format!("aside-shim keeper: {e}"));
                return 1;
            }
        };
        start(daemon, &mut buf, len, control);
    }
}

/// Reads one launch message (with the descriptor it carries) from `from` into `buf`.
fn receive(from: RawFd, buf: &mut [u8]) -> nix::Result<Received> {
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(from, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)?;
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

/// Forks a new supervisor for the launch in `buf[..len]`.
fn start(daemon: RawFd, buf: &mut Vec<u8>, len: usize, control: OwnedFd) {
    // SAFETY: the keeper has one thread, so the child starts in a consistent state.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // The daemon's socket is the keeper's, not the supervisor's.
            if let Ok(null) = std::fs::File::open("/dev/null") {
                // SAFETY: dup2 on two descriptors this process holds; fd 0 is replaced.
                unsafe { libc::dup2(null.as_raw_fd(), daemon) };
            }
            // SAFETY: back to the default disposition: a supervisor waits for its children.
            let _ = unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) };
            let code = match Conn::new(UnixStream::from(control)) {
                Ok(conn) => Idle::new(std::mem::take(buf)).serve(len, conn),
                Err(e) => {
                    supervise::say(&format!("aside-shim: {e}"));
                    1
                }
            };
            std::process::exit(code);
        }
        Ok(ForkResult::Parent { .. }) => drop(control),
        Err(e) => {
            // The daemon hears of it as a supervisor that never answered.
            supervise::say(&format!("aside-shim keeper: fork: {e}"));
            drop(control);
        }
    }
}
