//! Finding definition files: the directories searched, in precedence order, and loading each
//! definition file in them into a [`Catalog`].

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::{builtins, parse_format, AgentDef, Catalog, DefinitionError, Format, Roots, Warning};

/// The directories searched for definitions, each with the format of its files, lowest
/// precedence first: user directories, then project directories, so that a project's agent
/// replaces a user's of the same name (and both replace the built-ins). Within each level the
/// order is Gemini CLI's, Codex's, Claude Code's, opencode's, aside's: aside's own directory
/// wins, and the formats aside read first keep their place, so an agent that loaded from
/// `.claude` is not replaced by a namesake in a format read since.
pub fn search_dirs(roots: &Roots) -> Vec<(PathBuf, Format)> {
    let mut dirs = Vec::new();
    if let Some(home) = &roots.gemini_home {
        dirs.push((home.join(".gemini").join("agents"), Format::Gemini));
    }
    if let Some(codex) = &roots.codex_home {
        dirs.push((codex.join("agents"), Format::Codex));
    }
    if let Some(home) = &roots.user_home {
        dirs.push((home.join(".claude").join("agents"), Format::Claude));
    }
    if let Some(config) = &roots.user_config {
        dirs.push((config.join("opencode").join("agent"), Format::Claude));
        dirs.push((config.join("opencode").join("agents"), Format::Claude));
        dirs.push((config.join("aside").join("agents"), Format::Claude));
    }
    if let Some(project) = &roots.project {
        dirs.push((project.join(".gemini").join("agents"), Format::Gemini));
        dirs.push((project.join(".codex").join("agents"), Format::Codex));
        dirs.push((project.join(".claude").join("agents"), Format::Claude));
        dirs.push((project.join(".opencode").join("agent"), Format::Claude));
        dirs.push((project.join(".opencode").join("agents"), Format::Claude));
        dirs.push((project.join(".aside").join("agents"), Format::Claude));
    }
    // A project that is the home directory would list `~/.claude/agents` twice; keep each
    // directory once, at its later (higher-precedence) place.
    let mut seen = HashSet::new();
    let mut unique: Vec<(PathBuf, Format)> = dirs
        .into_iter()
        .rev()
        .filter(|(d, _)| seen.insert(d.canonicalize().unwrap_or_else(|_| d.clone())))
        .collect();
    unique.reverse();
    unique
}

/// Finds every agent: the built-ins, then each of [`search_dirs`] in order, a later definition
/// replacing an earlier one of the same name. Files are read in file-name order within a
/// directory so the result does not depend on the file system's listing order.
pub fn discover(roots: &Roots) -> Catalog {
    let mut catalog = Catalog {
        agents: BTreeMap::new(),
        warnings: Vec::new(),
    };
    for def in builtins() {
        catalog.insert(def);
    }
    for (dir, format) in search_dirs(roots) {
        load_dir(&dir, format, &mut catalog);
    }
    catalog
}

/// Loads every definition file directly in `dir` into `catalog`. A missing directory is normal
/// (most people have only some of them) and is skipped silently; one that exists but cannot be
/// read is worth a warning.
fn load_dir(dir: &Path, format: Format, catalog: &mut Catalog) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if matches!(err.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => return,
        Err(err) => {
            catalog.warnings.push(Warning {
                path: dir.to_path_buf(),
                message: format!("cannot read the directory: {err}"),
            });
            return;
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) if is_definition_file(&entry.path(), format) => files.push(entry.path()),
            Ok(_) => {}
            Err(err) => catalog.warnings.push(Warning {
                path: dir.to_path_buf(),
                message: format!("cannot list the directory: {err}"),
            }),
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    for path in files {
        match load_file(&path, format) {
            Ok((def, warnings)) => {
                catalog.insert(def);
                catalog.warnings.extend(warnings);
            }
            Err(err) => catalog.warnings.push(Warning {
                path,
                message: err.to_string(),
            }),
        }
    }
}

/// A file of `format`'s extension (or a symlink to one). Hidden files are skipped, as a shell's
/// `*.md` would, so editors' lock and backup files (`.#agent.md`) are not read as agents; in
/// Gemini CLI's directories so are files starting with `_`, which Gemini CLI itself skips.
fn is_definition_file(path: &Path, format: Format) -> bool {
    let skipped = path.file_name().is_some_and(|name| {
        let name = name.as_encoded_bytes();
        name.starts_with(b".") || (format == Format::Gemini && name.starts_with(b"_"))
    });
    !skipped
        && path
            .extension()
            .is_some_and(|ext| ext == format.extension())
        && path.is_file()
}

fn load_file(path: &Path, format: Format) -> Result<(AgentDef, Vec<Warning>), DefinitionError> {
    let bytes = fs::read(path).map_err(DefinitionError::Read)?;
    let text =
        String::from_utf8(bytes).map_err(|err| DefinitionError::NotUtf8(err.utf8_error()))?;
    parse_format(format, path, &text)
}

#[cfg(test)]
#[path = "discover_tests.rs"]
mod tests;
