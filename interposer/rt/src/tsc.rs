//! The entry a patched `rdtsc` site calls ([`crate::prepatch`]): the virtual counter without a
//! fault. The fault path ([`crate::cpu::emulate`]) costs a SIGSEGV delivery, about 3 µs on our
//! machines, and `ld.so` reads the counter eight times in every image.
//!
//! The entry runs on the program's stack, below the red zone its stub stepped over, with the
//! program's signal mask, and calls nothing: it steps the sandbox's shared clock as
//! [`kernel_host::time::VirtualClock::tick`] does (a compare-and-swap, no lock) and answers
//! [`kernel_host::Kernel::virtual_tsc`]'s value. A signal that arrives meanwhile is the
//! program's (the trap path does not take the entry for runtime code: [`contains`]), and its
//! handler may read the counter too: it just takes the next step.

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel_host::time::{MAX_ELAPSED, MONOTONIC_BASE_NS, STEP_NS};
use kernel_host::Kernel;

/// The addresses of the shared clock and of this process's last sight of it
/// ([`kernel_host::ClockWords`]); 0 outside reproducible mode, where no site is
/// patched for the entry.
#[no_mangle]
static CLOISTER_TSC_CLOCK: AtomicU64 = AtomicU64::new(0);
#[no_mangle]
static CLOISTER_TSC_SEEN: AtomicU64 = AtomicU64::new(0);

extern "C" {
    /// Where every `rdtsc` stub calls; never called from Rust.
    fn cloister_tsc_entry();
    static cloister_tsc_end: u8;
}

/// The address `rdtsc` stubs call.
pub fn entry() -> u64 {
    cloister_tsc_entry as *const () as u64
}

/// Whether `ip` lies in the entry.
pub fn contains(ip: u64) -> bool {
    // Only the symbols' addresses are taken, never their bytes.
    (entry()..&raw const cloister_tsc_end as u64).contains(&ip)
}

/// Points the entry at `kernel`'s clock. Called at start-up, before the program runs.
pub fn arm(kernel: &Kernel) {
    if let Some(w) = kernel.clock_words() {
        CLOISTER_TSC_CLOCK.store(w.clock as *const AtomicU64 as u64, Ordering::Relaxed);
        CLOISTER_TSC_SEEN.store(w.seen as *const AtomicU64 as u64, Ordering::Relaxed);
    }
}

// On entry: rsp = program rsp - 128 (red zone) - 8 (the return address into the stub). Returns
// the counter in edx:eax, as `rdtsc` would, with every other register and the flags as they
// were: the code around the site may hold anything anywhere.
//   now = clock; loop { next = min(now +sat STEP, max(MAX, now)); cas(clock, now, next) }
//   seen = next; counter = BASE +sat next
global_asm!(
    ".globl cloister_tsc_entry",
    ".globl cloister_tsc_end",
    "cloister_tsc_entry:",
    "pushfq",
    "push rcx",
    "push rsi",
    "mov rsi, [rip + CLOISTER_TSC_CLOCK]",
    "mov rax, [rsi]",
    "2:",
    "mov rcx, rax",
    "add rcx, {step}",
    "jnc 3f",
    "mov rcx, -1",
    "3:",
    "mov rdx, {max}",
    "cmp rax, rdx",
    "cmova rdx, rax",
    "cmp rcx, rdx",
    "cmova rcx, rdx",
    "lock cmpxchg [rsi], rcx",
    "jne 2b",
    "mov rsi, [rip + CLOISTER_TSC_SEEN]",
    "mov [rsi], rcx",
    "mov rax, {base}",
    "add rax, rcx",
    "jnc 4f",
    "mov rax, -1",
    "4:",
    "mov rdx, rax",
    "shr rdx, 32",
    "mov eax, eax",
    "pop rsi",
    "pop rcx",
    "popfq",
    "ret",
    "cloister_tsc_end:",
    step = const STEP_NS,
    max = const MAX_ELAPSED,
    base = const MONOTONIC_BASE_NS,
);
