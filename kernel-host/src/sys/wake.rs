//! Waits that a virtual timer cuts short: a sleep, `pause`, `rt_sigsuspend`, `poll`,
//! `select`, `epoll_wait` (and their variants) or a blocking `read` of a timer descriptor,
//! made while one of the process's timers expires before the wait would end.
//!
//! The wait then runs in rounds inside the handler, each on the host with the mask the
//! program's wait has (so a signal that arrives runs the program's handler and ends the wait
//! with `EINTR`, and a descriptor that becomes ready ends it with its count), for the time
//! to the next event on the virtual clock: the next expiry or the wait's own deadline. With
//! `--fast-sleep` a round does not wait at all; without it, it waits as long on the host as
//! the virtual clock will move, the way sleeps do. When a round times out the clock moves to
//! that event, and an expiry fires, queueing its signal (taken in the next round) or making
//! its descriptor readable. The order of events is the virtual clock's alone, so it repeats.
//!
//! Rounds are bounded ([`MAX_ROUNDS`]); a wait that passes that many expiries without waking
//! is handed to the host as it is, and later expiries fire at the next checkpoint.

use super::timer::checkpoint;
use crate::abi::UNBLOCKABLE;
use crate::kernel::Kernel;
use crate::task::TaskCtx;
use crate::time::TimePair;
use syscalls::Sysno;

/// Expiries one wait may pass before it is handed to the host.
pub const MAX_ROUNDS: usize = 4096;
/// `select`'s largest set, in 64-bit words (`FD_SETSIZE` 1024).
const SET_WORDS: usize = 16;
const EINTR: i64 = -4;
/// What [`host_wait`] returns when a signal ended a wait for signals (no call returns it).
const SIGNALLED: i64 = i64::MIN;
/// How long a paced wait waits on the host between looks at the clock.
const SLICE: u64 = 2_000_000;

/// What the program waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// A signal (sleeps, `pause`, `rt_sigsuspend`).
    Signals,
    /// `poll(fds, nfds)`.
    Poll {
        /// The `pollfd` array.
        fds: u64,
        /// Its length.
        nfds: u64,
    },
    /// `select(nfds, readfds, writefds, exceptfds)`.
    Select {
        /// Highest descriptor plus one.
        nfds: u64,
        /// The three sets (0: none).
        sets: [u64; 3],
    },
    /// `epoll_wait(epfd, events, maxevents)`.
    Epoll {
        /// The epoll descriptor.
        epfd: u64,
        /// Where events go.
        events: u64,
        /// How many fit.
        max: u64,
    },
    /// A timer descriptor becoming readable.
    Readable(i32),
}

/// How a cut wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woken {
    /// The host call returned this (a count of ready descriptors, or an error).
    Ready(i64),
    /// A signal's handler ran.
    Interrupted,
    /// The wait's own deadline came; the clock is there.
    TimedOut,
    /// Too many rounds: run the wait on the host as usual.
    HandOff,
}

/// Runs a wait that ends at `deadline` (elapsed nanoseconds; `None`: never) while the
/// thread's signal mask is `mask`, in rounds, if a timer expires first. `None` when no timer
/// does: the caller waits as it would without timers.
pub fn until(k: &Kernel, task: &TaskCtx<'_>, wait: Wait, deadline: Option<u64>, mask: u64) -> Option<Woken> {
    let v = k.clock.virtual_clock()?;
    // A signal a checkpoint sent (this one, or the one before the call was served) must end
    // the wait as it would have on the host; an expiry at the deadline itself fires before the
    // wait returns.
    let fired = checkpoint(k, task) > 0 || deliverable_pending(task, mask);
    let first = k.timers.next_expiry();
    if !fired && first.is_none_or(|e| deadline.is_some_and(|d| e > d)) {
        return None;
    }
    // A wait for something other than time (no deadline of its own) by a process with
    // children is waiting for them, and they move the clock too: with fast sleeps it does not
    // jump to its own next expiry, which would put it ahead of them (`timeout 5 sleep 1`
    // would time out), but looks every SLICE whether they moved the clock there, and gives
    // up on them after as much real time as the clock would have moved.
    let paced = v.fast_sleep() && deadline.is_none() && has_children(task);
    let saved = match wait {
        Wait::Select { nfds, sets } => Some(save_sets(task, nfds, sets)?),
        _ => None,
    };
    let mut expiries = 0;
    let mut budget: Option<u64> = None;
    while expiries < MAX_ROUNDS {
        let target = match (k.timers.next_expiry(), deadline) {
            (Some(e), Some(d)) => Some(e.min(d)),
            (Some(e), None) => Some(e),
            (None, Some(d)) => Some(d),
            (None, None) => None,
        };
        // With nothing left to expire, one last look takes what the last expiry sent: handed
        // to the host with its signal already delivered, the wait would miss it.
        let left = target.map(|t| t.saturating_sub(v.elapsed()));
        let real = match left {
            None => 0,
            Some(left) if paced => (*budget.get_or_insert(left)).min(SLICE),
            Some(_) if v.fast_sleep() => 0,
            Some(left) => left,
        };
        if let (Wait::Select { sets, .. }, Some(saved)) = (wait, &saved) {
            restore_sets(task, sets, saved);
        }
        let mut r = host_wait(task, wait, real, mask);
        if r == 0 && matches!(wait, Wait::Epoll { .. }) {
            // epoll does not look at signals when it does not block: a signal the last
            // expiry queued is delivered here.
            r = deliver_pending(task, mask);
        }
        if r == SIGNALLED {
            // A signal came while the thread waited for its timers with every signal blocked.
            // The timers the clock passed meanwhile fire first (a child's sleep moved the clock
            // before the child ended: its parent's timer comes before its SIGCHLD), then all of
            // it is delivered with the wait's mask; a signal the program ignores does not end
            // the wait.
            checkpoint(k, task);
            r = deliver_pending(task, mask);
            if r == 0 {
                expiries += 1;
                continue;
            }
        }
        if r != 0 {
            // Whatever moved the clock past an expiry meanwhile (another process's sleep, before
            // the child that slept exited) fires too, so the order is the clock's.
            checkpoint(k, task);
            return Some(if r == EINTR { Woken::Interrupted } else { Woken::Ready(r) });
        }
        let Some(target) = target else { return Some(Woken::HandOff) };
        if paced && v.elapsed() < target {
            let rest = budget.unwrap_or(0).saturating_sub(real);
            if rest > 0 {
                budget = Some(rest);
                continue;
            }
        }
        budget = None;
        v.advance_to(target);
        checkpoint(k, task);
        expiries += 1;
        if deadline == Some(target) {
            return Some(Woken::TimedOut);
        }
    }
    Some(Woken::HandOff)
}

/// Whether a signal that `mask` lets through is pending for the thread.
fn deliverable_pending(task: &TaskCtx<'_>, mask: u64) -> bool {
    let mut pending = 0u64;
    task.host_call(Sysno::rt_sigpending, [&mut pending as *mut u64 as u64, 8, 0, 0, 0, 0]);
    pending & !mask & !UNBLOCKABLE != 0
}

/// Runs the handlers of the signals pending for the thread that `mask` lets through: 0 when
/// none ran (nothing pending, or only what the program ignores), `EINTR` when one did.
fn deliver_pending(task: &TaskCtx<'_>, mask: u64) -> i64 {
    let zero = [0u8; 16];
    let set = (mask & !UNBLOCKABLE).to_ne_bytes();
    task.host_call(Sysno::ppoll, [0, 0, zero.as_ptr() as u64, set.as_ptr() as u64, 8, 0])
}

/// Whether the calling process has children (running or not yet reaped).
fn has_children(task: &TaskCtx<'_>) -> bool {
    const P_ALL: u64 = 0;
    const WNOHANG: u64 = 1;
    const WEXITED: u64 = 4;
    const WNOWAIT: u64 = 0x0100_0000;
    const WALL: u64 = 0x4000_0000;
    let mut info = [0u8; 128];
    let flags = WNOHANG | WEXITED | WNOWAIT | WALL;
    task.host_call(Sysno::waitid, [P_ALL, 0, info.as_mut_ptr() as u64, flags, 0, 0]) == 0
}

/// `select`'s sets as the program gave them (a timed-out round clears them). `None` when
/// they are larger than `FD_SETSIZE` or unreadable: the host then says what is wrong.
fn save_sets(task: &TaskCtx<'_>, nfds: u64, sets: [u64; 3]) -> Option<[[u8; SET_WORDS * 8]; 3]> {
    if nfds > (SET_WORDS * 64) as u64 {
        return None;
    }
    let len = nfds.div_ceil(64) as usize * 8;
    let mut saved = [[0u8; SET_WORDS * 8]; 3];
    for (copy, &addr) in saved.iter_mut().zip(&sets) {
        if addr != 0 {
            task.mem.read(addr, &mut copy[..len]).ok()?;
        }
    }
    Some(saved)
}

fn restore_sets(task: &TaskCtx<'_>, sets: [u64; 3], saved: &[[u8; SET_WORDS * 8]; 3]) {
    for (copy, &addr) in saved.iter().zip(&sets) {
        if addr != 0 {
            // The sets were readable a moment ago; a failure shows in the host call.
            let _ = task.mem.write(addr, copy);
        }
    }
}

/// One round: the program's wait on the host for `ns` with `mask` (the runtime's signals
/// never blocked, so that a handler the program runs meanwhile can still make calls). A wait
/// for signals alone takes the first that comes with every signal still blocked, and puts it
/// back ([`SIGNALLED`]), so that the caller can fire the timers due first.
fn host_wait(task: &TaskCtx<'_>, wait: Wait, ns: u64, mask: u64) -> i64 {
    let ts = TimePair::from_ns(ns).to_bytes();
    let ts = ts.as_ptr() as u64;
    let set = (mask & !UNBLOCKABLE).to_ne_bytes();
    let set = set.as_ptr() as u64;
    match wait {
        Wait::Signals => {
            let want = !mask & !UNBLOCKABLE;
            let mut info = [0u8; 128];
            let sig = task.host_call(
                Sysno::rt_sigtimedwait,
                [&want as *const u64 as u64, info.as_mut_ptr() as u64, ts, 8, 0, 0],
            );
            if sig <= 0 {
                return 0;
            }
            let pid = task.host_call(Sysno::getpid, [0; 6]) as u64;
            let tid = u64::from(task.tid());
            task.host_call(Sysno::rt_tgsigqueueinfo, [pid, tid, sig as u64, info.as_ptr() as u64, 0, 0]);
            SIGNALLED
        }
        Wait::Poll { fds, nfds } => task.host_call(Sysno::ppoll, [fds, nfds, ts, set, 8, 0]),
        Wait::Select { nfds, sets } => {
            let data = [set, 8];
            task.host_call(Sysno::pselect6, [nfds, sets[0], sets[1], sets[2], ts, data.as_ptr() as u64])
        }
        Wait::Epoll { epfd, events, max } => {
            let ms = ns.div_ceil(1_000_000).min(i32::MAX as u64);
            task.host_call(Sysno::epoll_pwait, [epfd, events, max, ms, set, 8])
        }
        Wait::Readable(fd) => {
            let mut pfd = [0u8; 8];
            pfd[..4].copy_from_slice(&fd.to_ne_bytes());
            pfd[4..6].copy_from_slice(&1i16.to_ne_bytes());
            task.host_call(Sysno::ppoll, [pfd.as_mut_ptr() as u64, 1, ts, set, 8, 0])
        }
    }
}
