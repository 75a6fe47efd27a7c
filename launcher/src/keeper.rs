//! The keeper: the sandbox's first process, which stays behind when it forks the program, and
//! makes sure no process of the sandbox outlives the program or the supervisor.
//!
//! In reproducible mode the keeper is init (pid 1) of the sandbox's pid namespace (see
//! [`crate::namespaces`]); when it ends, the kernel kills every process left in the namespace,
//! and when the supervisor dies, its `PR_SET_PDEATHSIG` (`SIGKILL`) ends it. Without a pid
//! namespace the keeper is a child subreaper (`PR_SET_CHILD_SUBREAPER`): a process that
//! daemonizes (double fork, `setsid`, `nohup`) becomes the keeper's child instead of the host
//! init's. When the program ends, the keeper kills its remaining children round after round
//! (their own children come to it in turn) and then exits with the program's status; when the
//! supervisor dies, its parent-death signal is [`SUPERVISOR_GONE`], whose handler does the same
//! sweep before the keeper goes. The program runs under one more Landlock layer that scopes its
//! signals, so it cannot kill the keeper first (Landlock ABI 6; in a pid namespace the kernel
//! already protects init).
//!
//! Either way the keeper passes on SIGTERM and SIGHUP from the supervisor to the program, and
//! SIGINT and SIGQUIT too when the program runs in a session of its own (no terminal; see
//! [`crate::spawn`]), since the terminal then cannot reach the program itself: those two go
//! to the program's process group, which is then its own, as a terminal sends them to its
//! foreground group. With `--tty` the program leads a session of its own instead, the pty's
//! ([`crate::tty`]), and so its own process group. The keeper
//! exits with the program's status mapped like [`crate::spawn::wait`] maps it (the exit code,
//! or 128 + the signal), so `cloister run` reports the program's status.
//!
//! It only makes raw system calls: it is a forked child of a multi-threaded supervisor, and
//! its sweep may run in a signal handler. It finds its children in
//! `/proc/thread-self/children`, opened before the Landlock floor (which may hide `/proc`);
//! on a kernel without that file (`CONFIG_PROC_CHILDREN`), the supervisor's own sweep
//! ([`crate::timeout::sweep`]) kills what the keeper leaves.
//!
//! Read first: prctl(2), proc(5) (`/proc/PID/task/TID/children`), pid_namespaces(7),
//! landlock(7) (scopes).

use crate::namespaces::Step;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// The keeper's parent-death signal without a pid namespace: caught, unlike `SIGKILL`, so the
/// keeper can kill the sandbox before it goes.
pub const SUPERVISOR_GONE: libc::c_int = libc::SIGUSR1;

/// What the keeper needs to know, decided before the fork.
#[derive(Clone, Copy, Debug)]
pub struct Keeper {
    /// The keeper is init of a new pid namespace.
    pub pid_ns: bool,
    /// The program runs in a session of its own: pass SIGINT and SIGQUIT on too.
    pub new_session: bool,
    /// The supervisor's pid, whose signals the keeper passes on.
    pub supervisor: libc::pid_t,
    /// A Landlock ruleset that only scopes signals, for the program's extra layer (`None`
    /// before Landlock ABI 6, or in a pid namespace).
    pub signal_scope: Option<RawFd>,
    /// `--tty`: the program starts a session of its own, whose controlling terminal is the pty
    /// (see [`crate::tty`]), so the keeper leaves its process group alone.
    pub program_session: bool,
}

/// The program's pid, as the keeper sees it, for the signal forwarder.
static PROGRAM: AtomicI32 = AtomicI32::new(0);
/// The supervisor's pid, as the keeper sees it (0 in a pid namespace: outside it).
static SUPERVISOR: AtomicI32 = AtomicI32::new(0);
/// The keeper's `/proc/thread-self/children`, or -1.
static CHILDREN: AtomicI32 = AtomicI32::new(-1);

/// A ruleset that scopes signals and confines no access, for [`Keeper::signal_scope`]; `None`
/// where the host's Landlock has no scopes.
///
/// Landlock counts `LANDLOCK_ACCESS_FS_REFER` as handled by every layer, so a layer without
/// rules would refuse every rename or link across directories (`EXDEV`): this one handles it
/// and grants it beneath `/`.
pub fn signal_scope_ruleset() -> Option<std::os::fd::OwnedFd> {
    /// `struct landlock_ruleset_attr` of ABI 6.
    #[repr(C)]
    struct Attr {
        handled_access_fs: u64,
        handled_access_net: u64,
        scoped: u64,
    }
    const LANDLOCK_SCOPE_SIGNAL: u64 = 1 << 1;
    if crate::landlock::abi().ok()? < 6 {
        return None;
    }
    /// `struct landlock_path_beneath_attr`, packed as the kernel declares it.
    #[repr(C, packed)]
    struct PathBeneath {
        allowed_access: u64,
        parent_fd: i32,
    }
    const LANDLOCK_ACCESS_FS_REFER: u64 = 1 << 13;
    const LANDLOCK_RULE_PATH_BENEATH: libc::c_long = 1;
    let attr = Attr {
        handled_access_fs: LANDLOCK_ACCESS_FS_REFER,
        handled_access_net: 0,
        scoped: LANDLOCK_SCOPE_SIGNAL,
    };
    // SAFETY: the kernel reads `size_of::<Attr>()` bytes of `attr`, a local of that size.
    let fd = unsafe {
        libc::syscall(libc::SYS_landlock_create_ruleset, &attr as *const Attr, std::mem::size_of::<Attr>(), 0)
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: the call returned a fresh descriptor (close-on-exec) that nothing else owns.
    let ruleset: std::os::fd::OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as RawFd) };
    let root = std::fs::File::open("/").ok()?;
    let rule = PathBeneath { allowed_access: LANDLOCK_ACCESS_FS_REFER, parent_fd: root.as_raw_fd() };
    // SAFETY: both descriptors are open for the call; the attribute is a local of its type.
    let added = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            LANDLOCK_RULE_PATH_BENEATH,
            &rule as *const PathBeneath,
            0,
        )
    };
    (added == 0).then_some(ruleset)
}

/// In the sandbox's first process without a pid namespace, before the Landlock floor (which
/// may not let it read `/proc`): opens the list of its children that the keeper sweeps.
///
/// # Safety
/// Async-signal-safe: one `open` of a constant path; call it once, in that process.
pub unsafe fn open_children_list() {
    // SAFETY: opening a constant C string; the descriptor is this process's own.
    let fd = unsafe { libc::open(c"/proc/thread-self/children".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    CHILDREN.store(fd, Ordering::Relaxed);
}

/// In the sandbox's first process, once its set-up and the floor are in place: forks the
/// program. Returns `Ok` in the program's process, which continues the launcher's set-up; in
/// the keeper it never returns: the keeper closes every descriptor but its children list,
/// reaps, and exits with the program's status when the program ends, after killing what is
/// left.
///
/// # Safety
/// Only in the sandbox's first process, after [`crate::namespaces::Namespaces::enter`]:
/// async-signal-safe calls only, no allocation.
pub unsafe fn start_program(keeper: &Keeper) -> Result<(), Step> {
    // SAFETY: signal-mask and sigaction calls on local, initialised sets; clone without
    // CLONE_VM behaves like fork (see `Namespaces::fork`); the rest are raw system calls.
    unsafe {
        if !keeper.pid_ns {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
            SUPERVISOR.store(keeper.supervisor, Ordering::Relaxed);
        }
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        // Blocked from here to the end of the set-up on both sides of the fork: a request to
        // forward cannot arrive before the keeper knows where to send it, and the program does
        // not run the keeper's handlers.
        libc::sigprocmask(libc::SIG_BLOCK, &all, &mut old);
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = forward as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        action.sa_mask = all;
        let forwarded: &[libc::c_int] = if keeper.new_session {
            &[libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGQUIT]
        } else {
            &[libc::SIGTERM, libc::SIGHUP]
        };
        for &sig in forwarded {
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
        if !keeper.new_session {
            // The terminal sends them to the whole foreground process group, program included;
            // an init without a handler drops them the same way.
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            libc::signal(libc::SIGQUIT, libc::SIG_IGN);
        }
        let me = libc::getpid();
        let pid = libc::syscall(libc::SYS_clone, libc::c_long::from(libc::SIGCHLD), 0, 0, 0, 0);
        if pid < 0 {
            return Err(Step::ForkProgram);
        }
        if pid == 0 {
            for sig in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGQUIT] {
                libc::signal(sig, libc::SIG_DFL);
            }
            // The keeper may have died already (killed with the supervisor); then so do we.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != me {
                libc::_exit(125);
            }
            // A foreground process group of its own, as a shell gives a job, for the terminal's
            // signals the keeper passes on.
            // (A session leader cannot be moved to another group, and one that leads a group
            // cannot start a session.)
            if keeper.new_session && !keeper.program_session {
                libc::setpgid(0, 0);
            }
            let children = CHILDREN.load(Ordering::Relaxed);
            if children >= 0 {
                libc::close(children);
            }
            if let Some(scope) = keeper.signal_scope {
                // Best effort: without it the program could kill the keeper, and only the
                // supervisor's sweep would be left.
                libc::syscall(libc::SYS_landlock_restrict_self, scope, 0);
            }
            libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            return Ok(());
        }
        let program = pid as libc::pid_t;
        PROGRAM.store(program, Ordering::Relaxed);
        if keeper.new_session && !keeper.program_session {
            // Both sides, so the group exists before either goes on (as shells do).
            libc::setpgid(program, program);
        }
        // The keeper keeps no descriptor but its children list: the launcher's error pipe
        // reaches end-of-file when the program execs, the trace pipe when the sandbox ends,
        // and the program's standard streams belong to the program.
        close_all_but(CHILDREN.load(Ordering::Relaxed));
        if !keeper.pid_ns {
            libc::prctl(libc::PR_SET_NAME, c"cloister-keep".as_ptr());
            let mut gone: libc::sigaction = std::mem::zeroed();
            gone.sa_sigaction = supervisor_gone as *const () as libc::sighandler_t;
            gone.sa_mask = all;
            libc::sigaction(SUPERVISOR_GONE, &gone, std::ptr::null_mut());
            libc::prctl(libc::PR_SET_PDEATHSIG, SUPERVISOR_GONE);
            // The supervisor may have died before that took effect.
            if libc::getppid() != keeper.supervisor {
                supervisor_gone(SUPERVISOR_GONE);
            }
        }
        libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        loop {
            let mut status = 0;
            let r = libc::waitpid(-1, &mut status, libc::__WALL);
            if r == program {
                let code = if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else if libc::WIFSIGNALED(status) {
                    128 + libc::WTERMSIG(status)
                } else {
                    continue;
                };
                sweep();
                libc::_exit(code);
            } else if r < 0 && *libc::__errno_location() != libc::EINTR {
                libc::_exit(125);
            }
        }
    }
}

/// Closes every descriptor of the calling process but `keep` (when it is one).
///
/// # Safety
/// Async-signal-safe; the caller owns every descriptor it has.
unsafe fn close_all_but(keep: RawFd) {
    let ranges: [(libc::c_uint, libc::c_uint); 2] = match keep {
        ..=-1 => [(0, libc::c_uint::MAX), (1, 0)],
        0 => [(1, libc::c_uint::MAX), (1, 0)],
        _ => [(0, keep as libc::c_uint - 1), (keep as libc::c_uint + 1, libc::c_uint::MAX)],
    };
    for (first, last) in ranges {
        if first > last {
            continue;
        }
        // SAFETY: closing descriptors this process owns; nothing else uses them.
        unsafe {
            if libc::syscall(libc::SYS_close_range, first, last, 0) != 0 {
                for fd in first..last.min(1023) + 1 {
                    libc::close(fd as RawFd);
                }
            }
        }
    }
}

/// Kills every child of the keeper, round after round, until it has none. Async-signal-safe:
/// it also runs in [`supervisor_gone`].
fn sweep() {
    let children = CHILDREN.load(Ordering::Relaxed);
    if children < 0 {
        return;
    }
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reading our own children list into a local buffer; reading from offset 0
        // makes the kernel list them anew.
        let n = unsafe { libc::pread(children, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return;
        }
        let mut pid: libc::pid_t = 0;
        for &b in &buf[..n as usize] {
            if b.is_ascii_digit() {
                pid = pid * 10 + libc::pid_t::from(b - b'0');
            } else if pid > 0 {
                // SAFETY: signalling our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                pid = 0;
            }
        }
        let mut status = 0;
        // SAFETY: reaping our own children; when none is left the call says ECHILD. Killed ones
        // hand their own children to the keeper before they can be reaped.
        if unsafe { libc::waitpid(-1, &mut status, libc::__WALL) } < 0
            // SAFETY: reading this thread's errno.
            && unsafe { *libc::__errno_location() } == libc::ECHILD
        {
            return;
        }
    }
}

/// The keeper's handler for [`SUPERVISOR_GONE`]: the supervisor died, so the sandbox does.
extern "C" fn supervisor_gone(_sig: libc::c_int) {
    let program = PROGRAM.load(Ordering::Relaxed);
    if program > 0 {
        // SAFETY: kill is async-signal-safe; the program first, so it stops forking.
        unsafe { libc::kill(program, libc::SIGKILL) };
    }
    sweep();
    // SAFETY: ending the keeper; nothing of the sandbox is left to keep.
    unsafe { libc::_exit(128 + libc::SIGKILL) }
}

/// The keeper's handler for the signals it passes on: passes a request from the supervisor
/// (in a pid namespace: from outside it, si_pid 0) to the program. Signals from inside the
/// sandbox and from the kernel (a terminal hang-up reaches the program by itself) are dropped,
/// as an init without a handler would.
extern "C" fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler; si_pid is set for
    // signals sent with kill(2) (0 when the sender is outside this pid namespace).
    let (code, sender) = unsafe { ((*info).si_code, (*info).si_pid()) };
    let program = PROGRAM.load(Ordering::Relaxed);
    if sender == SUPERVISOR.load(Ordering::Relaxed) && code != libc::SI_KERNEL && program > 0 {
        // A terminal sends its interrupt and quit to the whole foreground group: a shell
        // waiting for a command dies of it only once the command did.
        let target = if matches!(sig, libc::SIGINT | libc::SIGQUIT) { -program } else { program };
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(target, sig) };
    }
}
