//! The `write` and `edit` tools: a whole file replaced, or exact text in it; either way through
//! an atomic replace, so a reader never sees half a file.

use std::borrow::Cow;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

use super::paths::{display_path, file_metadata, io_error, resolve};
use super::FileToolError;

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

/// Accepts `null` for a field with a default, because some models send every optional field.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Replaces `target` with `content` through a temporary file in the same directory and a
/// rename, so readers never see a half-written file and a failed write leaves it intact (the
/// temporary file is removed when dropped). `permissions` are those of the file replaced.
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
    let prefix = format!(".{}.aside-", name.to_string_lossy());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // A new file gets the mode any new file gets (0666 less the umask), not the owner-only mode
    // tempfile gives by default.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let mut file = builder.tempfile_in(dir)?;
    file.write_all(content)?;
    if let Some(permissions) = permissions {
        file.as_file().set_permissions(permissions)?;
    }
    // Flushed before the rename so a crash cannot leave an empty file in place of the old one.
    file.as_file().sync_all()?;
    file.persist(target).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
#[path = "write_edit_tests.rs"]
mod tests;
