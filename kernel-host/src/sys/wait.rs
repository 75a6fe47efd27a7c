//! Waits: `futex` with a timeout, `poll`, `ppoll`, `select`, `pselect6`, `epoll_wait`,
//! `epoll_pwait`, `epoll_pwait2`, `rt_sigsuspend`, `rt_sigtimedwait`, `pause`, `wait4`, `waitid`.
//!
//! The calls that take a signal mask for the time they wait (`ppoll`, `pselect6`,
//! `epoll_pwait*`, `rt_sigsuspend`) would let the program block the runtime's signals on
//! the host, which makes the next trap fatal: the mask is passed on without them.
//!
//! Programs wait with a timeout and then read the clock to see whether their deadline passed
//! (Go's timers, asyncio, condition variables). On a clock that only moves when read, the
//! deadline would never come. So a wait that times out advances the virtual clock by its
//! timeout, as if that time had passed ([`AfterHost::AdvanceClockOnTimeout`]); with
//! `--fast-sleep` the wait does not wait at all. Absolute futex deadlines, which the program
//! computed on the virtual clock, are turned into the host's relative ones. A wait that one
//! of the process's timers would interrupt first runs in rounds up to the expiry instead
//! (`wake.rs`).

use super::wake::{self, Wait, Woken};
use crate::abi::UNBLOCKABLE;
use crate::errno::{Errno, KResult};
use crate::kernel::Kernel;
use crate::syscall::{AfterHost, Disposition, Syscall, TimeLeft};
use crate::task::TaskCtx;
use crate::time::{TimePair, VirtualClock};

/// `futex` operations that wait with a timeout, and the flag bits around them.
const FUTEX_WAIT: u64 = 0;
const FUTEX_LOCK_PI: u64 = 6;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAIT_REQUEUE_PI: u64 = 11;
const FUTEX_LOCK_PI2: u64 = 13;
const CLOCK_REALTIME: u64 = 0;
const FUTEX_CMD_MASK: u64 = 0x7f;
const FUTEX_CLOCK_REALTIME: u64 = 256;
const CLOCK_MONOTONIC: u64 = 1;
const ETIMEDOUT: Errno = Errno(110);

/// Arranges `call` (whose timeout is `ns`) to advance the clock if it times out, after
/// rewriting its timeout to zero when sleeps are fast (`zero` rewrites the call), and to write
/// its time left back to `time_left` if it is a `select`.
fn timed(
    v: &VirtualClock,
    task: &mut TaskCtx<'_>,
    mut call: Syscall,
    ns: u64,
    timed_out: i64,
    zero: impl FnOnce(&mut TaskCtx<'_>, &mut Syscall) -> KResult<()>,
    time_left: Option<TimeLeft>,
) -> Disposition {
    if v.fast_sleep() {
        if let Err(e) = zero(task, &mut call) {
            return Disposition::Return(e.ret());
        }
    }
    v.lose_sight();
    task.after = Some(AfterHost::AdvanceClockOnTimeout { timed_out, deadline: v.after(ns), time_left });
    Disposition::Host(call)
}

fn read_pair(task: &TaskCtx<'_>, addr: u64) -> KResult<TimePair> {
    let mut b = [0u8; 16];
    task.mem.read(addr, &mut b)?;
    Ok(TimePair::from_bytes(&b))
}

/// Points argument `arg` at a scratch `timespec` (or `timeval`) of zero.
fn zero_pair(arg: usize) -> impl FnOnce(&mut TaskCtx<'_>, &mut Syscall) -> KResult<()> {
    move |task, call| {
        call.args[arg] = task.push_scratch(&[0u8; 16])?;
        Ok(())
    }
}

/// The clock an absolute futex deadline is on, or `None` for a relative timeout (or an
/// operation whose fourth argument is not a timeout at all).
fn futex_deadline_clock(op: u64) -> Option<Option<u64>> {
    let by_flag = if op & FUTEX_CLOCK_REALTIME != 0 { CLOCK_REALTIME } else { CLOCK_MONOTONIC };
    match op & FUTEX_CMD_MASK {
        FUTEX_WAIT => Some(None),
        FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI | FUTEX_LOCK_PI2 => Some(Some(by_flag)),
        FUTEX_LOCK_PI => Some(Some(CLOCK_REALTIME)),
        _ => None,
    }
}

/// The host's reading of `clock`, in nanoseconds.
fn host_now(task: &TaskCtx<'_>, clock: u64) -> u64 {
    super::time::host_clock(task, clock).ok().and_then(TimePair::to_ns).unwrap_or(0)
}

/// Points the timeout argument of `call` at a scratch `timespec` of `ns`.
fn with_timeout(task: &mut TaskCtx<'_>, call: &Syscall, ns: u64) -> KResult<Syscall> {
    let mut host = *call;
    host.args[3] = task.push_scratch(&TimePair::from_ns(ns).to_bytes())?;
    Ok(host)
}

/// `futex(uaddr, op, val, timeout, uaddr2, val3)`, trapped when a timeout is given. Absolute
/// deadlines were computed on the program's clock: with an offset they are shifted back to
/// host time; on the virtual clock the time left is waited on the host's clock.
pub fn futex(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [_, op, _, timeout, ..] = call.args;
    let Some(deadline_clock) = futex_deadline_clock(op) else { return Disposition::Host(*call) };
    if timeout == 0 {
        return Disposition::Host(*call);
    }
    let t = match read_pair(task, timeout).and_then(|t| t.to_ns().ok_or(Errno::EINVAL)) {
        Ok(t) => t,
        Err(e) => return Disposition::Return(e.ret()),
    };
    let Some(v) = k.clock.virtual_clock() else {
        // Offset mode: only absolute realtime deadlines move.
        return match deadline_clock {
            Some(clock) if k.clock.offset_for(clock) != 0 => {
                let shift = k.clock.offset_for(clock).saturating_mul(1_000_000_000);
                let host_deadline = (t as i64).saturating_sub(shift).max(0) as u64;
                with_timeout(task, call, host_deadline)
                    .map_or_else(|e| Disposition::Return(e.ret()), Disposition::Host)
            }
            _ => Disposition::Host(*call),
        };
    };
    let Some(clock) = deadline_clock else {
        return timed(v, task, *call, t, ETIMEDOUT.ret(), zero_pair(3), None);
    };
    // An absolute deadline on the virtual clock: the time left, as a deadline on the host's.
    let left = t.saturating_sub(v.base(clock).saturating_add(v.elapsed()));
    let wait = if v.fast_sleep() { 0 } else { left };
    let host = match with_timeout(task, call, host_now(task, clock).saturating_add(wait)) {
        Ok(host) => host,
        Err(e) => return Disposition::Return(e.ret()),
    };
    v.lose_sight();
    task.after = Some(AfterHost::AdvanceClockOnTimeout {
        timed_out: ETIMEDOUT.ret(),
        deadline: v.after(left),
        time_left: None,
    });
    Disposition::Host(host)
}

/// Rewrites the `sigset_t` pointer at argument `arg` (if any) to a copy without the runtime's
/// signals.
fn strip_mask(task: &mut TaskCtx<'_>, call: &mut Syscall, arg: usize) -> KResult<()> {
    let ptr = call.args[arg];
    if ptr == 0 {
        return Ok(());
    }
    let mask = task.read_u64(ptr)?;
    if mask & UNBLOCKABLE != 0 {
        call.args[arg] = task.push_scratch(&(mask & !UNBLOCKABLE).to_ne_bytes())?;
    }
    Ok(())
}

/// `pselect6`'s sixth argument points to `{ const sigset_t *ss; size_t ss_len; }`.
fn strip_pselect_mask(task: &mut TaskCtx<'_>, call: &mut Syscall) -> KResult<()> {
    let data = call.args[5];
    if data == 0 {
        return Ok(());
    }
    let mut pair = [0u8; 16];
    task.mem.read(data, &mut pair)?;
    let ss = u64::from_ne_bytes(pair[..8].try_into().unwrap_or([0; 8]));
    if ss == 0 {
        return Ok(());
    }
    let mask = task.read_u64(ss)?;
    if mask & UNBLOCKABLE != 0 {
        let copy = task.push_scratch(&(mask & !UNBLOCKABLE).to_ne_bytes())?;
        pair[..8].copy_from_slice(&copy.to_ne_bytes());
        call.args[5] = task.push_scratch(&pair)?;
    }
    Ok(())
}

/// A wait of `timeout` nanoseconds (`None`: forever) with `mask`, run in rounds when a timer
/// expires before it ends (`wake.rs`). `None`: no timer does, or a signal ends a wait with a
/// mask of its own, which the host then delivers under that mask: wait as usual.
fn cut(k: &Kernel, task: &TaskCtx<'_>, wait: Wait, timeout: Option<u64>, mask: u64) -> Option<Disposition> {
    let v = k.clock.virtual_clock()?;
    if timeout == Some(0) {
        super::timer::checkpoint(k, task);
        return None;
    }
    let deadline = timeout.map(|t| v.after(t));
    let own_mask = (mask ^ task.sigmask) & !UNBLOCKABLE != 0;
    match wake::until(k, task, wait, deadline, mask)? {
        Woken::Ready(r) => Some(Disposition::Return(r)),
        Woken::Signalled if own_mask => None,
        Woken::Signalled => Some(Disposition::Return(Errno::EINTR.ret())),
        Woken::TimedOut | Woken::Later => Some(Disposition::Return(0)),
        Woken::HandOff => None,
    }
}

/// `rt_sigtimedwait(set, info, timeout, size)` (`sigwait`, `sigwaitinfo`, `sigtimedwait`): a
/// wait to take one of the signals of `set`, which the program blocks, and which its own
/// timers may send on the virtual clock. A wait that a timer expires in runs in rounds
/// (`wake.rs`); when the signal it waits for (or one it does not block) is pending, the host
/// takes it (or runs the handler: `EINTR`) at once; one a round of the wait took ends it
/// there. A timeout advances the clock as sleeps do; it ends the wait with `EAGAIN`.
pub fn rt_sigtimedwait(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let Some(v) = k.clock.virtual_clock() else { return Disposition::Host(*call) };
    // Unreadable arguments, or a set of another size: the host says what is wrong.
    let (Ok(set), Some(timeout), 8) =
        (task.read_u64(call.args[0]), pair_timeout(task, call.args[2], false), call.args[3])
    else {
        return Disposition::Host(*call);
    };
    let set = set & !UNBLOCKABLE;
    if timeout == Some(0) {
        super::timer::checkpoint(k, task);
        return Disposition::Host(*call);
    }
    let deadline = timeout.map(|t| v.after(t));
    // Linux discards a signal of `set` that the program neither blocks nor handles; every other
    // one of `set` is taken, not delivered to a handler.
    let discarded = (1..=64u32)
        .filter(|&sig| set & !task.sigmask & crate::abi::sigbit(sig) != 0 && wake::ignored(task, sig))
        .fold(0, |bits, sig| bits | crate::abi::sigbit(sig));
    let wait = Wait::Take { set: set & !discarded, info: call.args[1] };
    match wake::until(k, task, wait, deadline, task.sigmask & !set) {
        Some(Woken::TimedOut) => return Disposition::Return(Errno::EAGAIN.ret()),
        Some(Woken::Later) => return Disposition::Return(0),
        Some(Woken::Ready(r)) => return Disposition::Return(r),
        Some(Woken::Signalled) => return take_pending(task, call, set),
        Some(Woken::HandOff) | None => {}
    }
    match timeout {
        Some(ns) => timed(v, task, *call, ns, Errno::EAGAIN.ret(), zero_pair(2), None),
        None => Disposition::Host(*call),
    }
}

/// The end of a `rt_sigtimedwait` that a signal ended: one of `set` is pending, which is taken
/// here, or one the program does not block, which runs its handler as the call returns `EINTR`,
/// as on Linux. Taken here and not by the program's own call: that would run with the program's
/// mask back, and a signal of `set` it does not block would reach its handler first.
fn take_pending(task: &mut TaskCtx<'_>, call: &Syscall, set: u64) -> Disposition {
    let mut info = [0u8; 128];
    let zero = [0u8; 16];
    let look = [&set as *const u64 as u64, info.as_mut_ptr() as u64, zero.as_ptr() as u64, 8, 0, 0];
    let sig = task.host_call(syscalls::Sysno::rt_sigtimedwait, look);
    if sig <= 0 {
        return Disposition::Return(Errno::EINTR.ret());
    }
    if call.args[1] != 0 {
        if let Err(e) = task.mem.write(call.args[1], &info) {
            return Disposition::Return(e.ret());
        }
    }
    Disposition::Return(sig)
}

/// A millisecond timeout (negative: forever).
fn ms_timeout(ms: u64) -> Option<u64> {
    let ms = ms as i32;
    (ms >= 0).then(|| ms as u64 * 1_000_000)
}

/// A timeout given as a pointer (0: forever) to a `timespec`, or a `timeval` when `micros`;
/// `None` when it cannot be read (the host will say why).
fn pair_timeout(task: &TaskCtx<'_>, addr: u64, micros: bool) -> Option<Option<u64>> {
    if addr == 0 {
        return Some(None);
    }
    let t = read_pair(task, addr).ok()?;
    let t = if micros { TimePair { secs: t.secs, frac: t.frac.saturating_mul(1000) } } else { t };
    Some(Some(t.to_ns()?))
}

/// The mask a wait runs with: the one at `addr`, or the thread's (0).
fn wait_mask(task: &TaskCtx<'_>, addr: u64) -> Option<u64> {
    if addr == 0 {
        Some(task.sigmask)
    } else {
        task.read_u64(addr).ok()
    }
}

/// `rt_sigsuspend(mask, size)`.
pub fn rt_sigsuspend(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    if let Some(d) = wait_mask(task, call.args[0]).and_then(|m| cut(k, task, Wait::Signals, None, m)) {
        return d;
    }
    let mut call = *call;
    match strip_mask(task, &mut call, 0) {
        Ok(()) => Disposition::Host(call),
        Err(e) => Disposition::Return(e.ret()),
    }
}

/// A timeout in milliseconds (`poll`, `epoll_wait`) at argument `arg`; negative waits forever.
fn millis(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall, arg: usize) -> Disposition {
    let Some(v) = k.clock.virtual_clock() else { return Disposition::Host(*call) };
    let ms = call.args[arg] as i32;
    if ms <= 0 {
        return Disposition::Host(*call);
    }
    timed(
        v,
        task,
        *call,
        ms as u64 * 1_000_000,
        0,
        move |_, c| {
            c.args[arg] = 0;
            Ok(())
        },
        None,
    )
}

/// A timeout as a pointer to a `timespec` (`micros` false) or `timeval` (true) at `arg`;
/// `select`, `pselect6` and `ppoll` (`select`) write their time left back there.
fn pair(
    k: &Kernel,
    task: &mut TaskCtx<'_>,
    call: &Syscall,
    arg: usize,
    micros: bool,
    select: bool,
) -> Disposition {
    let Some(v) = k.clock.virtual_clock() else { return Disposition::Host(*call) };
    if call.args[arg] == 0 {
        return Disposition::Host(*call);
    }
    let t = match read_pair(task, call.args[arg]) {
        Ok(t) => t,
        Err(e) => return Disposition::Return(e.ret()),
    };
    let t = if micros { TimePair { secs: t.secs, frac: t.frac.saturating_mul(1000) } } else { t };
    match t.to_ns() {
        Some(0) | None => Disposition::Host(*call),
        Some(ns) => {
            let time_left = select.then_some(TimeLeft { addr: call.args[arg], micros });
            timed(v, task, *call, ns, 0, zero_pair(arg), time_left)
        }
    }
}

/// `poll(fds, nfds, timeout_ms)`.
pub fn poll(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [fds, nfds, ms, ..] = call.args;
    if let Some(d) = cut(k, task, Wait::Poll { fds, nfds }, ms_timeout(ms), task.sigmask) {
        return d;
    }
    millis(k, task, call, 2)
}

/// Runs `then` on `call` with the mask at argument `mask_arg` stripped.
fn with_mask(
    task: &mut TaskCtx<'_>,
    call: &Syscall,
    strip: impl FnOnce(&mut TaskCtx<'_>, &mut Syscall) -> KResult<()>,
    then: impl FnOnce(&mut TaskCtx<'_>, &Syscall) -> Disposition,
) -> Disposition {
    let mut call = *call;
    match strip(task, &mut call) {
        Ok(()) => then(task, &call),
        Err(e) => Disposition::Return(e.ret()),
    }
}

/// `epoll_wait(epfd, events, max, timeout_ms)`.
pub fn epoll_wait(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [epfd, events, max, ms, ..] = call.args;
    if let Some(d) = cut(k, task, Wait::Epoll { epfd, events, max }, ms_timeout(ms), task.sigmask) {
        return d;
    }
    millis(k, task, call, 3)
}

/// `epoll_pwait(epfd, events, max, timeout_ms, sigmask, size)`.
pub fn epoll_pwait(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [epfd, events, max, ms, mask, _] = call.args;
    let wait = Wait::Epoll { epfd, events, max };
    if let Some(d) = wait_mask(task, mask).and_then(|m| cut(k, task, wait, ms_timeout(ms), m)) {
        return d;
    }
    with_mask(task, call, |t, c| strip_mask(t, c, 4), |t, c| millis(k, t, c, 3))
}

/// `epoll_pwait2(epfd, events, max, timeout, sigmask, size)`.
pub fn epoll_pwait2(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [epfd, events, max, ts, mask, _] = call.args;
    let wait = Wait::Epoll { epfd, events, max };
    let timeout = pair_timeout(task, ts, false);
    if let Some(d) = timeout.zip(wait_mask(task, mask)).and_then(|(t, m)| cut(k, task, wait, t, m)) {
        return d;
    }
    with_mask(task, call, |t, c| strip_mask(t, c, 4), |t, c| pair(k, t, c, 3, false, false))
}

/// `ppoll(fds, nfds, tsp, sigmask, size)`.
pub fn ppoll(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [fds, nfds, ts, mask, ..] = call.args;
    let wait = Wait::Poll { fds, nfds };
    if let Some(d) = wait_mask(task, mask).and_then(|m| cut_select(k, task, wait, ts, false, m)) {
        return d;
    }
    with_mask(task, call, |t, c| strip_mask(t, c, 3), |t, c| pair(k, t, c, 2, false, true))
}

/// `select(nfds, r, w, e, timeval)`.
pub fn select(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [nfds, r, w, e, tv, _] = call.args;
    let wait = Wait::Select { nfds, sets: [r, w, e] };
    if let Some(d) = cut_select(k, task, wait, tv, true, task.sigmask) {
        return d;
    }
    pair(k, task, call, 4, true, true)
}

/// A `select`-family wait (`select`, `pselect6`, `ppoll`) that a timer cuts ([`cut`]), with the
/// time left written into its timeout at `addr` (a `timeval` when `micros`) as Linux writes it: programs that retry after
/// `EINTR` with the same timeout rely on it. The time left is the virtual clock's.
fn cut_select(
    k: &Kernel,
    task: &TaskCtx<'_>,
    wait: Wait,
    addr: u64,
    micros: bool,
    mask: u64,
) -> Option<Disposition> {
    let v = k.clock.virtual_clock()?;
    let Some(t) = pair_timeout(task, addr, micros)? else { return cut(k, task, wait, None, mask) };
    // Computed once: the ptrace backend serves the call again when the wait's rounds end.
    let deadline = wake::deadline(task, || v.after(t));
    let d = cut(k, task, wait, Some(t), mask)?;
    if task.rounds.is_some_and(|slot| slot.suspended.get().is_some()) {
        // Its rounds go on in the task: the time left is written when they end.
        return Some(d);
    }
    let left = TimeLeft { addr, micros }.bytes(deadline, v.elapsed());
    // Readable a moment ago; were it not writable, the host would not have said so either.
    let _ = task.mem.write(addr, &left);
    Some(d)
}

/// `pselect6(nfds, r, w, e, timespec, sigmask)`.
pub fn pselect6(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [nfds, r, w, e, ts, data] = call.args;
    let wait = Wait::Select { nfds, sets: [r, w, e] };
    let mask = if data == 0 {
        Some(task.sigmask)
    } else {
        task.read_u64(data).ok().and_then(|ss| wait_mask(task, ss))
    };
    if let Some(d) = mask.and_then(|m| cut_select(k, task, wait, ts, false, m)) {
        return d;
    }
    with_mask(task, call, strip_pselect_mask, |t, c| pair(k, t, c, 4, false, true))
}

/// `waitid`'s `idtype`s.
const P_ALL: u64 = 0;
const P_PID: u64 = 1;
const P_PGID: u64 = 2;
/// Wait options, as `wait4` and `waitid` share them.
const WNOHANG: u64 = 1;
const WEXITED: u64 = 4;
const WNOWAIT: u64 = 0x0100_0000;
/// The options `wait4` takes: `WNOHANG`, `WUNTRACED`, `WCONTINUED`, `__WNOTHREAD`, `__WALL`,
/// `__WCLONE`.
const WAIT4_OPTIONS: u64 = 1 | 2 | 8 | 0x2000_0000 | 0x4000_0000 | 0x8000_0000;

/// What a `wait4` or `waitid` waits for, as `waitid` names it: `(idtype, id, options)`.
fn child_wait(call: &Syscall) -> (u64, u64, u64) {
    let [a0, a1, a2, a3, ..] = call.args;
    if call.nr == syscalls::Sysno::wait4.id() as u32 {
        let pid = a0 as i32;
        let (idtype, id) = match pid {
            -1 => (P_ALL, 0),
            0 => (P_PGID, 0),
            p if p < 0 => (P_PGID, u64::from(p.unsigned_abs())),
            p => (P_PID, p as u64),
        };
        (idtype, id, (a2 & !WNOHANG) | WEXITED)
    } else {
        (a0, a1, a3 & !(WNOHANG | WNOWAIT))
    }
}

/// `wait4` and `waitid`. In reproducible mode the process's own timers keep firing on the
/// virtual clock while it waits: a wait that a timer expires in runs in rounds (`wake.rs`), so
/// the timer's signal interrupts it when the clock reaches the expiry, and a child that ends
/// is reported after the timers its end made due have fired (its signal runs the program's
/// handler first, then the wait returns or restarts as Linux has it). Without timers the wait
/// runs on the host as it is. Either way what the process arms next starts from the clock as
/// it is then: a child that ended may have moved it.
///
/// One more rule orders a child's end after a timer's expiry when the program blocks the
/// timer's signal and polls (`WNOHANG`), as coreutils `timeout` does around `sigsuspend`:
/// if a timer queued a signal since the last wait for a child, and that signal is still
/// pending and blocked, this poll reports that no child has changed state yet. The program's
/// next `sigsuspend` takes the signal, and its next poll finds the child. The expiry came
/// first on the virtual clock; which of the two the host showed first is scheduling.
pub fn wait_child(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let Some(v) = k.clock.virtual_clock() else { return Disposition::Host(*call) };
    let wait4 = call.nr == syscalls::Sysno::wait4.id() as u32;
    if wait4 && call.args[2] & !WAIT4_OPTIONS != 0 {
        // `waitid`'s options (`WNOWAIT`, `WEXITED`) are `EINVAL` for `wait4`: the host says so,
        // and the call, no wait for a child, leaves the timers' queued signals to the next.
        return Disposition::Host(*call);
    }
    let queued = k.timers.take_queued();
    let (idtype, id, options) = child_wait(call);
    let nohang = if wait4 { call.args[2] } else { call.args[3] };
    if nohang & WNOHANG != 0 {
        // Whether a child is ready or not: one that becomes ready between a look and the
        // host's wait would be reported before the expiry (the ptrace backend's supervisor
        // makes that window wide). Only a wait with no child to select goes to the host, for
        // its error.
        if queued & task.sigmask & pending(task) != 0 && has_child(task, idtype, id, options) {
            return not_yet(task, call);
        }
        // With a timer armed, the poll is answered from a look at the children, not left to
        // the host's wait: a child found ended was seen after the clock passed where it is
        // now, so the timers due by then fire first (and the rule above holds its end back);
        // a child that ends after the look waits for the next poll. Left to the host, a child
        // that ended between this decision and the host's wait was reported before the expiry
        // its end had passed (under ptrace that gap is the tracee's scheduling: on a loaded
        // machine `timeout 1 sleep 5` once saw its child's end before its timer).
        if k.timers.next_expiry().is_some() {
            match peek(task, idtype, id, options) {
                Some(false) => return not_yet(task, call),
                Some(true) => {
                    super::timer::checkpoint(k, task);
                    if k.timers.take_queued() & task.sigmask & pending(task) != 0 {
                        return not_yet(task, call);
                    }
                }
                None => {}
            }
        }
    } else {
        // The program's wait runs on the host once a child is ready (or the rounds are handed
        // off), unless a signal interrupts it: its handler runs first, and the wait returns
        // EINTR, or restarts on the host when the handler has SA_RESTART. A child found ready
        // is reported after the timers the clock passed meanwhile (or before the call, at its
        // checkpoint): their expiries came first, since the clock is past them when the end
        // is seen, so a signal they queued interrupts the wait. Any other signal interrupts it
        // only if no child is ready, as on Linux; nothing does when there is no child at all.
        let wait = Wait::Child { idtype, id, options };
        let woken = wake::until(k, task, wait, None, task.sigmask);
        if woken == Some(Woken::Later) {
            return Disposition::Return(0);
        }
        let by_timer = (queued | k.timers.take_queued()) & pending(task) & !task.sigmask != 0;
        let interrupted = match woken {
            Some(Woken::Ready(r)) => r > 0 && by_timer,
            Some(Woken::Signalled) => by_timer || !child_ready(task, idtype, id, options),
            _ => false,
        };
        if interrupted && wake::interrupts(task, task.sigmask) {
            v.lose_sight();
            return Disposition::Return(Errno::EINTR.ret());
        }
    }
    v.lose_sight();
    Disposition::Host(*call)
}

/// The signals pending for the calling thread or its process.
fn pending(task: &TaskCtx<'_>) -> u64 {
    let mut set = 0u64;
    task.host_call(syscalls::Sysno::rt_sigpending, [&mut set as *mut u64 as u64, 8, 0, 0, 0, 0]);
    set
}

/// Whether a child the wait selects has changed state (without reaping it).
fn child_ready(task: &TaskCtx<'_>, idtype: u64, id: u64, options: u64) -> bool {
    peek(task, idtype, id, options).is_some_and(|ready| ready)
}

/// Whether the wait selects any child, ready or not.
fn has_child(task: &TaskCtx<'_>, idtype: u64, id: u64, options: u64) -> bool {
    peek(task, idtype, id, options).is_some()
}

/// Whether a child the wait selects has changed state (without reaping it); `None` when the
/// wait selects none.
fn peek(task: &TaskCtx<'_>, idtype: u64, id: u64, options: u64) -> Option<bool> {
    let mut info = [0u8; 128];
    let peek = [idtype, id, info.as_mut_ptr() as u64, options | WNOHANG | WNOWAIT, 0, 0];
    (task.host_call(syscalls::Sysno::waitid, peek) == 0).then(|| info[16..20] != [0; 4])
}

/// What a `WNOHANG` wait returns when no child has changed state: 0, and for `waitid` a
/// `siginfo_t` whose fields Linux zeroes.
fn not_yet(task: &TaskCtx<'_>, call: &Syscall) -> Disposition {
    let infop = call.args[2];
    if call.nr == syscalls::Sysno::waitid.id() as u32 && infop != 0 {
        if let Err(e) = task.mem.write(infop, &[0u8; 32]) {
            return Disposition::Return(e.ret());
        }
    }
    Disposition::Return(0)
}

/// `pause()`: a wait for a signal, which a timer may send.
pub fn pause(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    match wake::until(k, task, Wait::Signals, None, task.sigmask) {
        Some(Woken::Signalled) => Disposition::Return(Errno::EINTR.ret()),
        Some(Woken::Later) => Disposition::Return(0),
        _ => Disposition::Host(*call),
    }
}
