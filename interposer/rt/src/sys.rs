//! Raw system calls: the only way the runtime talks to the host. Every `syscall` instruction
//! here sits in the runtime's code, which the redirect filter lets through.

use core::arch::asm;

/// Makes a raw system call and returns the kernel's raw result (`-errno` on failure).
#[inline(always)]
pub fn syscall(nr: u32, a: [u64; 6]) -> i64 {
    let ret: i64;
    // SAFETY: a system call cannot break Rust's invariants by itself; callers that pass
    // pointers pass pointers to live buffers of the sizes the call expects, and calls that
    // change memory mappings are only made on ranges the runtime owns.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") u64::from(nr) => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Call numbers the runtime uses itself.
pub mod nr {
    #![allow(missing_docs)]
    pub const WRITE: u32 = 1;
    pub const CLOSE: u32 = 3;
    pub const MMAP: u32 = 9;
    pub const MPROTECT: u32 = 10;
    pub const MUNMAP: u32 = 11;
    pub const RT_SIGACTION: u32 = 13;
    pub const RT_SIGPROCMASK: u32 = 14;
    pub const PREAD64: u32 = 17;
    pub const GETPID: u32 = 39;
    pub const EXECVE: u32 = 59;
    pub const EXIT_GROUP: u32 = 231;
    pub const RENAME: u32 = 82;
    pub const UNLINK: u32 = 87;
    pub const READLINK: u32 = 89;
    pub const SIGALTSTACK: u32 = 131;
    pub const PRCTL: u32 = 157;
    pub const GETTID: u32 = 186;
    pub const CLOCK_GETTIME: u32 = 228;
    pub const TGKILL: u32 = 234;
    pub const OPENAT: u32 = 257;
    pub const PRLIMIT64: u32 = 302;
    pub const GETRANDOM: u32 = 318;
}

/// Makes a call with fewer arguments.
#[inline(always)]
pub fn call(nr: u32, args: &[u64]) -> i64 {
    let mut a = [0u64; 6];
    a[..args.len()].copy_from_slice(args);
    syscall(nr, a)
}

/// Writes all of `bytes` to `fd`; false if the host refused before the end (diagnostics
/// ignore that).
pub fn write_all(fd: i32, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        let r = call(nr::WRITE, &[fd as u64, bytes.as_ptr() as u64, bytes.len() as u64]);
        if r <= 0 {
            return false;
        }
        bytes = &bytes[r as usize..];
    }
    true
}

/// Sends `sig` to the calling thread.
pub fn raise(sig: u32) {
    let pid = call(nr::GETPID, &[]);
    let tid = call(nr::GETTID, &[]);
    call(nr::TGKILL, &[pid as u64, tid as u64, u64::from(sig)]);
}

/// Ends the process.
pub fn exit_group(code: i32) -> ! {
    loop {
        call(nr::EXIT_GROUP, &[code as u64]);
    }
}

/// Maps anonymous read-write memory; `None` when the host refuses.
pub fn mmap_anon(len: usize) -> Option<*mut u8> {
    let r = call(nr::MMAP, &[0, len as u64, 3, 0x22, u64::MAX, 0]);
    (r >= 0).then_some(r as *mut u8)
}

/// Nanoseconds on the monotonic clock.
pub fn monotonic_ns() -> u64 {
    let mut ts = [0i64; 2];
    call(nr::CLOCK_GETTIME, &[1, ts.as_mut_ptr() as u64]);
    (ts[0] as u64).wrapping_mul(1_000_000_000).wrapping_add(ts[1] as u64)
}
