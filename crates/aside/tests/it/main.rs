//! Integration tests of `aside`: the real binary, a private state directory and daemon per
//! test. One binary for all areas, one module per area; the harness is in `support`.
// Test code: a failed unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mcp;
mod mcp_tasks;
mod model_server;
mod support;

mod after;
mod agents;

mod autostart;
mod background;
mod bad_input;
mod clean;
mod completions;
mod daemon;
mod detach;
mod disk;
mod escapes;
mod events;
mod flood;
mod foreground;
mod help;
mod hook;
mod listing;
mod load;
mod logs_json;
mod notifications;
mod outlive;
mod output;
mod pause;
mod recovery;
mod resume;
mod reuse;
mod scheduling;
mod secrets;
mod status_line;
mod stop;
mod terminal;
mod terminal_tools;
mod tmux;
mod top;
mod until;
mod wire;
