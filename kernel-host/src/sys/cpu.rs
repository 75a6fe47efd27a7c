//! `prctl(PR_SET_TSC)` and `arch_prctl(ARCH_SET_CPUID)` in reproducible mode: the runtime has
//! made `rdtsc` and `cpuid` fault so that it can answer them deterministically; a program that
//! turns them back on would read the host's counters. The settings are accepted and not
//! applied (the filter traps only these two operations).

use super::ret;
use crate::errno::Errno;
use crate::kernel::Kernel;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;

/// `PR_TSC_ENABLE` and `PR_TSC_SIGSEGV`, the two values `PR_SET_TSC` takes.
const PR_TSC_MODES: [u64; 2] = [1, 2];

/// `prctl(PR_SET_TSC, mode)`.
pub fn prctl_set_tsc(_k: &Kernel, _task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    if PR_TSC_MODES.contains(&call.args[1]) {
        Disposition::Return(0)
    } else {
        ret(Err(Errno::EINVAL))
    }
}

/// `arch_prctl(ARCH_SET_CPUID, enabled)`.
pub fn arch_prctl_set_cpuid(_k: &Kernel, _task: &mut TaskCtx<'_>, _call: &Syscall) -> Disposition {
    Disposition::Return(0)
}
