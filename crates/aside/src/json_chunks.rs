//! `aside logs --json`: output as JSON lines, one object per piece read,
//! `{"offset": N, "encoding": "utf8"|"base64", "data": "..."}`, with the encoding of the
//! protocol's `OutputChunk`, so binary output survives byte for byte.

use std::io::{self, Write};

use aside_protocol::OutputChunk;
use serde::Serialize;

/// The longest UTF-8 sequence less one: what may be held back, cut by the end of a read.
const MAX_CUT: usize = 3;

#[derive(Serialize)]
struct Line<'a> {
    /// Byte offset of the first byte of `data` in the task's output.
    offset: u64,
    #[serde(flatten)]
    chunk: &'a OutputChunk,
}

/// Writes the bytes given to it as JSON lines. A character cut by the end of one write is
/// held back for the next, so text read in pieces stays text; [`JsonChunks::finish`] writes
/// whatever is held back (as base64, since it is not text on its own).
pub struct JsonChunks<W: Write> {
    w: W,
    /// Offset of the first byte not yet written out (the first of `held`, if any).
    offset: u64,
    held: Vec<u8>,
}

impl<W: Write> JsonChunks<W> {
    pub fn new(w: W, offset: u64) -> Self {
        Self {
            w,
            offset,
            held: Vec::new(),
        }
    }

    /// The next bytes come from `offset` (later than expected when earlier output is gone).
    pub fn seek(&mut self, offset: u64) -> io::Result<()> {
        if offset != self.offset + self.held.len() as u64 {
            self.release()?;
            self.offset = offset;
        }
        Ok(())
    }

    /// Writes what is held back, then flushes.
    pub fn finish(&mut self) -> io::Result<()> {
        self.release()?;
        self.w.flush()
    }

    fn release(&mut self) -> io::Result<()> {
        let held = std::mem::take(&mut self.held);
        self.line(&held)
    }

    fn line(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let line = Line {
            offset: self.offset,
            chunk: &OutputChunk::encode(bytes),
        };
        let mut text = serde_json::to_vec(&line)?;
        text.push(b'\n');
        self.w.write_all(&text)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }
}

impl<W: Write> Write for JsonChunks<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut bytes = std::mem::take(&mut self.held);
        bytes.extend_from_slice(buf);
        // Valid text but for a character cut at the end: that character waits for the rest.
        let keep = match std::str::from_utf8(&bytes) {
            Err(e) if e.error_len().is_none() && bytes.len() - e.valid_up_to() <= MAX_CUT => {
                bytes.len() - e.valid_up_to()
            }
            _ => 0,
        };
        let (out, rest) = bytes.split_at(bytes.len() - keep);
        self.line(out)?;
        self.held = rest.to_vec();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(out: &[u8]) -> Vec<serde_json::Value> {
        out.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    #[test]
    fn text_binary_and_a_cut_character() {
        let mut out = Vec::new();
        let mut j = JsonChunks::new(&mut out, 10);
        j.write_all(b"hi\n").unwrap();
        j.write_all(b"\xff\x00").unwrap();
        // "é" is c3 a9: cut between two writes, it is held back and sent whole.
        j.write_all(b"caf\xc3").unwrap();
        j.write_all(b"\xa9!").unwrap();
        // Cut and never completed: base64 at the end.
        j.write_all(b"\xe2\x82").unwrap();
        j.finish().unwrap();
        let got = lines(&out);
        assert_eq!(
            got,
            vec![
                serde_json::json!({"offset": 10, "encoding": "utf8", "data": "hi\n"}),
                serde_json::json!({"offset": 13, "encoding": "base64", "data": "/wA="}),
                serde_json::json!({"offset": 15, "encoding": "utf8", "data": "caf"}),
                serde_json::json!({"offset": 18, "encoding": "utf8", "data": "é!"}),
                serde_json::json!({"offset": 21, "encoding": "base64", "data": "4oI="}),
            ]
        );
    }

    #[test]
    fn a_gap_releases_what_is_held() {
        let mut out = Vec::new();
        let mut j = JsonChunks::new(&mut out, 0);
        j.write_all(b"a\xc3").unwrap();
        j.seek(2).unwrap(); // Contiguous: nothing happens.
        j.seek(100).unwrap();
        j.write_all(b"z").unwrap();
        j.finish().unwrap();
        let offsets: Vec<_> = lines(&out).iter().map(|l| l["offset"].clone()).collect();
        assert_eq!(offsets, [0, 1, 100]);
    }
}
