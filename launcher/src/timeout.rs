//! The end of a sandbox, as the supervisor sees it: waiting for the sandbox's first process
//! with a wall-clock limit (`--timeout`, `limits.wall_seconds`), and making sure that no
//! sandboxed process outlives `cloister run`.
//!
//! Three layers keep processes from escaping the end of a run:
//! - the sandbox's first process is a keeper (see [`crate::namespaces::start_program`]): a child
//!   subreaper, so a process that daemonizes (double fork, `setsid`, `nohup`) becomes its child
//!   and not the host init's; when the program ends the keeper kills what is left, and when the
//!   supervisor dies (`PR_SET_PDEATHSIG`) it does the same before it goes. In a pid namespace the
//!   keeper is the namespace's init, and the kernel kills the whole namespace when it ends;
//! - the supervisor is a child subreaper too ([`become_subreaper`]), so whatever outlives a
//!   keeper that was killed becomes the supervisor's child, and [`sweep`] kills it;
//! - when the time runs out, [`end_sandbox`] kills the keeper and sweeps.
//!
//! What this does not cover: a process of the sandbox that the supervisor and the keeper both
//! lose, which takes a supervisor killed with `SIGKILL` (a keeper cannot outlive it) while the
//! keeper is also killed by the program, which Landlock's signal scope (ABI 6) forbids where
//! the host has it, and a pid namespace always.
//!
//! Read first: prctl(2) (`PR_SET_CHILD_SUBREAPER`, `PR_SET_PDEATHSIG`), pidfd_open(2),
//! waitpid(2), proc(5) (`/proc/PID/stat`).

use std::time::{Duration, Instant};

/// How `cloister run` reports a sandbox whose time ran out, like coreutils' `timeout`.
pub const TIMED_OUT: i32 = 124;

/// Makes the supervisor a child subreaper: orphans of the sandbox become its children.
pub fn become_subreaper() {
    // SAFETY: prctl with integer arguments; it changes only this process's reaping.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Waits for `pid` to end or `deadline` to pass: `Some(wait status)`, or `None` when the time
/// ran out first. Signals that interrupt the wait (the supervisor forwards some) restart it.
pub fn wait_until(pid: libc::pid_t, deadline: Option<Instant>) -> Result<Option<i32>, std::io::Error> {
    let Some(deadline) = deadline else { return blocking_wait(pid).map(Some) };
    // SAFETY: pidfd_open takes integers and returns a new descriptor or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    let result = loop {
        let mut status = 0;
        // SAFETY: reaping our own child into a local, without blocking.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break Ok(Some(status));
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break Err(std::io::Error::last_os_error());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Ok(None);
        }
        // Without pidfds (before Linux 5.3) the wait polls every 20 ms.
        let ms = if pidfd >= 0 { left.as_millis().min(60_000) } else { left.as_millis().min(20) };
        let ms = i32::try_from(ms).unwrap_or(20) + 1;
        if pidfd >= 0 {
            let mut pfd = libc::pollfd { fd: pidfd, events: libc::POLLIN, revents: 0 };
            // SAFETY: polling one descriptor we own; EINTR just goes round the loop.
            unsafe { libc::poll(&mut pfd, 1, ms) };
        } else {
            std::thread::sleep(Duration::from_millis(u64::try_from(ms).unwrap_or(20)));
        }
    };
    if pidfd >= 0 {
        // SAFETY: closing the descriptor pidfd_open gave us.
        unsafe { libc::close(pidfd) };
    }
    result
}

fn blocking_wait(pid: libc::pid_t) -> Result<i32, std::io::Error> {
    loop {
        let mut status = 0;
        // SAFETY: reaping our own child into a local.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(status);
        }
        let e = std::io::Error::last_os_error();
        if r < 0 && e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Kills the whole sandbox whose first process (keeper or init) is `first`: that process, which
/// in a pid namespace takes every other with it, then whatever became the supervisor's child.
pub fn end_sandbox(first: libc::pid_t) {
    // SAFETY: signalling and reaping our own child.
    unsafe {
        libc::kill(first, libc::SIGKILL);
        let mut status = 0;
        libc::waitpid(first, &mut status, 0);
    }
    sweep();
}

/// Kills and reaps every child the supervisor has: at the end of a run they can only be
/// sandboxed processes that escaped their keeper, or one the supervisor [`spare`]s (the
/// terminal's guard). Costs nothing when there is none, the usual case; otherwise finds them
/// by their parent in `/proc/PID/stat` and kills them, round after round, as their own children
/// are handed to the supervisor in turn.
pub fn sweep() {
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() };
    let mut idle_rounds = 0;
    loop {
        let mut status = 0;
        // SAFETY: reaping any child of ours, without blocking.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
        if r > 0 {
            continue;
        }
        if r < 0 {
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                _ => return,
            }
        }
        let all = children_of(me);
        let children: Vec<libc::pid_t> = all.iter().copied().filter(|&pid| !spared(pid)).collect();
        if children.is_empty() && !all.is_empty() {
            // Only the processes the supervisor keeps on purpose are left.
            return;
        }
        for &pid in &children {
            // SAFETY: signalling a process whose parent is this supervisor.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if children.is_empty() {
            // A child we cannot see in /proc: give it two seconds to end, then let it be.
            idle_rounds += 1;
            if idle_rounds > 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        } else {
            // SAFETY: reaping any child of ours; one was just killed.
            unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
        }
    }
}

/// The supervisor's own child that [`sweep`] must leave alone (0: none): the terminal's guard,
/// which outlives the sandbox on purpose.
static SPARED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Tells [`sweep`] to leave the supervisor's child `pid` alone.
pub fn spare(pid: libc::pid_t) {
    SPARED.store(pid, std::sync::atomic::Ordering::Relaxed);
}

fn spared(pid: libc::pid_t) -> bool {
    pid != 0 && SPARED.load(std::sync::atomic::Ordering::Relaxed) == pid
}

/// The processes whose parent is `parent`, from `/proc/PID/stat`.
pub fn children_of(parent: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|&pid| parent_of(pid) == Some(parent))
        .collect()
}

/// The parent of `pid`: the fourth field of `/proc/PID/stat`, after the command name in
/// parentheses (which may itself hold spaces and parentheses).
fn parent_of(pid: libc::pid_t) -> Option<libc::pid_t> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The line `cloister run` prints when the time ran out.
pub fn message(wall: Duration) -> String {
    format!(
        "cloister: the time ran out after {}s (--timeout, limits.wall_seconds): every process of the sandbox was killed",
        wall.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_is_read_past_a_name_with_parentheses() {
        // SAFETY: getpid and getppid cannot fail.
        let (me, parent) = unsafe { (libc::getpid(), libc::getppid()) };
        assert_eq!(parent_of(me), Some(parent));
        assert!(children_of(parent).contains(&me));
    }
}
