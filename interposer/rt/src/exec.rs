//! Laying out an [`ExecPlan`] for the host's `execve`, and reclaiming the memory afterwards.
//!
//! The strings and pointer arrays go in one mapping of their own, never below the thread's
//! stack pointer: what lies there may be another thread's stack, a vfork parent's frames or a
//! signal frame. The mapping cannot be freed right after the call: a successful `execve` never
//! returns, and in a `vfork` or `posix_spawn` child the mapping belongs to the parent's address
//! space, which goes on. So each mapping is recorded with the thread that execs, and reclaimed
//! by the next exec in this address space once that thread no longer shares it
//! (`kcmp(KCMP_VM)`): it has exec'd, ended, or is ourselves after a failed exec. Then it is
//! unmapped, or reused for the next layout.

use alloc::vec::Vec;
use kernel_host::sync::SpinLock;
use kernel_host::{ExecPlan, Syscall};

use crate::sys::{self, nr};

/// `kcmp` and its `KCMP_VM` type.
const SYS_KCMP: u32 = 312;
const KCMP_VM: u64 = 1;

/// An exec layout not yet reclaimed.
struct Layout {
    /// The thread that exec'd with it.
    tid: u32,
    /// The mapping.
    addr: u64,
    len: u64,
}

/// Exec layouts not yet reclaimed.
static PENDING: SpinLock<Vec<Layout>> = SpinLock::new(Vec::new());

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

/// Unmaps the layouts nobody uses any more, but keeps one of at least `want` bytes to lay the
/// next exec out in, and returns it (address and length): in a process that execs through
/// `vfork` children, each child's layout lies in the parent's memory, and the next child
/// reuses it rather than mapping, faulting in and unmapping one of its own.
fn reclaim(me: u32, want: u64) -> Option<(u64, u64)> {
    let mut reuse = None;
    let mut pending = PENDING.lock();
    pending.retain(|l| {
        if !done_with(l.tid, me) {
            return true;
        }
        if reuse.is_none() && l.len >= want {
            reuse = Some((l.addr, l.len));
        } else {
            sys::call(nr::MUNMAP, &[l.addr, l.len]);
        }
        false
    });
    reuse
}

/// Bytes of the plan's layout: its pointer arrays, and its strings with their NULs.
fn sizes(plan: &ExecPlan) -> (usize, usize) {
    let arrays = 8 * (plan.argv.len() + plan.envp.len() + 2);
    let strings: usize =
        plan.argv.iter().chain(&plan.envp).map(|s| s.len() + 1).sum::<usize>() + plan.path.len() + 1;
    (arrays, strings)
}

/// The plan laid out at `base`: the argv and envp pointer arrays, then the strings, the path
/// first. Returns the bytes and the `execve` that uses them.
fn lay_out(plan: &ExecPlan, base: u64) -> (Vec<u8>, Syscall) {
    let (arrays, strings) = sizes(plan);
    let mut bytes = Vec::with_capacity(arrays + strings);
    bytes.resize(arrays, 0);
    let mut put = |s: &[u8]| {
        let at = base + bytes.len() as u64;
        bytes.extend_from_slice(s);
        bytes.push(0);
        at
    };
    let path = put(&plan.path);
    let mut pointers = Vec::with_capacity(arrays / 8);
    for list in [&plan.argv, &plan.envp] {
        pointers.extend(list.iter().map(|s| put(s)));
        pointers.push(0);
    }
    for (slot, p) in bytes.chunks_exact_mut(8).zip(pointers) {
        slot.copy_from_slice(&p.to_ne_bytes());
    }
    let envp = base + 8 * (plan.argv.len() as u64 + 1);
    (bytes, Syscall { nr: nr::EXECVE, args: [path, base, envp, 0, 0, 0] })
}

/// Lays the plan out and returns the `execve` that runs it; `None` when there is no memory
/// for it.
pub fn call_for(plan: &ExecPlan) -> Option<Syscall> {
    let me = sys::call(nr::GETTID, &[]) as u32;
    let (arrays, strings) = sizes(plan);
    let want = ((arrays + strings + 4095) & !4095) as u64;
    let (base, len) = match reclaim(me, want) {
        Some(spare) => spare,
        None => (sys::mmap_anon(want as usize)? as u64, want),
    };
    let (bytes, call) = lay_out(plan, base);
    // SAFETY: [base, base + len) is a mapping of this runtime's that no thread uses (fresh, or
    // reclaimed), at least as long as the layout.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), base as *mut u8, bytes.len()) };
    PENDING.lock().push(Layout { tid: me, addr: base, len });
    Some(call)
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
