//! The signal frame the host kernel pushes: registers and mask of the interrupted thread.
//! Offsets are those of the x86_64 `ucontext_t` (see `getcontext(3)`, `sigcontext.h`).

/// Offset of `uc_stack.ss_flags`.
const UC_STACK_FLAGS: usize = 24;
/// Offset of `uc_mcontext.gregs`.
const UC_GREGS: usize = 40;
/// Offset of `uc_sigmask`.
const UC_SIGMASK: usize = 296;
/// `SS_DISABLE` in `stack_t.ss_flags`.
const SS_DISABLE: i32 = 2;

/// Indices into `gregs`.
pub mod reg {
    #![allow(missing_docs)]
    pub const R8: usize = 0;
    pub const R9: usize = 1;
    pub const R10: usize = 2;
    pub const RDI: usize = 8;
    pub const RSI: usize = 9;
    pub const RBX: usize = 11;
    pub const RDX: usize = 12;
    pub const RAX: usize = 13;
    pub const RCX: usize = 14;
    pub const RSP: usize = 15;
    pub const RIP: usize = 16;
}

/// A view of a live signal frame.
pub struct Frame {
    uc: *mut u8,
}

impl Frame {
    /// Wraps the `ucontext` pointer a handler received.
    ///
    /// # Safety
    /// `uc` must be the third argument of an `SA_SIGINFO` handler that is still running.
    pub unsafe fn new(uc: *mut u8) -> Self {
        Frame { uc }
    }

    /// The raw pointer, to hand to a program's handler.
    pub fn raw(&self) -> *mut u8 {
        self.uc
    }

    /// A general register.
    pub fn reg(&self, i: usize) -> u64 {
        // SAFETY: `uc` points to the live ucontext (constructor contract); gregs has 23 slots.
        unsafe { *(self.uc.add(UC_GREGS + 8 * i) as *const u64) }
    }

    /// Sets a general register for when the handler returns.
    pub fn set_reg(&mut self, i: usize, v: u64) {
        // SAFETY: as in `reg`; the frame is the handler's to change until sigreturn.
        unsafe { *(self.uc.add(UC_GREGS + 8 * i) as *mut u64) = v }
    }

    /// The mask the thread returns to.
    pub fn sigmask(&self) -> u64 {
        // SAFETY: uc_sigmask is the 8-byte kernel sigset at this offset.
        unsafe { *(self.uc.add(UC_SIGMASK) as *const u64) }
    }

    /// Sets the mask the thread returns to.
    pub fn set_sigmask(&mut self, m: u64) {
        // SAFETY: as in `sigmask`.
        unsafe { *(self.uc.add(UC_SIGMASK) as *mut u64) = m }
    }

    /// Whether the thread had no alternate signal stack when the signal came.
    pub fn had_no_altstack(&self) -> bool {
        // SAFETY: uc_stack.ss_flags is an i32 at this offset.
        unsafe { *(self.uc.add(UC_STACK_FLAGS) as *const i32) & SS_DISABLE != 0 }
    }
}
