//! The file tools: read, write, edit, glob, grep.
//!
//! Each tool is a plain synchronous function (callers run it through `spawn_blocking`) that
//! takes a working directory, its deserialized arguments and, where output can grow, the
//! [`Limits`] that keep it small enough for a model's context. Relative paths resolve against
//! the working directory, and paths in output are shown relative to it when they lie under it.
//! Every error's text is written for a model: it says what is wrong and what to do instead.

mod glob;
mod grep;
mod paths;
mod read;
mod text;
mod walk;
mod write_edit;

#[cfg(test)]
mod test_support;

use std::io;

pub use glob::{glob, GlobArgs};
pub use grep::{grep, GrepArgs, OutputMode};
pub use read::{read, ReadArgs};
pub use write_edit::{edit, write, EditArgs, WriteArgs};

/// How many lines `read` returns when the model gives no `limit`.
pub const DEFAULT_MAX_READ_LINES: usize = 2000;
/// How many characters of one line `read` and `grep` show before cutting it.
pub const DEFAULT_MAX_LINE_CHARS: usize = 2000;
/// How many result lines `glob` and `grep` return.
pub const DEFAULT_MAX_RESULTS: usize = 1000;
/// How much of a file is checked for a NUL byte to decide that it is binary (like git and grep).
pub const BINARY_SNIFF_BYTES: usize = 8 * 1024;

/// Caps on tool output, so one call cannot flood a model's context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Lines `read` returns at most, whatever `limit` the model asks for.
    pub max_read_lines: usize,
    /// Characters of one line shown by `read` and `grep`; the rest is cut with a marker.
    pub max_line_chars: usize,
    /// Result lines `glob` and `grep` return at most.
    pub max_results: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_read_lines: DEFAULT_MAX_READ_LINES,
            max_line_chars: DEFAULT_MAX_LINE_CHARS,
            max_results: DEFAULT_MAX_RESULTS,
        }
    }
}

/// Why a file tool failed. The `Display` text is meant to be shown to the model as is.
#[derive(Debug, thiserror::Error)]
pub enum FileToolError {
    #[error("no such file: {path}; check the path, or use glob to find the file")]
    NotFound { path: String },
    #[error("no such directory: {path}")]
    NoSuchDirectory { path: String },
    #[error("no such file or directory: {path}")]
    NoSuchPath { path: String },
    #[error("{path} is a directory, not a file; use glob to list the files in it")]
    IsDirectory { path: String },
    #[error(
        "{path} is a file, not a directory; use read to read it, or give its directory as path"
    )]
    NotADirectory { path: String },
    #[error("{path} is a binary file; only text files can be read")]
    Binary { path: String },
    #[error("{path} is not valid UTF-8 text, so edit cannot change it safely; use write to replace all of it")]
    NotUtf8 { path: String },
    #[error("{path} is read-only; it was left unchanged")]
    ReadOnly { path: String },
    #[error("offset {offset} is past the end of {path}, which has {lines} lines")]
    OffsetPastEnd {
        path: String,
        offset: usize,
        lines: usize,
    },
    #[error("old_string is empty; to create a file or replace all of it, use write")]
    EmptyOldString,
    #[error("old_string and new_string are identical, so there is nothing to change")]
    NoChange,
    #[error("old_string was not found in {path}; read the file and copy the text exactly, including whitespace and indentation")]
    OldStringNotFound { path: String },
    #[error("old_string occurs {count} times in {path}; give more context to make it unique, or set replace_all to replace every occurrence")]
    AmbiguousOldString { path: String, count: usize },
    #[error("invalid glob pattern `{pattern}`: {message}")]
    InvalidGlob { pattern: String, message: String },
    #[error("invalid regex `{pattern}`: {message}")]
    InvalidRegex { pattern: String, message: String },
    #[error("cannot {action} {path}: {error}")]
    Io {
        action: &'static str,
        path: String,
        error: io::Error,
    },
}
