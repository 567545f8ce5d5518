//! Reads that look through terminal escape sequences: plain reads (the bytes without them)
//! and reads that wait until the output matches a pattern. Offsets stay raw: `next` and a
//! match's place are offsets in the output as written, so reads of either kind follow on.

use std::ops::Range;
use std::time::Duration;

use aside_protocol::{Match, TaskId};
use tokio::time::Instant;

use super::{Engine, EngineError, ReadOutput, MAX_READ_BYTES};
use crate::ansi::{Stripped, Stripper};
use crate::config::MAX_WAIT;

/// How much output one step of a scan reads.
const SCAN_CHUNK: usize = 256 << 10;
/// Stripped text a scan keeps from one chunk to the next, so that a match cut by a chunk's
/// end (or by a pause in the output) is found. A match longer than this may be missed.
pub const MATCH_CARRY: usize = 64 << 10;
/// Bytes kept before the carried text for the pattern to look behind (`^`, `\b`): one
/// UTF-8 character.
const CONTEXT: usize = 4;

/// A pattern [`Engine::read_until`] waits for: a regular expression over the output with its
/// escape sequences left out. Multi-line: `^` and `$` match at the start and end of each line
/// (and `$` at the end of the output so far); `(?-m)` turns that off.
#[derive(Debug, Clone)]
pub struct Pattern {
    regex: regex::bytes::Regex,
}

impl Pattern {
    /// The longest pattern taken, in bytes.
    pub const MAX_LEN: usize = 4096;
    /// The most memory a compiled pattern may take: big counted repetitions are refused.
    const SIZE_LIMIT: usize = 1 << 20;

    pub fn new(source: &str) -> Result<Self, PatternError> {
        if source.is_empty() {
            return Err(PatternError::Empty);
        }
        if source.len() > Self::MAX_LEN {
            return Err(PatternError::TooLong {
                len: source.len(),
                max: Self::MAX_LEN,
            });
        }
        let regex = regex::bytes::RegexBuilder::new(source)
            .multi_line(true)
            .size_limit(Self::SIZE_LIMIT)
            .dfa_size_limit(2 * Self::SIZE_LIMIT)
            .build()?;
        Ok(Self { regex })
    }

    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }
}

/// Why a pattern was refused.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    #[error("the pattern is empty")]
    Empty,
    #[error("the pattern is {len} bytes, more than the limit of {max}")]
    TooLong { len: usize, max: usize },
    #[error("the pattern is not a valid regular expression: {0}")]
    Invalid(#[from] regex::Error),
}

/// What [`Engine::read_until`] found.
#[derive(Debug, Clone)]
pub struct UntilOutput {
    /// The raw output from `after` up to the end of the match; without one, up to where the
    /// scan stopped (the end of the output of a task that ended, or, when time ran out, the
    /// end of what was read, short of an unfinished escape sequence). When more than `max`
    /// bytes lead there, only the last `max` of them: `read.offset` is then past `after`.
    /// `read.eof`: the task ended and everything was scanned.
    pub read: ReadOutput,
    /// Where the pattern matched, in raw offsets, and the text it matched.
    pub matched: Option<Match>,
}

impl UntilOutput {
    /// Time ran out before a match or the task's end.
    pub fn timed_out(&self) -> bool {
        self.matched.is_none() && !self.read.eof
    }
}

impl Engine {
    /// Waits up to `wait` (capped at 10 minutes) until the output from `after` on, escape
    /// sequences left out, matches `pattern`, reading it as it comes; returns the raw bytes
    /// up to the end of the match, at most the last `max` of them (see [`UntilOutput`]). The
    /// task ending before a match is an answer of its own (`eof`, no match). A match found
    /// at the very end of the output so far is taken as it stands, even if more output
    /// would have made it longer (`\S+` at the end): a pattern that ends with what must come
    /// (`\n`, `\b`) waits for it.
    pub async fn read_until(
        &self,
        id: TaskId,
        after: u64,
        pattern: &Pattern,
        wait: Duration,
        max: usize,
    ) -> Result<UntilOutput, EngineError> {
        let max = max.clamp(1, MAX_READ_BYTES);
        let deadline = Instant::now() + wait.min(MAX_WAIT);
        let mut scan = Scan::new(after);
        let (end, matched) = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let r = self
                .read(id, scan.stripper.pos(), SCAN_CHUNK, Some(left), false)
                .await?;
            scan.push(r.offset, &r.data, r.eof);
            let caught_up = r.eof || r.next >= r.total;
            if let Some(found) = scan.find(pattern, caught_up) {
                let (offset, end) = scan.raw_of(found.clone());
                let text = String::from_utf8_lossy(&scan.kept.text[found]).into_owned();
                break (end, Some(Match { offset, end, text }));
            }
            if r.eof {
                break (r.next, None);
            }
            if r.data.is_empty() || Instant::now() >= deadline {
                break (scan.decided(), None);
            }
            scan.trim();
        };
        let read = self.read_up_to(id, after, end, max).await?;
        Ok(UntilOutput { read, matched })
    }

    /// The output from `after` up to `end`, or its last `max` bytes when it is longer: what
    /// [`Engine::read_until`] returns, for a caller that scanned with a small `max` and reads
    /// the bytes later.
    pub async fn read_up_to(
        &self,
        id: TaskId,
        after: u64,
        end: u64,
        max: usize,
    ) -> Result<ReadOutput, EngineError> {
        let max = max.clamp(1, MAX_READ_BYTES);
        let from = end.saturating_sub(max as u64).max(after).min(end);
        let want = usize::try_from(end - from).unwrap_or(max);
        let mut read = self.read(id, from, want.max(1), None, false).await?;
        read.data.truncate(want);
        read.next = read.offset + read.data.len() as u64;
        read.eof = read.task.is_terminal() && read.next >= read.total;
        Ok(read)
    }

    /// [`Engine::read`] with escape sequences left out of `data`; `next` stays a raw offset.
    /// A sequence cut by the end of what is there is held back for the next read (`next`
    /// stops before it), unless the task has ended; a read that would hold back all it found
    /// waits (within `wait`) for the rest. One unfinished sequence longer than `max` is
    /// dropped whole.
    pub async fn read_plain(
        &self,
        id: TaskId,
        after: u64,
        max: usize,
        wait: Option<Duration>,
        foreground: bool,
    ) -> Result<ReadOutput, EngineError> {
        let max = max.clamp(1, MAX_READ_BYTES);
        let deadline = wait.map(|w| Instant::now() + w.min(MAX_WAIT));
        let left = || deadline.map(|d| d.saturating_duration_since(Instant::now()));
        loop {
            let mut r = self.read(id, after, max, left(), foreground).await?;
            let mut stripper = Stripper::new(r.offset);
            let mut text = Vec::with_capacity(r.data.len());
            stripper.push_text(&r.data, &mut text);
            match stripper.pending() {
                _ if r.eof => stripper.finish_text(&mut text),
                None => {}
                // Held back; the next read takes it up from its start.
                Some(start) if start > r.offset => r.next = start,
                // Nothing but one sequence, and no more of it can come in this read.
                Some(_) if r.data.len() >= max => {}
                Some(start) => {
                    // Nothing but the start of a sequence: wait for more, or the end.
                    let more = self.read(id, r.next, 1, left(), foreground).await?;
                    if more.data.is_empty() && !more.eof {
                        r.task = more.task;
                        r.total = more.total;
                        r.next = start;
                        r.data = Vec::new();
                        return Ok(r);
                    }
                    continue;
                }
            }
            r.data = text;
            return Ok(r);
        }
    }
}

/// The stripped output a scan has seen: the last [`MATCH_CARRY`] bytes of it, with their raw
/// offsets.
struct Scan {
    stripper: Stripper,
    kept: Stripped,
    /// Matches begin at this index of `kept` or later; the bytes before it are context.
    from: usize,
    /// The raw offset where the stripped text begins, for an empty match with none kept.
    base: u64,
}

impl Scan {
    fn new(after: u64) -> Self {
        Self {
            stripper: Stripper::new(after),
            kept: Stripped::default(),
            from: 0,
            base: after,
        }
    }

    /// Feeds the chunk read at raw offset `at`; `ended`: it is the last.
    fn push(&mut self, at: u64, data: &[u8], ended: bool) {
        if !data.is_empty() && at != self.stripper.pos() {
            // The output before `at` is gone: the scan starts again there.
            *self = Scan::new(at);
        }
        self.stripper.push(data, &mut self.kept);
        if ended {
            self.stripper.finish(&mut self.kept);
        }
    }

    /// The first match in the kept text. One that reaches its end while more output is
    /// there already waits for it: it may go on.
    fn find(&self, pattern: &Pattern, caught_up: bool) -> Option<Range<usize>> {
        let m = pattern.regex.find_at(&self.kept.text, self.from)?;
        (caught_up || m.end() < self.kept.len()).then(|| m.range())
    }

    /// The raw range of the kept bytes `found`. An empty match sits before the next kept
    /// byte, or after the last.
    fn raw_of(&self, found: Range<usize>) -> (u64, u64) {
        if let Some(range) = self.kept.raw_range(found.clone()) {
            return range;
        }
        let at = match self.kept.offsets.get(found.start) {
            Some(at) => *at,
            None => self.kept.offsets.last().map_or(self.base, |last| last + 1),
        };
        (at, at)
    }

    /// The raw offset up to which every byte is decided: short of an unfinished sequence.
    fn decided(&self) -> u64 {
        self.stripper
            .pending()
            .unwrap_or_else(|| self.stripper.pos())
    }

    /// Drops all but the last [`MATCH_CARRY`] kept bytes (and their context).
    fn trim(&mut self) {
        let len = self.kept.len();
        if len > MATCH_CARRY + CONTEXT {
            self.kept.drain_front(len - MATCH_CARRY - CONTEXT);
            self.from = CONTEXT;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(p: &str) -> Pattern {
        Pattern::new(p).unwrap()
    }

    /// Feeds `chunks` to a scan as the engine would (each one found at the end of the output
    /// so far); returns the first match's raw range and text.
    fn scan_chunks(p: &str, chunks: &[&[u8]]) -> Option<(u64, u64, String)> {
        let p = pattern(p);
        let mut scan = Scan::new(0);
        for (i, c) in chunks.iter().enumerate() {
            let at = scan.stripper.pos();
            scan.push(at, c, i + 1 == chunks.len());
            // Where a chunk ends, more output is there already.
            if let Some(found) = scan.find(&p, i + 1 == chunks.len()) {
                let (s, e) = scan.raw_of(found.clone());
                return Some((s, e, String::from_utf8_lossy(&scan.kept.text[found]).into()));
            }
            scan.trim();
        }
        None
    }

    #[test]
    fn a_match_through_colours_maps_to_raw_offsets() {
        let raw = b"starting\n\x1b[32mready\x1b[0m on \x1b[1mhttp://127.0.0.1:8080\x1b[0m\n";
        let (s, e, text) = scan_chunks(r"ready on http://\S+", &[raw]).unwrap();
        assert_eq!(text, "ready on http://127.0.0.1:8080");
        assert_eq!(s, 14);
        assert_eq!(
            crate::ansi::strip(&raw[s as usize..e as usize]),
            text.as_bytes()
        );
        assert_eq!(&raw[e as usize..], b"\x1b[0m\n");
    }

    #[test]
    fn a_match_cut_by_a_chunk_or_an_escape_is_found() {
        let raw: &[u8] = b"x\n\x1b[1mre\x1b[0mady on port 80\n";
        for cut in 0..=raw.len() {
            let found = scan_chunks(r"ready on port \d+", &[&raw[..cut], &raw[cut..]]);
            let (s, e, text) = found.unwrap_or_else(|| panic!("cut at {cut}"));
            assert_eq!(text, "ready on port 80", "cut at {cut}");
            assert_eq!((s, e), (6, 26), "cut at {cut}");
        }
    }

    #[test]
    fn the_carry_keeps_a_match_across_many_chunks_and_forgets_far_text() {
        let filler = vec![b'.'; 100 << 10];
        // "a" long ago and "b" now: too far apart to be seen together.
        let far = scan_chunks("a[.]*b", &[b"a", &filler, b"b"]);
        assert_eq!(far, None);
        // A match cut in three by chunks, preceded by lots of output.
        let near = scan_chunks("start.*end", &[&filler, b"sta", b"rt mid", b"dle end"]);
        let (s, e, text) = near.unwrap();
        assert_eq!(text, "start middle end");
        assert_eq!((s, e), (filler.len() as u64, filler.len() as u64 + 16));
    }

    #[test]
    fn lines_anchor_even_after_the_carry_was_trimmed() {
        let mut filler = vec![b'x'; 100 << 10];
        filler.push(b'\n');
        let found = scan_chunks("^ready$", &[&filler, b"not ready\nready\n"]).unwrap();
        assert_eq!(found.2, "ready");
        assert_eq!(found.0, filler.len() as u64 + 10);
        // A trimmed carry does not begin a line.
        let long = vec![b'x'; 100 << 10];
        assert_eq!(scan_chunks("^x", &[b"y", &long, b"x"]), None);
    }

    #[test]
    fn a_match_at_the_end_waits_while_more_output_is_there() {
        let p = pattern(r"port \d+");
        let mut scan = Scan::new(0);
        scan.push(0, b"port 80", false);
        assert_eq!(scan.find(&p, false), None, "more may follow: 8080");
        assert_eq!(scan.find(&p, true), Some(0..7));
        scan.push(7, b"80 up", false);
        assert_eq!(scan.find(&p, false), Some(0..9));
    }

    #[test]
    fn empty_matches_sit_between_bytes() {
        let p = pattern("(?-m)$");
        let mut scan = Scan::new(5);
        scan.push(5, b"ab\x1b[0m", false);
        let found = scan.find(&p, true).unwrap();
        assert_eq!(scan.raw_of(found), (7, 7));
        let mut empty = Scan::new(9);
        empty.push(9, b"\x1b[0m", false);
        let found = empty.find(&p, true).unwrap();
        assert_eq!(empty.raw_of(found), (9, 9));
    }

    /// Output a foreground task keeps in memory (as an agent's is) is scanned as it comes;
    /// the task's end answers a pattern that never comes, and time one that may.
    #[test]
    fn read_until_follows_output_in_memory_to_a_match_an_end_or_the_time() {
        use aside_protocol::{Limit, ShellCommand, StartMode, TaskSpec};
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let e = Engine::open(dir.path().to_path_buf(), crate::Config::default()).unwrap();
            let fg = |script: &str| {
                let mut spec = TaskSpec::shell(ShellCommand::Script(script.into()));
                spec.mode = StartMode::Foreground;
                spec.wait = Some(Limit::NONE);
                spec.cwd = Some("/".into());
                spec
            };
            let script = "printf 'boot\\n\\033[32mrea'; sleep 0.3; \
                          printf 'dy\\033[0m on :80\\n'; sleep 0.3; exit 2";
            let t = e.start("t", fg(script)).await.unwrap().task;
            let wait = Duration::from_secs(20);
            let u = e
                .read_until(t.id, 0, &pattern(r"ready on :\d+\n"), wait, 1000)
                .await
                .unwrap();
            assert!(u.read.task.log_path.is_none(), "read from memory");
            assert_eq!(u.matched.unwrap().text, "ready on :80\n");
            assert_eq!(u.read.data, b"boot\n\x1b[32mready\x1b[0m on :80\n");
            assert_eq!((u.read.offset, u.read.next), (0, 27));

            let never = pattern("never");
            let u = e.read_until(t.id, 5, &never, wait, 1000).await.unwrap();
            assert!(u.read.eof && u.matched.is_none(), "{u:?}");
            assert!(u.read.task.is_terminal());
            assert_eq!(u.read.data, b"\x1b[32mready\x1b[0m on :80\n");

            let running = e.start("t", fg("printf x; sleep 30")).await.unwrap().task;
            let short = Duration::from_millis(300);
            let started = Instant::now();
            let u = e
                .read_until(running.id, 0, &never, short, 1000)
                .await
                .unwrap();
            assert!(u.timed_out(), "{u:?}");
            assert!(started.elapsed() >= short);
            assert_eq!(u.read.data, b"x");
            e.shutdown().await;
        });
    }

    #[test]
    fn bad_and_huge_patterns_are_refused() {
        assert!(matches!(Pattern::new(""), Err(PatternError::Empty)));
        assert!(matches!(
            Pattern::new("(unclosed"),
            Err(PatternError::Invalid(_))
        ));
        assert!(matches!(
            Pattern::new(&"a".repeat(Pattern::MAX_LEN + 1)),
            Err(PatternError::TooLong { .. })
        ));
        let e = Pattern::new(r"\w{1000}{1000}").unwrap_err();
        assert!(matches!(e, PatternError::Invalid(_)), "{e}");
        assert!(pattern("(?i)READY").regex.is_match(b"ready"));
    }
}
