//! A cgroup v2 group per task, where the daemon can make one: every descendant of the task
//! stays in it whatever it does (setsid, a cleared environment, a double fork), and one
//! write to `cgroup.kill` ends them all. No controller is used, only `cgroup.procs`,
//! `cgroup.events` and `cgroup.kill`, so a group can be made wherever the daemon may write.
//!
//! A task's first process is born in its group: the daemon steps into the group for the
//! spawn and back out (see [`TaskCgroup::spawn_in`]). Moving the child from a `pre_exec` hook
//! would do too, but such a hook makes std fork the whole daemon instead of using
//! posix_spawn (a vfork), which costs in proportion to the daemon's memory; and
//! `clone3(CLONE_INTO_CGROUP)` is not something std can spawn with.
//!
//! The groups of one state directory are in `aside-<instance>`, under the daemon's own
//! cgroup in the cgroup v2 mount (found in `/proc/self/mountinfo`, not assumed at
//! `/sys/fs/cgroup`): `task-<id>` for a task the daemon starts itself, `sup-<pid>-<n>` for
//! a task supervisor's (see [`Cgroups::create_for_supervisor`]). `aside-<instance>` is
//! made with a task's group and removed with the last one. The state directory's `cgroup`
//! file names it, so that a daemon restarted in another cgroup still finds, and kills, what
//! a previous one left.
//!
//! Linux only. Where groups cannot be made (no cgroup v2, no write access, a read-only
//! mount), that is said once and tasks run without: the process group, the tag and the
//! subreaper still hold (see `proctree`).

#[cfg(not(target_os = "linux"))]
pub(crate) use elsewhere::{Cgroups, TaskCgroup};
#[cfg(target_os = "linux")]
pub(crate) use linux::{Cgroups, TaskCgroup};

#[cfg(target_os = "linux")]
mod linux;

#[cfg(not(target_os = "linux"))]
mod elsewhere;
