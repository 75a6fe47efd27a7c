//! Call-site patching: a site that keeps trapping is rewritten to enter the runtime directly
//! ([`crate::fast`]), the way lazypoline rewrites sites once Syscall User Dispatch has found
//! them, so that a hot `stat` costs a function call and three cheap host calls instead of a
//! signal.
//!
//! What is patched is the common shape a libc wrapper compiles to, `mov eax, NR` (`b8` and a
//! 32-bit immediate) directly followed by `syscall` (`0f 05`). Only the five bytes of the
//! `mov` change, into `jmp STUB`; the `syscall` stays where it was, so a jump that lands on it
//! (a wrapper's retry path, say) still traps as before, and no instruction boundary moves.
//! The stub, in a page the runtime maps within a 32-bit jump of the site, calls the fast entry
//! with the call number and the address to return to.
//!
//! A site is patched only when every check passes, else it keeps trapping:
//! - the call may be served in place ([`kernel_host::redirect::served_in_place`]) and calls are
//!   not being traced (the trace is written by the trap path). Where the redirect filter traps
//!   only some arguments' calls (`newfstatat` that follows a path, `close` of a reserved
//!   descriptor), the stub carries the filter's test and the entry sends the others to the
//!   site's own `syscall`, which the filter lets through;
//! - the site has trapped [`HOT`] times, so short-lived processes do not pay for patching
//!   sites they reach once or twice;
//! - the bytes before the `syscall` read `b8 NR` with the number the thread is making, and the
//!   byte before them is no REX or escape prefix that would make `b8` part of another
//!   instruction;
//! - the five bytes lie within one aligned 16-byte block, which `lock cmpxchg16b` replaces at
//!   once, so another thread runs either the old `mov` or the new `jmp`, never half of each.
//!   A `mov` that straddles two blocks (a quarter of them) is left alone, and the jump goes
//!   over the instruction before it instead, when that is one a stub can run in its place: a
//!   `mov` of a 32-bit immediate into `edx`, `esi`, `edi` or `r10d` (glibc's `pthread_sigmask`
//!   sets `r10d` to 8 that way), whose register held that value at every trap counted, and
//!   whose first five bytes lie in one block. The stub runs that instruction first;
//! - the page is made writable for the store only if it was not (`mprotect` to read, write and
//!   execute, then back to read and execute): a probe write decides which.

use kernel_host::redirect::{served_in_place, ArgTest};
use kernel_host::sync::SpinLock;
use kernel_host::x86::{prefix_free, syscall_stub, SYSCALL_STUB_LEN};

use crate::sys::{self, nr};
use crate::{fast, fault, trace};

/// Traps a site takes before it is patched.
const HOT: u32 = 8;
/// Sites remembered per process; a site beyond them keeps trapping.
const SITES: usize = 256;
/// Bytes of each stub: code, the site's resumption, the entry, the trap test (and, before
/// them, the instruction a jump went over, rounded up to keep stubs 16-byte aligned).
const STUB: u64 = SYSCALL_STUB_LEN as u64;
/// The longest instruction a stub runs in place of the one its jump went over.
const DISPLACED_MAX: usize = 6;
/// Bytes of each page of stubs the runtime maps.
const STUB_AREA: u64 = 64 * 1024;
/// Areas of stubs per process: one per 2 GiB window of code is the usual need.
const AREAS: usize = 8;

const PROT_RX: u64 = 0x1 | 0x4;
const PROT_RWX: u64 = 0x1 | 0x2 | 0x4;

/// One site the trap path has seen.
#[derive(Clone, Copy)]
struct Site {
    /// The address just after its `syscall` (the trap's instruction pointer); 0 when free.
    ip: u64,
    /// Traps taken there, or [`DECIDED`] once patched or found unpatchable.
    hits: u32,
    /// Whether the instruction before its `mov` failed to set its register at some trap so
    /// far. (Kept negative so that the table starts all zeros: zero-filled data, not a page of
    /// the image that every new image copies on its first trap.)
    undisplaceable: bool,
}

/// The hit count of a site that is not looked at again.
const DECIDED: u32 = u32::MAX;

/// An area of stubs: base and bytes used.
#[derive(Clone, Copy)]
struct Area {
    base: u64,
    used: u64,
}

struct Patcher {
    sites: [Site; SITES],
    areas: [Area; AREAS],
}

static PATCHER: SpinLock<Patcher> = SpinLock::new(Patcher {
    sites: [Site { ip: 0, hits: 0, undisplaceable: false }; SITES],
    areas: [Area { base: 0, used: 0 }; AREAS],
});

/// Called by the trap path after serving call `nr` trapped at `ip`: counts the trap and
/// patches the site once it is hot.
pub fn after_trap(ip: u64, nr: u32, args: &[u64; 6]) {
    if !served_in_place(nr) || trace::enabled() {
        return;
    }
    crate::prepatch::learn_syscall(ip, nr);
    let mut p = PATCHER.lock();
    let Some(slot) = p.site(ip) else { return };
    if p.sites[slot].hits == DECIDED {
        return;
    }
    p.sites[slot].hits += 1;
    // The instruction a jump may go over must have set its register at every trap counted
    // (only a `mov` that straddles two blocks needs one).
    if straddles(ip.wrapping_sub(7)) && displaced_before(ip, args).is_none() {
        p.sites[slot].undisplaceable = true;
    }
    if p.sites[slot].hits < HOT {
        return;
    }
    p.sites[slot].hits = DECIDED;
    let displaceable = !p.sites[slot].undisplaceable;
    if let Some(test) = trap_test(nr) {
        p.patch(ip, nr, test, displaceable.then_some(args));
    }
}

/// Whether five bytes written at `at` straddle two aligned 16-byte blocks, which one
/// `lock cmpxchg16b` cannot replace at once.
fn straddles(at: u64) -> bool {
    at & 15 > 11
}

/// The instruction right before the `mov eax` of the site trapped at `ip`, if a stub can run
/// it in its place: `mov r32, imm32` into `edx`, `esi`, `edi` or `r10d`, whose register (in
/// `args`, the call's arguments as they were trapped) holds the immediate. Returns its
/// address and bytes.
fn displaced_before(ip: u64, args: &[u64; 6]) -> Option<(u64, [u8; DISPLACED_MAX], usize)> {
    let site = ip.checked_sub(7)?;
    let mut b = [0u8; 8];
    if !fault::copy(b.as_mut_ptr(), site.checked_sub(8)? as *const u8, 8) {
        return None;
    }
    let imm = |at: usize| u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]));
    // A REX, escape or legacy prefix before the opcode would make it another instruction (the
    // stricter test: what is displaced here must be exactly one instruction).
    let no_prefix = |byte: u8| {
        !(0x40..=0x4f).contains(&byte)
            && !matches!(byte, 0x0f | 0x26 | 0x2e | 0x36 | 0x3e | 0x64..=0x67 | 0xf0 | 0xf2 | 0xf3)
    };
    // b[2..8] are the six bytes before the site. `41 ba` could also be the last byte of
    // another instruction and a `mov edx`: with `edx` holding the same value, which it was
    // cannot be told, and the site is left alone.
    let (len, start) =
        if b[2] == 0x41 && b[3] == 0xba && args[3] == imm(4) && args[2] != imm(4) && no_prefix(b[1]) {
            (6, 2)
        } else {
            let reg = match b[3] {
                0xba => args[2],
                0xbe => args[1],
                0xbf => args[0],
                _ => return None,
            };
            if reg != imm(4) || !no_prefix(b[2]) {
                return None;
            }
            (5, 3)
        };
    let mut bytes = [0u8; DISPLACED_MAX];
    bytes[..len].copy_from_slice(&b[start..start + len]);
    Some((site - len as u64, bytes, len))
}

/// On which arguments the redirect filter traps `nr` in this configuration, as the stub
/// carries it for the fast entry: kind, argument index, and the kind's operand. A call the
/// filter lets through (`newfstatat` of a descriptor, `close` of a program's descriptor) must
/// keep going to the host directly: glibc makes `stat`, `lstat` and `fstat` from one site.
pub(crate) fn trap_test(nr: u32) -> Option<[u8; 16]> {
    let kernel = crate::trap::kernel();
    trap_test_for(kernel.config(), kernel.vfs().is_some(), nr)
}

/// [`trap_test`] for a configuration and whether it has a view, before the kernel is built.
pub fn trap_test_for(config: &kernel_host::Config, view: bool, nr: u32) -> Option<[u8; 16]> {
    let rule = kernel_host::redirect::rule_for(config, view, nr)?;
    let (kind, arg, operand): (u32, u8, u64) = match rule.test {
        ArgTest::Always => (0, 0, 0),
        ArgTest::MaskClear { arg, mask } => (1, arg, mask),
        ArgTest::InRange { arg, lo, hi } => (2, arg, u64::from(lo) | (u64::from(hi) << 32)),
        ArgTest::NonZero { arg } => (3, arg, 0),
        // The filter answers these itself: they never trap.
        ArgTest::Refuse { .. } => return None,
    };
    if arg > 5 {
        return None;
    }
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&kind.to_le_bytes());
    out[4..8].copy_from_slice(&u32::from(arg).to_le_bytes());
    out[8..].copy_from_slice(&operand.to_le_bytes());
    Some(out)
}

impl Patcher {
    /// The slot of `ip`, claimed if it is new; `None` when the table is full.
    fn site(&mut self, ip: u64) -> Option<usize> {
        let start = ((ip ^ (ip >> 12)) as usize).wrapping_mul(0x9e37_79b9) % SITES;
        for i in 0..SITES {
            let slot = (start + i) % SITES;
            match self.sites[slot].ip {
                0 => {
                    self.sites[slot] = Site { ip, hits: 0, undisplaceable: false };
                    return Some(slot);
                }
                x if x == ip => return Some(slot),
                _ => {}
            }
        }
        None
    }

    fn patch(&mut self, ip: u64, nr: u32, test: [u8; 16], args: Option<&[u64; 6]>) {
        let Some(site) = ip.checked_sub(7) else { return };
        let mut before = [0u8; 8];
        if !fault::copy(before.as_mut_ptr(), (site - 1) as *const u8, 8) {
            return;
        }
        let prefix = before[0];
        let shape = before[1] == 0xb8 && before[6..8] == [0x0f, 0x05];
        let imm = u32::from_le_bytes([before[2], before[3], before[4], before[5]]);
        if !shape || imm != nr || !prefix_free(prefix) {
            return;
        }
        // Where the jump goes: over the `mov`, or over the instruction before it when the `mov`
        // straddles two blocks (the stub then runs that instruction first).
        let (jump_at, displaced, len) = if !straddles(site) {
            (site, [0u8; DISPLACED_MAX], 0)
        } else {
            match args.and_then(|a| displaced_before(ip, a)) {
                Some(d) if !straddles(d.0) => d,
                _ => return,
            }
        };
        let block = jump_at & !15;
        let at = (jump_at - block) as usize;
        let Some(stub) = self.stub(site, nr, test, &displaced[..len]) else { return };
        let Ok(rel) = i32::try_from(stub as i64 - (jump_at as i64 + 5)) else { return };
        let mut old = [0u8; 16];
        if !fault::copy(old.as_mut_ptr(), block as *const u8, 16) {
            return;
        }
        let mut new = old;
        new[at] = 0xe9;
        new[at + 1..at + 5].copy_from_slice(&rel.to_le_bytes());
        let page = block & !0xfff;
        let writable = fault::probe_write(jump_at);
        if !writable && sys::call(nr::MPROTECT, &[page, 0x1000, PROT_RWX]) != 0 {
            return;
        }
        // SAFETY: `block` is 16-byte aligned, readable (copied above) and now writable; the
        // store replaces the `mov` with a jump of the same length, atomically.
        unsafe { cmpxchg16b(block, &old, &new) };
        if !writable {
            sys::call(nr::MPROTECT, &[page, 0x1000, PROT_RX]);
        }
    }

    /// Writes a stub for the site at `site` calling `nr` into an area within a 32-bit jump of
    /// it, first running `displaced` (the instruction the jump went over, if any), and returns
    /// its address.
    fn stub(&mut self, site: u64, nr: u32, test: [u8; 16], displaced: &[u8]) -> Option<u64> {
        let size = STUB + ((displaced.len() as u64 + 15) & !15);
        let near = |base: u64| base.abs_diff(site) < (1 << 31) - STUB_AREA;
        let area =
            match self.areas.iter().position(|a| a.base != 0 && near(a.base) && a.used + size <= STUB_AREA) {
                Some(i) => i,
                None => {
                    let free = self.areas.iter().position(|a| a.base == 0)?;
                    self.areas[free] = Area { base: map_near(site)?, used: 0 };
                    free
                }
            };
        let a = &mut self.areas[area];
        let stub = a.base + a.used;
        a.used += size;
        // The displaced instruction, padded with one-byte `nop`s up to the code that follows.
        let pad = size - STUB;
        let mut head = [0x90u8; 16];
        head[..displaced.len()].copy_from_slice(displaced);
        // SAFETY: the area is the runtime's own mapping, writable, and this stub is unused.
        unsafe { core::ptr::copy_nonoverlapping(head.as_ptr(), stub as *mut u8, pad as usize) };
        let code = syscall_stub(site, stub + pad, nr, fast::entry(), test);
        // SAFETY: as above, after the displaced instruction.
        unsafe { core::ptr::copy_nonoverlapping(code.as_ptr(), (stub + pad) as *mut u8, code.len()) };
        Some(stub)
    }
}

/// Maps an area of stubs within a 32-bit jump of `site`, or `None`.
fn map_near(site: u64) -> Option<u64> {
    let page = site & !0xffff;
    for hint in [page.wrapping_sub(1 << 28), page.wrapping_add(1 << 28), page.wrapping_sub(1 << 30), 0] {
        let r = sys::call(nr::MMAP, &[hint, STUB_AREA, PROT_RWX, 0x22, u64::MAX, 0]);
        if r < 0 {
            continue;
        }
        let base = r as u64;
        if base.abs_diff(site) < (1 << 31) - STUB_AREA {
            return Some(base);
        }
        sys::call(nr::MUNMAP, &[base, STUB_AREA]);
    }
    None
}

/// Replaces the 16 bytes at `addr` with `new` if they still hold `old`.
///
/// # Safety
/// `addr` must be 16-byte aligned, mapped and writable.
unsafe fn cmpxchg16b(addr: u64, old: &[u8; 16], new: &[u8; 16]) {
    let lo = u64::from_le_bytes(old[..8].try_into().unwrap_or_default());
    let hi = u64::from_le_bytes(old[8..].try_into().unwrap_or_default());
    let new_lo = u64::from_le_bytes(new[..8].try_into().unwrap_or_default());
    let new_hi = u64::from_le_bytes(new[8..].try_into().unwrap_or_default());
    // SAFETY: the caller's contract. `cmpxchg16b` takes its new low word in rbx, which an asm
    // block may not name, so it is swapped in and out by hand (fixed registers keep the
    // address out of rbx).
    unsafe {
        core::arch::asm!(
            "xchg rbx, rsi",
            "lock cmpxchg16b [rdi]",
            "mov rbx, rsi",
            in("rdi") addr,
            inout("rsi") new_lo => _,
            inout("rax") lo => _,
            inout("rdx") hi => _,
            in("rcx") new_hi,
            options(nostack),
        );
    }
}

/// Takes the patcher's lock before a fork, so that the child never inherits it held.
pub fn lock_for_fork() {
    PATCHER.raw_lock();
}

/// Releases it after a fork, in parent and child.
pub fn unlock_after_fork() {
    PATCHER.raw_unlock();
}
