//! Alternate signal stacks: the SIGSYS handler runs on one, so that a trap taken on a small
//! stack (a goroutine's, a coroutine's) does not overflow it. New threads start without one
//! (`clone` with `CLONE_VM` clears it), so a thread's first trap runs on its own stack and
//! installs one for the next.

use crate::sys::{self, nr};

/// Size of each alternate stack.
const SIZE: usize = 64 * 1024;

/// Gives the calling thread an alternate signal stack. Failing to map one is not fatal: the
/// handler then keeps running on the thread's own stack.
pub fn install_for_this_thread() {
    let Some(base) = sys::mmap_anon(SIZE) else {
        return;
    };
    let stack: [u64; 3] = [base as u64, 0, SIZE as u64];
    sys::call(nr::SIGALTSTACK, &[stack.as_ptr() as u64, 0]);
}
