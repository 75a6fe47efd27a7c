//! `rt_sigaction`, `rt_sigprocmask`: SIGSYS, SIGSEGV and SIGBUS stay the runtime's.

use super::ret;
use crate::abi::{KernelSigaction, SIGSET_SIZE, SIG_BLOCK, SIG_SETMASK, SIG_UNBLOCK, UNBLOCKABLE};
use crate::errno::{Errno, KResult};
use crate::kernel::Kernel;
use crate::signals::Signals;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;

fn read_action(task: &TaskCtx<'_>, addr: u64) -> KResult<KernelSigaction> {
    let mut b = [0u8; 32];
    task.mem.read(addr, &mut b)?;
    Ok(KernelSigaction::from_bytes(&b))
}

/// `rt_sigaction(sig, act, oldact, sigsetsize)`. The runtime's signals are kept virtual; for
/// every other signal they are taken out of the handler's mask, so that a redirected call
/// made inside the handler still traps instead of killing the process.
pub fn rt_sigaction(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [sig, act, oldact, size, ..] = call.args;
    if size != SIGSET_SIZE {
        return ret(Err(Errno::EINVAL));
    }
    if Signals::is_virtual(sig as u32) {
        let sig = sig as u32;
        return ret((|| {
            let old = if act != 0 {
                k.signals.set_action(sig, read_action(task, act)?)
            } else {
                k.signals.action(sig)
            };
            if oldact != 0 {
                task.mem.write(oldact, &old.to_bytes())?;
            }
            Ok(0)
        })());
    }
    if act == 0 {
        return Disposition::Host(*call);
    }
    let rewritten = (|| {
        let mut new = read_action(task, act)?;
        new.mask &= !UNBLOCKABLE;
        task.push_scratch(&new.to_bytes())
    })();
    match rewritten {
        Ok(addr) => {
            let mut host = *call;
            host.args[1] = addr;
            Disposition::Host(host)
        }
        Err(e) => ret(Err(e)),
    }
}

/// `rt_sigprocmask(how, set, oldset, sigsetsize)`, served on the task's mask directly: the
/// backend applies the new mask when the call returns. The runtime's signals are never
/// blocked on the host; the thread is told they are if it asked.
pub fn rt_sigprocmask(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [how, set, oldset, size, ..] = call.args;
    ret((|| {
        if size != SIGSET_SIZE {
            return Err(Errno::EINVAL);
        }
        let tid = task.tid();
        let old = task.sigmask | k.signals.virtually_blocked(tid);
        if set != 0 {
            let requested = task.read_u64(set)?;
            let new = match how {
                SIG_BLOCK => old | requested,
                SIG_UNBLOCK => old & !requested,
                SIG_SETMASK => requested,
                _ => return Err(Errno::EINVAL),
            };
            task.sigmask = new & !UNBLOCKABLE;
            k.signals.set_virtually_blocked(tid, new, |t| task.thread_alive(t));
        }
        if oldset != 0 {
            task.mem.write(oldset, &old.to_ne_bytes())?;
        }
        Ok(0)
    })())
}
