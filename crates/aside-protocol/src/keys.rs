//! Named keys, as `aside send --key` and the `task_input` tool take them, and the bytes a
//! terminal sends for each (xterm's, in normal cursor mode). On a pipe, `Enter` is a newline
//! and the control keys are their control characters.

/// Every key name taken besides `C-<letter>` and `M-<key>`.
pub const NAMES: &[&str] = &[
    "Enter",
    "Tab",
    "BTab",
    "Escape",
    "Backspace",
    "Space",
    "Up",
    "Down",
    "Right",
    "Left",
    "Home",
    "End",
    "PageUp",
    "PageDown",
    "Insert",
    "Delete",
    "F1",
    "F2",
    "F3",
    "F4",
    "F5",
    "F6",
    "F7",
    "F8",
    "F9",
    "F10",
    "F11",
    "F12",
];

/// The bytes for the key `name` (case-insensitive; `C-c` is Ctrl+C, `M-x` is Alt+X), sent to
/// a terminal (`pty`) or a pipe; `None` for a name that is not a key.
pub fn bytes(name: &str, pty: bool) -> Option<Vec<u8>> {
    let lower = name.trim().to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("m-") {
        let mut b = vec![0x1b];
        b.extend(bytes_or_char(&name.trim()[2..], rest, pty)?);
        return Some(b);
    }
    if let Some(c) = lower
        .strip_prefix("c-")
        .or_else(|| lower.strip_prefix("ctrl-"))
        .or_else(|| lower.strip_prefix("ctrl+"))
    {
        return control(c);
    }
    named(&lower, pty)
}

fn bytes_or_char(original: &str, lower: &str, pty: bool) -> Option<Vec<u8>> {
    if original.chars().count() == 1 {
        return Some(original.as_bytes().to_vec());
    }
    bytes(lower, pty)
}

/// Ctrl with a letter or one of `@[\]^_?`.
fn control(key: &str) -> Option<Vec<u8>> {
    let [c] = key.as_bytes() else {
        return match key {
            "space" => Some(vec![0]),
            _ => None,
        };
    };
    let b = match c {
        b'a'..=b'z' => c - b'a' + 1,
        b'@' => 0,
        b'[' => 0x1b,
        b'\\' => 0x1c,
        b']' => 0x1d,
        b'^' => 0x1e,
        b'_' => 0x1f,
        b'?' => 0x7f,
        _ => return None,
    };
    Some(vec![b])
}

fn named(name: &str, pty: bool) -> Option<Vec<u8>> {
    let seq: &[u8] = match name {
        // A terminal's Enter is a carriage return (the line discipline turns it into a
        // newline for programs that read lines); a pipe carries the newline itself.
        "enter" | "return" | "cr" if pty => b"\r",
        "enter" | "return" => b"\n",
        "lf" | "newline" => b"\n",
        "tab" => b"\t",
        "btab" | "s-tab" => b"\x1b[Z",
        "escape" | "esc" => b"\x1b",
        "backspace" | "bspace" | "bs" => b"\x7f",
        "space" => b" ",
        "up" => b"\x1b[A",
        "down" => b"\x1b[B",
        "right" => b"\x1b[C",
        "left" => b"\x1b[D",
        "home" => b"\x1b[H",
        "end" => b"\x1b[F",
        "pageup" | "ppage" | "pgup" => b"\x1b[5~",
        "pagedown" | "npage" | "pgdn" => b"\x1b[6~",
        "insert" | "ic" => b"\x1b[2~",
        "delete" | "dc" => b"\x1b[3~",
        "f1" => b"\x1bOP",
        "f2" => b"\x1bOQ",
        "f3" => b"\x1bOR",
        "f4" => b"\x1bOS",
        "f5" => b"\x1b[15~",
        "f6" => b"\x1b[17~",
        "f7" => b"\x1b[18~",
        "f8" => b"\x1b[19~",
        "f9" => b"\x1b[20~",
        "f10" => b"\x1b[21~",
        "f11" => b"\x1b[23~",
        "f12" => b"\x1b[24~",
        _ => return None,
    };
    Some(seq.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_bytes() {
        assert_eq!(bytes("C-c", true).unwrap(), b"\x03");
        assert_eq!(bytes("ctrl-D", false).unwrap(), b"\x04");
        assert_eq!(bytes("Enter", true).unwrap(), b"\r");
        assert_eq!(bytes("enter", false).unwrap(), b"\n");
        assert_eq!(bytes("Up", true).unwrap(), b"\x1b[A");
        assert_eq!(bytes("M-x", true).unwrap(), b"\x1bx");
        assert_eq!(bytes("M-Enter", true).unwrap(), b"\x1b\r");
        assert_eq!(bytes("C-\\", true).unwrap(), b"\x1c");
        assert!(bytes("Hyper", true).is_none());
        assert!(bytes("C-1", true).is_none());
        for name in NAMES {
            assert!(bytes(name, true).is_some(), "{name}");
        }
    }
}
