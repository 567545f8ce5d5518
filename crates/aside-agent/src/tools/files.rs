//! The file tools: read, write, edit, glob, grep.
//!
//! Each tool is a plain synchronous function (callers run it through `spawn_blocking`) that
//! takes a working directory, its deserialized arguments and, where output can grow, the
//! [`Limits`] that keep it small enough for a model's context. Relative paths resolve against
//! the working directory, and paths in output are shown relative to it when they lie under it.
//! Every error's text is written for a model: it says what is wrong and what to do instead.

use std::borrow::Cow;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, BufRead, BufReader, Cursor, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use globset::{GlobBuilder, GlobMatcher};
use ignore::WalkBuilder;
use regex::RegexBuilder;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

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

/// Arguments of the `write` tool.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
pub struct WriteArgs {
    /// Path of the file to write, absolute or relative to the working directory. Missing
    /// parent directories are created; an existing file is replaced.
    #[serde(alias = "file_path")]
    pub path: String,
    /// The complete new content of the file.
    pub content: String,
}

/// Arguments of the `edit` tool.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
pub struct EditArgs {
    /// Path of the file to edit, absolute or relative to the working directory.
    #[serde(alias = "file_path")]
    pub path: String,
    /// The exact text to replace, including whitespace and indentation. It must occur exactly
    /// once in the file unless replace_all is set.
    pub old_string: String,
    /// The text to put in its place.
    pub new_string: String,
    /// Replace every occurrence of old_string instead of requiring it to be unique.
    #[serde(default, deserialize_with = "null_as_default")]
    pub replace_all: bool,
}

/// Arguments of the `glob` tool.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
pub struct GlobArgs {
    /// Glob pattern matched against paths relative to the searched directory, e.g. "**/*.rs"
    /// for Rust files at any depth or "src/*.ts" for TypeScript files directly in src. `*`
    /// does not cross `/`; `**` does.
    pub pattern: String,
    /// Directory to search, absolute or relative to the working directory. Defaults to the
    /// working directory.
    #[serde(default)]
    pub path: Option<String>,
}

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

/// Reads a text file as numbered lines, like `cat -n`.
pub fn read(cwd: &Path, args: &ReadArgs, limits: &Limits) -> Result<String, FileToolError> {
    let path = resolve(cwd, &args.path);
    let shown = display_path(cwd, &path);
    let meta = file_metadata(&path, &shown)?;
    if meta.len() == 0 {
        return Ok(format!("{shown} is empty (0 bytes)"));
    }
    let mut file = File::open(&path).map_err(|e| io_error("open", &shown, e))?;
    let mut head = Vec::with_capacity(BINARY_SNIFF_BYTES);
    (&mut file)
        .take(BINARY_SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| io_error("read", &shown, e))?;
    if is_binary(&head) {
        return Err(FileToolError::Binary { path: shown });
    }
    let mut reader = BufReader::new(Cursor::new(head).chain(file));

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

/// Writes a whole file, creating missing parent directories.
pub fn write(cwd: &Path, args: &WriteArgs) -> Result<String, FileToolError> {
    let path = resolve(cwd, &args.path);
    let shown = display_path(cwd, &path);
    let existing = match fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => return Err(FileToolError::IsDirectory { path: shown }),
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_error("inspect", &shown, e)),
    };
    match &existing {
        Some(meta) => {
            if meta.permissions().readonly() {
                return Err(FileToolError::ReadOnly { path: shown });
            }
            let target = fs::canonicalize(&path).map_err(|e| io_error("resolve", &shown, e))?;
            write_atomic(&target, args.content.as_bytes(), Some(meta.permissions()))
                .map_err(|e| io_error("write", &shown, e))?;
        }
        None => {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)
                    .map_err(|e| io_error("create the directory", &display_path(cwd, parent), e))?;
            }
            write_atomic(&path, args.content.as_bytes(), None)
                .map_err(|e| io_error("write", &shown, e))?;
        }
    }
    let how = if existing.is_some() {
        "replaced"
    } else {
        "new file"
    };
    Ok(format!(
        "wrote {} bytes to {shown} ({how})",
        args.content.len()
    ))
}

/// Replaces exact text in a file, refusing ambiguous edits so a model cannot change the wrong
/// place by accident.
pub fn edit(cwd: &Path, args: &EditArgs) -> Result<String, FileToolError> {
    if args.old_string.is_empty() {
        return Err(FileToolError::EmptyOldString);
    }
    if args.old_string == args.new_string {
        return Err(FileToolError::NoChange);
    }
    let path = resolve(cwd, &args.path);
    let shown = display_path(cwd, &path);
    let meta = file_metadata(&path, &shown)?;
    if meta.permissions().readonly() {
        return Err(FileToolError::ReadOnly { path: shown });
    }
    let bytes = fs::read(&path).map_err(|e| io_error("read", &shown, e))?;
    let content = String::from_utf8(bytes).map_err(|_| FileToolError::NotUtf8 {
        path: shown.clone(),
    })?;

    let (mut old, mut new) = (
        Cow::Borrowed(args.old_string.as_str()),
        Cow::Borrowed(args.new_string.as_str()),
    );
    let mut count = content.matches(old.as_ref()).count();
    // Models write "\n"; a file with Windows line endings still deserves a working edit.
    if count == 0 && content.contains("\r\n") && old.contains('\n') && !old.contains("\r\n") {
        old = Cow::Owned(old.replace('\n', "\r\n"));
        new = Cow::Owned(new.replace('\n', "\r\n"));
        count = content.matches(old.as_ref()).count();
    }
    if count == 0 {
        return Err(FileToolError::OldStringNotFound { path: shown });
    }
    if count > 1 && !args.replace_all {
        return Err(FileToolError::AmbiguousOldString { path: shown, count });
    }
    let updated = if args.replace_all {
        content.replace(old.as_ref(), &new)
    } else {
        content.replacen(old.as_ref(), &new, 1)
    };
    let target = fs::canonicalize(&path).map_err(|e| io_error("resolve", &shown, e))?;
    write_atomic(&target, updated.as_bytes(), Some(meta.permissions()))
        .map_err(|e| io_error("write", &shown, e))?;
    let noun = if count == 1 {
        "occurrence"
    } else {
        "occurrences"
    };
    Ok(format!("replaced {count} {noun} in {shown}"))
}

/// Lists files matching a glob pattern, newest first.
pub fn glob(cwd: &Path, args: &GlobArgs, limits: &Limits) -> Result<String, FileToolError> {
    let root = args
        .path
        .as_deref()
        .map_or_else(|| cwd.to_path_buf(), |p| resolve(cwd, p));
    let shown_root = display_path(cwd, &root);
    match fs::metadata(&root) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(FileToolError::NotADirectory { path: shown_root }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(FileToolError::NoSuchDirectory { path: shown_root })
        }
        Err(e) => return Err(io_error("inspect", &shown_root, e)),
    }
    let pattern = args.pattern.strip_prefix("./").unwrap_or(&args.pattern);
    let matcher = compile_glob(pattern)?;

    let mut found: Vec<(SystemTime, PathBuf)> = walk_files(&root)
        .filter(|path| {
            path.strip_prefix(&root)
                .is_ok_and(|rel| matcher.is_match(rel))
        })
        .map(|path| (modified(&path), path))
        .collect();
    if found.is_empty() {
        return Ok(format!("no files match {} in {shown_root}", args.pattern));
    }
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let total = found.len();
    let max = limits.max_results.max(1);
    let mut out = found
        .iter()
        .take(max)
        .map(|(_, path)| display_path(cwd, path))
        .collect::<Vec<_>>()
        .join("\n");
    if total > max {
        out.push_str(&format!(
            "\n\n[showing {max} of {total} matching files, newest first; narrow the pattern or path to see the rest]"
        ));
    }
    Ok(out)
}

/// Searches file contents line by line with a regular expression.
pub fn grep(cwd: &Path, args: &GrepArgs, limits: &Limits) -> Result<String, FileToolError> {
    let regex = RegexBuilder::new(&args.pattern)
        .case_insensitive(args.case_insensitive.unwrap_or(false))
        .build()
        .map_err(|e| FileToolError::InvalidRegex {
            pattern: args.pattern.clone(),
            message: e.to_string(),
        })?;
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
    let mut lines: Vec<String> = Vec::new();
    let mut matched_files: Vec<(SystemTime, PathBuf)> = Vec::new();
    let mut total = 0usize;
    for path in files {
        // Unreadable and binary files inside a tree are skipped, as ripgrep does, rather than
        // failing the whole search.
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if explicit_file => return Err(io_error("read", &shown_root, e)),
            Err(_) => continue,
        };
        if is_binary(&bytes) {
            if explicit_file {
                return Err(FileToolError::Binary { path: shown_root });
            }
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        match mode {
            OutputMode::FilesWithMatches => {
                if text.lines().any(|line| regex.is_match(line)) {
                    matched_files.push((modified(&path), path));
                }
            }
            OutputMode::Count => {
                let count = text.lines().filter(|line| regex.is_match(line)).count();
                if count > 0 {
                    total += 1;
                    if lines.len() < max {
                        lines.push(format!("{}:{count}", display_path(cwd, &path)));
                    }
                }
            }
            OutputMode::Content => {
                let shown_path = display_path(cwd, &path);
                for (index, line) in text.lines().enumerate() {
                    if !regex.is_match(line) {
                        continue;
                    }
                    total += 1;
                    if lines.len() < max {
                        let line = cut_line(line, max_chars, false);
                        lines.push(format!("{shown_path}:{}:{line}", index + 1));
                    }
                }
            }
        }
    }
    if mode == OutputMode::FilesWithMatches {
        matched_files.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
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

/// Accepts `null` for a field with a default, because some models send every optional field.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
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

/// Compiles a glob in which `*` stays within one path component and only `**` crosses `/`.
fn compile_glob(pattern: &str) -> Result<GlobMatcher, FileToolError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|e| FileToolError::InvalidGlob {
            pattern: pattern.to_owned(),
            message: e.kind().to_string(),
        })
}

/// Regular files under `root` in a stable order, skipping what .gitignore and .ignore files
/// exclude and hidden entries such as `.git`, also outside a git repository.
fn walk_files(root: &Path) -> impl Iterator<Item = PathBuf> {
    WalkBuilder::new(root)
        .require_git(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .build()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_some_and(|t| t.is_file()))
        .map(ignore::DirEntry::into_path)
}

/// Metadata of a file the tool must read, with the errors a model can act on.
fn file_metadata(path: &Path, shown: &str) -> Result<Metadata, FileToolError> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(FileToolError::IsDirectory {
            path: shown.to_owned(),
        }),
        Ok(meta) => Ok(meta),
        Err(e) => Err(io_error("read", shown, e)),
    }
}

/// Wraps an I/O error, turning "not found" into the clearer [`FileToolError::NotFound`].
fn io_error(action: &'static str, shown: &str, error: io::Error) -> FileToolError {
    if error.kind() == io::ErrorKind::NotFound {
        FileToolError::NotFound {
            path: shown.to_owned(),
        }
    } else {
        FileToolError::Io {
            action,
            path: shown.to_owned(),
            error,
        }
    }
}

/// Resolves a path given by the model against the working directory.
fn resolve(cwd: &Path, raw: &str) -> PathBuf {
    cwd.join(raw)
}

/// How a path appears in output: relative to the working directory when under it, else
/// absolute, so the model can pass it straight back to another tool.
fn display_path(cwd: &Path, path: &Path) -> String {
    let path = normalize(path);
    match path.strip_prefix(normalize(cwd)) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
        Ok(rel) => rel.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

/// Removes `.` and resolves `..` lexically, for display only; file access uses the path as
/// given so symlinks behave as the operating system says.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    out
}

/// Whether bytes look binary: a NUL byte near the start, the test git and grep use.
fn is_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(BINARY_SNIFF_BYTES)].contains(&0)
}

fn modified(path: &Path) -> SystemTime {
    fs::metadata(path)
        .and_then(|meta| meta.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Cuts a line to `max_chars` characters with a marker saying so; `already_cut` marks a line
/// whose tail was dropped while reading.
fn cut_line(line: &str, max_chars: usize, already_cut: bool) -> Cow<'_, str> {
    let end = line.char_indices().nth(max_chars).map(|(index, _)| index);
    match end {
        None if !already_cut => Cow::Borrowed(line),
        _ => {
            let kept = &line[..end.unwrap_or(line.len())];
            Cow::Owned(format!("{kept}… [line cut at {max_chars} characters]"))
        }
    }
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

/// Gives each temporary file a distinct name, also across threads of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `target` with `content` through a temporary file in the same directory and a
/// rename, so readers never see a half-written file and a failed write leaves it intact.
fn write_atomic(
    target: &Path,
    content: &[u8],
    permissions: Option<fs::Permissions>,
) -> io::Result<()> {
    let dir = target
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let temp = dir.join(format!(
        ".{}.aside-{}-{}.tmp",
        name.to_string_lossy(),
        process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = write_then_rename(&temp, target, content, permissions);
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

fn write_then_rename(
    temp: &Path,
    target: &Path,
    content: &[u8],
    permissions: Option<fs::Permissions>,
) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(temp)?;
    file.write_all(content)?;
    if let Some(permissions) = permissions {
        file.set_permissions(permissions)?;
    }
    // Flushed before the rename so a crash cannot leave an empty file in place of the old one.
    file.sync_all()?;
    fs::rename(temp, target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tempfile::TempDir;

    fn setup(files: &[(&str, &str)]) -> TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        dir
    }

    fn read_args(path: &str, offset: Option<usize>, limit: Option<usize>) -> ReadArgs {
        ReadArgs {
            path: path.to_owned(),
            offset,
            limit,
        }
    }

    fn numbered(lines: usize) -> String {
        (1..=lines).map(|n| format!("line {n}\n")).collect()
    }

    fn set_mtime(path: &Path, secs_ago: u64) {
        let time = SystemTime::now() - Duration::from_secs(secs_ago);
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(time)
            .unwrap();
    }

    fn edit_args(path: &str, old: &str, new: &str, replace_all: bool) -> EditArgs {
        EditArgs {
            path: path.to_owned(),
            old_string: old.to_owned(),
            new_string: new.to_owned(),
            replace_all,
        }
    }

    fn glob_args(pattern: &str, path: Option<&str>) -> GlobArgs {
        GlobArgs {
            pattern: pattern.to_owned(),
            path: path.map(str::to_owned),
        }
    }

    fn grep_args(pattern: &str) -> GrepArgs {
        GrepArgs {
            pattern: pattern.to_owned(),
            path: None,
            glob: None,
            case_insensitive: None,
            output_mode: None,
        }
    }

    // ---- read ----

    #[test]
    fn read_numbers_lines_like_cat_n() {
        let dir = setup(&[("a.txt", "alpha\nbeta\r\n\ngamma")]);
        let out = read(
            dir.path(),
            &read_args("a.txt", None, None),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(out, "     1\talpha\n     2\tbeta\n     3\t\n     4\tgamma");
    }

    #[test]
    fn read_absolute_path_and_file_path_alias() {
        let dir = setup(&[("a.txt", "x\n")]);
        let abs = dir.path().join("a.txt");
        let args: ReadArgs =
            serde_json::from_value(serde_json::json!({"file_path": abs, "unknown": 1})).unwrap();
        let out = read(Path::new("/"), &args, &Limits::default()).unwrap();
        assert_eq!(out, "     1\tx");
    }

    #[test]
    fn read_offset_and_limit_with_continuation_note() {
        let dir = setup(&[("a.txt", &numbered(10))]);
        let out = read(
            dir.path(),
            &read_args("a.txt", Some(3), Some(4)),
            &Limits::default(),
        )
        .unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "     3\tline 3");
        assert_eq!(lines[3], "     6\tline 6");
        assert_eq!(lines[4], "");
        assert!(lines[5].contains("lines 3-6 of 10"), "{out}");
        assert!(lines[5].contains("offset 7"), "{out}");
        assert_eq!(lines.len(), 6);
    }

    #[test]
    fn read_to_the_end_has_no_note() {
        let dir = setup(&[("a.txt", &numbered(10))]);
        let out = read(
            dir.path(),
            &read_args("a.txt", Some(8), Some(50)),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(out, "     8\tline 8\n     9\tline 9\n    10\tline 10");
    }

    #[test]
    fn read_default_limit_is_max_read_lines_and_caps_limit() {
        let dir = setup(&[("a.txt", &numbered(30))]);
        let limits = Limits {
            max_read_lines: 5,
            ..Limits::default()
        };
        for limit in [None, Some(100), Some(0)] {
            let out = read(dir.path(), &read_args("a.txt", None, limit), &limits).unwrap();
            assert!(out.starts_with("     1\tline 1\n"));
            assert!(out.contains("     5\tline 5\n"));
            assert!(!out.contains("line 6"));
            assert!(out.contains("lines 1-5 of 30"), "{out}");
            assert!(out.contains("offset 6"), "{out}");
        }
    }

    #[test]
    fn read_offset_past_end_is_an_error() {
        let dir = setup(&[("a.txt", &numbered(3))]);
        let err = read(
            dir.path(),
            &read_args("a.txt", Some(9), None),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(matches!(err, FileToolError::OffsetPastEnd { lines: 3, .. }));
        assert!(err.to_string().contains("has 3 lines"), "{err}");
    }

    #[test]
    fn read_cuts_long_lines() {
        let long = "é".repeat(50);
        let dir = setup(&[("a.txt", &format!("short\n{long}\n"))]);
        let limits = Limits {
            max_line_chars: 10,
            ..Limits::default()
        };
        let out = read(dir.path(), &read_args("a.txt", None, None), &limits).unwrap();
        let second = out.lines().nth(1).unwrap();
        assert!(
            second.starts_with(&format!("     2\t{}…", "é".repeat(10))),
            "{second}"
        );
        assert!(second.contains("line cut at 10 characters"), "{second}");
        assert_eq!(out.lines().next().unwrap(), "     1\tshort");
    }

    #[test]
    fn read_cuts_a_huge_line_without_keeping_it() {
        let dir = setup(&[("a.txt", &format!("{}\nnext\n", "x".repeat(100_000)))]);
        let limits = Limits {
            max_line_chars: 20,
            ..Limits::default()
        };
        let out = read(dir.path(), &read_args("a.txt", None, None), &limits).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            format!("     1\t{}… [line cut at 20 characters]", "x".repeat(20))
        );
        assert_eq!(lines[1], "     2\tnext");
    }

    #[test]
    fn read_refuses_binary_files() {
        let dir = setup(&[]);
        fs::write(dir.path().join("b.bin"), b"\x7fELF\x00\x01\x02").unwrap();
        let err = read(
            dir.path(),
            &read_args("b.bin", None, None),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(matches!(err, FileToolError::Binary { .. }));
        assert_eq!(
            err.to_string(),
            "b.bin is a binary file; only text files can be read"
        );
    }

    #[test]
    fn read_nul_after_the_sniffed_prefix_is_text() {
        let dir = setup(&[]);
        let mut content = "a".repeat(BINARY_SNIFF_BYTES + 10).into_bytes();
        content.push(b'\n');
        content.push(0);
        fs::write(dir.path().join("late.txt"), content).unwrap();
        let out = read(
            dir.path(),
            &read_args("late.txt", None, None),
            &Limits::default(),
        );
        assert!(out.is_ok());
    }

    #[test]
    fn read_invalid_utf8_is_lossy() {
        let dir = setup(&[]);
        fs::write(dir.path().join("l.txt"), b"caf\xe9\n").unwrap();
        let out = read(
            dir.path(),
            &read_args("l.txt", None, None),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(out, "     1\tcaf\u{fffd}");
    }

    #[test]
    fn read_directory_and_missing_file_errors() {
        let dir = setup(&[("src/a.rs", "")]);
        let err = read(
            dir.path(),
            &read_args("src", None, None),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(matches!(err, FileToolError::IsDirectory { .. }));
        assert!(err.to_string().contains("src is a directory"), "{err}");
        assert!(err.to_string().contains("glob"), "{err}");

        let err = read(
            dir.path(),
            &read_args("nope.rs", None, None),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(matches!(err, FileToolError::NotFound { .. }));
        assert!(
            err.to_string().starts_with("no such file: nope.rs"),
            "{err}"
        );
    }

    #[test]
    fn read_empty_file_says_so() {
        let dir = setup(&[("e.txt", "")]);
        let out = read(
            dir.path(),
            &read_args("e.txt", None, None),
            &Limits::default(),
        )
        .unwrap();
        assert!(out.contains("e.txt is empty"), "{out}");
    }

    #[test]
    fn paths_outside_cwd_are_absolute() {
        let outer = setup(&[("other/a.txt", "x\n"), ("work/b.txt", "")]);
        let cwd = outer.path().join("work");
        let out = glob(
            &cwd,
            &glob_args("*.txt", Some("../other")),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(out, outer.path().join("other/a.txt").display().to_string());
        let err = read(
            &cwd,
            &read_args("./../work/missing", None, None),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("no such file: missing"),
            "{err}"
        );
    }

    // ---- write ----

    #[test]
    fn write_creates_new_file_and_parent_dirs() {
        let dir = setup(&[]);
        let args = WriteArgs {
            path: "deep/er/a.rs".into(),
            content: "fn main() {}\n".into(),
        };
        let out = write(dir.path(), &args).unwrap();
        assert_eq!(out, "wrote 13 bytes to deep/er/a.rs (new file)");
        let written = fs::read_to_string(dir.path().join("deep/er/a.rs")).unwrap();
        assert_eq!(written, "fn main() {}\n");
    }

    #[test]
    fn write_replaces_existing_file() {
        let dir = setup(&[("a.txt", "old content")]);
        let args = WriteArgs {
            path: "a.txt".into(),
            content: "new".into(),
        };
        assert_eq!(
            write(dir.path(), &args).unwrap(),
            "wrote 3 bytes to a.txt (replaced)"
        );
        assert_eq!(fs::read_to_string(dir.path().join("a.txt")).unwrap(), "new");
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary files remain");
    }

    #[test]
    fn write_to_a_directory_is_an_error() {
        let dir = setup(&[("src/a.rs", "")]);
        let args = WriteArgs {
            path: "src".into(),
            content: "x".into(),
        };
        let err = write(dir.path(), &args).unwrap_err();
        assert!(matches!(err, FileToolError::IsDirectory { .. }));
    }

    #[cfg(unix)]
    #[test]
    fn write_through_a_symlink_keeps_the_link() {
        let dir = setup(&[("real.txt", "old")]);
        std::os::unix::fs::symlink("real.txt", dir.path().join("link.txt")).unwrap();
        let args = WriteArgs {
            path: "link.txt".into(),
            content: "new".into(),
        };
        write(dir.path(), &args).unwrap();
        let link = dir.path().join("link.txt");
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            fs::read_to_string(dir.path().join("real.txt")).unwrap(),
            "new"
        );
    }

    // ---- edit ----

    #[test]
    fn edit_replaces_a_unique_occurrence() {
        let dir = setup(&[("src/a.rs", "let x = 1;\nlet y = 2;\n")]);
        let out = edit(dir.path(), &edit_args("src/a.rs", "y = 2", "y = 3", false)).unwrap();
        assert_eq!(out, "replaced 1 occurrence in src/a.rs");
        let content = fs::read_to_string(dir.path().join("src/a.rs")).unwrap();
        assert_eq!(content, "let x = 1;\nlet y = 3;\n");
    }

    #[test]
    fn edit_not_found() {
        let dir = setup(&[("src/a.rs", "let x = 1;\n")]);
        let err = edit(dir.path(), &edit_args("src/a.rs", "let z", "let w", false)).unwrap_err();
        assert!(matches!(err, FileToolError::OldStringNotFound { .. }));
        assert!(
            err.to_string()
                .starts_with("old_string was not found in src/a.rs"),
            "{err}"
        );
    }

    #[test]
    fn edit_multiple_needs_replace_all() {
        let dir = setup(&[("src/a.rs", "foo foo\nfoo\n")]);
        let err = edit(dir.path(), &edit_args("src/a.rs", "foo", "bar", false)).unwrap_err();
        assert!(matches!(
            err,
            FileToolError::AmbiguousOldString { count: 3, .. }
        ));
        let text = err.to_string();
        assert!(
            text.starts_with("old_string occurs 3 times in src/a.rs"),
            "{text}"
        );
        assert!(text.contains("replace_all"), "{text}");
        assert_eq!(
            fs::read_to_string(dir.path().join("src/a.rs")).unwrap(),
            "foo foo\nfoo\n"
        );

        let out = edit(dir.path(), &edit_args("src/a.rs", "foo", "bar", true)).unwrap();
        assert_eq!(out, "replaced 3 occurrences in src/a.rs");
        assert_eq!(
            fs::read_to_string(dir.path().join("src/a.rs")).unwrap(),
            "bar bar\nbar\n"
        );
    }

    #[test]
    fn edit_rejects_empty_and_identical_strings() {
        let dir = setup(&[("a.txt", "abc")]);
        let err = edit(dir.path(), &edit_args("a.txt", "", "x", false)).unwrap_err();
        assert!(matches!(err, FileToolError::EmptyOldString));
        assert!(err.to_string().contains("use write"), "{err}");
        let err = edit(dir.path(), &edit_args("a.txt", "abc", "abc", false)).unwrap_err();
        assert!(matches!(err, FileToolError::NoChange));
    }

    #[test]
    fn edit_missing_file_and_directory() {
        let dir = setup(&[("src/a.rs", "")]);
        let err = edit(dir.path(), &edit_args("nope.rs", "a", "b", false)).unwrap_err();
        assert!(matches!(err, FileToolError::NotFound { .. }));
        let err = edit(dir.path(), &edit_args("src", "a", "b", false)).unwrap_err();
        assert!(matches!(err, FileToolError::IsDirectory { .. }));
    }

    #[test]
    fn edit_refuses_invalid_utf8() {
        let dir = setup(&[]);
        fs::write(dir.path().join("l.txt"), b"caf\xe9 old\n").unwrap();
        let err = edit(dir.path(), &edit_args("l.txt", "old", "new", false)).unwrap_err();
        assert!(matches!(err, FileToolError::NotUtf8 { .. }));
    }

    #[test]
    fn edit_handles_crlf_files() {
        let dir = setup(&[("w.txt", "one\r\ntwo\r\nthree\r\n")]);
        edit(dir.path(), &edit_args("w.txt", "one\ntwo", "1\n2", false)).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("w.txt")).unwrap(),
            "1\r\n2\r\nthree\r\n"
        );
    }

    #[cfg(unix)]
    #[test]
    fn edit_keeps_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = setup(&[("run.sh", "echo old\n")]);
        let path = dir.path().join("run.sh");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o751)).unwrap();
        edit(dir.path(), &edit_args("run.sh", "old", "new", false)).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "echo new\n");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o751);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn write_and_edit_refuse_read_only_files() {
        let dir = setup(&[("locked.txt", "old")]);
        let path = dir.path().join("locked.txt");
        let mut permissions = fs::metadata(&path).unwrap().permissions();
        permissions.set_readonly(true);
        fs::set_permissions(&path, permissions).unwrap();
        let err = edit(dir.path(), &edit_args("locked.txt", "old", "new", false)).unwrap_err();
        assert!(matches!(err, FileToolError::ReadOnly { .. }));
        let args = WriteArgs {
            path: "locked.txt".into(),
            content: "new".into(),
        };
        let err = write(dir.path(), &args).unwrap_err();
        assert_eq!(
            err.to_string(),
            "locked.txt is read-only; it was left unchanged"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
    }

    #[test]
    fn edit_args_are_lenient() {
        let args: EditArgs = serde_json::from_value(serde_json::json!({
            "file_path": "a", "old_string": "x", "new_string": "y", "replace_all": null, "extra": true
        }))
        .unwrap();
        assert!(!args.replace_all);
        assert_eq!(args.path, "a");
    }

    // ---- glob ----

    #[test]
    fn glob_star_stays_in_one_directory() {
        let dir = setup(&[
            ("top.rs", ""),
            ("src/a.rs", ""),
            ("src/deep/b.rs", ""),
            ("c.txt", ""),
        ]);
        let limits = Limits::default();
        let out = glob(dir.path(), &glob_args("*.rs", None), &limits).unwrap();
        assert_eq!(out, "top.rs");
        let out = glob(dir.path(), &glob_args("**/*.rs", None), &limits).unwrap();
        let mut lines: Vec<&str> = out.lines().collect();
        lines.sort();
        assert_eq!(lines, ["src/a.rs", "src/deep/b.rs", "top.rs"]);
        let out = glob(dir.path(), &glob_args("./src/*.rs", None), &limits).unwrap();
        assert_eq!(out, "src/a.rs");
    }

    #[test]
    fn glob_in_a_subdirectory_shows_paths_relative_to_cwd() {
        let dir = setup(&[("src/a.rs", ""), ("src/deep/b.rs", "")]);
        let out = glob(
            dir.path(),
            &glob_args("*.rs", Some("src")),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(out, "src/a.rs");
    }

    #[test]
    fn glob_respects_gitignore_and_skips_hidden() {
        let dir = setup(&[
            (".gitignore", "target/\n*.log\n"),
            ("target/debug/x.rs", ""),
            ("keep.rs", ""),
            ("app.log", ""),
            (".git/config.rs", ""),
            (".hidden/h.rs", ""),
        ]);
        let limits = Limits::default();
        let out = glob(dir.path(), &glob_args("**/*.rs", None), &limits).unwrap();
        assert_eq!(out, "keep.rs");
        let out = glob(dir.path(), &glob_args("*.log", None), &limits).unwrap();
        assert!(out.starts_with("no files match *.log"), "{out}");
    }

    #[test]
    fn glob_sorts_newest_first_and_truncates() {
        let dir = setup(&[("old.rs", ""), ("mid.rs", ""), ("new.rs", "")]);
        set_mtime(&dir.path().join("old.rs"), 300);
        set_mtime(&dir.path().join("mid.rs"), 200);
        set_mtime(&dir.path().join("new.rs"), 100);
        let out = glob(dir.path(), &glob_args("*.rs", None), &Limits::default()).unwrap();
        assert_eq!(out, "new.rs\nmid.rs\nold.rs");

        let limits = Limits {
            max_results: 2,
            ..Limits::default()
        };
        let out = glob(dir.path(), &glob_args("*.rs", None), &limits).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(&lines[..2], ["new.rs", "mid.rs"]);
        assert!(lines[3].contains("showing 2 of 3"), "{out}");
    }

    #[test]
    fn glob_errors() {
        let dir = setup(&[("a.rs", "")]);
        let limits = Limits::default();
        let err = glob(dir.path(), &glob_args("a[", None), &limits).unwrap_err();
        assert!(matches!(err, FileToolError::InvalidGlob { .. }));
        assert!(
            err.to_string().starts_with("invalid glob pattern `a[`"),
            "{err}"
        );
        let err = glob(dir.path(), &glob_args("*", Some("missing")), &limits).unwrap_err();
        assert!(matches!(err, FileToolError::NoSuchDirectory { .. }));
        let err = glob(dir.path(), &glob_args("*", Some("a.rs")), &limits).unwrap_err();
        assert!(matches!(err, FileToolError::NotADirectory { .. }));
        let out = glob(dir.path(), &glob_args("*.py", None), &limits).unwrap();
        assert_eq!(out, "no files match *.py in .");
    }

    // ---- grep ----

    fn grep_tree() -> TempDir {
        setup(&[
            ("src/a.rs", "fn main() {\n    println!(\"Hello\");\n}\n"),
            ("src/b.rs", "// hello there\nfn hello() {}\n"),
            ("notes.txt", "nothing here\n"),
            (".gitignore", "ignored/\n"),
            ("ignored/c.rs", "hello\n"),
        ])
    }

    #[test]
    fn grep_files_with_matches_is_the_default() {
        let dir = grep_tree();
        set_mtime(&dir.path().join("src/a.rs"), 100);
        set_mtime(&dir.path().join("src/b.rs"), 200);
        let mut args = grep_args("(?i)hello");
        let out = grep(dir.path(), &args, &Limits::default()).unwrap();
        assert_eq!(out, "src/a.rs\nsrc/b.rs");
        args.output_mode = Some(OutputMode::FilesWithMatches);
        assert_eq!(grep(dir.path(), &args, &Limits::default()).unwrap(), out);
    }

    #[test]
    fn grep_content_and_count_modes() {
        let dir = grep_tree();
        let mut args = grep_args("hello");
        args.output_mode = Some(OutputMode::Content);
        let out = grep(dir.path(), &args, &Limits::default()).unwrap();
        assert_eq!(out, "src/b.rs:1:// hello there\nsrc/b.rs:2:fn hello() {}");

        args.output_mode = Some(OutputMode::Count);
        args.case_insensitive = Some(true);
        let out = grep(dir.path(), &args, &Limits::default()).unwrap();
        assert_eq!(out, "src/a.rs:1\nsrc/b.rs:2");
    }

    #[test]
    fn grep_output_mode_parses_from_json() {
        let args: GrepArgs = serde_json::from_value(serde_json::json!({
            "pattern": "x", "output_mode": "content", "glob": null
        }))
        .unwrap();
        assert_eq!(args.output_mode, Some(OutputMode::Content));
        let bad = serde_json::from_value::<GrepArgs>(
            serde_json::json!({"pattern": "x", "output_mode": "lines"}),
        );
        assert!(bad.is_err());
    }

    #[test]
    fn grep_case_insensitive() {
        let dir = grep_tree();
        let mut args = grep_args("HELLO");
        assert!(grep(dir.path(), &args, &Limits::default())
            .unwrap()
            .starts_with("no matches for HELLO"));
        args.case_insensitive = Some(true);
        let out = grep(dir.path(), &args, &Limits::default()).unwrap();
        let mut lines: Vec<&str> = out.lines().collect();
        lines.sort();
        assert_eq!(lines, ["src/a.rs", "src/b.rs"]);
    }

    #[test]
    fn grep_glob_filter() {
        let dir = grep_tree();
        let mut args = grep_args("here");
        args.glob = Some("*.txt".into());
        assert_eq!(
            grep(dir.path(), &args, &Limits::default()).unwrap(),
            "notes.txt"
        );
        args.glob = Some("*.rs".into());
        assert_eq!(
            grep(dir.path(), &args, &Limits::default()).unwrap(),
            "src/b.rs"
        );
        args.glob = Some("src/*.{txt,md}".into());
        let out = grep(dir.path(), &args, &Limits::default()).unwrap();
        assert!(out.starts_with("no matches for here"), "{out}");
        args.glob = Some("[".into());
        let err = grep(dir.path(), &args, &Limits::default()).unwrap_err();
        assert!(matches!(err, FileToolError::InvalidGlob { .. }));
    }

    #[test]
    fn grep_respects_gitignore() {
        let dir = grep_tree();
        let mut args = grep_args("^hello$");
        let out = grep(dir.path(), &args, &Limits::default()).unwrap();
        assert!(out.starts_with("no matches"), "{out}");
        // Naming an ignored file explicitly still searches it.
        args.path = Some("ignored/c.rs".into());
        let out = grep(dir.path(), &args, &Limits::default()).unwrap();
        assert_eq!(out, "ignored/c.rs");
    }

    #[test]
    fn grep_invalid_regex() {
        let dir = grep_tree();
        let err = grep(dir.path(), &grep_args("fn main("), &Limits::default()).unwrap_err();
        assert!(matches!(err, FileToolError::InvalidRegex { .. }));
        let text = err.to_string();
        assert!(text.starts_with("invalid regex `fn main(`"), "{text}");
        assert!(text.contains("unclosed group"), "{text}");
    }

    #[test]
    fn grep_skips_binary_files() {
        let dir = grep_tree();
        fs::write(dir.path().join("blob.bin"), b"hello\x00world").unwrap();
        let out = grep(dir.path(), &grep_args("world"), &Limits::default()).unwrap();
        assert!(out.starts_with("no matches for world"), "{out}");
        let mut args = grep_args("world");
        args.path = Some("blob.bin".into());
        let err = grep(dir.path(), &args, &Limits::default()).unwrap_err();
        assert!(matches!(err, FileToolError::Binary { .. }));
    }

    #[test]
    fn grep_truncates_results_and_long_lines() {
        let dir = setup(&[("many.txt", &"match here\n".repeat(10))]);
        let limits = Limits {
            max_results: 3,
            max_line_chars: 5,
            ..Limits::default()
        };
        let mut args = grep_args("match");
        args.output_mode = Some(OutputMode::Content);
        let out = grep(dir.path(), &args, &limits).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "many.txt:1:match… [line cut at 5 characters]");
        assert_eq!(lines[2], "many.txt:3:match… [line cut at 5 characters]");
        assert_eq!(lines[3], "");
        assert!(lines[4].contains("showing 3 of 10 matching lines"), "{out}");
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn grep_truncates_file_lists() {
        let files: Vec<(String, &str)> = (0..5).map(|i| (format!("f{i}.txt"), "x\n")).collect();
        let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
        let dir = setup(&refs);
        let limits = Limits {
            max_results: 2,
            ..Limits::default()
        };
        let out = grep(dir.path(), &grep_args("x"), &limits).unwrap();
        assert_eq!(out.lines().count(), 4);
        assert!(out.contains("showing 2 of 5 matching files"), "{out}");
    }

    #[test]
    fn grep_missing_path() {
        let dir = grep_tree();
        let mut args = grep_args("x");
        args.path = Some("nowhere".into());
        let err = grep(dir.path(), &args, &Limits::default()).unwrap_err();
        assert!(matches!(err, FileToolError::NoSuchPath { .. }));
    }

    #[test]
    fn schemas_carry_field_descriptions() {
        let schema = serde_json::to_value(schemars::schema_for!(GrepArgs)).unwrap();
        let props = &schema["properties"];
        for field in ["pattern", "path", "glob", "case_insensitive", "output_mode"] {
            assert!(props[field]["description"].is_string(), "{field}: {schema}");
        }
        let required = schema["required"].as_array().unwrap();
        assert_eq!(required, &[serde_json::json!("pattern")]);
        let schema = serde_json::to_value(schemars::schema_for!(EditArgs)).unwrap();
        assert!(schema["properties"]["replace_all"]["description"].is_string());
    }
}
