//! `clock_gettime`, `gettimeofday`, `time`, `clock_nanosleep`, `nanosleep`, `times`,
//! `getrusage`, `sysinfo`.

use super::ret;
use super::wake::{self, Wait, Woken};
use crate::abi::{is_realtime_clock, CLOCK_REALTIME, TIMER_ABSTIME};
use crate::errno::{Errno, KResult};
use crate::kernel::Kernel;
use crate::syscall::{AfterHost, Disposition, Syscall};
use crate::task::TaskCtx;
use crate::time::{TimePair, VirtualClock};
use syscalls::Sysno;

/// Clock ids the kernel knows (`CLOCK_REALTIME` .. `CLOCK_TAI`), and the negative ids of
/// per-process and per-thread CPU clocks.
fn valid_clock(clock: u64) -> bool {
    clock <= 11 && clock != 10 || (clock as i64) < 0
}

/// The host's reading of `clock`.
pub(super) fn host_clock(task: &TaskCtx<'_>, clock: u64) -> KResult<TimePair> {
    let mut buf = [0u8; 16];
    Errno::check(task.host_call(Sysno::clock_gettime, [clock, buf.as_mut_ptr() as u64, 0, 0, 0, 0]))?;
    Ok(TimePair::from_bytes(&buf))
}

/// A reading of `clock` as the program sees it.
fn now(k: &Kernel, task: &TaskCtx<'_>, clock: u64) -> KResult<TimePair> {
    if let Some(v) = k.clock.virtual_clock() {
        if !valid_clock(clock) {
            return Err(Errno::EINVAL);
        }
        let t = v.read(clock);
        // A clock read is a checkpoint: a timer whose expiry the reads have reached fires,
        // and its signal arrives as the call returns.
        super::timer::checkpoint(k, task);
        return Ok(t);
    }
    let mut t = host_clock(task, clock)?;
    t.secs += k.clock.offset_for(clock);
    Ok(t)
}

/// `clock_gettime(clock, tp)`.
pub fn clock_gettime(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [clock, tp, ..] = call.args;
    ret(now(k, task, clock).and_then(|t| task.mem.write(tp, &t.to_bytes())).map(|_| 0))
}

/// `gettimeofday(tv, tz)`.
pub fn gettimeofday(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [tv, tz, ..] = call.args;
    ret((|| {
        if tv != 0 {
            let t = now(k, task, CLOCK_REALTIME)?;
            task.mem.write(tv, &TimePair { secs: t.secs, frac: t.frac / 1000 }.to_bytes())?;
        }
        if tz != 0 {
            // The kernel keeps no time zone of its own: `struct timezone` reads as zeros.
            task.mem.write(tz, &[0u8; 8])?;
        }
        Ok(0)
    })())
}

/// `time(t)`.
pub fn time(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    ret((|| {
        let secs = now(k, task, CLOCK_REALTIME)?.secs;
        if call.args[0] != 0 {
            task.mem.write(call.args[0], &secs.to_ne_bytes())?;
        }
        Ok(secs)
    })())
}

/// A relative sleep of `ns` on the virtual clock. With fast sleeps the clock moves to the
/// sleeper's deadline at once; otherwise the thread sleeps for real (in its own context,
/// interruptible) and the clock moves to the deadline when the sleep completes, so that
/// sleeps that overlap do not add up.
/// `rem` is where the program wants the time left if a signal interrupts the sleep (0: nowhere).
/// A timer that expires before the deadline cuts the sleep into rounds (`wake.rs`); a signal
/// it sends ends the sleep at its expiry, with the virtual time left in `rem`.
fn virtual_sleep(k: &Kernel, v: &VirtualClock, task: &mut TaskCtx<'_>, ns: u64, rem: u64) -> Disposition {
    let deadline = wake::deadline(task, || v.after(ns));
    let ns = match wake::until(k, task, Wait::Signals, Some(deadline), task.sigmask) {
        Some(Woken::Later) => return Disposition::Return(0),
        None | Some(Woken::HandOff) => deadline.saturating_sub(v.elapsed()),
        Some(Woken::TimedOut) | Some(Woken::Ready(_)) => return Disposition::Return(0),
        Some(Woken::Signalled) => {
            let left = TimePair::from_ns(deadline.saturating_sub(v.elapsed()));
            if rem != 0 {
                if let Err(e) = task.mem.write(rem, &left.to_bytes()) {
                    return Disposition::Return(e.ret());
                }
            }
            return Disposition::Return(Errno::EINTR.ret());
        }
    };
    if v.fast_sleep() {
        // A signal already pending ends the sleep before it starts, as on the host: the clock
        // must not move by a sleep that never happened. (Under ptrace, `timeout` may kill its
        // command while the command's sleep waits to be served; moving the clock then fired
        // the next command's timer.)
        if wake::signal_pending(task, task.sigmask) {
            if rem != 0 {
                if let Err(e) = task.mem.write(rem, &TimePair::from_ns(ns).to_bytes()) {
                    return Disposition::Return(e.ret());
                }
            }
            return Disposition::Return(Errno::EINTR.ret());
        }
        v.advance(ns);
        return Disposition::Return(0);
    }
    match task.push_scratch(&TimePair::from_ns(ns).to_bytes()) {
        Ok(req) => {
            let deadline = v.after(ns);
            v.lose_sight();
            task.after = Some(AfterHost::AdvanceClockOnTimeout { timed_out: 0, deadline, time_left: None });
            Disposition::Host(Syscall::new(Sysno::nanosleep, [req, rem, 0, 0, 0, 0]))
        }
        Err(e) => Disposition::Return(e.ret()),
    }
}

fn read_timespec(task: &TaskCtx<'_>, addr: u64) -> KResult<TimePair> {
    let mut buf = [0u8; 16];
    task.mem.read(addr, &mut buf)?;
    Ok(TimePair::from_bytes(&buf))
}

/// `nanosleep(req, rem)`.
pub fn nanosleep(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let Some(v) = k.clock.virtual_clock() else { return Disposition::Host(*call) };
    match read_timespec(task, call.args[0]).and_then(|t| t.to_ns().ok_or(Errno::EINVAL)) {
        Ok(ns) => virtual_sleep(k, v, task, ns, call.args[1]),
        Err(e) => Disposition::Return(e.ret()),
    }
}

/// `clock_nanosleep(clock, flags, req, rem)`: on the virtual clock, a sleep of the asked
/// length (or up to the absolute deadline); with an offset, an absolute deadline on a shifted
/// clock is shifted back to host time; otherwise the host sleeps as asked.
pub fn clock_nanosleep(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [clock, flags, req, ..] = call.args;
    let fail = |e: Errno| Disposition::Return(e.ret());
    if let Some(v) = k.clock.virtual_clock() {
        if !valid_clock(clock) {
            return fail(Errno::EINVAL);
        }
        let asked = match read_timespec(task, req).and_then(|t| t.to_ns().ok_or(Errno::EINVAL)) {
            Ok(ns) => ns,
            Err(e) => return fail(e),
        };
        let ns = if flags & TIMER_ABSTIME != 0 {
            asked.saturating_sub(v.base(clock).saturating_add(v.elapsed()))
        } else {
            asked
        };
        // Linux writes the time left only for relative sleeps.
        let rem = if flags & TIMER_ABSTIME != 0 { 0 } else { call.args[3] };
        return virtual_sleep(k, v, task, ns, rem);
    }
    if flags & TIMER_ABSTIME == 0 || !is_realtime_clock(clock) || k.clock.offset_for(clock) == 0 {
        return Disposition::Host(*call);
    }
    let shifted = (|| {
        let mut deadline = read_timespec(task, req)?;
        deadline.secs -= k.clock.offset_for(clock);
        task.push_scratch(&deadline.to_bytes())
    })();
    match shifted {
        Ok(addr) => {
            let mut host = *call;
            host.args[2] = addr;
            Disposition::Host(host)
        }
        Err(e) => fail(e),
    }
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
const CLK_TCK: u64 = 100;

/// `times(buf)`: the process has used as much user time as the virtual clock has moved, and
/// no system time.
pub fn times(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let Some(v) = k.clock.virtual_clock() else { return Disposition::Host(*call) };
    let elapsed = v.tick();
    let ticks = elapsed / (1_000_000_000 / CLK_TCK);
    if call.args[0] != 0 {
        let mut tms = [0u8; 32];
        tms[..8].copy_from_slice(&ticks.to_ne_bytes());
        if let Err(e) = task.mem.write(call.args[0], &tms) {
            return Disposition::Return(e.ret());
        }
    }
    Disposition::Return(((crate::time::MONOTONIC_BASE_NS + elapsed) / (1_000_000_000 / CLK_TCK)) as i64)
}

/// `getrusage(who, usage)`: user time from the virtual clock; every other figure (system
/// time, peak memory, faults, switches) would differ from run to run, and reads as zero.
pub fn getrusage(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let Some(v) = k.clock.virtual_clock() else { return Disposition::Host(*call) };
    let [who, usage, ..] = call.args;
    if !(-1..=1).contains(&(who as i64)) {
        return ret(Err(Errno::EINVAL));
    }
    let mut ru = [0u8; 144];
    let user = TimePair::from_ns(v.tick());
    ru[..16].copy_from_slice(&TimePair { secs: user.secs, frac: user.frac / 1000 }.to_bytes());
    ret(task.mem.write(usage, &ru).map(|_| 0))
}

/// `sysinfo(info)`: the host's figures, with the uptime from the virtual clock and the load
/// averages and process count, which change from run to run, fixed.
pub fn sysinfo(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let Some(v) = k.clock.virtual_clock() else { return Disposition::Host(*call) };
    let mut info = [0u8; 112];
    let r = task.host_call(Sysno::sysinfo, [info.as_mut_ptr() as u64, 0, 0, 0, 0, 0]);
    if r < 0 {
        return Disposition::Return(r);
    }
    let uptime = (crate::time::MONOTONIC_BASE_NS + v.tick()) / 1_000_000_000;
    info[..8].copy_from_slice(&uptime.to_ne_bytes());
    info[8..32].fill(0); // loads[3]
    info[80..82].copy_from_slice(&1u16.to_ne_bytes()); // procs
    ret(task.mem.write(call.args[0], &info).map(|_| 0))
}
