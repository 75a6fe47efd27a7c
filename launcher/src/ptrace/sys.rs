//! Raw `ptrace` requests and the tracee's registers: the only unsafe code of the backend.

use std::io;

/// `PTRACE_EVENT_*` numbers, as `status >> 16` of a stop reports them.
pub mod event {
    /// A `fork`.
    pub const FORK: i32 = 1;
    /// A `vfork`.
    pub const VFORK: i32 = 2;
    /// A `clone` (a thread, or a process with another exit signal).
    pub const CLONE: i32 = 3;
    /// A successful `execve`.
    pub const EXEC: i32 = 4;
    /// A seccomp `SECCOMP_RET_TRACE`.
    pub const SECCOMP: i32 = 7;
    /// A group-stop or the first stop of an auto-attached child (`PTRACE_SEIZE`).
    pub const STOP: i32 = 128;
}

/// The options every tracee gets: seccomp stops, every new process and thread followed,
/// exec reported, syscall stops told from signals, and every tracee killed if the
/// supervisor dies.
pub const OPTIONS: libc::c_int = libc::PTRACE_O_TRACESECCOMP
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEEXEC
    | libc::PTRACE_O_TRACESYSGOOD
    | libc::PTRACE_O_EXITKILL;

fn check(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `PTRACE_SEIZE` with [`OPTIONS`].
pub fn seize(pid: libc::pid_t) -> io::Result<()> {
    // SAFETY: PTRACE_SEIZE takes no pointer; `data` is the options word.
    check(unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0, OPTIONS as libc::c_long) }).map(drop)
}

/// Resumes `tid`, delivering `sig` (0: none). `until_exit`: stop again at the end of the
/// current call (`PTRACE_SYSCALL`).
pub fn resume(tid: libc::pid_t, sig: i32, until_exit: bool) -> io::Result<()> {
    let req = if until_exit { libc::PTRACE_SYSCALL } else { libc::PTRACE_CONT };
    // SAFETY: both requests take no pointer; `data` is the signal number.
    check(unsafe { libc::ptrace(req, tid, 0, sig as libc::c_long) }).map(drop)
}

/// Leaves `tid` in its group-stop until it is continued by a signal (`PTRACE_LISTEN`).
pub fn listen(tid: libc::pid_t) -> io::Result<()> {
    // SAFETY: PTRACE_LISTEN takes no pointer.
    check(unsafe { libc::ptrace(libc::PTRACE_LISTEN, tid, 0, 0) }).map(drop)
}

/// `PTRACE_GETEVENTMSG`: the new task's id of a fork/clone event, the former id at exec.
pub fn event_msg(tid: libc::pid_t) -> io::Result<u64> {
    let mut msg: libc::c_ulong = 0;
    // SAFETY: the kernel writes one unsigned long to `msg`, which lives for the call.
    check(unsafe { libc::ptrace(libc::PTRACE_GETEVENTMSG, tid, 0, &mut msg as *mut libc::c_ulong) })?;
    Ok(msg)
}

/// The tracee's general registers.
pub fn regs(tid: libc::pid_t) -> io::Result<libc::user_regs_struct> {
    // SAFETY: all-zero bytes are a valid `user_regs_struct` (plain integers).
    let mut r: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes one `user_regs_struct` to `r`, which lives for the call.
    check(unsafe { libc::ptrace(libc::PTRACE_GETREGS, tid, 0, &mut r as *mut libc::user_regs_struct) })?;
    Ok(r)
}

/// Sets the tracee's general registers.
pub fn set_regs(tid: libc::pid_t, r: &libc::user_regs_struct) -> io::Result<()> {
    // SAFETY: the kernel reads one `user_regs_struct` from `r`.
    check(unsafe { libc::ptrace(libc::PTRACE_SETREGS, tid, 0, r as *const libc::user_regs_struct) }).map(drop)
}

/// The tracee's signal mask (`PTRACE_GETSIGMASK`).
pub fn sigmask(tid: libc::pid_t) -> u64 {
    const PTRACE_GETSIGMASK: libc::c_uint = 0x420a;
    let mut mask = 0u64;
    // SAFETY: the kernel writes 8 bytes (the size passed in `addr`) to `mask`.
    let r = unsafe { libc::ptrace(PTRACE_GETSIGMASK, tid, 8usize, &mut mask as *mut u64) };
    if r < 0 {
        0
    } else {
        mask
    }
}

/// `pidfd_open(pid)`: a descriptor for [`dup_fd`].
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<i32> {
    // SAFETY: pidfd_open takes no pointer.
    check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) }).map(|fd| fd as i32)
}

/// `pidfd_getfd`: a copy, in the supervisor, of descriptor `fd` of the process `pidfd` names
/// (the same open file: offsets move together).
pub fn dup_fd(pidfd: i32, fd: i32) -> io::Result<i32> {
    // SAFETY: pidfd_getfd takes no pointer.
    check(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) }).map(|fd| fd as i32)
}

/// Closes a descriptor the supervisor owns.
pub fn close(fd: i32) {
    // SAFETY: `fd` is one of the supervisor's own descriptors, closed once.
    unsafe { libc::close(fd) };
}

/// One `waitpid(-1, __WALL)` (with `WNOHANG` when `block` is false): the task and its status,
/// `Ok(None)` when nothing is ready.
pub fn wait_any(block: bool) -> io::Result<Option<(libc::pid_t, i32)>> {
    let mut status = 0;
    let flags = libc::__WALL | if block { 0 } else { libc::WNOHANG };
    loop {
        // SAFETY: waitpid writes the status to a local.
        let pid = unsafe { libc::waitpid(-1, &mut status, flags) };
        match pid {
            0 => return Ok(None),
            p if p > 0 => return Ok(Some((p, status))),
            _ => {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINTR) {
                    return Err(e);
                }
            }
        }
    }
}

/// The `si_code` of the signal `tid` is stopped with (`PTRACE_GETSIGINFO`).
pub fn signal_code(tid: libc::pid_t) -> Option<i32> {
    // SAFETY: all-zero bytes are a valid `siginfo_t`.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes one `siginfo_t` to `info`, which lives for the call.
    let r = unsafe { libc::ptrace(libc::PTRACE_GETSIGINFO, tid, 0, &mut info as *mut libc::siginfo_t) };
    (r == 0).then_some(info.si_code)
}

/// Sets the tracee's signal mask (`PTRACE_SETSIGMASK`); `SIGKILL` and `SIGSTOP` stay unblocked.
pub fn set_sigmask(tid: libc::pid_t, mask: u64) -> io::Result<()> {
    const PTRACE_SETSIGMASK: libc::c_uint = 0x420b;
    // SAFETY: the kernel reads 8 bytes (the size passed in `addr`) from `mask`.
    check(unsafe { libc::ptrace(PTRACE_SETSIGMASK, tid, 8usize, &mask as *const u64) }).map(drop)
}

/// One `waitpid(tid, __WALL)`: the next report of that task alone (others stay queued).
pub fn wait_task(tid: libc::pid_t) -> io::Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes the status to a local.
        let pid = unsafe { libc::waitpid(tid, &mut status, libc::__WALL) };
        if pid == tid {
            return Ok(status);
        }
        let e = io::Error::last_os_error();
        if pid >= 0 || e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Sends `sig` to thread `tid` of process `tgid` (`tgkill`).
pub fn tgkill(tgid: libc::pid_t, tid: libc::pid_t, sig: i32) {
    // SAFETY: tgkill takes no pointer.
    unsafe { libc::syscall(libc::SYS_tgkill, tgid, tid, sig) };
}
