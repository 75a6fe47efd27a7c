//! Signals: SIGSYS belongs to the runtime, so the program's view of it is virtual.
//!
//! The program may install a SIGSYS handler, block SIGSYS or put it in a handler's mask;
//! each would break the trap path if it reached the host. The kernel keeps the program's
//! SIGSYS disposition here, strips SIGSYS from every mask that reaches the host, and the
//! backend forwards a SIGSYS that was not its own trap to the handler kept here.

use crate::abi::KernelSigaction;
use crate::sync::SpinLock;

/// Signal state the kernel keeps for the program.
pub struct Signals {
    sigsys: SpinLock<KernelSigaction>,
}

impl Default for Signals {
    fn default() -> Self {
        Self::new()
    }
}

impl Signals {
    /// SIGSYS at its default disposition.
    pub const fn new() -> Self {
        Signals {
            sigsys: SpinLock::new(KernelSigaction {
                handler: 0,
                flags: 0,
                restorer: 0,
                mask: 0,
            }),
        }
    }

    /// The program's SIGSYS disposition.
    pub fn sigsys(&self) -> KernelSigaction {
        *self.sigsys.lock()
    }

    /// Replaces the program's SIGSYS disposition, returning the previous one.
    pub fn set_sigsys(&self, act: KernelSigaction) -> KernelSigaction {
        core::mem::replace(&mut *self.sigsys.lock(), act)
    }

    /// Takes every lock this subsystem holds, before a fork.
    pub fn lock_for_fork(&self) {
        self.sigsys.raw_lock();
    }

    /// Releases what [`Signals::lock_for_fork`] took.
    pub fn unlock_after_fork(&self) {
        self.sigsys.raw_unlock();
    }
}
