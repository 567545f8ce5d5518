//! Paths as the model gives them (relative to the working directory) and as output shows them,
//! and the errors about them a model can act on.

use std::fs::{self, Metadata};
use std::io;
use std::path::{Component, Path, PathBuf};

use super::FileToolError;

/// Metadata of a file the tool must read, with the errors a model can act on.
pub(super) fn file_metadata(path: &Path, shown: &str) -> Result<Metadata, FileToolError> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(FileToolError::IsDirectory {
            path: shown.to_owned(),
        }),
        Ok(meta) => Ok(meta),
        Err(e) => Err(io_error("read", shown, e)),
    }
}

/// Wraps an I/O error, turning "not found" into the clearer [`FileToolError::NotFound`].
pub(super) fn io_error(action: &'static str, shown: &str, error: io::Error) -> FileToolError {
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
pub(super) fn resolve(cwd: &Path, raw: &str) -> PathBuf {
    cwd.join(raw)
}

/// How a path appears in output: relative to the working directory when under it, else
/// absolute, so the model can pass it straight back to another tool.
pub(super) fn display_path(cwd: &Path, path: &Path) -> String {
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

#[cfg(test)]
#[path = "paths_tests.rs"]
mod tests;
