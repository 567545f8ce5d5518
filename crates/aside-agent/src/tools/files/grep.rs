//! The `grep` tool: file contents searched line by line with a regular expression. Each file
//! streams through ripgrep's searcher, so a large file is never read whole.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use globset::GlobMatcher;
use grep_matcher::LineTerminator;
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::sinks::Bytes;
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder};
use schemars::JsonSchema;
use serde::Deserialize;

use super::paths::{display_path, io_error, resolve};
use super::text::{cut_line, text_reader};
use super::walk::{compile_glob, modified, newest_first, walk_files};
use super::{FileToolError, Limits};

/// Arguments of the `grep` tool.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
pub struct GrepArgs {
    /// Regular expression (Rust regex syntax) matched against each line.
    pub pattern: String,
    /// File or directory to search, absolute or relative to the working directory. Defaults
    /// to the working directory.
    #[serde(default)]
    pub path: Option<String>,
    /// Only search files matching this glob, e.g. "*.rs" or "*.{ts,tsx}". Without a `/` it
    /// matches file names; with one, paths relative to the searched directory.
    #[serde(default)]
    pub glob: Option<String>,
    /// Match regardless of letter case. Defaults to false.
    #[serde(default)]
    pub case_insensitive: Option<bool>,
    /// What to output: "files_with_matches" (the default), "content" or "count".
    #[serde(default)]
    pub output_mode: Option<OutputMode>,
}

/// What `grep` outputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputMode {
    /// The paths of files with at least one matching line, newest first.
    #[default]
    FilesWithMatches,
    /// Each matching line as `path:line:text`.
    Content,
    /// `path:count` for each file with matching lines.
    Count,
}

/// Searches file contents line by line with a regular expression.
pub fn grep(cwd: &Path, args: &GrepArgs, limits: &Limits) -> Result<String, FileToolError> {
    let matcher = line_matcher(&args.pattern, args.case_insensitive.unwrap_or(false))?;
    let filter = args.glob.as_deref().map(NameFilter::new).transpose()?;
    let root = args
        .path
        .as_deref()
        .map_or_else(|| cwd.to_path_buf(), |p| resolve(cwd, p));
    let shown_root = display_path(cwd, &root);
    let meta = match fs::metadata(&root) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(FileToolError::NoSuchPath { path: shown_root })
        }
        Err(e) => return Err(io_error("inspect", &shown_root, e)),
    };
    // A file named explicitly is searched even if a glob or .gitignore would skip it, and a
    // problem with it is reported instead of skipped.
    let explicit_file = !meta.is_dir();
    let files: Box<dyn Iterator<Item = PathBuf>> = if explicit_file {
        Box::new(std::iter::once(root.clone()))
    } else {
        let base = root.clone();
        Box::new(
            walk_files(&root).filter(move |path| match (&filter, path.strip_prefix(&base)) {
                (Some(filter), Ok(rel)) => filter.matches(rel),
                _ => true,
            }),
        )
    };

    let mode = args.output_mode.unwrap_or_default();
    let max = limits.max_results.max(1);
    let max_chars = limits.max_line_chars.max(1);
    let mut searcher = line_searcher();
    let mut lines: Vec<String> = Vec::new();
    let mut matched_files: Vec<(SystemTime, PathBuf)> = Vec::new();
    let mut total = 0usize;
    for path in files {
        let wanted = match mode {
            OutputMode::FilesWithMatches => Wanted::Any,
            OutputMode::Count => Wanted::Count,
            OutputMode::Content => Wanted::Lines {
                keep: max.saturating_sub(lines.len()),
                max_chars,
            },
        };
        // Unreadable and binary files inside a tree are skipped, as ripgrep does, rather than
        // failing the whole search.
        let found = match search_file(&mut searcher, &matcher, &path, wanted) {
            Ok(Some(found)) => found,
            Ok(None) if explicit_file => return Err(FileToolError::Binary { path: shown_root }),
            Err(e) if explicit_file => return Err(io_error("read", &shown_root, e)),
            Ok(None) | Err(_) => continue,
        };
        if found.count == 0 {
            continue;
        }
        match mode {
            OutputMode::FilesWithMatches => matched_files.push((modified(&path), path)),
            OutputMode::Count => {
                total += 1;
                if lines.len() < max {
                    lines.push(format!("{}:{}", display_path(cwd, &path), found.count));
                }
            }
            OutputMode::Content => {
                total += found.count;
                let shown_path = display_path(cwd, &path);
                for (number, line) in found.lines {
                    lines.push(format!("{shown_path}:{number}:{line}"));
                }
            }
        }
    }
    if mode == OutputMode::FilesWithMatches {
        newest_first(&mut matched_files);
        total = matched_files.len();
        lines = matched_files
            .iter()
            .take(max)
            .map(|(_, path)| display_path(cwd, path))
            .collect();
    }
    if total == 0 {
        return Ok(format!("no matches for {} in {shown_root}", args.pattern));
    }
    let mut out = lines.join("\n");
    if total > max {
        let what = match mode {
            OutputMode::FilesWithMatches => "matching files, newest first",
            OutputMode::Content => "matching lines",
            OutputMode::Count => "files with matches",
        };
        out.push_str(&format!(
            "\n\n[showing {max} of {total} {what}; narrow the pattern, path or glob to see the rest]"
        ));
    }
    Ok(out)
}

/// The regex, matched against one line at a time, without its line ending: `\n` or `\r\n`,
/// as output shows lines. `^` and `$` anchor at the line's ends, and no match runs into the
/// next line.
fn line_matcher(pattern: &str, case_insensitive: bool) -> Result<RegexMatcher, FileToolError> {
    RegexMatcherBuilder::new()
        .case_insensitive(case_insensitive)
        .multi_line(true)
        .crlf(true)
        .build(pattern)
        .map_err(|e| FileToolError::InvalidRegex {
            pattern: pattern.to_owned(),
            message: e.to_string(),
        })
}

fn line_searcher() -> Searcher {
    SearcherBuilder::new()
        // Lines end in `\n` or `\r\n`, as for the matcher (the searcher refuses a mismatch).
        .line_terminator(LineTerminator::crlf())
        .line_number(true)
        // Binary files are recognized before the search, the same way `read` does.
        .binary_detection(BinaryDetection::none())
        // The bytes are searched as they are: no transcoding after a byte-order mark.
        .bom_sniffing(false)
        .build()
}

/// What a search needs from each file.
#[derive(Clone, Copy)]
enum Wanted {
    /// Whether any line matches: the search stops at the first.
    Any,
    /// How many lines match.
    Count,
    /// How many lines match, and the first `keep` of them, cut to `max_chars`.
    Lines { keep: usize, max_chars: usize },
}

/// The matching lines of one file.
struct Found {
    count: usize,
    /// Line numbers and text, as many as were wanted.
    lines: Vec<(u64, String)>,
}

/// Searches one file; None when it is binary.
fn search_file(
    searcher: &mut Searcher,
    matcher: &RegexMatcher,
    path: &Path,
    wanted: Wanted,
) -> io::Result<Option<Found>> {
    let Some(text) = text_reader(File::open(path)?)? else {
        return Ok(None);
    };
    let mut found = Found {
        count: 0,
        lines: Vec::new(),
    };
    let sink = Bytes(|number, line| {
        found.count += 1;
        if let Wanted::Lines { keep, max_chars } = wanted {
            if found.lines.len() < keep {
                let line = String::from_utf8_lossy(without_terminator(line));
                found
                    .lines
                    .push((number, cut_line(&line, max_chars, false).into_owned()));
            }
        }
        Ok(!matches!(wanted, Wanted::Any))
    });
    searcher.search_reader(matcher, text, sink)?;
    Ok(Some(found))
}

/// A line as shown: without its `\n`, nor the `\r` of a `\r\n`.
fn without_terminator(line: &[u8]) -> &[u8] {
    match line.strip_suffix(b"\n") {
        Some(line) => line.strip_suffix(b"\r").unwrap_or(line),
        None => line,
    }
}

/// Matches `grep`'s `glob` filter the way .gitignore does: against the file name unless the
/// pattern contains a `/`, so "*.rs" finds Rust files at any depth.
struct NameFilter {
    matcher: GlobMatcher,
    whole_path: bool,
}

impl NameFilter {
    fn new(pattern: &str) -> Result<Self, FileToolError> {
        let pattern = pattern.strip_prefix("./").unwrap_or(pattern);
        Ok(NameFilter {
            matcher: compile_glob(pattern)?,
            whole_path: pattern.contains('/'),
        })
    }

    fn matches(&self, rel: &Path) -> bool {
        if self.whole_path {
            self.matcher.is_match(rel)
        } else {
            rel.file_name()
                .is_some_and(|name| self.matcher.is_match(name))
        }
    }
}

#[cfg(test)]
#[path = "grep_tests.rs"]
mod tests;
