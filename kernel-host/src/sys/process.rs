//! `fork`, `clone`, `clone3`, `brk`.

use crate::abi::{CLONE_VM, SIGCHLD};
use crate::errno::Errno;
use crate::kernel::Kernel;
use crate::syscall::{Disposition, ForkPlan, Syscall};
use crate::task::TaskCtx;
use syscalls::Sysno;

/// `fork()`: a `clone(SIGCHLD)` run by the backend between the kernel's fork hooks.
pub fn fork(_k: &Kernel, _task: &mut TaskCtx<'_>, _call: &Syscall) -> Disposition {
    Disposition::Fork(ForkPlan { call: Syscall::new(Sysno::clone, [SIGCHLD, 0, 0, 0, 0, 0]), child_stack: 0 })
}

/// `clone(flags, stack, parent_tid, child_tid, tls)` without `CLONE_VM`: a fork. The child
/// first returns on a copy of the parent's stack and is moved to `stack` afterwards.
/// Clones that share memory (threads, `vfork`) are not trapped; should one arrive, it runs on
/// the host as it is.
pub fn clone(_k: &Kernel, _task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [flags, stack, ptid, ctid, tls, _] = call.args;
    if flags & CLONE_VM != 0 {
        return Disposition::Host(*call);
    }
    Disposition::Fork(ForkPlan {
        call: Syscall::new(Sysno::clone, [flags, 0, ptid, ctid, tls, 0]),
        child_stack: stack,
    })
}

/// `clone3`: its flags sit in memory where the filter cannot see them, so it is refused and
/// libc falls back to `clone`, which the filter can sort.
pub fn clone3(_k: &Kernel, _task: &mut TaskCtx<'_>, _call: &Syscall) -> Disposition {
    Disposition::Return(Errno::ENOSYS.ret())
}

/// `brk(addr)`: the break that starts after the program's image.
pub fn brk(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    Disposition::Return(k.process.brk(task, call.args[0]) as i64)
}
