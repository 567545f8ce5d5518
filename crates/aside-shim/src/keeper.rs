//! The keeper: a fork server for supervisors. The daemon starts one (`aside-shim keeper`)
//! and hands it each task as one message on a sequenced-packet socket: the launch, with the
//! supervisor's end of its control socket attached. The keeper gives it to an idle
//! supervisor (see [`crate::idle`]) or forks a new one. A fork of this small process shares
//! every page it does not write with the keeper and its siblings, so a supervisor costs a
//! few pages of its own instead of a whole program's start (dynamic linking, relocations):
//! less memory per running task, and a faster start.
//!
//! The keeper holds no task: when the daemon goes away it exits, and the supervisors it
//! forked run on (idle ones exit with it). The next daemon starts a keeper of its own.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::sys::socket::{socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use nix::unistd::{fork, ForkResult};

use crate::idle::{self, Idle, Received};
use crate::supervise;

/// The largest launch message (the task's environment travels in it).
pub const MAX_LAUNCH: usize = 1 << 20;

/// Serves the daemon on stdin until it goes away; the process's exit code.
pub fn run() -> i32 {
    // Supervisors are reaped by the kernel as they exit: the keeper never waits for one.
    // SAFETY: setting a disposition to SIG_IGN installs no handler code.
    if let Err(e) = unsafe { signal(Signal::SIGCHLD, SigHandler::SigIgn) } {
        supervise::say(&format!("aside-shim keeper: {e}"));
        return 1;
    }
    // Supervisors whose task is over say so on `announce` (theirs), with a socket to send
    // them the next launch on; the keeper reads them on `heard`.
    let (heard, announce) = match socketpair(
        AddressFamily::Unix,
        SockType::Datagram,
        None,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
    ) {
        Ok(pair) => pair,
        Err(e) => {
            supervise::say(&format!("aside-shim keeper: {e}"));
            return 1;
        }
    };
    let daemon: RawFd = 0;
    let mut buf = vec![0u8; MAX_LAUNCH];
    let mut pool = idle::Pool::default();
    loop {
        let timeout = pool.next_expiry().map_or(PollTimeout::NONE, |d| {
            PollTimeout::try_from(d).unwrap_or(PollTimeout::MAX)
        });
        let (from_daemon, from_idle) = {
            // SAFETY: fd 0 is the daemon's socket for the keeper's whole life.
            let stdin = unsafe { std::os::fd::BorrowedFd::borrow_raw(daemon) };
            let mut fds = [
                PollFd::new(stdin, PollFlags::POLLIN),
                PollFd::new(heard.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    supervise::say(&format!("aside-shim keeper: poll: {e}"));
                    return 1;
                }
            }
            let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
            (ready(0), ready(1))
        };
        if from_idle {
            pool.hear(&heard);
        }
        pool.expire();
        if !from_daemon {
            continue;
        }
        let (len, control) = match idle::receive(daemon, &mut buf, MsgFlags::empty()) {
            Ok(Received::Launch { len, control }) => (len, control),
            // The daemon went away.
            Ok(Received::Closed) => return 0,
            Ok(Received::NoSocket) => {
                supervise::say("aside-shim keeper: a launch without its control socket");
                continue;
            }
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            Err(e) => {
                supervise::say(&format!("aside-shim keeper: {e}"));
                return 1;
            }
        };
        let launch = &buf[..len];
        // An idle supervisor takes it; the newest first (its pages are the warmest).
        let control = match pool.hand(launch, control) {
            Ok(()) => continue,
            Err(control) => control,
        };
        start(daemon, &heard, &announce, &mut pool, &mut buf, len, control);
    }
}

/// Forks a new supervisor for the launch in `buf[..len]`.
fn start(
    daemon: RawFd,
    heard: &OwnedFd,
    announce: &OwnedFd,
    pool: &mut idle::Pool,
    buf: &mut Vec<u8>,
    len: usize,
    control: OwnedFd,
) {
    // SAFETY: the keeper has one thread, so the child starts in a consistent state.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // The daemon's socket, the idle supervisors' sockets and the keeper's end of the
            // announcements are the keeper's, not the supervisor's.
            if let Ok(null) = std::fs::File::open("/dev/null") {
                // SAFETY: dup2 on two descriptors this process holds; fd 0 is replaced.
                unsafe { libc::dup2(null.as_raw_fd(), daemon) };
            }
            pool.forget();
            // SAFETY: the child never returns to the keeper's loop (it exits below), so the
            // keeper's owners of these two descriptors never drop here: closing `heard` and
            // taking over `announce` leaves each with one owner.
            let announce = unsafe {
                libc::close(heard.as_raw_fd());
                OwnedFd::from_raw_fd(announce.as_raw_fd())
            };
            // SAFETY: back to the default disposition: a supervisor waits for its children.
            let _ = unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) };
            std::process::exit(Idle::new(announce, std::mem::take(buf)).serve(len, control));
        }
        Ok(ForkResult::Parent { .. }) => drop(control),
        Err(e) => {
            // The daemon hears of it as a supervisor that never answered.
            supervise::say(&format!("aside-shim keeper: fork: {e}"));
            drop(control);
        }
    }
}
