//! The aside agent runtime: agent definitions, the tool registry, and the conversation loop
//! that talks to any OpenAI-compatible Chat Completions API. Agent tasks run through the
//! engine like shell tasks; this crate holds no transport code of its own besides the HTTP
//! client for the model.

pub mod definitions;
mod heartbeat;
pub mod model;
pub mod project;
mod resume;
pub mod session;
pub mod tools;
mod transcript;

pub use session::{session_owner, AgentRuntime};
