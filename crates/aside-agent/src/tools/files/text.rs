//! Text as the tools read and show it: binary files recognized before reading, long lines cut.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Chain, Cursor, Read};

use super::BINARY_SNIFF_BYTES;

/// The whole of `file` when it holds text; None when it looks binary: a NUL byte in its first
/// [`BINARY_SNIFF_BYTES`], the test git and grep use. Only those bytes are read to decide; the
/// reader returned gives them again, then the rest.
pub(super) fn text_reader(mut file: File) -> io::Result<Option<Chain<Cursor<Vec<u8>>, File>>> {
    let mut head = Vec::with_capacity(BINARY_SNIFF_BYTES);
    (&mut file)
        .take(BINARY_SNIFF_BYTES as u64)
        .read_to_end(&mut head)?;
    if head.contains(&0) {
        return Ok(None);
    }
    Ok(Some(Cursor::new(head).chain(file)))
}

/// Cuts a line to `max_chars` characters with a marker saying so; `already_cut` marks a line
/// whose tail was dropped while reading.
pub(super) fn cut_line(line: &str, max_chars: usize, already_cut: bool) -> Cow<'_, str> {
    let end = line.char_indices().nth(max_chars).map(|(index, _)| index);
    match end {
        None if !already_cut => Cow::Borrowed(line),
        _ => {
            let kept = &line[..end.unwrap_or(line.len())];
            Cow::Owned(format!("{kept}… [line cut at {max_chars} characters]"))
        }
    }
}
