//! Standard output, every write checked: a full disk or a reader that went away is an error
//! that says so (exit 125), never a panic (`println!` panics) and never a silent success.

use std::fmt;
use std::io::Write;

/// Standard output refused a write.
#[derive(Debug)]
pub struct StdoutError(pub std::io::Error);

impl fmt::Display for StdoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write to standard output: {}", self.0)
    }
}

impl std::error::Error for StdoutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl From<std::io::Error> for StdoutError {
    fn from(e: std::io::Error) -> Self {
        Self(e)
    }
}

impl From<serde_json::Error> for StdoutError {
    fn from(e: serde_json::Error) -> Self {
        Self(e.into())
    }
}

/// Writes `bytes` and flushes them.
pub fn write(bytes: &[u8]) -> Result<(), StdoutError> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}

/// `println!`, returning a [`StdoutError`] instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::stdout::write(format!("{}\n", format_args!($($arg)*)).as_bytes())
    };
}
pub(crate) use outln;
