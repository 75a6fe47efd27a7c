//! Linux x86_64 ABI constants and layouts the kernel shares with the host kernel.
//!
//! See `signal(7)`, `clone(2)`, `uname(2)`, `getauxval(3)`. Layouts are checked at compile
//! time where they are structures.

/// `SIGKILL`.
pub const SIGKILL: u32 = 9;
/// `SIGSTOP`.
pub const SIGSTOP: u32 = 19;
/// `SIGBUS`.
pub const SIGBUS: u32 = 7;
/// `SIGSEGV`.
pub const SIGSEGV: u32 = 11;
/// `SIGSYS`: the signal a seccomp `RET_TRAP` raises, reserved to the runtime.
pub const SIGSYS: u32 = 31;
/// Signals whose host disposition belongs to the runtime: SIGSYS for the traps, SIGSEGV and
/// SIGBUS to turn a bad pointer from the program into `EFAULT`. The program's dispositions
/// for them are kept by the kernel, and the runtime forwards what it did not cause.
pub const RUNTIME_SIGNALS: [u32; 3] = [SIGSYS, SIGSEGV, SIGBUS];
/// Highest signal number.
pub const NSIG: u32 = 64;

/// The bit of a signal in a kernel `sigset_t` (signal 1 is bit 0).
pub const fn sigbit(sig: u32) -> u64 {
    1u64 << (sig - 1)
}

/// Signals no mask may hold: the kernel refuses to block SIGKILL and SIGSTOP, and the
/// runtime refuses to let its own signals be blocked (a blocked SIGSYS makes a trap fatal,
/// a blocked SIGSEGV makes a bad pointer fatal instead of `EFAULT`).
pub const UNBLOCKABLE: u64 =
    sigbit(SIGKILL) | sigbit(SIGSTOP) | sigbit(SIGSYS) | sigbit(SIGSEGV) | sigbit(SIGBUS);

/// `rt_sigprocmask` `how`: add to the mask.
pub const SIG_BLOCK: u64 = 0;
/// `rt_sigprocmask` `how`: remove from the mask.
pub const SIG_UNBLOCK: u64 = 1;
/// `rt_sigprocmask` `how`: replace the mask.
pub const SIG_SETMASK: u64 = 2;
/// Size of the kernel's `sigset_t`.
pub const SIGSET_SIZE: u64 = 8;

/// The kernel's `struct sigaction` as `rt_sigaction` reads it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelSigaction {
    /// Handler address, `SIG_DFL` (0) or `SIG_IGN` (1).
    pub handler: u64,
    /// `SA_*` flags.
    pub flags: u64,
    /// Return trampoline (`SA_RESTORER`).
    pub restorer: u64,
    /// Signals blocked while the handler runs.
    pub mask: u64,
}
const _: () = assert!(core::mem::size_of::<KernelSigaction>() == 32);

impl KernelSigaction {
    /// Serialises to the 32 bytes the kernel reads.
    pub fn to_bytes(self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0..8].copy_from_slice(&self.handler.to_ne_bytes());
        b[8..16].copy_from_slice(&self.flags.to_ne_bytes());
        b[16..24].copy_from_slice(&self.restorer.to_ne_bytes());
        b[24..32].copy_from_slice(&self.mask.to_ne_bytes());
        b
    }

    /// Parses the 32 bytes the kernel writes.
    pub fn from_bytes(b: &[u8; 32]) -> Self {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_ne_bytes(w)
        };
        KernelSigaction { handler: word(0), flags: word(1), restorer: word(2), mask: word(3) }
    }
}

/// `SA_SIGINFO`.
pub const SA_SIGINFO: u64 = 4;
/// `SA_ONSTACK`.
pub const SA_ONSTACK: u64 = 0x0800_0000;
/// `SA_RESTORER`.
pub const SA_RESTORER: u64 = 0x0400_0000;
/// `SA_RESTART`.
pub const SA_RESTART: u64 = 0x1000_0000;
/// `SA_NODEFER`.
pub const SA_NODEFER: u64 = 0x4000_0000;
/// `SA_RESETHAND`.
pub const SA_RESETHAND: u64 = 0x8000_0000;

/// `clone` flag: share the address space (threads, `vfork`, `posix_spawn`).
pub const CLONE_VM: u64 = 0x100;
/// `clone` flag: the parent sleeps until the child execs or exits.
pub const CLONE_VFORK: u64 = 0x4000;
/// Signal sent to the parent when a forked child exits.
pub const SIGCHLD: u64 = 17;

/// `AT_FDCWD`: resolve relative to the working directory.
pub const AT_FDCWD: i64 = -100;
/// `AT_SYMLINK_NOFOLLOW`: look at a link itself.
pub const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
/// `AT_EMPTY_PATH`: operate on the descriptor itself.
pub const AT_EMPTY_PATH: u64 = 0x1000;
/// `O_ACCMODE`.
pub const O_ACCMODE: u64 = 3;
/// `O_NONBLOCK`.
pub const O_NONBLOCK: u64 = 0o4000;
/// `O_WRONLY`.
pub const O_WRONLY: u64 = 1;
/// `O_CLOEXEC`.
pub const O_CLOEXEC: u64 = 0o2_000_000;
/// `MFD_CLOEXEC`.
pub const MFD_CLOEXEC: u64 = 1;
/// `X_OK` for `faccessat`.
pub const X_OK: u64 = 1;
/// `PATH_MAX`: the longest path the kernel accepts, terminating NUL included.
pub const PATH_MAX: usize = 4096;

/// `PROT_READ | PROT_WRITE`.
pub const PROT_RW: u64 = 3;
/// `MAP_PRIVATE | MAP_ANONYMOUS`.
pub const MAP_PRIVATE_ANON: u64 = 0x22;
/// `MAP_FIXED_NOREPLACE`: map exactly here, or fail if something is here already.
pub const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
/// Page size on x86_64.
pub const PAGE_SIZE: u64 = 4096;

/// Length of each field of `struct utsname`.
pub const UTS_FIELD: usize = 65;
/// Size of `struct utsname` (six fields).
pub const UTSNAME_SIZE: usize = 6 * UTS_FIELD;
/// Offset of `nodename` in `struct utsname`.
pub const UTS_NODENAME: usize = UTS_FIELD;

/// `CLOCK_REALTIME`.
pub const CLOCK_REALTIME: u64 = 0;
/// `CLOCK_REALTIME_COARSE`.
pub const CLOCK_REALTIME_COARSE: u64 = 5;
/// `CLOCK_REALTIME_ALARM`.
pub const CLOCK_REALTIME_ALARM: u64 = 8;
/// `CLOCK_TAI`.
pub const CLOCK_TAI: u64 = 11;
/// `TIMER_ABSTIME` for `clock_nanosleep`.
pub const TIMER_ABSTIME: u64 = 1;

/// Whether a clock id names a clock that reads wall time (and so takes the time offset).
pub const fn is_realtime_clock(clock: u64) -> bool {
    matches!(clock, CLOCK_REALTIME | CLOCK_REALTIME_COARSE | CLOCK_REALTIME_ALARM | CLOCK_TAI)
}

/// Page-aligns upwards.
pub const fn page_up(addr: u64) -> u64 {
    (addr + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}
