//! A task's terminal state, from the reason it was aborted (recorded before anything was
//! killed) first and from what its runner returned second: a task stopped by its owner is
//! `cancelled` however its process exits.

use aside_protocol::{Failure, TaskState, Timestamp};

use crate::abort::AbortReason;
use crate::reaper::Exit;
use crate::run::RunOutcome;

pub(super) fn classify(
    reason: Option<AbortReason>,
    outcome: RunOutcome,
    started: Option<Timestamp>,
    now: Timestamp,
) -> TaskState {
    let started_at = started.unwrap_or(now);
    let failed = |failure| TaskState::Failed {
        started_at: Some(started_at),
        ended_at: now,
        failure,
    };
    match reason {
        Some(AbortReason::Cancel(reason)) => TaskState::Cancelled {
            started_at: Some(started_at),
            ended_at: now,
            reason,
        },
        Some(AbortReason::Timeout(t)) => TaskState::TimedOut {
            started_at,
            ended_at: now,
            limit_ms: t.as_millis() as u64,
        },
        Some(AbortReason::OutputCap(limit)) => failed(Failure::OutputCap { limit_bytes: limit }),
        Some(AbortReason::Capture(error)) => failed(Failure::Capture { error }),
        None => match outcome {
            RunOutcome::Exited(Exit::Code(0)) => TaskState::Succeeded {
                started_at,
                ended_at: now,
                exit_code: Some(0),
            },
            RunOutcome::Answered(_) => TaskState::Succeeded {
                started_at,
                ended_at: now,
                exit_code: None,
            },
            RunOutcome::AgentFailed(error) => failed(Failure::Agent { error }),
            RunOutcome::Exited(Exit::Code(exit_code)) => failed(Failure::Exit { exit_code }),
            RunOutcome::Exited(Exit::Signal(signal)) => failed(Failure::Signal { signal }),
            RunOutcome::Failed(error) => failed(Failure::Worker { error }),
            RunOutcome::Lost(reason) => TaskState::Lost {
                started_at: Some(started_at),
                ended_at: now,
                reason,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aside_protocol::CancelReason;

    use super::*;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_unix_ms(ms)
    }

    #[test]
    fn the_abort_reason_wins_over_what_the_process_returned() {
        let stop = CancelReason::UserStop { message: None };
        let s = classify(
            Some(AbortReason::Cancel(stop.clone())),
            RunOutcome::Exited(Exit::Code(0)),
            Some(at(1)),
            at(2),
        );
        assert_eq!(
            s,
            TaskState::Cancelled {
                started_at: Some(at(1)),
                ended_at: at(2),
                reason: stop
            }
        );
        let s = classify(
            Some(AbortReason::Timeout(Duration::from_millis(1500))),
            RunOutcome::Exited(Exit::Signal(15)),
            Some(at(1)),
            at(2),
        );
        assert!(
            matches!(s, TaskState::TimedOut { limit_ms: 1500, .. }),
            "{s:?}"
        );
        let s = classify(
            Some(AbortReason::OutputCap(64)),
            RunOutcome::Exited(Exit::Signal(9)),
            Some(at(1)),
            at(2),
        );
        assert!(matches!(
            s,
            TaskState::Failed {
                failure: Failure::OutputCap { limit_bytes: 64 },
                ..
            }
        ));
        let s = classify(
            Some(AbortReason::Capture("disk".into())),
            RunOutcome::Answered("done".into()),
            None,
            at(2),
        );
        assert!(matches!(
            s,
            TaskState::Failed {
                failure: Failure::Capture { .. },
                ..
            }
        ));
    }

    #[test]
    fn without_a_reason_the_outcome_decides() {
        let ok = classify(None, RunOutcome::Exited(Exit::Code(0)), Some(at(1)), at(2));
        assert_eq!(ok.exit_code(), Some(0));
        assert_eq!(ok.name(), "succeeded");
        let answered = classify(None, RunOutcome::Answered("x".into()), Some(at(1)), at(2));
        assert!(matches!(
            answered,
            TaskState::Succeeded {
                exit_code: None,
                ..
            }
        ));
        let code = classify(None, RunOutcome::Exited(Exit::Code(3)), Some(at(1)), at(2));
        assert_eq!(code.exit_code(), Some(3));
        assert_eq!(code.name(), "failed");
        let sig = classify(
            None,
            RunOutcome::Exited(Exit::Signal(9)),
            Some(at(1)),
            at(2),
        );
        assert!(matches!(
            sig,
            TaskState::Failed {
                failure: Failure::Signal { signal: 9 },
                ..
            }
        ));
        let agent = classify(None, RunOutcome::AgentFailed("401".into()), None, at(2));
        assert_eq!(
            agent.started_at(),
            Some(at(2)),
            "never started: starts when it ends"
        );
        let worker = classify(None, RunOutcome::Failed("panic".into()), Some(at(1)), at(2));
        assert!(matches!(
            worker,
            TaskState::Failed {
                failure: Failure::Worker { .. },
                ..
            }
        ));
    }
}
