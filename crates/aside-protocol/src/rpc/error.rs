use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    pub code: ErrorCode,
    pub message: String,
}

impl RpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The error codes: JSON-RPC's own, then aside's. On the wire, the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    ParseError,
    InvalidRequest,
    MethodNotFound,
    InvalidParams,
    Internal,
    /// No task has that id.
    UnknownTask,
    /// The task is not in a state that allows the request.
    InvalidState,
    /// The task spec was refused (missing cwd, unknown group limit, bad duration, ...).
    BadSpec,
    /// The output asked for is not kept.
    NotRetained,
    /// The client's protocol version is not supported.
    VersionMismatch,
    /// Storage failed (disk full, ...).
    Storage,
    /// The daemon is shutting down.
    ShuttingDown,
    /// A code this build does not know (from a newer daemon).
    Other(i64),
}

impl ErrorCode {
    const TABLE: [(ErrorCode, i64); 12] = [
        (ErrorCode::ParseError, -32700),
        (ErrorCode::InvalidRequest, -32600),
        (ErrorCode::MethodNotFound, -32601),
        (ErrorCode::InvalidParams, -32602),
        (ErrorCode::Internal, -32603),
        (ErrorCode::UnknownTask, -32001),
        (ErrorCode::InvalidState, -32002),
        (ErrorCode::BadSpec, -32003),
        (ErrorCode::NotRetained, -32004),
        (ErrorCode::VersionMismatch, -32005),
        (ErrorCode::Storage, -32006),
        (ErrorCode::ShuttingDown, -32007),
    ];

    pub fn number(self) -> i64 {
        match self {
            ErrorCode::Other(n) => n,
            known => Self::TABLE
                .iter()
                .find(|(c, _)| *c == known)
                .map_or(-32603, |(_, n)| *n),
        }
    }

    pub fn from_number(n: i64) -> Self {
        Self::TABLE
            .iter()
            .find(|(_, m)| *m == n)
            .map_or(ErrorCode::Other(n), |(c, _)| *c)
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.number())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        i64::deserialize(d).map(Self::from_number)
    }
}

impl JsonSchema for ErrorCode {
    fn schema_name() -> Cow<'static, str> {
        "ErrorCode".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let codes: Vec<i64> = Self::TABLE.iter().map(|(_, n)| *n).collect();
        schemars::json_schema!({
            "type": "integer",
            "description": format!(
                "JSON-RPC's codes (-32700 parse error, -32600 invalid request, -32601 unknown \
                 method, -32602 invalid params, -32603 internal) and aside's: -32001 unknown \
                 task, -32002 invalid state, -32003 bad spec, -32004 output not retained, \
                 -32005 version mismatch, -32006 storage, -32007 shutting down. Known: {codes:?}"
            )
        })
    }
}
