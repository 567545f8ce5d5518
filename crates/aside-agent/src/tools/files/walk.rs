//! Finding files for `glob` and `grep`: the walk that honours .gitignore, glob patterns, and the
//! newest-first order results come in.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use globset::{GlobBuilder, GlobMatcher};
use ignore::WalkBuilder;

use super::FileToolError;

/// Compiles a glob in which `*` stays within one path component and only `**` crosses `/`.
pub(super) fn compile_glob(pattern: &str) -> Result<GlobMatcher, FileToolError> {
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
pub(super) fn walk_files(root: &Path) -> impl Iterator<Item = PathBuf> {
    WalkBuilder::new(root)
        .require_git(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .build()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_some_and(|t| t.is_file()))
        .map(ignore::DirEntry::into_path)
}

/// Sorts files newest first, then by path so ties come out the same every time.
pub(super) fn newest_first(files: &mut [(SystemTime, PathBuf)]) {
    files.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
}

/// When a file was last changed; the epoch when that cannot be known, so it sorts last.
pub(super) fn modified(path: &Path) -> SystemTime {
    fs::metadata(path)
        .and_then(|meta| meta.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}
