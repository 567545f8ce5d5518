//! Finding definition files: the directories searched, in precedence order, and loading each
//! `*.md` file in them into a [`Catalog`].

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::{builtins, parse_with_warnings, AgentDef, Catalog, DefinitionError, Roots, Warning};

/// The directories searched for `*.md` definitions, lowest precedence first: user directories,
/// then project directories, so that a project's agent replaces a user's of the same name (and
/// both replace the built-ins).
pub fn search_dirs(roots: &Roots) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(home) = &roots.user_home {
        dirs.push(home.join(".claude").join("agents"));
    }
    if let Some(config) = &roots.user_config {
        dirs.push(config.join("opencode").join("agent"));
        dirs.push(config.join("opencode").join("agents"));
        dirs.push(config.join("aside").join("agents"));
    }
    if let Some(project) = &roots.project {
        dirs.push(project.join(".claude").join("agents"));
        dirs.push(project.join(".opencode").join("agent"));
        dirs.push(project.join(".opencode").join("agents"));
        dirs.push(project.join(".aside").join("agents"));
    }
    // A project that is the home directory would list `~/.claude/agents` twice; keep each
    // directory once, at its later (higher-precedence) place.
    let mut seen = HashSet::new();
    let mut unique: Vec<PathBuf> = dirs
        .into_iter()
        .rev()
        .filter(|d| seen.insert(d.canonicalize().unwrap_or_else(|_| d.clone())))
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
    for dir in search_dirs(roots) {
        load_dir(&dir, &mut catalog);
    }
    catalog
}

/// Loads every `*.md` file directly in `dir` into `catalog`. A missing directory is normal (most
/// people have only some of them) and is skipped silently; one that exists but cannot be read
/// is worth a warning.
fn load_dir(dir: &Path, catalog: &mut Catalog) {
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
            Ok(entry) if is_definition_file(&entry.path()) => files.push(entry.path()),
            Ok(_) => {}
            Err(err) => catalog.warnings.push(Warning {
                path: dir.to_path_buf(),
                message: format!("cannot list the directory: {err}"),
            }),
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    for path in files {
        match load_file(&path) {
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

/// A `*.md` file (or a symlink to one). Hidden files are skipped, as a shell's `*.md` would, so
/// editors' lock and backup files (`.#agent.md`) are not read as agents.
fn is_definition_file(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .is_some_and(|name| name.as_encoded_bytes().starts_with(b"."));
    !hidden && path.extension().is_some_and(|ext| ext == "md") && path.is_file()
}

fn load_file(path: &Path) -> Result<(AgentDef, Vec<Warning>), DefinitionError> {
    let bytes = fs::read(path).map_err(DefinitionError::Read)?;
    let text =
        String::from_utf8(bytes).map_err(|err| DefinitionError::NotUtf8(err.utf8_error()))?;
    parse_with_warnings(path, &text)
}

#[cfg(test)]
#[path = "discover_tests.rs"]
mod tests;
