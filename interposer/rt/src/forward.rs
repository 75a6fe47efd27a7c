//! Forwarding the runtime's signals (SIGSYS, SIGSEGV, SIGBUS) that the runtime did not cause
//! to the disposition the program asked for, which the kernel keeps ([`Kernel::program_action`]).
//!
//! A handler is called directly, with the mask it would have had (`sa_mask`, plus the signal
//! unless `SA_NODEFER`); `SA_RESETHAND` is honoured. The default action is taken by giving
//! the host the default back: a fault then recurs when the instruction is retried, and a sent
//! signal is sent again.

use kernel_host::abi::{sigbit, KernelSigaction, SA_NODEFER, SA_RESETHAND, SA_SIGINFO, UNBLOCKABLE};
use kernel_host::Kernel;

use crate::sys::{self, nr};
use crate::ucontext::Frame;

/// `SIG_IGN`.
const SIG_IGN: u64 = 1;
/// `SIG_DFL`.
const SIG_DFL: u64 = 0;

/// Delivers `sig` to the program as its disposition says. `faulted` is true when the host
/// raised it for an instruction that will run again when the handler returns.
pub fn forward(kernel: &Kernel, sig: i32, info: *mut u8, frame: &mut Frame, faulted: bool) {
    let signo = sig as u32;
    let act = kernel.program_action(signo);
    if act.handler == SIG_DFL || (act.handler == SIG_IGN && faulted) {
        // The host would kill the process (a faulting instruction cannot be ignored).
        let dfl = KernelSigaction::default().to_bytes();
        sys::call(nr::RT_SIGACTION, &[u64::from(signo), dfl.as_ptr() as u64, 0, 8]);
        if !faulted {
            sys::raise(signo);
        }
        frame.set_sigmask(frame.sigmask() & !sigbit(signo));
        return;
    }
    if act.handler == SIG_IGN {
        return;
    }
    if act.flags & SA_RESETHAND != 0 {
        kernel.set_program_action(signo, KernelSigaction::default());
    }
    let mut mask = frame.sigmask() | act.mask;
    if act.flags & SA_NODEFER == 0 {
        mask |= sigbit(signo);
    }
    let mask = mask & !UNBLOCKABLE;
    sys::call(nr::RT_SIGPROCMASK, &[2, &mask as *const u64 as u64, 0, 8]);
    if act.flags & SA_SIGINFO != 0 {
        // SAFETY: the program registered this address as an SA_SIGINFO handler.
        let f: extern "C" fn(i32, *mut u8, *mut u8) = unsafe { core::mem::transmute(act.handler as usize) };
        f(sig, info, frame.raw());
    } else {
        // SAFETY: the program registered this address as a plain handler.
        let f: extern "C" fn(i32) = unsafe { core::mem::transmute(act.handler as usize) };
        f(sig);
    }
}
