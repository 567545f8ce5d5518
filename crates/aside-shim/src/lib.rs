//! `aside-shim`: the supervisor of one running task.
//!
//! The engine hands each shell task (see [`wire::Launch`]) to a supervisor that is idle
//! between two tasks (see [`idle`]), or has its keeper (see [`keeper`]) fork a new one for
//! it. A supervisor runs one task at a time. It starts the task's first process in a process
//! group (and cgroup) of its own, is the subreaper of the whole tree, writes the output to
//! the task's log, stops the task at the output cap, and records how it ended. None of that needs a daemon: when the daemon goes
//! away the task runs on, and the supervisor waits on its socket in the state directory for
//! the next one to adopt it. A task that ends while no daemon is there leaves its end in the
//! status file, for the next daemon to record.
//!
//! It is small on purpose (one thread, `poll`, no async runtime): one runs beside every
//! running task.

mod conn;
mod env;
pub mod idle;
mod input;
pub mod keeper;
pub mod listen;
mod log;
mod spawn;
mod supervise;
mod tree;
pub mod wire;

/// `aside-shim keeper`, as the daemon starts it; the process's exit code.
pub fn main() -> i32 {
    match std::env::args().nth(1).as_deref() {
        Some("keeper") => keeper::run(),
        _ => {
            eprintln!(
                "aside-shim: started by the aside daemon (as `aside-shim keeper`), not by hand"
            );
            2
        }
    }
}
