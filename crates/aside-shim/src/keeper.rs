//! The keeper: a fork server for supervisors. The daemon starts one (`aside-shim keeper`)
//! and hands it each task as one message on a sequenced-packet socket: the launch, with the
//! supervisor's end of its control socket attached. The keeper forks; the child becomes
//! that task's supervisor. A fork of this small process shares every page it does not write
//! with the keeper and its siblings, so a supervisor costs a few pages of its own instead
//! of a whole program's start (dynamic linking, relocations): less memory per running task,
//! and a faster start.
//!
//! The keeper holds no task: when the daemon goes away it exits, and the supervisors it
//! forked run on. The next daemon starts a keeper of its own.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::signal::{signal, SigHandler, Signal};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::unistd::{fork, ForkResult};

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
    let daemon: RawFd = 0;
    let mut buf = vec![0u8; MAX_LAUNCH];
    loop {
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let (len, fd) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = match recvmsg::<()>(
                daemon,
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) => m,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    supervise::say(&format!("aside-shim keeper: {e}"));
                    return 1;
                }
            };
            let mut fd = None;
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    if let ControlMessageOwned::ScmRights(fds) = c {
                        for raw in fds {
                            // SAFETY: the kernel just gave this process the descriptor; nothing
                            // else owns it.
                            let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                            if fd.is_none() {
                                fd = Some(owned);
                            }
                        }
                    }
                }
            }
            (msg.bytes, fd)
        };
        if len == 0 {
            // The daemon went away.
            return 0;
        }
        let Some(control) = fd else {
            supervise::say("aside-shim keeper: a launch without its control socket");
            continue;
        };
        // SAFETY: the keeper has one thread, so the child starts in a consistent state.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                // The daemon's socket is the keeper's, not the supervisor's: /dev/null instead.
                if let Ok(null) = std::fs::File::open("/dev/null") {
                    // SAFETY: dup2 on two descriptors this process holds; fd 0 is replaced.
                    unsafe { libc::dup2(null.as_raw_fd(), daemon) };
                }
                // SAFETY: back to the default disposition: a supervisor waits for its children.
                let _ = unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) };
                let launch = buf[..len].to_vec();
                drop(buf);
                std::process::exit(supervise::serve(&launch, control));
            }
            Ok(ForkResult::Parent { .. }) => drop(control),
            Err(e) => {
                // The daemon hears of it as a supervisor that never answered.
                supervise::say(&format!("aside-shim keeper: fork: {e}"));
                drop(control);
            }
        }
    }
}
