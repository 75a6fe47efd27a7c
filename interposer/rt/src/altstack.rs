//! Alternate signal stacks: the runtime's handlers run on one, so that a trap taken on a small
//! stack (a goroutine's, a coroutine's) does not overflow it. New threads start without one
//! (`clone` with `CLONE_VM` clears it), so a thread's first trap runs on its own stack and
//! installs one for the next.
//!
//! Stacks are recorded with their thread; a stack whose thread has ended is given to the next
//! thread that needs one, so a program that makes threads all day does not leak them.

use alloc::vec::Vec;
use kernel_host::sync::SpinLock;

use crate::sys::{self, nr};

/// Size of each alternate stack.
pub const SIZE: usize = 64 * 1024;
/// `ESRCH`: the thread is gone.
const ESRCH: i64 = -3;

/// The thread id of a stack nobody uses.
const FREE: u32 = 0;

/// `(thread id, stack base)` of every stack handed out in this process.
static STACKS: SpinLock<Vec<(u32, u64)>> = SpinLock::new(Vec::new());

/// The first stack, in the runtime's zero-filled data: the host's exec maps it with the image,
/// so a process's first thread costs no `mmap` (and no `munmap` when the image ends). The
/// runtime's start-up runs on it too (`start.rs`): the pages its frames touch are those the
/// thread's first signals and fast calls use, instead of more of the program's stack.
#[repr(C, align(16))]
pub struct FirstStack(core::cell::UnsafeCell<[u8; SIZE]>);

// SAFETY: the memory is only ever used as an alternate signal stack, by the thread `STACKS`
// gives it to.
unsafe impl Sync for FirstStack {}

pub static FIRST_STACK: FirstStack = FirstStack(core::cell::UnsafeCell::new([0; SIZE]));

/// Gives the calling thread an alternate signal stack. Failing to get one is not fatal: the
/// handler then keeps running on the thread's own stack.
pub fn install_for_this_thread() {
    let pid = sys::call(nr::GETPID, &[]) as u64;
    let tid = sys::call(nr::GETTID, &[]) as u32;
    let base = {
        let mut stacks = STACKS.lock();
        let reusable = stacks.iter().position(|&(t, _)| {
            t == FREE || t == tid || sys::call(nr::TGKILL, &[pid, u64::from(t), 0]) == ESRCH
        });
        match reusable {
            Some(i) => {
                stacks[i].0 = tid;
                stacks[i].1
            }
            None => {
                let base = if stacks.is_empty() {
                    FIRST_STACK.0.get() as u64
                } else {
                    let Some(base) = sys::mmap_anon(SIZE) else { return };
                    base as u64
                };
                stacks.push((tid, base));
                base
            }
        }
    };
    let stack: [u64; 3] = [base, 0, SIZE as u64];
    sys::call(nr::SIGALTSTACK, &[stack.as_ptr() as u64, 0]);
}

/// Takes the table's lock before a fork, so that the child never inherits it held.
pub fn lock_for_fork() {
    STACKS.raw_lock();
}

/// Releases it after a fork. In the child only the forking thread exists: its stack (the one
/// the handler runs on) moves to its new id, and every other stack is free again.
pub fn unlock_after_fork(child: Option<(u32, u32)>) {
    if let Some((parent_tid, tid)) = child {
        // SAFETY: this thread has held the lock since `lock_for_fork`, and the reference ends
        // before the unlock below.
        let stacks = unsafe { STACKS.raw_get() };
        for entry in stacks.iter_mut() {
            entry.0 = if entry.0 == parent_tid { tid } else { FREE };
        }
    }
    STACKS.raw_unlock();
}
