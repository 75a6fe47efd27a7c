//! SIGSEGV and SIGBUS sent (`kill`, `tgkill`) while the runtime serves a call: held back until
//! it is done, then delivered to the program.
//!
//! The runtime cannot block these two while it works, as it blocks every other signal: its own
//! copies of the program's memory and its probes fault on purpose, and a fault with its signal
//! blocked kills the process. So one that is sent meanwhile reaches the fault handler, which
//! must not run the program's handler there (the kernel may hold a lock the handler's calls
//! would want). It notes the signal here, per thread; the trap path and the fast entry, when
//! they are done with the call and nothing of theirs can fault any more, raise it again,
//! blocked until the program's mask comes back, which lets it in. No thread-local storage:
//! a few slots, each a thread id and its held signals, found by the id.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::sys::{self, nr};

/// Threads that may have signals held at once; one more falls back to blocking the signal in
/// the interrupted context ([`crate::trap`]).
const SLOTS: usize = 16;
/// Each slot: the thread id in the high half, the held signals' bits in the low half; 0: free.
static HELD: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
/// Slots in use: the common case, none, costs the release one load.
static IN_USE: AtomicU64 = AtomicU64::new(0);

fn tid() -> u64 {
    sys::call(nr::GETTID, &[]) as u64 & 0xffff_ffff
}

/// Holds `sig` (SIGSEGV or SIGBUS) back for the calling thread; `false` when every slot is
/// taken.
pub fn hold(sig: u32) -> bool {
    let (tid, bit) = (tid(), 1u64 << (sig - 1));
    if let Some(mine) = HELD.iter().find(|s| s.load(Ordering::Acquire) >> 32 == tid) {
        mine.fetch_or(bit, Ordering::AcqRel);
        return true;
    }
    for slot in &HELD {
        if slot.compare_exchange(0, tid << 32 | bit, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            IN_USE.fetch_add(1, Ordering::AcqRel);
            return true;
        }
    }
    false
}

/// Raises the signals held back for the calling thread, blocked in the current context: they
/// arrive when the runtime puts the program's mask back. Call it where nothing of the runtime's
/// can fault any more.
pub fn release() {
    if IN_USE.load(Ordering::Acquire) == 0 {
        return;
    }
    let tid = tid();
    for slot in &HELD {
        let mut held = slot.load(Ordering::Acquire);
        while held != 0 && held >> 32 == tid {
            // A signal held by a handler that interrupted this loop is not lost: the exchange
            // fails, and the loop reads it again.
            match slot.compare_exchange(held, 0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    IN_USE.fetch_sub(1, Ordering::AcqRel);
                    let bits = held & 0xffff_ffff;
                    const SIG_BLOCK: u64 = 0;
                    sys::call(nr::RT_SIGPROCMASK, &[SIG_BLOCK, &bits as *const u64 as u64, 0, 8]);
                    for sig in (1..=32).filter(|s| bits & 1 << (s - 1) != 0) {
                        sys::raise(sig);
                    }
                    return;
                }
                Err(now) => held = now,
            }
        }
    }
}
