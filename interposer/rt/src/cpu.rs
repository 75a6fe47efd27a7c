//! The instructions that read the machine rather than the kernel: `rdtsc`, `rdtscp` and
//! `cpuid`, made to fault in reproducible mode and answered here.
//!
//! In reproducible mode [`setup`] asks the host to raise SIGSEGV for `rdtsc`/`rdtscp`
//! (`prctl(PR_SET_TSC, PR_TSC_SIGSEGV)`) and, where the CPU can, for `cpuid`
//! (`arch_prctl(ARCH_SET_CPUID, 0)`). Both are per-thread flags inherited by `clone` and
//! `fork`; the TSC flag also survives `execve`, the CPUID one does not, and the runtime sets
//! both again at every start. The host reports either fault as a SIGSEGV with `si_code`
//! `SI_KERNEL` (a general-protection fault) at the instruction, which the runtime's SIGSEGV
//! handler hands to [`emulate`] before anything else sees it:
//! - `rdtsc`/`rdtscp` read a 1 GHz virtual counter that advances with the virtual clock
//!   ([`Kernel::virtual_tsc`]), and `rdtscp` says it ran on CPU 0;
//! - `cpuid` runs for real with RDRAND and RDSEED cleared, so libraries that would read
//!   hardware randomness fall back to `getrandom`, which is seeded.
//!
//! What it does not do: `rdrand`/`rdseed` themselves cannot be made to fault, so a program
//! that runs them without asking `cpuid` still gets hardware randomness; and without CPUID
//! faulting (`cloister doctor` tells) `cpuid` is the host's. See `prctl(2)` (`PR_SET_TSC`)
//! and `arch_prctl(2)` (`ARCH_SET_CPUID`).

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel_host::Kernel;

use crate::fault;
use crate::sys;
use crate::ucontext::{reg, Frame};

/// `si_code` of a signal the host kernel raised for a general-protection fault.
pub const SI_KERNEL: i32 = 0x80;

/// `prctl(2)` and `arch_prctl(2)`: their numbers and the options used here.
const PRCTL: u32 = 157;
const ARCH_PRCTL: u32 = 158;
const PR_SET_TSC: u64 = 26;
const PR_TSC_SIGSEGV: u64 = 2;
const ARCH_SET_CPUID: u64 = 0x1012;

/// `rdtsc`, `rdtscp` and `cpuid`.
const RDTSC: [u8; 2] = [0x0f, 0x31];
const RDTSCP: [u8; 3] = [0x0f, 0x01, 0xf9];
const CPUID: [u8; 2] = [0x0f, 0xa2];

/// Leaf 1, ECX: RDRAND. Leaf 7 subleaf 0, EBX: RDSEED.
const RDRAND_BIT: u32 = 1 << 30;
const RDSEED_BIT: u32 = 1 << 18;

/// Whether this process made `cpuid` fault (the flag is inherited by the process's threads
/// and forks, as the memory is).
static CPUID_FAULTING: AtomicBool = AtomicBool::new(false);

/// Makes `rdtsc`, `rdtscp` and (where the host can) `cpuid` fault in reproducible mode. Call
/// once the SIGSEGV handler is installed and before the program runs, on its first thread.
pub fn setup(kernel: &Kernel) {
    if kernel.config().reproducible.is_none() {
        return;
    }
    if sys::call(PRCTL, &[PR_SET_TSC, PR_TSC_SIGSEGV]) < 0 {
        crate::fail(
            125,
            "cloister-rt: the host refused prctl(PR_SET_TSC): rdtsc cannot be made reproducible",
        );
    }
    // ENODEV where the CPU (or hypervisor) has no CPUID faulting: `cpuid` stays the host's.
    let faulting = sys::call(ARCH_PRCTL, &[ARCH_SET_CPUID, 0]) == 0;
    CPUID_FAULTING.store(faulting, Ordering::Relaxed);
}

/// Answers a SIGSEGV with `si_code` `SI_KERNEL` if it was raised by `rdtsc`, `rdtscp` or
/// `cpuid` that [`setup`] made fault: sets the results in `frame`, moves past the instruction
/// and returns true. Returns false, leaving `frame` alone, for any other fault.
pub fn emulate(kernel: &Kernel, frame: &mut Frame) -> bool {
    let rip = frame.reg(reg::RIP);
    // Two bytes first: an `rdtsc` may end a mapping, and reading past it must not fail it.
    let mut op = [0u8; 3];
    if !fault::copy(op.as_mut_ptr(), rip as *const u8, 2) {
        return false;
    }
    if op[..2] == RDTSC {
        if !answer_tsc(kernel, frame, 2) {
            return false;
        }
        crate::prepatch::learn_rdtsc(rip);
        return true;
    }
    if op[..2] == CPUID {
        if !CPUID_FAULTING.load(Ordering::Relaxed) {
            return false;
        }
        answer_cpuid(frame);
        return true;
    }
    if op[..2] == RDTSCP[..2] && fault::copy(op[2..].as_mut_ptr(), (rip + 2) as *const u8, 1) && op == RDTSCP
    {
        if !answer_tsc(kernel, frame, 3) {
            return false;
        }
        // IA32_TSC_AUX, which Linux sets to the CPU (and NUMA node) number: CPU 0.
        frame.set_reg(reg::RCX, 0);
        return true;
    }
    false
}

/// `rdtsc`/`rdtscp` of `len` bytes: EDX:EAX = the virtual counter. False when time is not
/// virtual (the program made the TSC fault itself, and gets its SIGSEGV).
fn answer_tsc(kernel: &Kernel, frame: &mut Frame, len: u64) -> bool {
    let Some(tsc) = kernel.virtual_tsc() else {
        return false;
    };
    frame.set_reg(reg::RAX, tsc & 0xffff_ffff);
    frame.set_reg(reg::RDX, tsc >> 32);
    frame.set_reg(reg::RIP, frame.reg(reg::RIP) + len);
    true
}

/// `cpuid`: the host's answer for the leaf in EAX and subleaf in ECX, without RDRAND/RDSEED.
fn answer_cpuid(frame: &mut Frame) {
    let leaf = frame.reg(reg::RAX) as u32;
    let subleaf = frame.reg(reg::RCX) as u32;
    // The flag is this thread's: lift it for one instruction. The handler runs with every
    // signal blocked but SIGSEGV/SIGBUS, so nothing of the program's runs meanwhile.
    sys::call(ARCH_PRCTL, &[ARCH_SET_CPUID, 1]);
    let (eax, mut ebx, mut ecx, edx) = cpuid(leaf, subleaf);
    sys::call(ARCH_PRCTL, &[ARCH_SET_CPUID, 0]);
    match leaf {
        1 => ecx &= !RDRAND_BIT,
        7 if subleaf == 0 => ebx &= !RDSEED_BIT,
        _ => {}
    }
    frame.set_reg(reg::RAX, u64::from(eax));
    frame.set_reg(reg::RBX, u64::from(ebx));
    frame.set_reg(reg::RCX, u64::from(ecx));
    frame.set_reg(reg::RDX, u64::from(edx));
    frame.set_reg(reg::RIP, frame.reg(reg::RIP) + CPUID.len() as u64);
}

/// Runs `cpuid` (which must not fault on this thread right now).
fn cpuid(leaf: u32, subleaf: u32) -> (u32, u32, u32, u32) {
    let (eax, ebx, ecx, edx): (u32, u32, u32, u32);
    // SAFETY: `cpuid` only writes the four registers named here; LLVM reserves rbx, so its
    // value is kept in another register and swapped back after the instruction.
    unsafe {
        asm!(
            "mov {save:r}, rbx",
            "cpuid",
            "xchg {save:r}, rbx",
            save = out(reg) ebx,
            inout("eax") leaf => eax,
            inout("ecx") subleaf => ecx,
            out("edx") edx,
            options(nostack, preserves_flags),
        );
    }
    (eax, ebx, ecx, edx)
}
