//! `close`, `close_range`, `dup2`, `dup3` on the descriptors the runtime reserves.
//!
//! The filter traps these only when they touch a reserved descriptor (or, for `close_range`,
//! may): the program believes the descriptor closed, and the runtime keeps using it.

use super::ret;
use crate::errno::Errno;
use crate::kernel::Kernel;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;
use syscalls::Sysno;

/// `close(reserved)`: reported done, kept open.
pub fn close(_k: &Kernel, _task: &mut TaskCtx<'_>, _call: &Syscall) -> Disposition {
    Disposition::Return(0)
}

/// `close_range(first, last, flags)`, split around the reserved descriptor.
pub fn close_range(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [first, last, flags, ..] = call.args;
    let (first, last) = (first as u32, last as u32);
    let reserved = match k.config.trace_fd {
        Some(fd) if (first..=last).contains(&(fd as u32)) => fd as u32,
        _ => return Disposition::Host(*call),
    };
    let mut parts = [(first, reserved.wrapping_sub(1)), (reserved.wrapping_add(1), last)];
    if reserved == first {
        parts[0] = (1, 0);
    }
    if reserved == last {
        parts[1] = (1, 0);
    }
    for (lo, hi) in parts {
        if lo <= hi {
            let r = task.host_call(Sysno::close_range, [u64::from(lo), u64::from(hi), flags, 0, 0, 0]);
            if r < 0 {
                return Disposition::Return(r);
            }
        }
    }
    Disposition::Return(0)
}

/// `dup2`/`dup3` onto a reserved descriptor: refused as if the number were out of range.
pub fn dup_onto(_k: &Kernel, _task: &mut TaskCtx<'_>, _call: &Syscall) -> Disposition {
    ret(Err(Errno::EBADF))
}
