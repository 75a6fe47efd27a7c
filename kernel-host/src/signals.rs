//! Signals the runtime owns (SIGSYS, SIGSEGV, SIGBUS): the program's view of them is virtual.
//!
//! The program may install handlers for them, block them or put them in a handler's mask;
//! each would break the runtime if it reached the host (a lost SIGSYS handler ends every
//! trap, a blocked SIGSEGV turns a bad pointer into a crash). The kernel keeps the program's
//! dispositions here, strips the runtime's signals from every mask that reaches the host, and
//! the backend forwards what it did not cause to the disposition kept here.
//!
//! Which runtime signals each thread believes it has blocked is kept here too, by thread id
//! (the runtime has no thread-local storage), so that `rt_sigprocmask` reports back what the
//! program asked for. Only threads that block one of them have an entry.

use crate::abi::{sigbit, KernelSigaction, RUNTIME_SIGNALS};
use crate::sync::SpinLock;
use alloc::vec::Vec;

/// The runtime's signals as mask bits.
pub const RUNTIME_MASK: u64 = {
    let mut m = 0;
    let mut i = 0;
    while i < RUNTIME_SIGNALS.len() {
        m |= sigbit(RUNTIME_SIGNALS[i]);
        i += 1;
    }
    m
};

/// Entries kept before dead threads' entries are swept.
const SWEEP_AT: usize = 256;

/// Signal state the kernel keeps for the program.
pub struct Signals {
    actions: SpinLock<[KernelSigaction; RUNTIME_SIGNALS.len()]>,
    /// `(tid, runtime signals the thread believes blocked)`, for threads with any.
    blocked: SpinLock<Vec<(u32, u64)>>,
}

impl Default for Signals {
    fn default() -> Self {
        Self::new()
    }
}

const DEFAULT: KernelSigaction = KernelSigaction { handler: 0, flags: 0, restorer: 0, mask: 0 };

fn slot(sig: u32) -> Option<usize> {
    RUNTIME_SIGNALS.iter().position(|&s| s == sig)
}

impl Signals {
    /// Every runtime signal at its default disposition.
    pub const fn new() -> Self {
        Signals {
            actions: SpinLock::new([DEFAULT; RUNTIME_SIGNALS.len()]),
            blocked: SpinLock::new(Vec::new()),
        }
    }

    /// The runtime signals thread `tid` believes blocked.
    pub fn virtually_blocked(&self, tid: u32) -> u64 {
        self.blocked.lock().iter().find(|e| e.0 == tid).map_or(0, |e| e.1)
    }

    /// Records the runtime signals thread `tid` believes blocked. `alive` tells whether a
    /// thread still exists, to sweep the entries of threads that ended.
    pub fn set_virtually_blocked(&self, tid: u32, bits: u64, alive: impl Fn(u32) -> bool) {
        let bits = bits & RUNTIME_MASK;
        let mut table = self.blocked.lock();
        match table.iter().position(|e| e.0 == tid) {
            Some(i) if bits == 0 => {
                table.swap_remove(i);
            }
            Some(i) => table[i].1 = bits,
            None if bits == 0 => {}
            None => {
                if table.len() >= SWEEP_AT {
                    table.retain(|e| alive(e.0));
                }
                table.push((tid, bits));
            }
        }
    }

    /// In a forked child: only the forking thread exists, now as `child_tid`.
    pub fn enter_child(&self, parent_tid: u32, child_tid: u32) {
        let mut table = self.blocked.lock();
        let bits = table.iter().find(|e| e.0 == parent_tid).map_or(0, |e| e.1);
        table.clear();
        if bits != 0 {
            table.push((child_tid, bits));
        }
    }

    /// Whether `sig` is one of the runtime's signals.
    pub fn is_virtual(sig: u32) -> bool {
        slot(sig).is_some()
    }

    /// The program's disposition for a runtime signal (default for any other).
    pub fn action(&self, sig: u32) -> KernelSigaction {
        slot(sig).map_or(DEFAULT, |i| self.actions.lock()[i])
    }

    /// Replaces the program's disposition for a runtime signal, returning the previous one.
    pub fn set_action(&self, sig: u32, act: KernelSigaction) -> KernelSigaction {
        match slot(sig) {
            Some(i) => core::mem::replace(&mut self.actions.lock()[i], act),
            None => DEFAULT,
        }
    }

    /// Takes every lock this subsystem holds, before a fork.
    pub fn lock_for_fork(&self) {
        self.actions.raw_lock();
        self.blocked.raw_lock();
    }

    /// Releases what [`Signals::lock_for_fork`] took.
    pub fn unlock_after_fork(&self) {
        self.blocked.raw_unlock();
        self.actions.raw_unlock();
    }
}
