//! The groups on Linux (cgroup v2).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The state directory's file naming where its task groups are.
const LOCATION_FILE: &str = "cgroup";
/// How long opening waits for what a previous daemon's groups held to die.
const CLEAN_WAIT: Duration = Duration::from_secs(1);

/// Why this daemon's tasks get no cgroup.
#[derive(Debug, thiserror::Error)]
enum Unavailable {
    #[error("cannot read {path}: {source}")]
    Read {
        path: &'static str,
        source: io::Error,
    },
    #[error("the daemon is in no cgroup v2 group")]
    NoGroup,
    #[error("no cgroup v2 mount shows the daemon's cgroup {0}")]
    NoMount(String),
    #[error("cannot move processes out of {}: {source}", path.display())]
    NoAccess { path: PathBuf, source: io::Error },
    #[error("cannot make {}: {source}", path.display())]
    Make { path: PathBuf, source: io::Error },
}

/// Where this state directory's task groups are made.
pub(crate) struct Cgroups {
    /// `aside-<instance>` in the daemon's own cgroup.
    dir: PathBuf,
    /// The same, as `/proc/PID/cgroup` names it.
    name: PathBuf,
    /// The daemon's own group's `cgroup.procs`, to step back into after a spawn.
    home: File,
    /// The daemon's own group (supervisors step back into it after a spawn too).
    home_dir: PathBuf,
    /// The daemon could not step back out of a task's group: no more groups.
    off: AtomicBool,
    /// Making or entering a task's group failed once already (said once).
    warned: AtomicBool,
    /// The number in the name of the next supervisor's group.
    next_supervisor: AtomicU64,
}

impl Cgroups {
    /// This state directory's place for task groups, once what a previous daemon of it
    /// left in its groups is killed; `None`, said once, where groups cannot be made.
    /// `keep` names the groups of tasks adopted alive (`task-<id>`): those are left.
    pub(crate) fn open(
        home: &Path,
        instance: &str,
        keep: &dyn Fn(&str) -> bool,
    ) -> Option<Arc<Self>> {
        let group = format!("aside-{instance}");
        let location = home.join(LOCATION_FILE);
        let previous = fs::read(&location)
            .ok()
            .map(|b| PathBuf::from(OsString::from_vec(b.trim_ascii_end().to_vec())));
        // Only a group of this instance, in a cgroup v2 file system, is ever emptied.
        if let Some(prev) = previous.as_deref().filter(|p| is_ours(p, &group)) {
            clean(prev, keep);
        }
        match Self::place(&group, keep) {
            Ok(cg) => {
                let mut line = cg.dir.as_os_str().as_bytes().to_vec();
                line.push(b'\n');
                if let Err(e) = fs::write(&location, line) {
                    tracing::warn!("cannot write {}: {e}", location.display());
                }
                tracing::info!(
                    "each task runs in a cgroup of its own, in {}",
                    cg.dir.display()
                );
                Some(Arc::new(cg))
            }
            Err(e) => {
                let _ = fs::remove_file(&location);
                tracing::info!(
                    "tasks run without a cgroup of their own ({e}): a descendant that \
                     leaves its process group and clears its environment is found only \
                     once it comes back to the daemon"
                );
                None
            }
        }
    }

    fn place(group: &str, keep: &dyn Fn(&str) -> bool) -> Result<Self, Unavailable> {
        let own =
            read("/proc/self/cgroup").and_then(|t| own_cgroup(&t).ok_or(Unavailable::NoGroup))?;
        let mounts = read("/proc/self/mountinfo").map(|t| cgroup2_mounts(&t))?;
        let parent = mounts
            .iter()
            .find_map(|(root, point)| Some(point.join(own.strip_prefix(root).ok()?)))
            .ok_or_else(|| Unavailable::NoMount(own.display().to_string()))?;
        // Moving a process into a group takes write access to the procs file of the
        // common ancestor of where it is and where it goes: the daemon's own group.
        let procs = parent.join("cgroup.procs");
        let home = OpenOptions::new()
            .write(true)
            .open(&procs)
            .map_err(|source| Unavailable::NoAccess {
                path: procs,
                source,
            })?;
        let dir = parent.join(group);
        // A previous daemon that ran here may have left no location file (or one that
        // names another place).
        clean(&dir, keep);
        // Made and removed at once: proof that groups can be made here.
        make(&dir).map_err(|source| Unavailable::Make {
            path: dir.clone(),
            source,
        })?;
        let _ = fs::remove_dir(&dir);
        Ok(Self {
            name: own.join(group),
            dir,
            home,
            home_dir: parent,
            off: AtomicBool::new(false),
            warned: AtomicBool::new(false),
            next_supervisor: AtomicU64::new(1),
        })
    }

    /// The daemon's own group.
    pub(crate) fn home_dir(&self) -> &Path {
        &self.home_dir
    }

    /// Removes the instance's group as the engine stops, waiting up to `within` for the
    /// task groups in it to go (supervisors remove theirs just after their task's end is
    /// acknowledged). Refused while a task group is left in it (a task kept running, or a
    /// process that outlived SIGKILL): the next engine cleans it.
    pub(crate) fn leave(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while fs::remove_dir(&self.dir).is_err_and(|e| e.kind() != io::ErrorKind::NotFound)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A new group for the task `id`, for the daemon to start its first process in;
    /// `None` (said once) when it cannot be made.
    pub(crate) fn create(self: &Arc<Self>, id: &str) -> Option<TaskCgroup> {
        self.make(&format!("task-{id}"), true)
    }

    /// A new group for a task supervisor to start its tasks in, one at a time: it keeps
    /// the group, empty, from one task to the next, and removes it when it exits. Making
    /// and removing a group cost more than a short task's whole start (the kernel sets
    /// up and tears down its files and its accounting each time). The daemon does not
    /// step in: it opens nothing there.
    pub(crate) fn create_for_supervisor(self: &Arc<Self>) -> Option<TaskCgroup> {
        let n = self.next_supervisor.fetch_add(1, Ordering::Relaxed);
        self.make(&format!("sup-{}-{n}", std::process::id()), false)
    }

    fn make(self: &Arc<Self>, name: &str, step_in: bool) -> Option<TaskCgroup> {
        if self.off.load(Ordering::Relaxed) {
            return None;
        }
        let mut leaf = name.to_string();
        let mut made = make_in(&self.dir, &self.dir.join(&leaf));
        // A group is never shared, so that the daemon never steps into one being killed:
        // a task that starts a second process gets a second group.
        for n in 2..10 {
            if !matches!(&made, Err(e) if e.kind() == io::ErrorKind::AlreadyExists) {
                break;
            }
            leaf = format!("{name}.{n}");
            made = make_in(&self.dir, &self.dir.join(&leaf));
        }
        let dir = self.dir.join(&leaf);
        let opened = made.and_then(|()| {
            step_in
                .then(|| {
                    OpenOptions::new()
                        .write(true)
                        .open(dir.join("cgroup.procs"))
                })
                .transpose()
        });
        match opened {
            Ok(procs) => Some(TaskCgroup {
                name: self.name.join(&leaf),
                dir,
                procs,
                owner: self.clone(),
                remove: true,
            }),
            Err(e) => {
                self.warn_once(&format!("cannot make the cgroup {} ({e})", dir.display()));
                None
            }
        }
    }

    /// The group of an adopted task, at `dir` (as its supervisor names it): taken only
    /// when it is one of this instance's task groups.
    pub(crate) fn adopt(self: &Arc<Self>, dir: &Path) -> Option<TaskCgroup> {
        let leaf = dir.file_name()?.to_str()?;
        let parent = dir.parent()?;
        let ours = is_task_group(leaf)
            && parent.file_name() == self.dir.file_name()
            && is_ours(parent, &self.dir.file_name()?.to_string_lossy());
        ours.then(|| TaskCgroup {
            name: self.name.join(leaf),
            dir: dir.to_path_buf(),
            procs: None,
            owner: self.clone(),
            remove: true,
        })
    }

    fn warn_once(&self, what: &str) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!("{what}; a task that has no cgroup runs as without cgroups");
        }
    }
}

/// One task's group. Dropping it removes the group if it is empty.
pub(crate) struct TaskCgroup {
    dir: PathBuf,
    /// As `/proc/PID/cgroup` names it.
    name: PathBuf,
    /// Its `cgroup.procs`, open until the spawn.
    procs: Option<File>,
    owner: Arc<Cgroups>,
    /// Removed when dropped (not when its supervisor removes it).
    remove: bool,
}

impl TaskCgroup {
    /// Runs `spawn` with the daemon inside this group, so that the process it starts is
    /// born there, and nothing that process starts is ever outside. The caller makes
    /// sure that no other thread of the daemon forks meanwhile (the reaper's lock).
    /// Where the daemon cannot step in, the process starts without a group.
    pub(crate) fn spawn_in<T>(&mut self, spawn: impl FnOnce() -> T) -> T {
        let Some(mut procs) = self.procs.take() else {
            return spawn();
        };
        // "0" is the writing process: all of the daemon's threads move.
        if let Err(e) = procs.write_all(b"0") {
            self.owner.warn_once(&format!(
                "cannot start a task in its cgroup {} ({e})",
                self.dir.display()
            ));
            return spawn();
        }
        // Steps back out even if the spawn panics.
        let _inside = Inside(&self.owner);
        spawn()
    }

    /// Its folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Lets go of it without removing it: the task's supervisor does, once it has swept
    /// up what the task left (off the path from one task's end to the next one's start).
    pub(crate) fn leave_to_supervisor(mut self) {
        self.remove = false;
    }

    /// The processes in it now (never the daemon).
    pub(crate) fn pids(&self) -> Vec<i32> {
        let me = std::process::id() as i32;
        pids(&self.dir).into_iter().filter(|p| *p != me).collect()
    }

    /// Whether any process is left in it.
    pub(crate) fn populated(&self) -> bool {
        populated(&self.dir)
    }

    /// SIGKILLs every process in it, unless the daemon is stuck there (it could not
    /// step back out): then every other process, one by one.
    pub(crate) fn kill(&self) {
        let me = fs::read_to_string("/proc/self/cgroup")
            .ok()
            .and_then(|t| own_cgroup(&t));
        if me.as_deref() == Some(self.name.as_path()) {
            for pid in self.pids() {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        } else {
            kill_group(&self.dir);
        }
    }
}

/// The daemon inside a task's group for a spawn; dropping it steps back out.
struct Inside<'a>(&'a Cgroups);

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        let mut home = &self.0.home;
        // Tried again once: a daemon that stays would be killed with the task's group
        // (`TaskCgroup::kill` watches for that).
        let back = home.write_all(b"0").or_else(|_| home.write_all(b"0"));
        if let Err(e) = back {
            self.0.off.store(true, Ordering::Relaxed);
            tracing::error!(
                "the daemon could not step back out of a task's cgroup ({e}); tasks run without cgroups from now on"
            );
        }
    }
}

/// An engine dropped without stopping (embedded, in tests) leaves no empty group.
impl Drop for Cgroups {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.dir);
    }
}

impl Drop for TaskCgroup {
    fn drop(&mut self) {
        // Refused while a process is left in it (it outlived SIGKILL): then the next
        // daemon removes it. The instance's group stays ([`Cgroups::leave`]).
        if self.remove {
            let _ = fs::remove_dir(&self.dir);
        }
    }
}

fn read(path: &'static str) -> Result<String, Unavailable> {
    fs::read_to_string(path).map_err(|source| Unavailable::Read { path, source })
}

/// The cgroup v2 path in a `/proc/PID/cgroup` text: its `0::` line.
fn own_cgroup(text: &str) -> Option<PathBuf> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .filter(|p| p.starts_with('/'))
        .map(PathBuf::from)
}

/// The cgroup v2 mounts in a `/proc/PID/mountinfo` text: which cgroup each shows at
/// its root, and where it is mounted.
fn cgroup2_mounts(text: &str) -> Vec<(PathBuf, PathBuf)> {
    text.lines()
        .filter_map(|line| {
            // "ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE ..."
            let (fields, rest) = line.split_once(" - ")?;
            if rest.split(' ').next() != Some("cgroup2") {
                return None;
            }
            let mut fields = fields.split(' ').skip(3);
            let root = unescape(fields.next()?);
            let point = unescape(fields.next()?);
            Some((root, point))
        })
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> PathBuf {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push(
                    d.iter()
                        .fold(0u8, |n, c| n.wrapping_mul(8).wrapping_add(c - b'0')),
                );
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

/// Whether `path` is this instance's group in a cgroup v2 file system.
fn is_ours(path: &Path, group: &str) -> bool {
    path.is_absolute()
        && path
            .file_name()
            .is_some_and(|n| n.as_bytes() == group.as_bytes())
        && nix::sys::statfs::statfs(path)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// A task's group, or a supervisor's, by its name.
fn is_task_group(leaf: &str) -> bool {
    leaf.starts_with("task-") || leaf.starts_with("sup-")
}

fn make(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        r => r,
    }
}

/// Makes the new group `dir` in `parent`, making `parent` too when it is not there (the
/// first task, or someone removed it).
fn make_in(parent: &Path, dir: &Path) -> io::Result<()> {
    let mut tries = 0;
    loop {
        match fs::create_dir(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 3 => {
                tries += 1;
                make(parent)?;
            }
            r => return r,
        }
    }
}

fn pids(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

fn populated(dir: &Path) -> bool {
    fs::read_to_string(dir.join("cgroup.events"))
        .is_ok_and(|t| t.lines().any(|l| l == "populated 1"))
}

fn kill_group(dir: &Path) {
    let kill_file = OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.kill"))
        .and_then(|mut f| f.write_all(b"1"));
    if let Err(e) = kill_file {
        // Before Linux 5.14 there is no cgroup.kill: each process then. One forked
        // meanwhile is found at the next look.
        if e.kind() == io::ErrorKind::NotFound {
            for pid in pids(dir) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

/// Kills what the task groups in `dir` (a previous daemon's) hold, and removes them.
/// Blocks, up to [`CLEAN_WAIT`]: it runs once, while the engine opens, before any task
/// of its own can start (a queued task run again may take its old group's name).
fn clean(dir: &Path, keep: &dyn Fn(&str) -> bool) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let groups: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(is_task_group))
        .filter(|e| !e.file_name().to_str().is_some_and(keep))
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    let mut killed = 0;
    for g in &groups {
        if populated(g) {
            kill_group(g);
            killed += 1;
        }
    }
    let deadline = Instant::now() + CLEAN_WAIT;
    for g in &groups {
        while populated(g) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            kill_group(g);
        }
        let _ = fs::remove_dir(g);
    }
    let _ = fs::remove_dir(dir);
    if killed > 0 {
        tracing::info!(
            "killed what {killed} tasks of a previous daemon left in their cgroups ({})",
            dir.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup_v2_mounts_are_read_from_mountinfo() {
        let text = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw
52 41 0:38 /user.slice /mnt/with\\040space rw - cgroup2 cgroup2 rw,nsdelegate";
        assert_eq!(
            cgroup2_mounts(text),
            vec![
                (PathBuf::from("/"), PathBuf::from("/sys/fs/cgroup/unified")),
                (
                    PathBuf::from("/user.slice"),
                    PathBuf::from("/mnt/with space")
                ),
            ]
        );
    }

    #[test]
    fn the_own_cgroup_is_the_v2_line() {
        let text = "9:name=systemd:/\n4:memory:/x\n0::/user.slice/app.scope\n";
        assert_eq!(
            own_cgroup(text),
            Some(PathBuf::from("/user.slice/app.scope"))
        );
        assert_eq!(own_cgroup("4:memory:/x\n"), None);
    }

    #[test]
    fn killing_a_group_writes_cgroup_kill_or_kills_each_process_without_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cgroup.kill"), "").unwrap();
        kill_group(dir.path());
        assert_eq!(std::fs::read(dir.path().join("cgroup.kill")).unwrap(), b"1");

        // Before Linux 5.14: no cgroup.kill, each process listed in cgroup.procs.
        std::fs::remove_file(dir.path().join("cgroup.kill")).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        std::fs::write(dir.path().join("cgroup.procs"), format!("{}\n", child.id())).unwrap();
        kill_group(dir.path());
        // Another test's reaper may have reaped it already; either way it is gone.
        let status = child.wait();
        assert!(
            status.as_ref().map_or(true, |s| s.code().is_none()),
            "{status:?}"
        );
        assert!(!std::fs::exists(dir.path().join("cgroup.kill")).unwrap());
    }

    #[test]
    fn only_this_instances_group_in_a_cgroup_file_system_is_ours() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("aside-abc");
        std::fs::create_dir(&fake).unwrap();
        assert!(!is_ours(&fake, "aside-abc"), "a plain directory");
        assert!(!is_ours(Path::new("aside-abc"), "aside-abc"), "relative");
        assert!(!is_ours(Path::new("/sys/fs/cgroup"), "aside-abc"));
    }
}
