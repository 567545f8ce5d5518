//! Terminal escape sequences (colours, cursor moves, titles) left out of a task's output, so
//! it reads and matches as text.
//!
//! Written by hand rather than taken from a crate: a pattern found in the stripped text must
//! be located in the raw output, so every byte kept carries its offset there, and the
//! stripping crates give the text alone. Output arrives in chunks, so a [`Stripper`] keeps
//! its state between them and says where an unfinished sequence began.
//!
//! Left out: CSI (`ESC [` … a final byte 0x40–0x7E), OSC (`ESC ]` … BEL or `ESC \`), DCS,
//! SOS, PM and APC strings (`ESC P`, `ESC X`, `ESC ^`, `ESC _` … `ESC \`), every other
//! `ESC` sequence (`ESC (B`, `ESC 7`), and the C0 controls but `\n` and `\t`. A `\r` goes
//! only before `\n` (`a\r\nb` reads `a\nb`); a lone one (a progress bar's) stays. The 8-bit
//! C1 introducers (0x9B for CSI) are not taken for sequences: in UTF-8 text those bytes
//! continue characters.

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;
/// CAN and SUB abort a sequence, as terminals do.
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;

/// Where a stripper is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Text.
    #[default]
    Ground,
    /// After `\r`: kept unless `\n` comes next.
    Cr,
    /// After `ESC`.
    Esc,
    /// `ESC` and intermediate bytes (0x20–0x2F), before the final byte.
    EscInter,
    /// A control sequence, before its final byte.
    Csi,
    /// An operating system command: ends with BEL or ST (`ESC \`).
    Osc,
    /// A DCS, SOS, PM or APC string: ends with ST.
    Str,
    /// `ESC` inside an OSC or string: `\` ends it; anything else starts a new sequence.
    StrEsc,
}

/// Kept bytes and, for each, its offset in the raw output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stripped {
    pub text: Vec<u8>,
    pub offsets: Vec<u64>,
}

impl Stripped {
    pub fn len(&self) -> usize {
        self.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Forgets the first `n` kept bytes.
    pub fn drain_front(&mut self, n: usize) {
        let n = n.min(self.text.len());
        self.text.drain(..n);
        self.offsets.drain(..n);
    }

    /// The raw range `[start, end)` that holds the kept bytes `range` (not empty): from the
    /// first one to just after the last, escape sequences between them included.
    pub fn raw_range(&self, range: std::ops::Range<usize>) -> Option<(u64, u64)> {
        let first = *self.offsets.get(range.start)?;
        let last = *self.offsets.get(range.end.checked_sub(1)?)?;
        (range.start < range.end).then_some((first, last + 1))
    }
}

/// Where kept bytes go.
trait Sink {
    fn keep(&mut self, byte: u8, at: u64);
}

impl Sink for Vec<u8> {
    fn keep(&mut self, byte: u8, _at: u64) {
        self.push(byte);
    }
}

impl Sink for Stripped {
    fn keep(&mut self, byte: u8, at: u64) {
        self.text.push(byte);
        self.offsets.push(at);
    }
}

/// Strips one stream of output, fed in chunks as they come.
#[derive(Debug, Clone)]
pub struct Stripper {
    state: State,
    /// The raw offset of the next byte fed.
    pos: u64,
    /// Where the current sequence (or pending `\r`) began, outside [`State::Ground`].
    start: u64,
}

impl Stripper {
    /// A stripper for output whose next byte is at raw offset `pos`, outside any sequence.
    pub fn new(pos: u64) -> Self {
        Self {
            state: State::Ground,
            pos,
            start: pos,
        }
    }

    /// The raw offset of the next byte to feed.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Where the bytes not yet decided begin: an unfinished escape sequence, or a `\r` whose
    /// next byte is not known. Every kept byte before it has been given out.
    pub fn pending(&self) -> Option<u64> {
        (self.state != State::Ground).then_some(self.start)
    }

    /// Feeds the next chunk; kept bytes go to `out` with their raw offsets.
    pub fn push(&mut self, input: &[u8], out: &mut Stripped) {
        self.feed(input, out);
    }

    /// Feeds the next chunk; kept bytes go to `out`.
    pub fn push_text(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.feed(input, out);
    }

    /// The output ended: a pending `\r` is kept, an unfinished sequence dropped.
    pub fn finish(&mut self, out: &mut Stripped) {
        self.end(out);
    }

    /// [`Stripper::finish`] for [`Stripper::push_text`].
    pub fn finish_text(&mut self, out: &mut Vec<u8>) {
        self.end(out);
    }

    fn end(&mut self, out: &mut impl Sink) {
        if self.state == State::Cr {
            out.keep(b'\r', self.start);
        }
        self.state = State::Ground;
    }

    fn feed(&mut self, input: &[u8], out: &mut impl Sink) {
        for &b in input {
            self.step(b, out);
            self.pos += 1;
        }
    }

    /// Enters `state` at the current byte.
    fn begin(&mut self, state: State) {
        self.state = state;
        self.start = self.pos;
    }

    fn step(&mut self, b: u8, out: &mut impl Sink) {
        let at = self.pos;
        match self.state {
            State::Ground => self.ground(b, out),
            State::Cr => {
                if b != b'\n' {
                    out.keep(b'\r', self.start);
                }
                self.state = State::Ground;
                self.ground(b, out);
            }
            State::Esc => match b {
                b'[' => self.state = State::Csi,
                b']' => self.state = State::Osc,
                b'P' | b'X' | b'^' | b'_' => self.state = State::Str,
                0x20..=0x2f => self.state = State::EscInter,
                0x30..=0x7e | CAN | SUB => self.state = State::Ground,
                ESC => self.begin(State::Esc),
                0x00..=0x1f => control(b, at, out),
                // Not a sequence after all: the byte is text.
                _ => {
                    self.state = State::Ground;
                    self.ground(b, out);
                }
            },
            State::EscInter => match b {
                0x20..=0x2f => {}
                0x30..=0x7e | CAN | SUB => self.state = State::Ground,
                ESC => self.begin(State::Esc),
                0x00..=0x1f => control(b, at, out),
                _ => {
                    self.state = State::Ground;
                    self.ground(b, out);
                }
            },
            State::Csi => match b {
                0x40..=0x7e | CAN | SUB => self.state = State::Ground,
                ESC => self.begin(State::Esc),
                // A terminal runs a control met inside a sequence.
                0x00..=0x1f => control(b, at, out),
                // Parameters, intermediates, and whatever else: part of the sequence.
                _ => {}
            },
            State::Osc => match b {
                BEL | CAN | SUB => self.state = State::Ground,
                ESC => self.state = State::StrEsc,
                _ => {}
            },
            State::Str => match b {
                CAN | SUB => self.state = State::Ground,
                ESC => self.state = State::StrEsc,
                _ => {}
            },
            State::StrEsc => match b {
                b'\\' => self.state = State::Ground,
                _ => {
                    // The string ended at that ESC, which begins the next sequence.
                    self.state = State::Esc;
                    self.start = at.saturating_sub(1);
                    self.step(b, out);
                }
            },
        }
    }

    fn ground(&mut self, b: u8, out: &mut impl Sink) {
        match b {
            ESC => self.begin(State::Esc),
            b'\r' => self.begin(State::Cr),
            _ => control_or_text(b, self.pos, out),
        }
    }
}

/// A byte outside any sequence: kept unless it is a control other than `\n` and `\t`.
fn control_or_text(b: u8, at: u64, out: &mut impl Sink) {
    if b >= 0x20 && b != 0x7f {
        out.keep(b, at);
    } else {
        control(b, at, out);
    }
}

/// A C0 control: `\n` and `\t` are kept.
fn control(b: u8, at: u64, out: &mut impl Sink) {
    if b == b'\n' || b == b'\t' {
        out.keep(b, at);
    }
}

/// `input` with its escape sequences left out, as one whole stream.
pub fn strip(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut s = Stripper::new(0);
    s.push_text(input, &mut out);
    s.finish_text(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stripped(input: &[u8]) -> Stripped {
        let mut out = Stripped::default();
        let mut s = Stripper::new(0);
        s.push(input, &mut out);
        s.finish(&mut out);
        out
    }

    #[test]
    fn colours_and_cursor_moves_go() {
        assert_eq!(strip(b"\x1b[1;32mok\x1b[0m done"), b"ok done");
        assert_eq!(strip(b"a\x1b[2K\x1b[1Gb"), b"ab");
        // Private parameters and intermediates (DECSET, DECSCUSR).
        assert_eq!(strip(b"\x1b[?25lx\x1b[?25h\x1b[2 qy"), b"xy");
    }

    #[test]
    fn osc_ends_with_bel_or_st() {
        assert_eq!(strip(b"\x1b]0;title\x07text"), b"text");
        assert_eq!(strip(b"\x1b]0;title\x1b\\text"), b"text");
        // A hyperlink: its text stays, its address goes.
        let link = b"\x1b]8;;http://x.invalid/\x1b\\click\x1b]8;;\x1b\\!";
        assert_eq!(strip(link), b"click!");
    }

    #[test]
    fn strings_and_two_byte_sequences_go() {
        assert_eq!(strip(b"a\x1bPq#0;2;0;0;0\x1b\\b"), b"ab");
        assert_eq!(strip(b"a\x1b_apc\x07still\x1b\\b"), b"ab");
        assert_eq!(strip(b"\x1b(Bx\x1b7y\x1b8\x1b=z"), b"xyz");
        // An ESC inside a string ends it and begins the next sequence.
        assert_eq!(strip(b"\x1b]0;t\x1b[31mred"), b"red");
        // CAN aborts a sequence.
        assert_eq!(strip(b"\x1b[12\x18ok"), b"ok");
    }

    #[test]
    fn controls_but_newline_and_tab_go_and_cr_only_before_newline() {
        assert_eq!(strip(b"a\r\nb\tc\x07\x08d\x7f"), b"a\nb\tcd");
        assert_eq!(strip(b"10%\r20%\r\n"), b"10%\r20%\n");
        assert_eq!(strip(b"end\r"), b"end\r");
        assert_eq!(strip(b"\r\r\n"), b"\r\n");
        // A newline inside a broken sequence still counts.
        assert_eq!(strip(b"\x1b[1\n2Ax"), b"\nx");
    }

    #[test]
    fn utf8_and_c1_bytes_are_text() {
        let text = "Ûber › naïve ✓".as_bytes();
        assert_eq!(strip(text), text);
        let coloured = [b"\x1b[33m".as_slice(), text, b"\x1b[m"].concat();
        assert_eq!(strip(&coloured), text);
    }

    #[test]
    fn every_kept_byte_has_its_raw_offset() {
        let raw = b"\x1b[1mab\x1b[0m\r\nc\rd";
        let s = stripped(raw);
        assert_eq!(s.text, b"ab\nc\rd");
        assert_eq!(s.offsets, vec![4, 5, 11, 12, 13, 14]);
        for (b, at) in s.text.iter().zip(&s.offsets) {
            assert_eq!(raw[*at as usize], *b);
        }
        // The raw range of "b\nc" strips back to it.
        let (start, end) = s.raw_range(1..4).unwrap();
        assert_eq!((start, end), (5, 13));
        assert_eq!(strip(&raw[start as usize..end as usize]), b"b\nc");
        assert_eq!(s.raw_range(2..2), None);
    }

    /// Fed one byte at a time, or cut anywhere in two, the stream strips the same, with the
    /// same offsets: the state carries over.
    #[test]
    fn chunks_cut_anywhere_strip_as_the_whole() {
        let raw: &[u8] =
            b"x\x1b[38;5;196mred\x1b[0m\r\n\x1b]0;t\x1b\\y\x1bPdcs\x1b\\\x1b(Bz\r!\x1b]8;;u\x07k\r";
        let whole = stripped(raw);
        for cut in 0..=raw.len() {
            let mut out = Stripped::default();
            let mut s = Stripper::new(0);
            s.push(&raw[..cut], &mut out);
            s.push(&raw[cut..], &mut out);
            s.finish(&mut out);
            assert_eq!(out, whole, "cut at {cut}");
        }
        let mut out = Stripped::default();
        let mut s = Stripper::new(0);
        for b in raw {
            s.push(std::slice::from_ref(b), &mut out);
        }
        s.finish(&mut out);
        assert_eq!(out, whole);
    }

    #[test]
    fn pending_names_where_an_unfinished_sequence_began() {
        let mut out = Vec::new();
        let mut s = Stripper::new(100);
        s.push_text(b"ab\x1b[3", &mut out);
        assert_eq!(out, b"ab");
        assert_eq!(s.pending(), Some(102));
        assert_eq!(s.pos(), 105);
        s.push_text(b"1mc\r", &mut out);
        assert_eq!(out, b"abc");
        assert_eq!(s.pending(), Some(108), "a \\r not yet known to end a line");
        s.push_text(b"\n\x1b]0;", &mut out);
        assert_eq!(s.pending(), Some(110));
        s.push_text(b"t\x1b", &mut out);
        assert_eq!(
            s.pending(),
            Some(110),
            "still the OSC, unless its ESC begins one"
        );
        s.push_text(b"[1m", &mut out);
        assert_eq!(s.pending(), None);
        s.push_text(b"\x1b]0;t\x1b", &mut out);
        assert_eq!(s.pending(), Some(119));
        s.push_text(b"[", &mut out);
        assert_eq!(
            s.pending(),
            Some(124),
            "the ESC that ended the OSC began a CSI"
        );
        s.push_text(b"m", &mut out);
        assert_eq!(s.pending(), None);
        assert_eq!(out, b"abc\n");
        // An unfinished sequence at the end is dropped; a pending \r kept.
        s.push_text(b"\x1b[", &mut out);
        s.finish_text(&mut out);
        assert_eq!(out, b"abc\n");
        s.push_text(b"\r", &mut out);
        s.finish_text(&mut out);
        assert_eq!(out, b"abc\n\r");
    }
}
