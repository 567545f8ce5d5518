//! Finding a task's program in the PATH it will have, as `execvp` would. A burst of tasks
//! naming one program looks it up once: where it was found is remembered for [`REMEMBER`],
//! and checked again with one `stat` (not one per PATH entry before it). A program installed
//! meanwhile earlier in the PATH is found after at most that long; a shell's hash table
//! would find it only after `hash -r`.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// How long where a program was found is taken as it is.
const REMEMBER: Duration = Duration::from_secs(1);
/// Programs remembered at most (all are forgotten past it).
const REMEMBERED: usize = 64;

/// What a lookup depends on: the PATH, the folder its relative entries are read from, and
/// the name.
type Key = (OsString, PathBuf, String);

static FOUND: LazyLock<Mutex<HashMap<Key, (PathBuf, Instant)>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Where the program the task names is, searched as `execvp` would in the PATH the task will
/// have (relative entries from its working directory). A name with a `/` is taken as it is.
/// `None` when no entry has it; the first non-executable match is returned when there is no
/// executable one, so that starting it fails as execvp would ("permission denied").
pub(crate) fn resolve(
    program: &str,
    env: Option<&BTreeMap<String, String>>,
    env_extra: &BTreeMap<String, String>,
    cwd: &Path,
) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path_var = match env_extra
        .get("PATH")
        .or_else(|| env.and_then(|e| e.get("PATH")))
    {
        Some(p) => Some(OsString::from(p)),
        None if env.is_some() => None,
        None => std::env::var_os("PATH"),
    };
    // execvp's default when there is no PATH at all.
    let path_var = path_var.unwrap_or_else(|| "/bin:/usr/bin".into());
    let key = (path_var, cwd.to_path_buf(), program.to_string());
    if let Some(found) = remembered(&key).filter(|p| executable(p) == Some(true)) {
        return Some(found);
    }
    let mut not_executable = None;
    for dir in std::env::split_paths(&key.0) {
        let dir = if dir.as_os_str().is_empty() {
            cwd.to_path_buf()
        } else if dir.is_relative() {
            cwd.join(dir)
        } else {
            dir
        };
        let candidate = dir.join(program);
        match executable(&candidate) {
            Some(true) => {
                remember(key, candidate.clone());
                return Some(candidate);
            }
            Some(false) => {
                not_executable.get_or_insert(candidate);
            }
            None => {}
        }
    }
    not_executable
}

/// Whether `path` is a file anyone may execute; `None` when it is no file.
fn executable(path: &Path) -> Option<bool> {
    let m = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
    Some(m.permissions().mode() & 0o111 != 0)
}

fn remembered(key: &Key) -> Option<PathBuf> {
    let found = FOUND.lock().unwrap_or_else(|p| p.into_inner());
    let (path, at) = found.get(key)?;
    (at.elapsed() < REMEMBER).then(|| path.clone())
}

fn remember(key: Key, path: PathBuf) {
    let mut found = FOUND.lock().unwrap_or_else(|p| p.into_inner());
    if found.len() >= REMEMBERED {
        found.clear();
    }
    found.insert(key, (path, Instant::now()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(path: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("PATH".to_string(), path.to_string())])
    }

    #[test]
    fn programs_are_found_in_the_tasks_own_path() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let tool = bin.join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plain = bin.join("plain");
        std::fs::write(&plain, "data").unwrap();
        let none = BTreeMap::new();
        let path = format!("/nonexistent:{}", bin.display());
        assert_eq!(
            resolve("tool", Some(&env(&path)), &none, dir.path()),
            Some(tool.clone())
        );
        // A relative entry is read from the task's working directory.
        assert_eq!(
            resolve("tool", Some(&env("bin")), &none, dir.path()),
            Some(bin.join("tool"))
        );
        // env_extra's PATH wins over the environment's.
        let extra = env(&bin.display().to_string());
        assert_eq!(
            resolve("tool", Some(&env("/nonexistent")), &extra, dir.path()),
            Some(tool)
        );
        assert_eq!(
            resolve("missing", Some(&env(&path)), &none, dir.path()),
            None
        );
        assert_eq!(
            resolve("plain", Some(&env(&path)), &none, dir.path()),
            Some(plain),
            "not executable: exec says so"
        );
        assert_eq!(
            resolve("./x", Some(&env(&path)), &none, dir.path()),
            Some(PathBuf::from("./x"))
        );
    }

    #[test]
    fn a_program_found_is_looked_for_again_once_gone_or_after_a_while() {
        let dir = tempfile::tempdir().unwrap();
        let (early, late) = (dir.path().join("early"), dir.path().join("late"));
        std::fs::create_dir(&early).unwrap();
        std::fs::create_dir(&late).unwrap();
        let install = |d: &Path| {
            let tool = d.join("tool2");
            std::fs::write(&tool, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
            tool
        };
        let none = BTreeMap::new();
        let path = env(&format!("{}:{}", early.display(), late.display()));
        let found = || resolve("tool2", Some(&path), &none, dir.path());
        let in_late = install(&late);
        assert_eq!(found(), Some(in_late.clone()));
        // Installed earlier in the PATH: found once what was remembered is too old.
        let in_early = install(&early);
        assert_eq!(found(), Some(in_late.clone()), "remembered for a moment");
        std::thread::sleep(REMEMBER);
        assert_eq!(found(), Some(in_early.clone()));
        // Removed: looked for again at once.
        std::fs::remove_file(&in_early).unwrap();
        assert_eq!(found(), Some(in_late));
    }
}
