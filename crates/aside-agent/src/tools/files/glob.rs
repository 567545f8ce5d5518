//! The `glob` tool: files by glob pattern, newest first.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use schemars::JsonSchema;
use serde::Deserialize;

use super::paths::{display_path, io_error, resolve};
use super::walk::{compile_glob, modified, newest_first, walk_files};
use super::{FileToolError, Limits};

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
    newest_first(&mut found);
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

#[cfg(test)]
#[path = "glob_tests.rs"]
mod tests;
