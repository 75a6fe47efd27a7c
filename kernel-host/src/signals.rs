//! Signals the runtime owns (SIGSYS, SIGSEGV, SIGBUS): the program's view of them is virtual.
//!
//! The program may install handlers for them, block them or put them in a handler's mask;
//! each would break the runtime if it reached the host (a lost SIGSYS handler ends every
//! trap, a blocked SIGSEGV turns a bad pointer into a crash). The kernel keeps the program's
//! dispositions here, strips the runtime's signals from every mask that reaches the host, and
//! the backend forwards what it did not cause to the disposition kept here.

use crate::abi::{KernelSigaction, RUNTIME_SIGNALS};
use crate::sync::SpinLock;

/// Signal state the kernel keeps for the program.
pub struct Signals {
    actions: SpinLock<[KernelSigaction; RUNTIME_SIGNALS.len()]>,
}

impl Default for Signals {
    fn default() -> Self {
        Self::new()
    }
}

const DEFAULT: KernelSigaction = KernelSigaction {
    handler: 0,
    flags: 0,
    restorer: 0,
    mask: 0,
};

fn slot(sig: u32) -> Option<usize> {
    RUNTIME_SIGNALS.iter().position(|&s| s == sig)
}

impl Signals {
    /// Every runtime signal at its default disposition.
    pub const fn new() -> Self {
        Signals {
            actions: SpinLock::new([DEFAULT; RUNTIME_SIGNALS.len()]),
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
    }

    /// Releases what [`Signals::lock_for_fork`] took.
    pub fn unlock_after_fork(&self) {
        self.actions.raw_unlock();
    }
}
