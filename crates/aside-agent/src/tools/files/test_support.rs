//! Helpers shared by the file tools' tests.

use std::fs::{self, File};
use std::path::Path;
use std::time::{Duration, SystemTime};

use tempfile::TempDir;

use super::{GlobArgs, ReadArgs};

pub(super) fn setup(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    dir
}

pub(super) fn set_mtime(path: &Path, secs_ago: u64) {
    let time = SystemTime::now() - Duration::from_secs(secs_ago);
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

pub(super) fn read_args(path: &str, offset: Option<usize>, limit: Option<usize>) -> ReadArgs {
    ReadArgs {
        path: path.to_owned(),
        offset,
        limit,
    }
}

pub(super) fn glob_args(pattern: &str, path: Option<&str>) -> GlobArgs {
    GlobArgs {
        pattern: pattern.to_owned(),
        path: path.map(str::to_owned),
    }
}
