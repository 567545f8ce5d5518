//! A client for the OpenAI-compatible Chat Completions API, streaming, with tool calls.
//!
//! Lenient about what compatible servers omit or add: unknown fields are ignored, a server
//! that answers a streaming request with one JSON body is understood, usage may be missing.
//! 429 and 5xx are retried with backoff, honouring `Retry-After`; 401, 403 and 404 fail at
//! once with a message that says what to fix. The SSE framing is parsed here (a few lines)
//! rather than through a crate: only `data:` lines matter for this API.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One message of a conversation, in the wire's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    System {
        content: String,
    },
    User {
        content: String,
    },
    Assistant {
        #[serde(default)]
        content: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    Tool {
        tool_call_id: String,
        content: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionCall,
}

fn function_type() -> String {
    "function".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    /// JSON text, as the model wrote it (it may not be valid JSON).
    #[serde(default)]
    pub arguments: String,
}

/// A tool as the model sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

/// Where to send requests.
#[derive(Clone)]
pub struct Endpoint {
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
}

impl std::fmt::Debug for Endpoint {
    // The key never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

/// What the model answered.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub tokens: u64,
    pub finish_reason: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "the model server at {url} refused the request ({status}): {message}; check the API key"
    )]
    Auth {
        url: String,
        status: u16,
        message: String,
    },
    #[error("the model server at {url} does not know model {model:?} ({status}): {message}")]
    NoSuchModel {
        url: String,
        model: String,
        status: u16,
        message: String,
    },
    #[error("the model server at {url} answered {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("cannot reach the model server at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("the model's response was cut off: {0}")]
    Truncated(String),
    #[error("the model's response could not be read: {0}")]
    Malformed(String),
    #[error("the model returned no choices")]
    NoChoices,
    #[error("cannot set up the HTTP client: {0}")]
    Setup(#[source] reqwest::Error),
}

impl ModelError {
    fn retryable(&self) -> bool {
        match self {
            ModelError::Status { status, .. } => *status == 429 || *status >= 500,
            ModelError::Connect { .. } | ModelError::Truncated(_) => true,
            _ => false,
        }
    }
}

/// The HTTP client; one per runtime, shared by every agent.
#[derive(Clone)]
pub struct ModelClient {
    http: reqwest::Client,
}

impl ModelClient {
    pub fn new() -> Result<Self, ModelError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .build()
            .map_err(ModelError::Setup)?;
        Ok(Self { http })
    }

    /// Sends the conversation and streams the answer; `on_text` sees text as it arrives.
    /// Retries 429, 5xx and broken connections up to `retries` times.
    pub async fn complete(
        &self,
        endpoint: &Endpoint,
        messages: &[Message],
        tools: &[ToolSpec],
        retries: u32,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Completion, ModelError> {
        let mut attempt = 0u32;
        loop {
            let (result, retry_after) = self.once(endpoint, messages, tools, on_text).await;
            match result {
                Err(e) if e.retryable() && attempt < retries => {
                    let backoff = Duration::from_millis(500u64 << attempt.min(6));
                    let wait = retry_after.unwrap_or(backoff).min(Duration::from_secs(60));
                    tracing::warn!("model request failed ({e}); retrying in {wait:?}");
                    attempt += 1;
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    async fn once(
        &self,
        ep: &Endpoint,
        messages: &[Message],
        tools: &[ToolSpec],
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> (Result<Completion, ModelError>, Option<Duration>) {
        let url = format!("{}/chat/completions", ep.base_url.trim_end_matches('/'));
        let mut body = serde_json::json!({
            "model": ep.model,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if !tools.is_empty() {
            body["tools"] = tools
                .iter()
                .map(|t| {
                    serde_json::json!({"type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.parameters}})
                })
                .collect();
        }
        let mut req = self.http.post(&url).json(&body);
        if let Some(key) = &ep.api_key {
            req = req.bearer_auth(key);
        }
        let connect = |e: reqwest::Error| ModelError::Connect {
            url: url.clone(),
            message: e.to_string(),
        };
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return (Err(connect(e)), None),
        };
        let status = resp.status().as_u16();
        if status >= 400 {
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let text = resp.text().await.unwrap_or_default();
            let message = error_message(&text);
            let err = match status {
                401 | 403 => ModelError::Auth {
                    url,
                    status,
                    message,
                },
                404 => ModelError::NoSuchModel {
                    url,
                    model: ep.model.clone(),
                    status,
                    message,
                },
                400 if message.to_lowercase().contains("model") && message.contains("not") => {
                    ModelError::NoSuchModel {
                        url,
                        model: ep.model.clone(),
                        status,
                        message,
                    }
                }
                _ => ModelError::Status {
                    url,
                    status,
                    message,
                },
            };
            return (Err(err), retry_after);
        }
        let streaming = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("event-stream"));
        if !streaming {
            let result = match resp.text().await {
                Ok(text) => parse_whole(&text, on_text),
                Err(e) => Err(ModelError::Truncated(e.to_string())),
            };
            return (result, None);
        }
        let mut acc = Accumulator::default();
        let mut buf: Vec<u8> = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(bytes)) => {
                    buf.extend_from_slice(&bytes);
                    while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=pos).collect();
                        match acc.line(&line, on_text) {
                            Ok(true) => return (acc.finish(), None),
                            Ok(false) => {}
                            Err(e) => return (Err(e), None),
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => return (Err(ModelError::Truncated(e.to_string())), None),
            }
        }
        if !buf.is_empty() {
            if let Err(e) = acc.line(&buf, on_text) {
                return (Err(e), None);
            }
        }
        // No [DONE]: complete only if the model said why it stopped.
        if acc.finish_reason.is_none() {
            return (
                Err(ModelError::Truncated(
                    "the stream ended before the model finished".into(),
                )),
                None,
            );
        }
        (acc.finish(), None)
    }
}

/// The message of an error body (`{"error": {"message": ...}}`), or the body itself.
fn error_message(text: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let msg = parsed
        .as_ref()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("error"))
                .or_else(|| v.get("message"))
        })
        .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_string))
        .unwrap_or_else(|| text.trim().to_string());
    msg.chars().take(500).collect()
}

#[derive(Default)]
struct Accumulator {
    content: String,
    calls: Vec<PartialCall>,
    tokens: u64,
    finish_reason: Option<String>,
    saw_choice: bool,
}

#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

impl Accumulator {
    /// Takes one line of the stream; true at `[DONE]`.
    fn line(
        &mut self,
        line: &[u8],
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<bool, ModelError> {
        let line = String::from_utf8_lossy(line);
        let line = line.trim();
        let Some(data) = line.strip_prefix("data:") else {
            return Ok(false); // comments, event names, blank separators
        };
        let data = data.trim();
        if data == "[DONE]" {
            return Ok(true);
        }
        // Every event is a sign of life, text or not (tool arguments, reasoning).
        on_text("");
        let v: Value = serde_json::from_str(data)
            .map_err(|e| ModelError::Malformed(format!("a stream event is not JSON: {e}")))?;
        if let Some(err) = v.get("error") {
            return Err(ModelError::Status {
                url: String::new(),
                status: 500,
                message: error_message(&err.to_string()),
            });
        }
        self.usage(&v);
        let Some(choices) = v.get("choices").and_then(Value::as_array) else {
            return Ok(false);
        };
        for choice in choices {
            self.saw_choice = true;
            let delta = choice.get("delta").or_else(|| choice.get("message"));
            if let Some(delta) = delta {
                if let Some(text) = delta.get("content").and_then(Value::as_str) {
                    if !text.is_empty() {
                        on_text(text);
                        self.content.push_str(text);
                    }
                }
                if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                    for (n, call) in calls.iter().enumerate() {
                        let index = call
                            .get("index")
                            .and_then(Value::as_u64)
                            .map_or(n, |i| i as usize);
                        if index > 1024 {
                            return Err(ModelError::Malformed(format!(
                                "tool call index {index} is out of range"
                            )));
                        }
                        while self.calls.len() <= index {
                            self.calls.push(PartialCall::default());
                        }
                        let slot = &mut self.calls[index];
                        // Some servers repeat the id and name in every delta: taken once.
                        if let Some(id) = call.get("id").and_then(Value::as_str) {
                            if slot.id.is_empty() {
                                slot.id.push_str(id);
                            }
                        }
                        if let Some(f) = call.get("function") {
                            if let Some(name) = f.get("name").and_then(Value::as_str) {
                                if slot.name.is_empty() {
                                    slot.name.push_str(name);
                                }
                            }
                            match f.get("arguments") {
                                Some(Value::String(a)) => slot.arguments.push_str(a),
                                // Some servers send the arguments as an object.
                                Some(other @ Value::Object(_)) => {
                                    slot.arguments.push_str(&other.to_string())
                                }
                                _ => {}
                            }
                        }
                    }
                }
            }
            if let Some(r) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish_reason = Some(r.to_string());
            }
        }
        Ok(false)
    }

    fn usage(&mut self, v: &Value) {
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            let total = u
                .get("total_tokens")
                .and_then(Value::as_u64)
                .unwrap_or_else(|| {
                    ["prompt_tokens", "completion_tokens"]
                        .iter()
                        .filter_map(|k| u.get(*k).and_then(Value::as_u64))
                        .sum()
                });
            self.tokens = self.tokens.max(total);
        }
    }

    fn finish(self) -> Result<Completion, ModelError> {
        if !self.saw_choice {
            return Err(ModelError::NoChoices);
        }
        let tool_calls = self
            .calls
            .into_iter()
            .enumerate()
            .filter(|(_, c)| !c.name.is_empty() || !c.arguments.is_empty())
            .map(|(i, c)| ToolCall {
                id: if c.id.is_empty() {
                    format!("call_{i}")
                } else {
                    c.id
                },
                kind: function_type(),
                function: FunctionCall {
                    name: c.name,
                    arguments: c.arguments,
                },
            })
            .collect();
        Ok(Completion {
            content: self.content,
            tool_calls,
            tokens: self.tokens,
            finish_reason: self.finish_reason,
        })
    }
}

/// A server that ignored `stream: true` and sent one JSON body.
fn parse_whole(
    text: &str,
    on_text: &mut (dyn FnMut(&str) + Send),
) -> Result<Completion, ModelError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| ModelError::Malformed(format!("the response is not JSON: {e}")))?;
    let mut acc = Accumulator::default();
    let data = format!("data: {v}");
    acc.line(data.as_bytes(), on_text)?;
    acc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(lines: &[&str]) -> Result<Completion, ModelError> {
        let mut acc = Accumulator::default();
        let mut seen = String::new();
        for l in lines {
            if acc.line(l.as_bytes(), &mut |t| seen.push_str(t))? {
                break;
            }
        }
        let c = acc.finish()?;
        assert_eq!(seen, c.content);
        Ok(c)
    }

    #[test]
    fn text_and_tool_calls_accumulate_across_chunks() {
        let c = feed(&[
            r#"data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}"#,
            "",
            r#"data: {"choices":[{"index":0,"delta":{"content":"lo"}}]}"#,
            r#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"bash","arguments":"{\"comm"}}]}}]}"#,
            r#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"and\":\"ls\"}"}}]},"finish_reason":"tool_calls"}]}"#,
            r#"data: {"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}"#,
            "data: [DONE]",
        ])
        .unwrap();
        assert_eq!(c.content, "Hello");
        assert_eq!(c.tool_calls.len(), 1);
        assert_eq!(c.tool_calls[0].function.name, "bash");
        assert_eq!(c.tool_calls[0].function.arguments, r#"{"command":"ls"}"#);
        assert_eq!(c.tokens, 15);
        assert_eq!(c.finish_reason.as_deref(), Some("tool_calls"));
    }

    #[test]
    fn no_choices_at_all_is_an_error() {
        let e = feed(&[r#"data: {"choices":[]}"#, "data: [DONE]"]).unwrap_err();
        assert!(matches!(e, ModelError::NoChoices), "{e}");
    }

    #[test]
    fn an_error_event_and_bad_json_are_errors() {
        assert!(feed(&[r#"data: {"error":{"message":"overloaded"}}"#]).is_err());
        assert!(matches!(
            feed(&["data: {not json"]).unwrap_err(),
            ModelError::Malformed(_)
        ));
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            error_message(r#"{"error":{"message":"bad key","type":"x"}}"#),
            "bad key"
        );
        assert_eq!(error_message("plain text"), "plain text");
    }
}
