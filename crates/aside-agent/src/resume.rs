//! Where an agent's run goes on when its task is resumed (its daemon was killed or
//! restarted while it ran): from its transcript, at the last step boundary. Every message
//! is appended to the transcript as it happens, so its end tells the step that was cut off:
//! a prompt or tool results without a reply (the model request was in flight: it is sent
//! again), a reply whose tool calls lack results (they are finished; `bash` and `task` find
//! the task they started instead of starting another), or a final answer (it is the answer).

use aside_core::Launch;
use aside_protocol::AgentProgress;

use crate::model::{Message, ToolCall};
use crate::transcript::{Transcript, TranscriptError};

/// What a run does next.
#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    /// Send the model request.
    Request,
    /// Run the tool calls of reply number `turn`, then send the next request. `resumed`: the
    /// previous run had started them.
    Calls {
        calls: Vec<ToolCall>,
        turn: usize,
        resumed: bool,
    },
    /// The last reply was the final answer.
    Answer(String),
}

/// The conversation and the step to go on from, when `task` resumes one the daemon's end
/// cut off; `None` when there is nothing to resume (a new run, or one cut off before it
/// wrote its prompt), to start as usual.
pub(crate) fn load(
    task: &Launch,
    transcript: &Transcript,
    prompt: &str,
) -> Result<Option<(Vec<Message>, Step)>, TranscriptError> {
    if !task.resumed || !transcript.path.exists() {
        return Ok(None);
    }
    let (messages, pending) = transcript.load_resumable()?;
    let progressed = task.record.progress.is_some();
    if !prompt_written(&messages, prompt, progressed) {
        return Ok(None);
    }
    let step = resume_point(&messages, pending);
    Ok(Some((messages, step)))
}

/// How many replies of the model `messages` hold: the number of the last one. Counted the
/// same way before and after a resume (interrupted calls get results, never replies).
pub(crate) fn replies(messages: &[Message]) -> usize {
    messages
        .iter()
        .filter(|m| matches!(m, Message::Assistant { .. }))
        .count()
}

/// Whether the run being resumed wrote its prompt: certainly once it made progress (that is
/// recorded after the prompt is written); before, only if the transcript ends with it.
pub(crate) fn prompt_written(messages: &[Message], prompt: &str, progressed: bool) -> bool {
    progressed || matches!(messages.last(), Some(Message::User { content }) if content == prompt)
}

/// Where a resumed run goes on; `pending` are the calls of the last reply without a result.
pub(crate) fn resume_point(messages: &[Message], pending: Vec<ToolCall>) -> Step {
    if !pending.is_empty() {
        return Step::Calls {
            calls: pending,
            turn: replies(messages),
            resumed: true,
        };
    }
    match messages.last() {
        Some(Message::Assistant {
            content,
            tool_calls,
        }) if tool_calls.is_empty() => Step::Answer(content.clone().unwrap_or_default()),
        _ => Step::Request,
    }
}

/// The progress a resumed run goes on from: the previous run's. A request it counted as a
/// turn and never got the reply of is sent again, and counted then.
pub(crate) fn progress_from(previous: Option<AgentProgress>, step: &Step) -> AgentProgress {
    let mut p = previous.unwrap_or_default();
    if *step == Step::Request {
        p.turns = p.turns.saturating_sub(1);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FunctionCall;

    fn call(id: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            kind: "function".into(),
            function: FunctionCall {
                name: "bash".into(),
                arguments: "{}".into(),
            },
        }
    }

    fn user(s: &str) -> Message {
        Message::User { content: s.into() }
    }

    fn reply(text: Option<&str>, calls: Vec<ToolCall>) -> Message {
        Message::Assistant {
            content: text.map(str::to_string),
            tool_calls: calls,
        }
    }

    #[test]
    fn a_run_goes_on_from_the_step_that_was_cut_off() {
        let prompt = vec![user("go")];
        assert_eq!(resume_point(&prompt, vec![]), Step::Request);
        let results = vec![
            user("go"),
            reply(None, vec![call("a")]),
            Message::Tool {
                tool_call_id: "a".into(),
                content: "done".into(),
            },
        ];
        assert_eq!(resume_point(&results, vec![]), Step::Request);
        let pending = vec![user("go"), reply(None, vec![call("a"), call("b")])];
        assert_eq!(
            resume_point(&pending, vec![call("b")]),
            Step::Calls {
                calls: vec![call("b")],
                turn: 1,
                resumed: true
            }
        );
        let answered = vec![user("go"), reply(Some("42"), vec![])];
        assert_eq!(resume_point(&answered, vec![]), Step::Answer("42".into()));
    }

    #[test]
    fn a_prompt_is_written_once() {
        let before = vec![reply(Some("an earlier answer"), vec![])];
        assert!(!prompt_written(&before, "go", false));
        assert!(prompt_written(&[user("go")], "go", false));
        assert!(prompt_written(&before, "go", true));
    }

    #[test]
    fn a_request_sent_again_is_one_turn() {
        let p = AgentProgress {
            turns: 3,
            ..AgentProgress::default()
        };
        assert_eq!(progress_from(Some(p.clone()), &Step::Request).turns, 2);
        assert_eq!(
            progress_from(Some(p), &Step::Answer(String::new())).turns,
            3
        );
        assert_eq!(progress_from(None, &Step::Request).turns, 0);
    }
}
