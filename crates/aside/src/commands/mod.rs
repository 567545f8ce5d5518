//! One file per command.

pub mod agent;
pub mod agents;
pub mod attach;
pub mod clean;
pub mod completions;
pub mod daemon;
pub mod detach;
pub mod info;
pub mod logs;
pub mod ls;
pub mod mcp;
pub mod pause;
pub mod restart;
pub mod run;
pub mod schema;
pub mod send;
pub mod signal;
pub mod slots;
pub mod stop;
pub mod top;
pub mod wait;
