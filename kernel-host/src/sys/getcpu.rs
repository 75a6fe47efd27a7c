//! `getcpu`: reproducible mode shows processors `0..cpus`; the caller is always on the first.
//! (`sched_getcpu` may also read the CPU from the rseq area, which the host kernel fills.)

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
