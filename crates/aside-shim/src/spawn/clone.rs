//! The task's first process started by hand, on x86-64 Linux: `clone3` with the
//! supervisor's memory shared and the supervisor held until the exec (what `vfork` does),
//! and the child born in the task's cgroup (`CLONE_INTO_CGROUP`, Linux 5.7).
//!
//! Why not std's spawn (glibc's `posix_spawn`): it cannot name a cgroup, so the supervisor
//! had to move itself into the task's group and back out around each spawn (two cgroup
//! migrations per task); and glibc's child resets the dispositions of all 64 signals, one or
//! two system calls each. Here the kernel resets every handler (`CLONE_CLEAR_SIGHAND`, Linux
//! 5.5; ignored signals stay ignored, as with posix_spawn) and the child resets SIGPIPE,
//! which std would reset too. Where `clone3` is refused (an older kernel, a seccomp filter,
//! a group that takes no process), the caller falls back to std's spawn.
//!
//! The child runs on a stack of its own, in the supervisor's memory, while the supervisor
//! waits: it only makes system calls on what the supervisor prepared ([`Plan`]), allocates
//! nothing and takes no lock.

use std::ffi::{c_char, c_int, CString};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use crate::env::TaskEnv;

/// Everything the child needs, made before the clone.
pub(crate) struct Plan<'a> {
    program: CString,
    /// Null-terminated arrays of pointers into `_strings`, and into the base environment
    /// the supervisor keeps (borrowed for `'a`).
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
    _strings: Vec<CString>,
    _base: std::marker::PhantomData<&'a CString>,
    cwd: CString,
    /// The task's standard input, output and error.
    stdio: [RawFd; 3],
    /// A session of its own with its terminal (on fd 0) as controlling terminal, or only a
    /// process group of its own.
    session: bool,
    /// What failed in the child, and its errno (0 while nothing did).
    failed_at: AtomicI32,
    errno: AtomicI32,
}

/// The steps of the child, as reported when one fails.
const STEP_DUP: i32 = 1;
const STEP_GROUP: i32 = 2;
const STEP_CHDIR: i32 = 3;
const STEP_EXEC: i32 = 4;

/// Bytes of stack for the child: a few system calls through libc.
const STACK: usize = 64 << 10;

/// How a start by hand went.
pub(crate) enum Started {
    /// The task's first process runs: its pid.
    Running(i32),
    /// It could not be started: the exec (or a step before it) failed with this error.
    Failed(io::Error),
    /// `clone3` is not available here: start it another way.
    Unsupported,
}

impl<'a> Plan<'a> {
    /// `None` when an argument, a variable or the folder holds a NUL byte.
    pub fn new(
        program: &str,
        args: &[String],
        env: TaskEnv<'a>,
        cwd: &str,
        stdio: [RawFd; 3],
        session: bool,
    ) -> Option<Self> {
        let program = CString::new(program).ok()?;
        let (base, own) = env.entries()?;
        let mut strings = Vec::with_capacity(1 + args.len() + own.len());
        strings.push(program.clone());
        for a in args {
            strings.push(CString::new(a.as_str()).ok()?);
        }
        strings.extend(own);
        let argv = null_terminated(&strings[..=args.len()]);
        let envp = null_terminated(base.into_iter().chain(&strings[1 + args.len()..]));
        Some(Self {
            program,
            argv,
            envp,
            _strings: strings,
            _base: std::marker::PhantomData,
            cwd: CString::new(cwd).ok()?,
            stdio,
            session,
            failed_at: AtomicI32::new(0),
            errno: AtomicI32::new(0),
        })
    }
}

/// The strings' pointers, then a null one: an `argv` or `envp`.
fn null_terminated<'s>(strings: impl IntoIterator<Item = &'s CString>) -> Vec<*const c_char> {
    let mut p: Vec<*const c_char> = strings.into_iter().map(|c| c.as_ptr()).collect();
    p.push(std::ptr::null());
    p
}

/// Starts `plan` in the cgroup whose folder `cgroup` is open (or where the supervisor is).
pub(crate) fn start(plan: &Plan<'_>, cgroup: Option<&std::fs::File>) -> Started {
    let Some(stack) = Stack::get() else {
        return Started::Unsupported;
    };
    let mut args = CloneArgs {
        flags: (libc::CLONE_VM | libc::CLONE_VFORK) as u64 | CLONE_CLEAR_SIGHAND,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack.base as u64,
        stack_size: STACK as u64,
        ..CloneArgs::default()
    };
    if let Some(dir) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = dir.as_raw_fd() as u64;
    }
    let child = Child { plan };
    // Every signal blocked across the clone, as posix_spawn does: nothing is delivered to
    // the child, which shares the supervisor's memory, before it sets its own mask (none
    // blocked) just ahead of the exec.
    let mut all = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    let mut was = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset fills the set it is given; pthread_sigmask reads one set and writes
    // the other, both live for the call.
    let blocked = unsafe {
        libc::sigfillset(all.as_mut_ptr()) == 0
            && libc::pthread_sigmask(libc::SIG_SETMASK, all.as_ptr(), was.as_mut_ptr()) == 0
    };
    if !blocked {
        return Started::Unsupported;
    }
    // SAFETY: see `clone3`; `child` and the stack outlive the child's use of them (the
    // supervisor is held until the child has exec'd or exited).
    let pid = unsafe { clone3(&args, &child) };
    // SAFETY: `was` was filled by the successful call above.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, was.as_ptr(), std::ptr::null_mut());
    }
    if pid < 0 {
        // Whatever the reason, std's spawn is tried: it either works or says why not.
        return Started::Unsupported;
    }
    let pid = pid as i32;
    match plan.failed_at.load(Ordering::Acquire) {
        0 => Started::Running(pid),
        step => {
            // It exited: reaped here, not left for the supervisor's loop.
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            let e = io::Error::from_raw_os_error(plan.errno.load(Ordering::Acquire));
            Started::Failed(match step {
                STEP_EXEC => e,
                STEP_CHDIR => io::Error::new(e.kind(), format!("cannot enter its folder: {e}")),
                _ => io::Error::new(e.kind(), format!("cannot set up its process: {e}")),
            })
        }
    }
}

const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` (linux/sched.h), as far as `cgroup`.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// The kernel's `struct sigaction` (x86-64): all zero is SIG_DFL with no flags.
#[repr(C)]
#[derive(Default)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// What the child is handed.
struct Child<'a> {
    plan: &'a Plan<'a>,
}

/// The child's stack: a mapping of its own, made once and kept for the supervisor's next
/// tasks (a start uses it only while the supervisor is held, and the supervisor has one
/// thread).
struct Stack {
    base: *mut libc::c_void,
}

// SAFETY: the mapping is only an address; it is used by one child at a time, while the one
// thread of the supervisor that started it waits.
unsafe impl Send for Stack {}
// SAFETY: as above.
unsafe impl Sync for Stack {}

impl Stack {
    fn get() -> Option<&'static Stack> {
        static STACK: std::sync::OnceLock<Option<Stack>> = std::sync::OnceLock::new();
        STACK.get_or_init(Stack::new).as_ref()
    }

    fn new() -> Option<Self> {
        // SAFETY: an anonymous private mapping; no memory of the process is touched.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                STACK,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        (base != libc::MAP_FAILED).then_some(Self { base })
    }
}

/// `clone3(args)` whose child runs [`child_main`] on the stack `args` names; the child's pid
/// in the parent, or `-errno`.
///
/// # Safety
///
/// `args` must name a stack of `STACK` bytes that nothing else uses, and CLONE_VM with
/// CLONE_VFORK: the child shares this memory and this call returns only once it has exec'd
/// or exited, so `child` is valid for as long as it is used.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
unsafe fn clone3(args: &CloneArgs, child: &Child<'_>) -> i64 {
    let ret: i64;
    // SAFETY: the caller's contract. In the child, which starts on the new stack's top
    // (16-byte aligned), nothing of this function's frame is used: it calls `child_main`,
    // which never returns. Every register but rax, rcx and r11 is kept by the system call.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") args as *const CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") child as *const Child<'_>,
            in("r13") child_main as extern "C" fn(*const Child<'_>) -> !,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
unsafe fn clone3(_args: &CloneArgs, _child: &Child<'_>) -> i64 {
    -(libc::ENOSYS as i64)
}

/// The child, between the clone and the exec: system calls only, on what the plan holds.
extern "C" fn child_main(child: *const Child<'_>) -> ! {
    // SAFETY: the parent is held until this process execs or exits, so what `child` points
    // to lives; every call below is a plain system call wrapper on prepared values.
    unsafe {
        let Child { plan } = &*child;
        let fail = |step: i32| -> ! {
            plan.errno
                .store(*libc::__errno_location(), Ordering::Relaxed);
            plan.failed_at.store(step, Ordering::Release);
            libc::_exit(127)
        };
        // SIGPIPE is ignored by Rust programs from their start, and glibc's two internal
        // signals (32 and 33) by whatever posix_spawn started this process: a task gets the
        // defaults.
        // Through the system call, as glibc's wrapper refuses its internal signals.
        let dfl = KernelSigaction::default();
        for sig in [libc::SIGPIPE, 32, 33] {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                std::mem::size_of::<u64>(),
            );
        }
        for (target, &fd) in plan.stdio.iter().enumerate() {
            let target = target as c_int;
            // dup2 onto itself would leave close-on-exec set.
            let placed = match fd == target {
                true => libc::fcntl(fd, libc::F_SETFD, 0) >= 0,
                false => libc::dup2(fd, target) >= 0,
            };
            if !placed {
                fail(STEP_DUP);
            }
        }
        let grouped = match plan.session {
            true => libc::setsid() >= 0 && libc::ioctl(0, libc::TIOCSCTTY, 0) >= 0,
            false => libc::setpgid(0, 0) == 0,
        };
        if !grouped {
            fail(STEP_GROUP);
        }
        if libc::chdir(plan.cwd.as_ptr()) < 0 {
            fail(STEP_CHDIR);
        }
        let mut none = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(none.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_SETMASK, none.as_ptr(), std::ptr::null_mut());
        libc::execve(
            plan.program.as_ptr(),
            plan.argv.as_ptr(),
            plan.envp.as_ptr(),
        );
        fail(STEP_EXEC)
    }
}
