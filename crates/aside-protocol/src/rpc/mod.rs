//! The daemon's JSON-RPC 2.0 protocol: newline-delimited JSON on a Unix socket.
//!
//! A request is `{"jsonrpc":"2.0","id":N,"method":M,"params":P}`. Every method is defined
//! once, in [`methods`]: its name, its params and its result, from which come the typed
//! [`Request`] the daemon dispatches, the [`Handlers`] it implements, the [`Method`] markers
//! a client calls with, and the schema `aside schema` prints.

mod envelope;
mod error;
mod methods;
mod types;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use envelope::{Envelope, Incoming, RequestLine, ResponseLine, EVENT_NOTIFICATION};
pub use error::{ErrorCode, RpcError};
pub use methods::{method, Handlers, Request, Results};
pub use types::*;

/// The largest request line the daemon reads, in bytes.
pub const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

/// One method of the protocol: its wire name, its params and its result.
pub trait Method {
    const NAME: &'static str;
    type Params: Serialize + DeserializeOwned + JsonSchema + Send;
    type Result: Serialize + DeserializeOwned + JsonSchema + Send;
}

/// Root of the published JSON Schema.
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct Protocol {
    pub protocol_version: String,
    pub request: Request,
    /// Each method's result, under the method's name.
    pub results: Results,
    pub error: RpcError,
    /// `params` of the `event` notification.
    pub event: EventMessage,
}

#[cfg(test)]
mod tests;
