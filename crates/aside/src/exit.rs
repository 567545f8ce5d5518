//! Exit codes, after the shell's conventions.

use aside_protocol::{Failure, TaskState};

pub const TIMED_OUT: i32 = 124;
pub const ASIDE_FAILED: i32 = 125;
pub const CANNOT_EXECUTE: i32 = 126;
pub const NOT_FOUND: i32 = 127;
pub const CANCELLED: i32 = 130;
pub const STILL_RUNNING: i32 = 148;

/// The exit code that stands for a task's state.
pub fn for_state(state: &TaskState) -> i32 {
    match state {
        TaskState::Queued | TaskState::Running { .. } => STILL_RUNNING,
        TaskState::Succeeded { .. } => 0,
        TaskState::Failed { failure, .. } => match failure {
            Failure::Exit { exit_code } => *exit_code,
            Failure::Signal { signal } => 128 + signal,
            Failure::Spawn {
                not_found: true, ..
            } => NOT_FOUND,
            Failure::Spawn { .. } => CANNOT_EXECUTE,
            Failure::Capture { .. }
            | Failure::OutputCap { .. }
            | Failure::Worker { .. }
            | Failure::Agent { .. }
            | Failure::Dependency { .. } => 1,
        },
        TaskState::Cancelled { .. } => CANCELLED,
        TaskState::TimedOut { .. } => TIMED_OUT,
        TaskState::Lost { .. } => ASIDE_FAILED,
    }
}
