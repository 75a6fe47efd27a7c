//! Laying out an [`ExecPlan`] for the host's `execve`, and reclaiming the memory afterwards.
//!
//! The strings and pointer arrays go in one mapping of their own. It cannot be freed right
//! after the call: a successful `execve` never returns, and in a `vfork` or `posix_spawn`
//! child the mapping belongs to the parent's address space, which goes on. So each mapping is
//! recorded with the thread that execs, and reclaimed by the next exec in this address space
//! once that thread no longer shares it (`kcmp(KCMP_VM)`): it has exec'd, ended, or is
//! ourselves after a failed exec.

use alloc::vec::Vec;
use kernel_host::sync::SpinLock;
use kernel_host::{ExecPlan, Syscall};

use crate::sys::{self, nr};

/// `kcmp` and its `KCMP_VM` type.
const SYS_KCMP: u32 = 312;
const KCMP_VM: u64 = 1;

/// Exec layouts not yet reclaimed: `(thread, address, length)`.
static PENDING: SpinLock<Vec<(u32, u64, u64)>> = SpinLock::new(Vec::new());

/// Whether the layout of thread `tid` may be unmapped by thread `me`.
fn done_with(tid: u32, me: u32) -> bool {
    if tid == me {
        return true;
    }
    let pid = sys::call(nr::GETPID, &[]) as u64;
    // 0: `tid` still shares this address space (its exec is in flight); positive: another
    // address space; ESRCH: no such thread. Any other error (no kcmp on this host) proves
    // nothing, and the layout is kept.
    const ESRCH: i64 = -3;
    let r = sys::call(SYS_KCMP, &[pid, u64::from(tid), KCMP_VM, 0, 0]);
    r > 0 || r == ESRCH
}

fn reclaim(me: u32) {
    let mut pending = PENDING.lock();
    pending.retain(|&(tid, addr, len)| {
        if done_with(tid, me) {
            sys::call(nr::MUNMAP, &[addr, len]);
            false
        } else {
            true
        }
    });
}

/// Lays the plan out and returns the `execve` that runs it.
pub fn call_for(plan: &ExecPlan) -> Option<Syscall> {
    let me = sys::call(nr::GETTID, &[]) as u32;
    reclaim(me);
    let strings: usize =
        plan.argv.iter().chain(&plan.envp).map(|s| s.len() + 1).sum::<usize>() + plan.path.len() + 1;
    let arrays = 8 * (plan.argv.len() + plan.envp.len() + 2);
    let len = (arrays + strings + 4095) & !4095;
    let base = sys::mmap_anon(len)? as u64;
    let mut at = base + arrays as u64;
    let mut put = |s: &[u8]| {
        // SAFETY: [base, base + len) is a fresh mapping sized for every string and array.
        unsafe {
            core::ptr::copy_nonoverlapping(s.as_ptr(), at as *mut u8, s.len());
            *((at + s.len() as u64) as *mut u8) = 0;
        }
        let start = at;
        at += s.len() as u64 + 1;
        start
    };
    let path = put(&plan.path);
    let mut slot = base;
    let argv = slot;
    for list in [&plan.argv, &plan.envp] {
        for s in list.iter() {
            let p = put(s);
            // SAFETY: the arrays occupy the first `arrays` bytes of the mapping.
            unsafe { *(slot as *mut u64) = p };
            slot += 8;
        }
        // SAFETY: as above: one NULL after each array.
        unsafe { *(slot as *mut u64) = 0 };
        slot += 8;
    }
    let envp = argv + 8 * (plan.argv.len() as u64 + 1);
    PENDING.lock().push((me, base, len as u64));
    Some(Syscall { nr: nr::EXECVE, args: [path, argv, envp, 0, 0, 0] })
}

/// Takes the table's lock before a fork, so that the child never inherits it held.
pub fn lock_for_fork() {
    PENDING.raw_lock();
}

/// Releases it after the fork, in parent and child. (A child reclaims the parent's entries at
/// its first exec: `kcmp` finds their threads in another address space.)
pub fn unlock_after_fork() {
    PENDING.raw_unlock();
}
