//! Copies to and from the program's memory that turn a fault into `EFAULT`.
//!
//! The copy routines live in one region of the runtime's code. A SIGSEGV or SIGBUS whose
//! instruction pointer lies in that region is the runtime's own, caused by a bad pointer the
//! program passed: the handler moves the thread to the shared fix-up, which returns
//! `-EFAULT` from the routine. Any other SIGSEGV or SIGBUS is the program's, and is forwarded
//! to the disposition it asked for ([`crate::forward`]). This is the exception-table idea of
//! the Linux kernel's `copy_from_user`, at user level; it costs nothing when nothing faults.

use core::arch::global_asm;

extern "C" {
    fn cloister_copy(dst: *mut u8, src: *const u8, len: usize) -> isize;
    fn cloister_copy_cstr(dst: *mut u8, src: *const u8, max: usize) -> isize;
    fn cloister_probe_write(addr: *mut u8) -> isize;
    fn cloister_fault_begin();
    fn cloister_fault_end();
    fn cloister_fault_fixup();
}

// The routines may fault only between begin and end; neither pushes anything, so the fix-up
// can return straight to their caller.
global_asm!(
    ".globl cloister_fault_begin",
    ".globl cloister_fault_end",
    ".globl cloister_fault_fixup",
    ".globl cloister_copy",
    ".globl cloister_copy_cstr",
    ".globl cloister_probe_write",
    "cloister_fault_begin:",
    // cloister_copy(dst = rdi, src = rsi, len = rdx) -> 0 | -EFAULT
    "cloister_copy:",
    "mov rcx, rdx",
    "rep movsb",
    "xor eax, eax",
    "ret",
    // cloister_copy_cstr(dst = rdi, src = rsi, max = rdx) -> length before the NUL, max when
    // none was found within max bytes, or -EFAULT
    "cloister_copy_cstr:",
    "xor eax, eax",
    "2:",
    "cmp rax, rdx",
    "jae 3f",
    "mov cl, byte ptr [rsi + rax]",
    "mov byte ptr [rdi + rax], cl",
    "test cl, cl",
    "jz 3f",
    "inc rax",
    "jmp 2b",
    "3:",
    "ret",
    // cloister_probe_write(addr = rdi) -> 0 | -EFAULT: an atomic OR with zero changes nothing,
    // even while another thread writes the byte, and faults unless the page is writable.
    "cloister_probe_write:",
    "lock or byte ptr [rdi], 0",
    "xor eax, eax",
    "ret",
    "cloister_fault_end:",
    "cloister_fault_fixup:",
    "mov rax, -14",
    "ret",
);

/// Copies `len` bytes from `src` to `dst`, either of which may be a bad program pointer.
/// Returns `false` on a fault (some bytes may have been copied).
pub fn copy(dst: *mut u8, src: *const u8, len: usize) -> bool {
    // SAFETY: the routine only reads `src` and writes `dst`; a fault in it is caught by
    // `fix_up`, and the runtime's own buffers passed here are valid for `len` bytes.
    unsafe { cloister_copy(dst, src, len) == 0 }
}

/// Copies a NUL-terminated string of at most `max` bytes. Returns its length, `Some(max)` if
/// no NUL came within `max` bytes, or `None` on a fault.
pub fn copy_cstr(dst: *mut u8, src: *const u8, max: usize) -> Option<usize> {
    // SAFETY: as in `copy`; `dst` is the runtime's buffer of at least `max` bytes.
    let r = unsafe { cloister_copy_cstr(dst, src, max) };
    (r >= 0).then_some(r as usize)
}

/// Whether the byte at `addr` may be written, found without changing it.
pub fn probe_write(addr: u64) -> bool {
    // SAFETY: the routine changes no byte; a fault in it is caught by `fix_up`.
    unsafe { cloister_probe_write(addr as *mut u8) == 0 }
}

/// If the fault at `rip` happened in a copy routine (or in the fast entry's clock read, see
/// [`crate::fast::clock_fix_up`]), returns where to resume instead.
pub fn fix_up(rip: u64) -> Option<u64> {
    let begin = cloister_fault_begin as *const () as u64;
    let end = cloister_fault_end as *const () as u64;
    (begin..end)
        .contains(&rip)
        .then_some(cloister_fault_fixup as *const () as u64)
        .or_else(|| crate::fast::clock_fix_up(rip))
}
