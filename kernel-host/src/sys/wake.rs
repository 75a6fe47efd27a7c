//! Waits that a virtual timer cuts short: a sleep, `pause`, `rt_sigsuspend`, `rt_sigtimedwait`, `poll`,
//! `select`, `epoll_wait` (and their variants), a blocking `read` of a timer descriptor or a
//! wait for a child (`wait4`, `waitid`), made while one of the process's timers expires before
//! the wait would end.
//!
//! The wait then runs in rounds inside the handler, each on the host for the time to the
//! next event on the virtual clock: the next expiry or the wait's own deadline. With
//! `--fast-sleep` a round does not wait at all; without it, it waits as long on the host as
//! the virtual clock will move, the way sleeps do. When a round times out the clock moves to
//! that event, and an expiry fires, queueing its signal or making its descriptor readable. The
//! order of events is the virtual clock's alone, so it repeats.
//!
//! Rounds run with every signal blocked, as the handler does: a program's handler never runs
//! inside the runtime's, whose stack may be an 8 KiB signal stack. A wait for signals takes
//! the first one that comes (`rt_sigtimedwait`); a wait for descriptors looks for signals
//! every [`DEAF`] at most. A signal the wait lets through and the program does not ignore
//! ends the wait ([`Woken::Signalled`]): it is left pending, and the handler returns `EINTR`
//! (the signal runs the program's handler as the call returns) or, for a call with a mask of
//! its own, hands the call to the host, which delivers it under that mask. Timers the clock
//! passed meanwhile fire first, so a child's `SIGCHLD` never overtakes the timer its sleep
//! made due.
//!
//! Rounds are bounded ([`MAX_ROUNDS`] expiries and signals; the real time they wait is what
//! the clock moves); a wait that passes that many without ending is handed to the host as it
//! is, and later expiries fire at the next checkpoint.
//!
//! The wait is a state machine ([`Waiter`]: started, asked for its next round, fed the
//! round's result), so that two drivers run the same rounds. cloister-rt's handler drives it
//! in a loop ([`until`]), each round a host call with its buffers on the handler's stack. The
//! ptrace backend's supervisor cannot make those calls (they act on the calling thread) nor
//! wait for one tracee while others need serving: it lends a [`crate::task::WaitSlot`], the
//! handler leaves each round there as a call for the task to make (its buffers in the task's
//! scratch memory) and returns, and [`crate::Kernel::resume`] goes on from the round's result,
//! until the wait ends and the handler runs again from where [`until`] returned.

use super::timer::checkpoint;
use crate::abi::UNBLOCKABLE;
use crate::errno::Errno;
use crate::kernel::Kernel;
use crate::task::TaskCtx;
use crate::time::TimePair;
use crate::timer::Notify;
use syscalls::Sysno;

/// Expiries and signals one wait may pass before it is handed to the host.
pub const MAX_ROUNDS: usize = 4096;
/// `select`'s largest set, in 64-bit words (`FD_SETSIZE` 1024).
const SET_WORDS: usize = 16;
/// What [`host_wait`] returns when a signal ended a wait for signals (no call returns it).
const SIGNALLED: i64 = i64::MIN;
/// How long a paced wait waits on the host between looks at the clock.
const PACE: u64 = 2_000_000;
/// How long a wait for descriptors waits on the host between looks for signals.
const DEAF: u64 = 10_000_000;
/// Signals whose default action is to do nothing: they end no wait.
const IGNORED_BY_DEFAULT: [u32; 4] = [17, 18, 23, 28];

const EINTR: i64 = -4;

/// What the program waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// A signal (sleeps, `pause`, `rt_sigsuspend`).
    Signals,
    /// A signal of `set`, which the program blocks and waits to take (`rt_sigtimedwait`), or
    /// one it does not block. Those of `set` end the wait even when their action is to do
    /// nothing: they are what it waits for. A round that takes one ends the wait with it (its
    /// `siginfo_t` written to `info`), as the program's own call would have: put back, it would
    /// queue behind later ones of its kind.
    Take {
        /// The signals waited for (and blocked).
        set: u64,
        /// The program's `siginfo_t` (0: none).
        info: u64,
    },
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
    /// A child changing state (`wait4`, `waitid`), as `waitid(idtype, id, .., options)`
    /// selects it.
    Child {
        /// `P_ALL`, `P_PID`, `P_PGID` or `P_PIDFD`.
        idtype: u64,
        /// The pid, group or pidfd.
        id: u64,
        /// `waitid`'s options (`WEXITED`, `WSTOPPED`, `WCONTINUED`, `__WALL`...).
        options: u64,
    },
}

impl Wait {
    /// The signals it waits to take whatever their action ([`Wait::Take`]).
    fn taken(self) -> u64 {
        match self {
            Wait::Take { set, .. } => set,
            _ => 0,
        }
    }

    /// Whether a signal is all it waits for: its rounds take the signals that end it.
    fn for_signals(self) -> bool {
        matches!(self, Wait::Signals | Wait::Take { .. })
    }
}

/// How a cut wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woken {
    /// The host call returned this (a count of ready descriptors, or an error).
    Ready(i64),
    /// A signal that the wait lets through and the program does not ignore is pending.
    Signalled,
    /// The wait's own deadline came; the clock is there.
    TimedOut,
    /// Too many rounds: run the wait on the host as usual.
    HandOff,
    /// The rounds go on in the task ([`TaskCtx::rounds`]): the handler returns at once
    /// (with anything: the backend runs the round instead), and is called again when the wait
    /// ends.
    Later,
}

/// A wait between its rounds: what it waits for, and how far it got. Kept by the backend
/// while a round runs in the task ([`TaskCtx::suspended`]), or on the stack of [`until`].
#[derive(Clone, Copy, Debug)]
pub struct Waiter {
    wait: Wait,
    /// Elapsed nanoseconds at which the wait ends by itself (`None`: never).
    deadline: Option<u64>,
    /// The signals the wait does not let through.
    mask: u64,
    /// Fast sleeps, no deadline, and the process has children, which move the clock too: the
    /// wait is paced (see [`Waiter::next`]).
    children: bool,
    /// `select`'s sets as the program gave them.
    saved: Option<[[u8; SET_WORDS * 8]; 3]>,
    /// Expiries and signals passed so far.
    events: usize,
    /// The real time left to wait for the current target, as (target, nanoseconds).
    budget: Option<(u64, u64)>,
    /// The round in flight: its target, the time left for it, and how long it waits.
    target: u64,
    left: u64,
    slice: u64,
}

/// A round that runs in the task rather than in the handler ([`TaskCtx::rounds`]): the call
/// to make there, with its arguments in the task's scratch memory, and the wait to feed its
/// result to ([`crate::Kernel::resume`]).
#[derive(Clone, Copy, Debug)]
pub struct Suspended {
    /// The wait.
    pub waiter: Waiter,
    /// The round's host call.
    pub call: crate::Syscall,
    /// Where a wait for signals gets the `siginfo_t` of the signal it takes (0: none).
    info: u64,
}

/// The end of a wait whose rounds ran in the task, for the handler that resumes with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ended {
    /// What [`until`] returns to the handler.
    pub woken: Option<Woken>,
    /// The wait's deadline, as the handler computed it when the wait started.
    pub deadline: Option<u64>,
}

/// Runs a wait that ends at `deadline` (elapsed nanoseconds; `None`: never) and lets the
/// signals `mask` does not block through, in rounds, if a timer expires first. `None` when no
/// timer does (nor has just sent a signal): the caller waits as it would without timers.
///
/// A host whose calls are not made in the calling thread (ptrace: the supervisor's) cannot
/// run the rounds here; its backend lends [`TaskCtx::rounds`]. The first round is left there
/// and this returns [`Woken::Later`]; the handler returns at once, the backend runs the rounds
/// in the task ([`crate::Kernel::resume`]), and then serves the call again with the wait's end
/// in the slot, which this returns.
pub fn until(k: &Kernel, task: &TaskCtx<'_>, wait: Wait, deadline: Option<u64>, mask: u64) -> Option<Woken> {
    if let Some(ended) = task.rounds.and_then(|slot| slot.resumed.take()) {
        return ended.woken;
    }
    let mut waiter = match Waiter::start(k, task, wait, deadline, mask) {
        Ok(waiter) => waiter,
        Err(woken) => return woken,
    };
    if let Some(slot) = task.rounds {
        return match step(k, task, &mut waiter, None) {
            Ok(suspended) => {
                slot.suspended.set(Some(suspended));
                Some(Woken::Later)
            }
            Err(woken) => Some(woken),
        };
    }
    loop {
        let ns = match waiter.next(k, task) {
            Ok(ns) => ns,
            Err(woken) => return Some(woken),
        };
        let r = host_wait(task, waiter.wait, ns, waiter.mask);
        if let Some(woken) = waiter.after(k, task, r) {
            return Some(woken);
        }
    }
}

/// The deadline of the wait the current call resumes, or `fresh` when it resumes none: a
/// handler that computes its deadline from the clock computes it once.
pub fn deadline(task: &TaskCtx<'_>, fresh: impl FnOnce() -> u64) -> u64 {
    match task.rounds.and_then(|slot| slot.resumed.get()) {
        Some(Ended { deadline: Some(d), .. }) => d,
        _ => fresh(),
    }
}

/// Moves a wait whose rounds run in the task on: `result` is the raw result of the round
/// the task made (`None` before the first). `Ok`: the next round for the task to make; `Err`:
/// how the wait ended. Round results that need no waiting (a child found ready) are taken
/// here, without a round.
fn step(
    k: &Kernel,
    task: &TaskCtx<'_>,
    waiter: &mut Waiter,
    result: Option<(Suspended, i64)>,
) -> Result<Suspended, Woken> {
    if let Some((round, raw)) = result {
        let r = round_result(task, &round, raw);
        if let Some(woken) = waiter.after(k, task, r) {
            return Err(woken);
        }
    }
    loop {
        let ns = waiter.next(k, task)?;
        match round_call(task, waiter, ns) {
            Ok(round) => return Ok(round),
            Err(r) => {
                if let Some(woken) = waiter.after(k, task, r) {
                    return Err(woken);
                }
            }
        }
    }
}

/// Moves on a wait whose rounds run in the task: `round` (what [`TaskCtx::rounds`] held)
/// ended with `result`. The next round's call, left in the slot; or `None` when the wait
/// ended, with its end in the slot for the handler.
pub fn resume(k: &Kernel, task: &TaskCtx<'_>, round: Suspended, result: i64) -> Option<crate::Syscall> {
    let slot = task.rounds?;
    let mut waiter = round.waiter;
    match step(k, task, &mut waiter, Some((round, result))) {
        Ok(next) => {
            slot.suspended.set(Some(next));
            Some(next.call)
        }
        Err(woken) => {
            slot.resumed.set(Some(Ended { woken: Some(woken), deadline: waiter.deadline }));
            None
        }
    }
}

impl Waiter {
    /// The wait, if a timer cuts it; otherwise how it ends at once (`None`: no timer does).
    fn start(
        k: &Kernel,
        task: &TaskCtx<'_>,
        wait: Wait,
        deadline: Option<u64>,
        mask: u64,
    ) -> Result<Waiter, Option<Woken>> {
        let Some(v) = k.clock.virtual_clock() else { return Err(None) };
        // A signal a checkpoint sent (this one, or the one before the call was served) ends
        // the wait as it would have on the host; an expiry at the deadline fires before it
        // returns.
        let fired = checkpoint(k, task) > 0;
        if (fired || k.timers.any()) && pending_signal(task, mask, wait.taken()) {
            return Err(Some(Woken::Signalled));
        }
        let first = k.timers.next_expiry();
        if !fired && first.is_none_or(|e| deadline.is_some_and(|d| e > d)) {
            return Err(None);
        }
        // A wait for something other than time (no deadline of its own) by a process with
        // children is waiting for them, and they move the clock too: with fast sleeps it does
        // not jump to its own next expiry, which would put it ahead of them (`timeout 5 sleep
        // 1` would time out), but looks every PACE whether they moved the clock there, and
        // gives up on them after as much real time as the clock would have moved.
        let children = v.fast_sleep() && deadline.is_none() && has_children(task);
        let saved = match wait {
            Wait::Select { nfds, sets } => Some(save_sets(task, nfds, sets).ok_or(None)?),
            _ => None,
        };
        Ok(Waiter {
            wait,
            deadline,
            mask,
            children,
            saved,
            events: 0,
            budget: None,
            target: 0,
            left: 0,
            slice: 0,
        })
    }

    /// The next round's length on the host, or how the wait ends without one.
    fn next(&mut self, k: &Kernel, task: &TaskCtx<'_>) -> Result<u64, Woken> {
        let Some(v) = k.clock.virtual_clock() else { return Err(Woken::HandOff) };
        if self.events >= MAX_ROUNDS {
            return Err(Woken::HandOff);
        }
        let target = match (k.timers.next_expiry(), self.deadline) {
            (Some(e), Some(d)) => e.min(d),
            (Some(e), None) => e,
            (None, Some(d)) => d,
            (None, None) => return Err(Woken::HandOff),
        };
        // Paced: look at the clock every PACE rather than jump to the target, with children,
        // or when the target's timer cannot end this wait.
        let paced = self.children
            || (v.fast_sleep()
                && self.deadline.is_none()
                && self.wait.for_signals()
                && !cuts(k, task, self.wait, self.mask, target));
        let left = match self.budget {
            Some((t, left)) if t == target => left,
            _ if v.fast_sleep() && !paced => 0,
            _ => target.saturating_sub(v.elapsed()),
        };
        let slice = match self.wait {
            _ if paced => left.min(PACE),
            Wait::Signals | Wait::Take { .. } => left,
            _ => left.min(DEAF),
        };
        if let (Wait::Select { sets, .. }, Some(saved)) = (self.wait, &self.saved) {
            restore_sets(task, sets, saved);
        }
        (self.target, self.left, self.slice) = (target, left, slice);
        Ok(slice)
    }

    /// Takes the result of the round [`Waiter::next`] planned (as [`host_wait`] returns it);
    /// `Some` when the wait ends.
    fn after(&mut self, k: &Kernel, task: &TaskCtx<'_>, r: i64) -> Option<Woken> {
        let Some(v) = k.clock.virtual_clock() else { return Some(Woken::HandOff) };
        let (target, left, slice, mask) = (self.target, self.left, self.slice, self.mask);
        match r {
            SIGNALLED | EINTR => {
                self.events += 1;
                checkpoint(k, task);
                if pending_signal(task, mask, self.wait.taken()) {
                    return Some(Woken::Signalled);
                }
                self.budget = Some((target, left));
                return None;
            }
            0 => {}
            r => {
                checkpoint(k, task);
                return Some(Woken::Ready(r));
            }
        }
        if !self.wait.for_signals() && pending_signal(task, mask, 0) {
            return Some(Woken::Signalled);
        }
        let rest = left.saturating_sub(slice);
        if rest > 0 && v.elapsed() < target {
            self.budget = Some((target, rest));
            return None;
        }
        self.budget = None;
        v.advance_to(target);
        self.events += 1;
        if checkpoint(k, task) > 0 && pending_signal(task, mask, self.wait.taken()) {
            return Some(Woken::Signalled);
        }
        if self.deadline == Some(target) {
            return Some(Woken::TimedOut);
        }
        None
    }
}

/// Whether a timer expiring at `at` can end this wait for signals: its signal is one the wait
/// takes, or one `mask` lets through and the program does not ignore. Under fast sleeps a wait
/// for signals alone, with no deadline of its own, jumps the clock to its next expiry only
/// then; otherwise it is paced ([`Waiter::next`]), as a process with children is. Jumping to
/// an alarm the thread blocks and does not wait for, while it waits for another thread's
/// signal, would put the clock ahead of that thread by the alarm's whole delay; not moving the
/// clock at all would leave a timer that another thread takes (glibc's `SIGEV_THREAD` helper)
/// unfired for ever.
fn cuts(k: &Kernel, task: &TaskCtx<'_>, wait: Wait, mask: u64, at: u64) -> bool {
    let tid = task.tid();
    let ends = |sig: u32| {
        (1..=64).contains(&sig) && {
            let bit = crate::abi::sigbit(sig);
            wait.taken() & bit != 0 || (mask & bit == 0 && !ignored(task, sig))
        }
    };
    k.timers.next_expiry_of(|notify| match notify {
        Notify::Process(sig) => ends(sig),
        Notify::Thread(to, sig) => to == tid && ends(sig),
        Notify::Nothing | Notify::Fd => false,
    }) == Some(at)
}

/// Whether a signal that `mask` lets through, and that would do something or is one of
/// `taken` (those a `rt_sigtimedwait` waits for), is pending for the thread. Other pending
/// signals the program ignores are taken, as the host would discard them.
fn pending_signal(task: &TaskCtx<'_>, mask: u64, taken: u64) -> bool {
    let mut pending = 0u64;
    task.host_call(Sysno::rt_sigpending, [&mut pending as *mut u64 as u64, 8, 0, 0, 0, 0]);
    let through = pending & !mask & !UNBLOCKABLE;
    if through & taken != 0 {
        return true;
    }
    for sig in (1..=64u32).filter(|s| through & (1u64 << (s - 1)) != 0) {
        if !ignored(task, sig) {
            return true;
        }
        let one = 1u64 << (sig - 1);
        let zero = [0u8; 16];
        task.host_call(Sysno::rt_sigtimedwait, [&one as *const u64 as u64, 0, zero.as_ptr() as u64, 8, 0, 0]);
    }
    false
}

/// Whether a signal that `mask` lets through and that would do something is pending for the
/// thread (pending ones the program ignores are discarded, as the host would).
pub fn signal_pending(task: &TaskCtx<'_>, mask: u64) -> bool {
    pending_signal(task, mask, 0)
}

/// Whether the signal that ends a wait (the lowest pending one `mask` lets through that the
/// program does not ignore) interrupts a call that `SA_RESTART` would restart: it has a
/// handler without that flag. False when there is no such signal.
pub fn interrupts(task: &TaskCtx<'_>, mask: u64) -> bool {
    const SA_RESTART: u64 = 0x1000_0000;
    let mut pending = 0u64;
    task.host_call(Sysno::rt_sigpending, [&mut pending as *mut u64 as u64, 8, 0, 0, 0, 0]);
    let through = pending & !mask & !UNBLOCKABLE;
    let Some(sig) = (1..=64u32).find(|s| through & (1u64 << (s - 1)) != 0 && !ignored(task, *s)) else {
        return false;
    };
    let mut act = [0u8; 32];
    if task.host_call(Sysno::rt_sigaction, [u64::from(sig), 0, act.as_mut_ptr() as u64, 8, 0, 0]) < 0 {
        return true;
    }
    let flags = u64::from_ne_bytes(act[8..16].try_into().unwrap_or([0; 8]));
    flags & SA_RESTART == 0
}

/// Whether the program ignores `sig` (`SIG_IGN`, or the default action of doing nothing).
pub(super) fn ignored(task: &TaskCtx<'_>, sig: u32) -> bool {
    let mut act = [0u8; 32];
    if task.host_call(Sysno::rt_sigaction, [u64::from(sig), 0, act.as_mut_ptr() as u64, 8, 0, 0]) < 0 {
        return false;
    }
    match u64::from_ne_bytes(act[..8].try_into().unwrap_or([0; 8])) {
        0 => IGNORED_BY_DEFAULT.contains(&sig),
        1 => true,
        _ => false,
    }
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

/// One round: the program's wait on the host for `ns`, with every signal still blocked. A
/// wait for signals takes the first one `mask` lets through and puts it back ([`SIGNALLED`]),
/// unless the program ignores it.
fn host_wait(task: &TaskCtx<'_>, wait: Wait, ns: u64, mask: u64) -> i64 {
    let ts = TimePair::from_ns(ns).to_bytes();
    let ts = ts.as_ptr() as u64;
    match wait {
        Wait::Signals | Wait::Take { .. } => {
            let want = !mask & !UNBLOCKABLE;
            let mut info = [0u8; 128];
            let args = [&want as *const u64 as u64, info.as_mut_ptr() as u64, ts, 8, 0, 0];
            let sig = task.host_call(Sysno::rt_sigtimedwait, args);
            took(task, sig, &info, wait)
        }
        Wait::Poll { fds, nfds } => task.host_call(Sysno::ppoll, [fds, nfds, ts, 0, 8, 0]),
        Wait::Select { nfds, sets } => {
            task.host_call(Sysno::pselect6, [nfds, sets[0], sets[1], sets[2], ts, 0])
        }
        Wait::Epoll { epfd, events, max } => {
            let ms = ns.div_ceil(1_000_000).min(i32::MAX as u64);
            task.host_call(Sysno::epoll_wait, [epfd, events, max, ms, 0, 0])
        }
        Wait::Child { idtype, id, options } => {
            // Ready: the caller runs the program's wait, which then does not block. A child that
            // ends during the round ends it with its SIGCHLD, unless the program blocks that.
            match child_peek(task, idtype, id, options) {
                0 => host_wait(task, Wait::Signals, ns, mask),
                r => r,
            }
        }
        Wait::Readable(fd) => {
            let mut pfd = pollfd(fd);
            task.host_call(Sysno::ppoll, [pfd.as_mut_ptr() as u64, 1, ts, 0, 8, 0])
        }
    }
}

/// What a wait for signals makes of `sig`, the result of its `rt_sigtimedwait` with `info`:
/// nothing came (0); the signal a [`Wait::Take`] waits for, which ends it (`sig`, its
/// `siginfo_t` given to the program); or the end of the round ([`SIGNALLED`]) with the signal
/// put back, unless the program ignores it.
fn took(task: &TaskCtx<'_>, sig: i64, info: &[u8; 128], wait: Wait) -> i64 {
    if sig <= 0 {
        return 0;
    }
    if let Wait::Take { set, info: to } = wait {
        if set & crate::abi::sigbit(sig as u32) != 0 {
            if to != 0 && task.mem.write(to, info).is_err() {
                return Errno::EFAULT.ret();
            }
            return sig;
        }
    }
    if !ignored(task, sig as u32) {
        let pid = task.host_call(Sysno::getpid, [0; 6]) as u64;
        let tid = u64::from(task.tid());
        task.host_call(Sysno::rt_tgsigqueueinfo, [pid, tid, sig as u64, info.as_ptr() as u64, 0, 0]);
    }
    SIGNALLED
}

/// The round [`Waiter::next`] planned, as a call the task makes itself, its buffers in its
/// scratch memory below the red zone (the handler pushes nothing after it). `Err` is the
/// round's result when it needs no call: a child found ready, or a failure.
fn round_call(task: &TaskCtx<'_>, waiter: &Waiter, ns: u64) -> Result<Suspended, i64> {
    let mut at = task.stack_pointer.saturating_sub(crate::task::RED_ZONE + task.scratch_used);
    let mut put = |data: &[u8]| -> Result<u64, i64> {
        at = at.checked_sub((data.len() as u64 + 15) & !15).ok_or(Errno::EFAULT.ret())?;
        task.mem.write(at, data).map_err(Errno::ret)?;
        Ok(at)
    };
    let ts = put(&TimePair::from_ns(ns).to_bytes())?;
    let round = |nr: Sysno, args: [u64; 6], info: u64| Suspended {
        waiter: *waiter,
        call: crate::Syscall::new(nr, args),
        info,
    };
    let mut signals = |mask: u64| -> Result<Suspended, i64> {
        let want = put(&(!mask & !UNBLOCKABLE).to_ne_bytes())?;
        let info = put(&[0u8; 128])?;
        Ok(round(Sysno::rt_sigtimedwait, [want, info, ts, 8, 0, 0], info))
    };
    match waiter.wait {
        Wait::Signals | Wait::Take { .. } => signals(waiter.mask),
        Wait::Child { idtype, id, options } => match child_peek(task, idtype, id, options) {
            0 => signals(waiter.mask),
            r => Err(r),
        },
        Wait::Poll { fds, nfds } => Ok(round(Sysno::ppoll, [fds, nfds, ts, 0, 8, 0], 0)),
        Wait::Select { nfds, sets } => {
            Ok(round(Sysno::pselect6, [nfds, sets[0], sets[1], sets[2], ts, 0], 0))
        }
        Wait::Epoll { epfd, events, max } => {
            let ms = ns.div_ceil(1_000_000).min(i32::MAX as u64);
            Ok(round(Sysno::epoll_wait, [epfd, events, max, ms, 0, 0], 0))
        }
        Wait::Readable(fd) => {
            let pfd = put(&pollfd(fd))?;
            Ok(round(Sysno::ppoll, [pfd, 1, ts, 0, 8, 0], 0))
        }
    }
}

/// The result of a round the task made, as [`host_wait`] would have returned it.
fn round_result(task: &TaskCtx<'_>, round: &Suspended, raw: i64) -> i64 {
    // The task saw what the host's restart codes become (`ERESTARTSYS` .. `ERESTART_RESTARTBLOCK`),
    // stopped before the host turned them into EINTR: a stop interrupted the round.
    let raw = if (-516..=-512).contains(&raw) { EINTR } else { raw };
    if round.info == 0 {
        return raw;
    }
    let mut info = [0u8; 128];
    if raw > 0 && task.mem.read(round.info, &mut info).is_err() {
        return 0;
    }
    took(task, raw, &info, round.waiter.wait)
}

/// Whether a child the wait selects has changed state, without reaping it: 1 if one has, 0
/// if none has, or the error.
fn child_peek(task: &TaskCtx<'_>, idtype: u64, id: u64, options: u64) -> i64 {
    const WNOHANG: u64 = 1;
    const WNOWAIT: u64 = 0x0100_0000;
    let mut info = [0u8; 128];
    let peek = [idtype, id, info.as_mut_ptr() as u64, options | WNOHANG | WNOWAIT, 0, 0];
    let r = task.host_call(Sysno::waitid, peek);
    if r < 0 {
        return r;
    }
    i64::from(info[16..20] != [0; 4])
}

/// A `pollfd` asking whether `fd` is readable.
fn pollfd(fd: i32) -> [u8; 8] {
    let mut pfd = [0u8; 8];
    pfd[..4].copy_from_slice(&fd.to_ne_bytes());
    pfd[4..6].copy_from_slice(&1i16.to_ne_bytes());
    pfd
}
