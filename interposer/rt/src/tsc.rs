//! The entry a patched `rdtsc` site calls ([`crate::prepatch`]): the virtual counter without a
//! fault. The fault path ([`crate::cpu::emulate`]) costs a SIGSEGV delivery, about 3 µs on our
//! machines, and `ld.so` reads the counter eight times in every image.
//!
//! The entry runs on the program's stack, below the red zone its stub stepped over, with the
//! program's signal mask: the counter is an atomic step of the sandbox's shared clock
//! ([`kernel_host::Kernel::virtual_tsc`]), which takes no lock, so a signal handler that reads
//! the counter meanwhile just takes the next step.

use core::arch::global_asm;

extern "C" {
    /// Where every `rdtsc` stub calls; never called from Rust.
    fn cloister_tsc_entry();
}

/// The address `rdtsc` stubs call.
pub fn entry() -> u64 {
    cloister_tsc_entry as *const () as u64
}

/// The virtual counter, for the entry. Stubs exist only where time is virtual.
extern "C" fn cloister_tsc_now() -> u64 {
    crate::trap::kernel().virtual_tsc().unwrap_or(0)
}

// On entry: rsp = program rsp - 128 (red zone) - 8 (the return address into the stub). Returns
// the counter in edx:eax, as `rdtsc` would, with every other register and the flags as they
// were: the code around the site may hold anything anywhere.
global_asm!(
    ".globl cloister_tsc_entry",
    "cloister_tsc_entry:",
    "pushfq",
    "push rcx",
    "push rsi",
    "push rdi",
    "push r8",
    "push r9",
    "push r10",
    "push r11",
    "push rbp",
    "mov rbp, rsp",
    "and rsp, -16",
    "sub rsp, 256",
    "cld",
    "movups [rsp], xmm0",
    "movups [rsp + 16], xmm1",
    "movups [rsp + 32], xmm2",
    "movups [rsp + 48], xmm3",
    "movups [rsp + 64], xmm4",
    "movups [rsp + 80], xmm5",
    "movups [rsp + 96], xmm6",
    "movups [rsp + 112], xmm7",
    "movups [rsp + 128], xmm8",
    "movups [rsp + 144], xmm9",
    "movups [rsp + 160], xmm10",
    "movups [rsp + 176], xmm11",
    "movups [rsp + 192], xmm12",
    "movups [rsp + 208], xmm13",
    "movups [rsp + 224], xmm14",
    "movups [rsp + 240], xmm15",
    "call {now}",
    "movups xmm0, [rsp]",
    "movups xmm1, [rsp + 16]",
    "movups xmm2, [rsp + 32]",
    "movups xmm3, [rsp + 48]",
    "movups xmm4, [rsp + 64]",
    "movups xmm5, [rsp + 80]",
    "movups xmm6, [rsp + 96]",
    "movups xmm7, [rsp + 112]",
    "movups xmm8, [rsp + 128]",
    "movups xmm9, [rsp + 144]",
    "movups xmm10, [rsp + 160]",
    "movups xmm11, [rsp + 176]",
    "movups xmm12, [rsp + 192]",
    "movups xmm13, [rsp + 208]",
    "movups xmm14, [rsp + 224]",
    "movups xmm15, [rsp + 240]",
    "mov rsp, rbp",
    "pop rbp",
    "pop r11",
    "pop r10",
    "pop r9",
    "pop r8",
    "pop rdi",
    "pop rsi",
    "pop rcx",
    "mov rdx, rax",
    "shr rdx, 32",
    "mov eax, eax",
    "popfq",
    "ret",
    now = sym cloister_tsc_now,
);
