//! The aside task engine: tasks that start in the foreground or the background, can be
//! detached, waited on and stopped (the whole process tree), and notify their owner once.
//!
//! It has no transport: the daemon serves it over a socket, and a Rust program can embed it
//! directly with [`Engine::open`]. An embedding process must let the engine reap its child
//! processes (it becomes their subreaper and calls `waitpid(-1)`), and must start none of its
//! own: a child the engine did not start is taken for an orphan of a task and killed once no
//! running task can own it. Where tasks get cgroups, the process steps into each task's
//! cgroup for the moment it spawns that task's process.

mod abort;
pub mod ansi;
mod cgroup;
pub mod config;
mod console;
mod engine;
mod logs;
pub mod output;
pub mod paths;
pub mod proctree;
mod program;
mod reaper;
mod run;
mod runner;
mod scheduler;
mod shell;
mod supervised;

pub use abort::AbortReason;
pub use aside_store::Order;
pub use config::Config;
pub use console::{ConsoleError, MAX_WRITE};
pub use engine::{
    Engine, EngineBuilder, EngineError, Handle, ListQuery, NoticeConsumer, Page, Pattern,
    PatternError, ReadOutput, SpecError, Started, UntilOutput, MATCH_CARRY, MAX_LIVE_TASKS,
    MAX_READ_BYTES, MAX_TAKE,
};
pub use paths::{Paths, PathsError};
pub use reaper::Exit;
pub use run::{RunFuture, RunOutcome};
pub use runner::{AgentRunner, Launch, Stopping};
pub use supervised::default_program as default_supervisor;
