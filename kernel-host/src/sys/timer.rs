//! `alarm`, `setitimer`, `getitimer`, `timer_create`, `timer_settime`, `timer_gettime`,
//! `timer_getoverrun`, `timer_delete`: timers on the virtual clock of reproducible mode
//! ([`crate::timer`] keeps them), and the checkpoint where they fire.
//!
//! A timer fires at a checkpoint ([`checkpoint`]: every call the kernel serves, or a wait that
//! reaches its expiry, see `wake.rs`) by queueing its signal to the process (`rt_sigqueueinfo`,
//! with the `siginfo` Linux would give) or to a thread (`rt_tgsigqueueinfo`), or, for a timer
//! descriptor, by adding to its count (`timerfd.rs`).
//!
//! Outside reproducible mode none of these calls is redirected.

use super::ret;
use crate::errno::{Errno, KResult};
use crate::kernel::Kernel;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;
use crate::time::{TimePair, VirtualClock};
use crate::timer::{AddError, Kind, Notify, Slot, Timer, Timers};
use crate::timer_fds::FdRef;
use syscalls::Sysno;

const NS: u64 = 1_000_000_000;
const SIGALRM: u32 = 14;
const SIGVTALRM: u32 = 26;
const SIGPROF: u32 = 27;
/// `si_code` of a signal the kernel sends (interval timers).
const SI_KERNEL: i32 = 0x80;
/// `si_code` of `rt_sigqueueinfo`'s own signals: what a thread other than the main one may send.
const SI_QUEUE: i32 = -1;
/// `si_code` of a POSIX timer's signal.
const SI_TIMER: i32 = -2;
const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD_ID: i32 = 4;
/// `TIMER_ABSTIME`, and `TFD_TIMER_ABSTIME`.
pub(super) const TIMER_ABSTIME: u64 = 1;

/// Fires the timers of this process that are due on the virtual clock. Cheap when none is:
/// one atomic load.
/// Returns how many fired.
pub(crate) fn checkpoint(k: &Kernel, task: &TaskCtx<'_>) -> usize {
    match k.clock.virtual_clock() {
        Some(v) if k.timers.due(v.elapsed()) && owned(k, task) => k.timers.fire_due(v.elapsed(), |t, n| {
            match t.notify {
                Notify::Process(sig) | Notify::Thread(sig, _) => k.timers.note_queued(sig),
                // Another holder of the descriptor may be adding to its count too.
                Notify::Fd => return k.timers.fds().counting(FdRef(t.value), || deliver(task, t, n)),
                Notify::Nothing => {}
            }
            deliver(task, t, n)
        }),
        _ => 0,
    }
}

/// Whether the calling process owns the timers in this memory (not a `vfork` child of the
/// process that does).
pub(crate) fn owned(k: &Kernel, task: &TaskCtx<'_>) -> bool {
    k.timers.claim(task.host_call(Sysno::getpid, [0; 6]) as u32)
}

/// What an expiry does: queue the signal, or add to the descriptor's count. Returns false
/// when the descriptor is no timer descriptor any more (the program closed it).
fn deliver(task: &TaskCtx<'_>, t: &mut Timer, n: u64) -> bool {
    let (sig, thread) = match t.notify {
        Notify::Nothing => return true,
        Notify::Fd => return super::timerfd::add_ticks(task, t, n),
        Notify::Process(sig) => (sig, None),
        Notify::Thread(sig, tid) => (sig, Some(tid)),
    };
    // A POSIX timer whose last signal is still pending is not queued again: its expirations
    // are counted as overruns, as Linux does. (Only what this thread can see is checked:
    // the process's pending signals and its own.)
    if matches!(t.kind, Kind::Posix(_)) {
        let mut pending = 0u64;
        task.host_call(Sysno::rt_sigpending, [&mut pending as *mut u64 as u64, 8, 0, 0, 0, 0]);
        if pending & crate::abi::sigbit(sig) != 0 {
            t.overrun = t.overrun.saturating_add(n);
            return true;
        }
        t.overrun = n - 1;
    }
    let mut info = [0u8; 128];
    info[..4].copy_from_slice(&(sig as i32).to_ne_bytes());
    if let Kind::Posix(id) = t.kind {
        info[8..12].copy_from_slice(&SI_TIMER.to_ne_bytes());
        info[16..20].copy_from_slice(&id.to_ne_bytes());
        info[20..24].copy_from_slice(&(t.overrun.min(i32::MAX as u64) as i32).to_ne_bytes());
        info[24..32].copy_from_slice(&t.value.to_ne_bytes());
    } else {
        info[8..12].copy_from_slice(&SI_KERNEL.to_ne_bytes());
    }
    let pid = task.host_call(Sysno::getpid, [0; 6]) as u64;
    match thread {
        Some(tid) => task.host_call(
            Sysno::rt_tgsigqueueinfo,
            [pid, u64::from(tid), u64::from(sig), info.as_ptr() as u64, 0, 0],
        ),
        None => {
            let r =
                task.host_call(Sysno::rt_sigqueueinfo, [pid, u64::from(sig), info.as_ptr() as u64, 0, 0, 0]);
            // Linux lets only the process's main thread send a kernel's code (`SI_KERNEL`): from
            // another, the signal goes as `SI_QUEUE`, the rest of its `siginfo_t` the same.
            if r == Errno::EPERM.ret() {
                info[8..12].copy_from_slice(&SI_QUEUE.to_ne_bytes());
                task.host_call(Sysno::rt_sigqueueinfo, [pid, u64::from(sig), info.as_ptr() as u64, 0, 0, 0]);
            }
            r
        }
    };
    true
}

/// Nanoseconds of a `timespec` (`micros` false) or `timeval` (true); `EINVAL` when negative
/// or not normalised, as Linux says.
fn pair_ns(t: TimePair, micros: bool) -> KResult<u64> {
    let t = if micros {
        if !(0..1_000_000).contains(&t.frac) {
            return Err(Errno::EINVAL);
        }
        TimePair { secs: t.secs, frac: t.frac * 1000 }
    } else {
        t
    };
    t.to_ns().ok_or(Errno::EINVAL)
}

/// An `itimerval` / `itimerspec`: interval first, then value.
pub(super) fn read_spec(task: &TaskCtx<'_>, addr: u64, micros: bool) -> KResult<(u64, u64)> {
    let mut b = [0u8; 32];
    task.mem.read(addr, &mut b)?;
    let half = |i: usize| {
        let mut h = [0u8; 16];
        h.copy_from_slice(&b[i..i + 16]);
        TimePair::from_bytes(&h)
    };
    Ok((pair_ns(half(0), micros)?, pair_ns(half(16), micros)?))
}

/// Writes `slot` as an `itimerval` / `itimerspec` at `addr` (nothing when 0).
pub(super) fn write_spec(task: &TaskCtx<'_>, addr: u64, slot: Slot, now: u64, micros: bool) -> KResult<()> {
    if addr == 0 {
        return Ok(());
    }
    let mut left = slot.remaining(now);
    if micros && slot.armed() {
        // An armed timer never reads as zero: Linux reports at least a microsecond.
        left = left.max(1_000);
    }
    let as_pair = |ns: u64| {
        let t = TimePair::from_ns(ns);
        if micros {
            TimePair { secs: t.secs, frac: t.frac / 1000 }
        } else {
            t
        }
    };
    let mut b = [0u8; 32];
    b[..16].copy_from_slice(&as_pair(slot.interval).to_bytes());
    b[16..].copy_from_slice(&as_pair(left).to_bytes());
    task.mem.write(addr, &b)
}

/// The slot for a timer set to `value` (0 disarms) every `interval`, relative to where the
/// process last saw the clock ([`VirtualClock::anchor`]) or absolute on `clock`.
pub(super) fn slot_for(v: &VirtualClock, clock: u64, absolute: bool, value: u64, interval: u64) -> Slot {
    let expiry =
        if absolute { value.saturating_sub(v.base(clock)) } else { v.anchor().saturating_add(value) };
    Slot::new(value != 0, expiry, interval)
}

/// Sets interval timer `which`, returning its previous slot.
fn set_interval(k: &Kernel, which: u32, slot: Slot) -> KResult<Slot> {
    if !slot.armed() {
        return Ok(k.timers.remove(Kind::Interval(which)).map_or_else(Slot::default, |t| t.slot));
    }
    let old = inherit_interval(&k.timers, which, slot).map_err(|_| Errno::EAGAIN)?;
    Ok(old.map_or_else(Slot::default, |t| t.slot))
}

/// Arms interval timer `which` (0..=2) in `timers`: also how a new image takes over the
/// interval timers of the one that exec'd.
pub(crate) fn inherit_interval(timers: &Timers, which: u32, slot: Slot) -> Result<Option<Timer>, AddError> {
    let sig = [SIGALRM, SIGVTALRM, SIGPROF][which.min(2) as usize];
    let timer = Timer {
        kind: Kind::Interval(which),
        clock: 1,
        notify: Notify::Process(sig),
        value: 0,
        slot,
        overrun: 0,
    };
    timers.put(timer)
}

/// `alarm(seconds)`: `ITIMER_REAL`, returning the seconds left of the previous alarm
/// (rounded as Linux rounds them).
pub fn alarm(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let Some(v) = k.clock.virtual_clock() else { return Disposition::Host(*call) };
    // The process that arms a timer owns the table (a vfork child will not take it).
    owned(k, task);
    checkpoint(k, task);
    let secs = call.args[0] as u32;
    let slot = slot_for(v, 1, false, u64::from(secs) * NS, 0);
    let now = v.elapsed();
    ret(set_interval(k, 0, slot).map(|old| {
        let left = TimePair::from_ns(old.remaining(now));
        let round = (left.secs == 0 && left.frac != 0) || left.frac >= 500_000_000;
        left.secs + i64::from(round)
    }))
}

/// `setitimer(which, new, old)`. All three timers run on the virtual clock: the CPU-time
/// clocks read the same counter, so `ITIMER_VIRTUAL` and `ITIMER_PROF` are as deterministic
/// as `ITIMER_REAL` (and count sleeps as CPU time, as those clocks do here).
pub fn setitimer(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let Some(v) = k.clock.virtual_clock() else { return Disposition::Host(*call) };
    // The process that arms a timer owns the table (a vfork child will not take it).
    owned(k, task);
    let [which, new, old, ..] = call.args;
    checkpoint(k, task);
    let result = (|| {
        if which > 2 {
            return Err(Errno::EINVAL);
        }
        // A null new value disarms, as Linux still accepts.
        let (interval, value) = if new == 0 { (0, 0) } else { read_spec(task, new, true)? };
        let now = v.elapsed();
        let previous = set_interval(k, which as u32, slot_for(v, 1, false, value, interval))?;
        write_spec(task, old, previous, now, true)?;
        Ok(0)
    })();
    checkpoint(k, task);
    ret(result)
}

/// `getitimer(which, value)`.
pub fn getitimer(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let Some(v) = k.clock.virtual_clock() else { return Disposition::Host(*call) };
    let [which, cur, ..] = call.args;
    if which > 2 {
        return ret(Err(Errno::EINVAL));
    }
    let slot = k.timers.get(Kind::Interval(which as u32)).map_or_else(Slot::default, |t| t.slot);
    ret(write_spec(task, cur, slot, v.elapsed(), true).map(|_| 0))
}

/// Clocks `timer_create` accepts: the ones Linux has timers for, and CPU-time clocks.
fn timer_clock(clock: u64) -> bool {
    matches!(clock, 0..=3 | 7..=9 | 11) || (clock as i64) < 0
}

/// The notification a `struct sigevent` asks for (`None`: the `SIGEV_SIGNAL` / `SIGALRM`
/// default, its value the timer's id).
fn read_sigevent(task: &TaskCtx<'_>, addr: u64) -> KResult<(Notify, u64)> {
    let mut ev = [0u8; 20];
    task.mem.read(addr, &mut ev)?;
    let word = |i: usize| i32::from_ne_bytes([ev[i], ev[i + 1], ev[i + 2], ev[i + 3]]);
    let value = u64::from_ne_bytes(ev[..8].try_into().unwrap_or([0; 8]));
    let (signo, notify, tid) = (word(8), word(12), word(16));
    let sig = || if (1..=64).contains(&signo) { Ok(signo as u32) } else { Err(Errno::EINVAL) };
    let notify = match notify {
        SIGEV_NONE => Notify::Nothing,
        SIGEV_SIGNAL => Notify::Process(sig()?),
        SIGEV_THREAD_ID => {
            let pid = task.host_call(Sysno::getpid, [0; 6]) as u64;
            if tid <= 0 || task.host_call(Sysno::tgkill, [pid, tid as u64, 0, 0, 0, 0]) < 0 {
                return Err(Errno::EINVAL);
            }
            Notify::Thread(sig()?, tid as u32)
        }
        _ => return Err(Errno::EINVAL),
    };
    Ok((notify, value))
}

/// `timer_create(clock, sevp, timerid)`.
pub fn timer_create(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    // The process that arms a timer owns the table (a vfork child will not take it).
    owned(k, task);
    let [clock, sevp, idp, ..] = call.args;
    ret((|| {
        if !timer_clock(clock) {
            return Err(Errno::EINVAL);
        }
        let id = k.timers.free_posix_id();
        let (notify, value) =
            if sevp == 0 { (Notify::Process(SIGALRM), id as u64) } else { read_sigevent(task, sevp)? };
        let timer = Timer { kind: Kind::Posix(id), clock, notify, value, slot: Slot::default(), overrun: 0 };
        k.timers.put(timer).map_err(|_| Errno::EAGAIN)?;
        if let Err(e) = task.mem.write(idp, &id.to_ne_bytes()) {
            k.timers.remove(Kind::Posix(id));
            return Err(e);
        }
        Ok(0)
    })())
}

/// Arms timer `kind` from the `itimerspec` at `new` (flag bit 0: absolute), writing its
/// previous setting at `old`.
pub(super) fn settime(
    k: &Kernel,
    v: &VirtualClock,
    task: &TaskCtx<'_>,
    kind: Kind,
    flags: u64,
    new: u64,
    old: u64,
) -> KResult<i64> {
    let timer = k.timers.get(kind).ok_or(Errno::EINVAL)?;
    let (interval, value) = read_spec(task, new, false)?;
    let now = v.elapsed();
    let slot = slot_for(v, timer.clock, flags & TIMER_ABSTIME != 0, value, interval);
    let previous = k.timers.rearm(kind, slot).ok_or(Errno::EINVAL)?;
    write_spec(task, old, previous, now, false)?;
    Ok(0)
}

/// `timer_settime(timerid, flags, new, old)`.
pub fn timer_settime(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let Some(v) = k.clock.virtual_clock() else { return Disposition::Host(*call) };
    let [id, flags, new, old, ..] = call.args;
    checkpoint(k, task);
    let result = settime(k, v, task, Kind::Posix(id as i32), flags, new, old);
    checkpoint(k, task);
    ret(result)
}

/// `timer_gettime(timerid, cur)`.
pub fn timer_gettime(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let Some(v) = k.clock.virtual_clock() else { return Disposition::Host(*call) };
    let [id, cur, ..] = call.args;
    ret((|| {
        let timer = k.timers.get(Kind::Posix(id as i32)).ok_or(Errno::EINVAL)?;
        write_spec(task, cur, timer.slot, v.elapsed(), false)?;
        Ok(0)
    })())
}

/// `timer_getoverrun(timerid)`.
pub fn timer_getoverrun(k: &Kernel, _task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let timer = k.timers.get(Kind::Posix(call.args[0] as i32));
    ret(timer.map(|t| t.overrun.min(i32::MAX as u64) as i64).ok_or(Errno::EINVAL))
}

/// `timer_delete(timerid)`.
pub fn timer_delete(k: &Kernel, _task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    ret(k.timers.remove(Kind::Posix(call.args[0] as i32)).map(|_| 0).ok_or(Errno::EINVAL))
}
