//! The JSON-RPC envelope around params and results, as each side writes and reads it. The
//! daemon reads a request line once: the envelope here, then the params (kept raw until
//! then) straight into their method's type.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::{ErrorCode, RpcError};

/// The method of the notifications that carry events to subscribers.
pub const EVENT_NOTIFICATION: &str = "event";

/// A line as the daemon reads it. Every field takes any JSON, so a line that is a JSON
/// object always parses and each field is judged on its own (echoing the id where possible).
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    #[serde(default)]
    pub jsonrpc: Option<Value>,
    /// Absent for a notification; `Some(Value::Null)` for a request whose id is null.
    #[serde(default, deserialize_with = "present")]
    pub id: Option<Value>,
    #[serde(default)]
    pub method: Option<Value>,
    #[serde(default, borrow)]
    pub params: Option<&'a RawValue>,
}

impl<'a> Envelope<'a> {
    /// Reads a line: malformed JSON is a parse error, JSON that is not an object an invalid
    /// request (neither has an id to answer).
    pub fn parse(line: &'a str) -> Result<Self, RpcError> {
        let malformed = |e: serde_json::Error| {
            RpcError::new(ErrorCode::ParseError, format!("malformed JSON: {e}"))
        };
        let not_object =
            || RpcError::new(ErrorCode::InvalidRequest, "a request must be a JSON object");
        if !line.trim_start().starts_with('{') {
            return match serde_json::from_str::<serde::de::IgnoredAny>(line) {
                Ok(_) => Err(not_object()),
                Err(e) => Err(malformed(e)),
            };
        }
        serde_json::from_str(line).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => not_object(),
            _ => malformed(e),
        })
    }
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A request or notification as a client, or the daemon, writes it.
#[derive(Debug, Serialize)]
pub struct RequestLine<'a, P> {
    pub jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    pub method: &'static str,
    pub params: &'a P,
}

impl<'a, P> RequestLine<'a, P> {
    pub fn request(id: u64, method: &'static str, params: &'a P) -> Self {
        Self {
            jsonrpc: "2.0",
            id: Some(id),
            method,
            params,
        }
    }

    pub fn notification(method: &'static str, params: &'a P) -> Self {
        Self {
            jsonrpc: "2.0",
            id: None,
            method,
            params,
        }
    }
}

/// A response as the daemon writes it: a result or an error.
#[derive(Debug, Serialize)]
pub struct ResponseLine<'a> {
    pub jsonrpc: &'static str,
    pub id: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a RpcError>,
}

impl<'a> ResponseLine<'a> {
    pub fn new(id: &'a Value, outcome: &'a Result<Box<RawValue>, RpcError>) -> Self {
        let (result, error) = match outcome {
            Ok(r) => (Some(&**r), None),
            Err(e) => (None, Some(e)),
        };
        Self {
            jsonrpc: "2.0",
            id,
            result,
            error,
        }
    }
}

/// A line as a client reads it: a response (with an id) or a notification (with a method).
#[derive(Debug, Deserialize)]
pub struct Incoming {
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub params: Option<Box<RawValue>>,
    #[serde(default)]
    pub result: Option<Box<RawValue>>,
    #[serde(default)]
    pub error: Option<RpcError>,
}
