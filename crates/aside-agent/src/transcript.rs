//! A session's conversation, kept as one JSON line per message in
//! `sessions/<session>.jsonl`, so a later task can resume it.

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use crate::model::{Message, ToolCall};

/// A transcript that cannot be read, so its conversation cannot be resumed.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub(crate) struct TranscriptError {
    path: PathBuf,
    #[source]
    source: io::Error,
}

/// Appends a session's messages to its JSONL file.
pub(crate) struct Transcript {
    pub(crate) path: PathBuf,
}

impl Transcript {
    pub(crate) fn path(home: &Path, session: &str) -> PathBuf {
        home.join("sessions").join(format!("{session}.jsonl"))
    }

    pub(crate) fn load(&self) -> Result<Vec<Message>, TranscriptError> {
        let (mut messages, open) = answer_dangling_calls(self.read()?);
        interrupted(open, &mut messages);
        Ok(messages)
    }

    /// The conversation of a run that was cut off, and the tool calls of its last message
    /// that have no result yet (to be finished, not answered as interrupted).
    pub(crate) fn load_resumable(&self) -> Result<(Vec<Message>, Vec<ToolCall>), TranscriptError> {
        let (messages, open) = answer_dangling_calls(self.read()?);
        let pending = match messages
            .iter()
            .rev()
            .find(|m| matches!(m, Message::Assistant { .. }))
        {
            Some(Message::Assistant { tool_calls, .. }) => tool_calls
                .iter()
                .filter(|c| open.contains(&c.id))
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        Ok((messages, pending))
    }

    fn read(&self) -> Result<Vec<Message>, TranscriptError> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| TranscriptError {
            path: self.path.clone(),
            source,
        })?;
        // A line cut short by a crash is skipped; every whole message is kept.
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    pub(crate) async fn append(&self, m: &Message) {
        let Ok(mut line) = serde_json::to_vec(m) else {
            return;
        };
        line.push(b'\n');
        let res = async {
            if let Some(dir) = self.path.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            let mut f = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .await?;
            f.write_all(&line).await?;
            // tokio's file writes finish in the background; without this the next message
            // could land first.
            f.flush().await
        }
        .await;
        if let Err(e) = res {
            tracing::warn!("cannot write {}: {e}", self.path.display());
        }
    }
}

/// A conversation stopped while its tools ran has tool calls without results, which servers
/// refuse; each gets a result saying it was interrupted, right after its call. Those of the
/// last message are returned instead, still open.
fn answer_dangling_calls(messages: Vec<Message>) -> (Vec<Message>, Vec<String>) {
    let mut out = Vec::with_capacity(messages.len());
    let mut open: Vec<String> = Vec::new();
    for m in messages {
        match &m {
            Message::Tool { tool_call_id, .. } => open.retain(|id| id != tool_call_id),
            _ => interrupted(std::mem::take(&mut open), &mut out),
        }
        if let Message::Assistant { tool_calls, .. } = &m {
            open = tool_calls.iter().map(|c| c.id.clone()).collect();
        }
        out.push(m);
    }
    (out, open)
}

/// Answers the calls `open` as interrupted.
fn interrupted(open: Vec<String>, out: &mut Vec<Message>) {
    for id in open {
        out.push(Message::Tool {
            tool_call_id: id,
            content: "the tool call was interrupted: the agent was stopped".into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupted_tool_calls_get_a_result_on_resume() {
        use crate::model::{FunctionCall, ToolCall};
        let call = |id: &str| ToolCall {
            id: id.into(),
            kind: "function".into(),
            function: FunctionCall {
                name: "bash".into(),
                arguments: "{}".into(),
            },
        };
        let (mut fixed, open) = answer_dangling_calls(vec![
            Message::User {
                content: "go".into(),
            },
            Message::Assistant {
                content: None,
                tool_calls: vec![call("a"), call("b")],
            },
            Message::Tool {
                tool_call_id: "a".into(),
                content: "done".into(),
            },
            Message::User {
                content: "again".into(),
            },
        ]);
        assert!(open.is_empty(), "{open:?}");
        interrupted(open, &mut fixed);
        let ids: Vec<String> = fixed
            .iter()
            .filter_map(|m| match m {
                Message::Tool { tool_call_id, .. } => Some(tool_call_id.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(matches!(fixed.last(), Some(Message::User { .. })));
        assert_eq!(fixed.len(), 5);
    }
}
