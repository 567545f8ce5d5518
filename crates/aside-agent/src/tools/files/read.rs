//! The `read` tool: a text file as numbered lines, a window of them at a time.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use schemars::JsonSchema;
use serde::Deserialize;

use super::paths::{display_path, file_metadata, io_error, resolve};
use super::text::{cut_line, text_reader};
use super::{FileToolError, Limits};

/// Arguments of the `read` tool.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
pub struct ReadArgs {
    /// Path of the file to read, absolute or relative to the working directory.
    #[serde(alias = "file_path")]
    pub path: String,
    /// 1-based line number to start reading at. Defaults to 1, the first line.
    #[serde(default)]
    pub offset: Option<usize>,
    /// How many lines to read. Defaults to the most one call returns; use offset to read on.
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Reads a text file as numbered lines, like `cat -n`.
pub fn read(cwd: &Path, args: &ReadArgs, limits: &Limits) -> Result<String, FileToolError> {
    let path = resolve(cwd, &args.path);
    let shown = display_path(cwd, &path);
    let meta = file_metadata(&path, &shown)?;
    if meta.len() == 0 {
        return Ok(format!("{shown} is empty (0 bytes)"));
    }
    let file = File::open(&path).map_err(|e| io_error("open", &shown, e))?;
    let Some(text) = text_reader(file).map_err(|e| io_error("read", &shown, e))? else {
        return Err(FileToolError::Binary { path: shown });
    };
    let mut reader = BufReader::new(text);

    let start = args.offset.unwrap_or(1).max(1);
    let max_lines = limits.max_read_lines.max(1);
    let count = args
        .limit
        .filter(|&n| n > 0)
        .map_or(max_lines, |n| n.min(max_lines));
    let max_chars = limits.max_line_chars.max(1);
    // A line is kept only up to the bytes its first `max_chars` characters can take, so one
    // huge line (minified code, a log without newlines) cannot exhaust memory.
    let byte_cap = max_chars.saturating_mul(4).saturating_add(4);

    let mut out = String::new();
    let mut line = Vec::new();
    let mut total = 0usize;
    while let Some(overflowed) = read_line_capped(&mut reader, &mut line, byte_cap)
        .map_err(|e| io_error("read", &shown, e))?
    {
        total += 1;
        if total < start || total >= start.saturating_add(count) {
            continue;
        }
        if !overflowed && line.last() == Some(&b'\r') {
            line.pop();
        }
        let text = String::from_utf8_lossy(&line);
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!(
            "{total:>6}\t{}",
            cut_line(&text, max_chars, overflowed)
        ));
    }
    if total == 0 {
        return Ok(format!("{shown} is empty (0 lines)"));
    }
    if start > total {
        return Err(FileToolError::OffsetPastEnd {
            path: shown,
            offset: start,
            lines: total,
        });
    }
    let last_shown = total.min(start.saturating_add(count) - 1);
    if last_shown < total {
        out.push_str(&format!(
            "\n\n[showing lines {start}-{last_shown} of {total} in {shown}; to read on, call read with offset {}]",
            last_shown + 1
        ));
    }
    Ok(out)
}

/// Reads one line (without its `\n`) into `buf`, keeping at most `cap` bytes of it. Returns
/// `None` at end of input, else whether the line was longer than `cap`.
fn read_line_capped<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    cap: usize,
) -> io::Result<Option<bool>> {
    buf.clear();
    let mut started = false;
    let mut overflowed = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(started.then_some(overflowed));
        }
        started = true;
        let newline = chunk.iter().position(|&b| b == b'\n');
        let part = &chunk[..newline.unwrap_or(chunk.len())];
        let room = cap.saturating_sub(buf.len());
        buf.extend_from_slice(&part[..part.len().min(room)]);
        overflowed |= part.len() > room;
        let used = newline.map_or(chunk.len(), |i| i + 1);
        reader.consume(used);
        if newline.is_some() {
            return Ok(Some(overflowed));
        }
    }
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
