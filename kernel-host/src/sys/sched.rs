//! `sched_getaffinity`: reproducible mode shows a fixed number of processors.

use super::ret;
use crate::errno::Errno;
use crate::kernel::Kernel;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;

/// `sched_getaffinity(pid, len, mask)`: processors `0..cpus`, whatever the host has. Returns
/// the size of the mask written, as the raw call does.
pub fn sched_getaffinity(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let Some(r) = k.config.reproducible else { return Disposition::Host(*call) };
    let [_pid, len, mask, ..] = call.args;
    let words = (r.cpus as usize).div_ceil(64);
    let size = words * 8;
    if (len as usize) < size || len % 8 != 0 {
        return ret(Err(Errno::EINVAL));
    }
    let mut bytes = alloc::vec![0u8; size];
    for cpu in 0..r.cpus as usize {
        bytes[cpu / 8] |= 1 << (cpu % 8);
    }
    ret(task.mem.write(mask, &bytes).map(|_| size as i64))
}
