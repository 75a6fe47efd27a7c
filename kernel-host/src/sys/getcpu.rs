//! `getcpu`: reproducible mode shows processors `0..cpus`; the caller is always on the first.
//! `rseq` is refused there, so that `sched_getcpu` cannot read the real processor from an rseq
//! area the host kernel fills.

use super::ret;
use crate::kernel::Kernel;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;

/// `getcpu(cpu, node, cache)`.
pub fn getcpu(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    if k.config.reproducible.is_none() {
        return Disposition::Host(*call);
    }
    let [cpu, node, ..] = call.args;
    ret((|| {
        for addr in [cpu, node] {
            if addr != 0 {
                task.mem.write(addr, &0u32.to_ne_bytes())?;
            }
        }
        Ok(0)
    })())
}

/// `rseq` in reproducible mode: refused as by a kernel without it (`ENOSYS`), so that libc
/// keeps no per-thread area the host kernel writes the real processor into, and
/// `sched_getcpu` asks `getcpu`, which says 0.
pub fn rseq(_k: &Kernel, _task: &mut TaskCtx<'_>, _call: &Syscall) -> Disposition {
    Disposition::Return(crate::errno::Errno::ENOSYS.ret())
}
