//! The supervisor's socket, where a new daemon finds it: bound under its task's name before
//! the task starts, so that a task that cannot be adopted does not start. A supervisor that
//! serves one task after another keeps its socket: renamed to the next task's name, one
//! rename instead of making and deleting a socket file. Between two tasks it keeps the last
//! one's name: no daemon looks for a task whose end it has recorded.

use std::os::unix::net::UnixListener;

/// The supervisor whose idle socket `name` is, if it is one: supervisors before this one
/// renamed their socket `idle-PID.sock` between two tasks.
pub fn idle_owner(name: &str) -> Option<i32> {
    name.strip_prefix("idle-")?
        .strip_suffix(".sock")?
        .parse()
        .ok()
}

pub(crate) struct Listen {
    listener: UnixListener,
    /// Where its file is now.
    path: String,
    /// The file this supervisor bound (device, inode): only that one is ever renamed or
    /// removed.
    id: Option<(u64, u64)>,
}

impl Listen {
    /// Binds `path`, replacing what a previous supervisor left there.
    pub fn bind(path: &str) -> std::io::Result<Self> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        Ok(Self {
            listener,
            path: path.to_string(),
            id: socket_id(path),
        })
    }

    /// The same socket under `path`, for the next task; `None` (and its file removed) when
    /// it cannot be moved there: then a new one is bound.
    pub fn move_to(mut self, path: &str) -> Option<Self> {
        if !self.ours() || std::fs::rename(&self.path, path).is_err() {
            return None;
        }
        self.path = path.to_string();
        // Whoever connected while it was idle came for no task of this one's.
        while self.listener.accept().is_ok() {}
        Some(self)
    }

    pub fn listener(&self) -> &UnixListener {
        &self.listener
    }

    /// Its file is still the one this supervisor bound.
    fn ours(&self) -> bool {
        self.id.is_some() && socket_id(&self.path) == self.id
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        if self.ours() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The device and inode of the socket file at `path`.
fn socket_id(path: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_name_names_its_supervisor_and_nothing_else_does() {
        assert_eq!(idle_owner("idle-42.sock"), Some(42));
        assert_eq!(idle_owner("3.sock"), None);
        assert_eq!(idle_owner("3.end"), None);
        assert_eq!(idle_owner("idle-x.sock"), None);
    }
}
