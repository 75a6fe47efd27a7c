//! `close`, `close_range`, `dup2`, `dup3`, `fcntl` on the descriptors the runtime reserves.
//!
//! The filter traps these only when they touch a reserved descriptor (or, for `close_range`,
//! may): the program believes the descriptor closed, and the runtime keeps using it.

use super::ret;
use crate::errno::Errno;
use crate::kernel::Kernel;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;
use syscalls::Sysno;

fn is_reserved(k: &Kernel, fd: u64) -> bool {
    k.config.reserved_fds().any(|r| r as u32 == fd as u32)
}

/// `close(reserved)`: reported done, kept open.
pub fn close(k: &Kernel, _task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    if is_reserved(k, call.args[0]) {
        Disposition::Return(0)
    } else {
        Disposition::Host(*call)
    }
}

/// `close_range(first, last, flags)`, split around the reserved descriptors.
pub fn close_range(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [first, last, flags, ..] = call.args;
    let (first, last) = (first as u32, last as u32);
    if first > last {
        return ret(Err(Errno::EINVAL));
    }
    let mut reserved: alloc::vec::Vec<u32> =
        k.config.reserved_fds().map(|fd| fd as u32).filter(|fd| (first..=last).contains(fd)).collect();
    if reserved.is_empty() {
        return Disposition::Host(*call);
    }
    reserved.sort_unstable();
    let close =
        |lo: u32, hi: u32| task.host_call(Sysno::close_range, [u64::from(lo), u64::from(hi), flags, 0, 0, 0]);
    // Close the gaps between the reserved descriptors: [first, r1-1], [r1+1, r2-1], ..., [rn+1, last].
    let mut lo = Some(first);
    for fd in reserved {
        if let Some(l) = lo.filter(|&l| l < fd) {
            let r = close(l, fd - 1);
            if r < 0 {
                return Disposition::Return(r);
            }
        }
        lo = fd.checked_add(1);
    }
    if let Some(l) = lo.filter(|&l| l <= last) {
        let r = close(l, last);
        if r < 0 {
            return Disposition::Return(r);
        }
    }
    Disposition::Return(0)
}

/// `dup2`/`dup3` onto a reserved descriptor: refused as if the number were out of range.
pub fn dup_onto(k: &Kernel, _task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    if is_reserved(k, call.args[1]) {
        ret(Err(Errno::EBADF))
    } else {
        Disposition::Host(*call)
    }
}

/// `fcntl(reserved, F_SETFD | F_SETFL, ...)`: reported done, not applied, so that a program that
/// marks every descriptor close-on-exec or non-blocking does not take the runtime's away.
pub fn fcntl(k: &Kernel, _task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    const F_SETFD: u64 = 2;
    const F_SETFL: u64 = 4;
    if is_reserved(k, call.args[0]) && matches!(call.args[1], F_SETFD | F_SETFL) {
        Disposition::Return(0)
    } else {
        Disposition::Host(*call)
    }
}
