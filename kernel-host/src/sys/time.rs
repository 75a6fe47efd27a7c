//! `clock_gettime`, `gettimeofday`, `time`, `clock_nanosleep`.

use super::ret;
use crate::abi::{is_realtime_clock, CLOCK_REALTIME, TIMER_ABSTIME};
use crate::errno::{Errno, KResult};
use crate::kernel::Kernel;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;
use crate::time::TimePair;
use syscalls::Sysno;

fn host_clock(task: &TaskCtx<'_>, clock: u64) -> KResult<TimePair> {
    let mut buf = [0u8; 16];
    let r = task.host_call(Sysno::clock_gettime, [clock, buf.as_mut_ptr() as u64, 0, 0, 0, 0]);
    match Errno::from_ret(r) {
        Some(e) => Err(e),
        None => Ok(TimePair::from_bytes(&buf)),
    }
}

/// `clock_gettime(clock, tp)`.
pub fn clock_gettime(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [clock, tp, ..] = call.args;
    ret((|| {
        let mut now = host_clock(task, clock)?;
        now.secs += k.clock.offset_for(clock);
        task.mem.write(tp, &now.to_bytes())?;
        Ok(0)
    })())
}

/// `gettimeofday(tv, tz)`.
pub fn gettimeofday(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [tv, tz, ..] = call.args;
    ret((|| {
        if tv != 0 {
            let now = host_clock(task, CLOCK_REALTIME)?;
            let micros = TimePair { secs: now.secs + k.clock.wall_offset(), frac: now.frac / 1000 };
            task.mem.write(tv, &micros.to_bytes())?;
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
        let secs = host_clock(task, CLOCK_REALTIME)?.secs + k.clock.wall_offset();
        if call.args[0] != 0 {
            task.mem.write(call.args[0], &secs.to_ne_bytes())?;
        }
        Ok(secs)
    })())
}

/// `clock_nanosleep(clock, flags, req, rem)`: an absolute deadline on a shifted clock is
/// shifted back to host time; everything else sleeps on the host, in the program's context.
pub fn clock_nanosleep(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [clock, flags, req, ..] = call.args;
    if flags & TIMER_ABSTIME == 0 || !is_realtime_clock(clock) || k.clock.offset_for(clock) == 0 {
        return Disposition::Host(*call);
    }
    let shifted = (|| {
        let mut buf = [0u8; 16];
        task.mem.read(req, &mut buf)?;
        let mut deadline = TimePair::from_bytes(&buf);
        deadline.secs -= k.clock.offset_for(clock);
        task.push_scratch(&deadline.to_bytes())
    })();
    match shifted {
        Ok(addr) => {
            let mut host = *call;
            host.args[2] = addr;
            Disposition::Host(host)
        }
        // clock_nanosleep returns the error number itself, not -1/errno.
        Err(e) => Disposition::Return(i64::from(e.0)),
    }
}
