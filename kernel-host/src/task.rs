//! What the kernel may touch: the calling task's memory, the host, and the task's signal mask.
//!
//! A backend implements [`GuestMemory`] and [`Host`] and builds a [`TaskCtx`] for each caught
//! call. Every guest access can fail with `EFAULT`: a bad pointer from the program is the
//! program's error, never a crash of the kernel.

use crate::errno::{Errno, KResult};
use alloc::vec::Vec;

/// The calling program's memory.
pub trait GuestMemory {
    /// Copies `buf.len()` bytes from guest address `addr`; `EFAULT` if any byte is unreadable.
    fn read(&self, addr: u64, buf: &mut [u8]) -> KResult<()>;
    /// Copies `data` to guest address `addr`; `EFAULT` if any byte is unwritable.
    fn write(&self, addr: u64, data: &[u8]) -> KResult<()>;
    /// Reads bytes from `addr` into `buf` until the first NUL, returning the length without
    /// the NUL. `ENAMETOOLONG` when `buf` fills up first, `EFAULT` on a bad pointer.
    fn read_cstr(&self, addr: u64, buf: &mut [u8]) -> KResult<usize>;
}

/// Host system calls, made on behalf of the calling task.
///
/// Pointer arguments must address memory the host call can see: kernel memory in the
/// in-process backend. Calls whose effect must land in the program's own context (a mask,
/// a blocking wait) are not made here but returned as [`crate::Disposition::Host`].
pub trait Host {
    /// Makes the raw call and returns the kernel's raw result (`-errno` on failure).
    fn syscall(&self, nr: u32, args: [u64; 6]) -> i64;

    /// Whether the program's next image is loaded by the in-process runtime, which an exec
    /// then tells what it checked ([`crate::config::Handover`]), rather than by the host (the
    /// ptrace backend).
    fn runtime_loads_images(&self) -> bool {
        false
    }
}

/// One caught call's view of its thread.
pub struct TaskCtx<'a> {
    /// The program's memory.
    pub mem: &'a dyn GuestMemory,
    /// Host calls.
    pub host: &'a dyn Host,
    /// The signal mask the thread runs with when the call returns; handlers may change it.
    pub sigmask: u64,
    /// The thread's stack pointer at the call: scratch space is carved below its red zone.
    pub stack_pointer: u64,
    /// Bytes of scratch already pushed below the red zone (see [`TaskCtx::push_scratch`]).
    pub scratch_used: u64,
    /// What to do after a call returned as [`crate::Disposition::Host`] completes.
    pub after: Option<crate::syscall::AfterHost>,
    /// Lent by a backend whose host calls are not made by the calling thread (ptrace: the
    /// supervisor's), so that a wait cut by a timer runs its rounds in the task rather than
    /// in the handler (`sys/wake.rs`). `None` (in-process): the handler runs them.
    pub rounds: Option<&'a WaitSlot>,
}

/// Where the kernel and a backend that runs a wait's rounds in the task hand the wait back
/// and forth ([`TaskCtx::rounds`]).
#[derive(Default)]
pub struct WaitSlot {
    /// The next round the task makes, set by the handler; its disposition is then to be
    /// ignored, and the round made instead ([`crate::Kernel::resume`] takes its result).
    pub suspended: core::cell::Cell<Option<crate::sys::wake::Suspended>>,
    /// The end of the wait, for the handler [`crate::Kernel::resume`] calls again.
    pub resumed: core::cell::Cell<Option<crate::sys::wake::Ended>>,
}

/// Bytes below the stack pointer that the System V ABI lets leaf code use without moving it.
pub const RED_ZONE: u64 = 128;

impl<'a> TaskCtx<'a> {
    /// A context for a thread whose stack pointer is `stack_pointer` and mask `sigmask`.
    pub fn new(mem: &'a dyn GuestMemory, host: &'a dyn Host, sigmask: u64, stack_pointer: u64) -> Self {
        TaskCtx { mem, host, sigmask, stack_pointer, scratch_used: 0, after: None, rounds: None }
    }

    /// Copies `data` onto the program's stack, below the red zone, where it stays valid until
    /// the call returned as [`crate::Disposition::Host`] completes. Returns its guest address.
    /// Used to hand a rewritten argument (a path, a struct) to a call run in the program's
    /// own context.
    pub fn push_scratch(&mut self, data: &[u8]) -> KResult<u64> {
        let len = (data.len() as u64 + 15) & !15;
        let addr = self.stack_pointer.checked_sub(RED_ZONE + self.scratch_used + len).ok_or(Errno::EFAULT)?;
        self.mem.write(addr, data)?;
        self.scratch_used += len;
        Ok(addr)
    }

    /// Reads a NUL-terminated string (a path, an argument) of at most `max` bytes into a
    /// buffer of its own size. Most strings are short: they are read through a small buffer on
    /// the stack, and only a long one costs a second read into a buffer of `max` bytes.
    pub fn read_cstring(&self, addr: u64, max: usize) -> KResult<Vec<u8>> {
        if addr == 0 {
            return Err(Errno::EFAULT);
        }
        let mut small = [0u8; 256];
        let cap = small.len().min(max);
        match self.mem.read_cstr(addr, &mut small[..cap]) {
            Ok(n) => return Ok(small[..n].to_vec()),
            Err(Errno::ENAMETOOLONG) if max > cap => {}
            Err(e) => return Err(e),
        }
        let mut big = alloc::vec![0u8; max];
        let n = self.mem.read_cstr(addr, &mut big)?;
        big.truncate(n);
        big.shrink_to_fit();
        Ok(big)
    }

    /// Reads one `u64` from guest memory.
    pub fn read_u64(&self, addr: u64) -> KResult<u64> {
        let mut b = [0u8; 8];
        self.mem.read(addr, &mut b)?;
        Ok(u64::from_ne_bytes(b))
    }

    /// Reads a NULL-terminated array of string pointers (`argv`, `envp`).
    pub fn read_string_array(&self, addr: u64, max_total: usize) -> KResult<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        if addr == 0 {
            return Ok(out);
        }
        let mut total = 0usize;
        for i in 0.. {
            let ptr = self.read_u64(addr + i * 8)?;
            if ptr == 0 {
                break;
            }
            // MAX_ARG_STRLEN: Linux refuses longer single arguments with E2BIG.
            let s = self.read_cstring(ptr, crate::abi::PATH_MAX * 32).map_err(|e| {
                if e == Errno::ENAMETOOLONG {
                    Errno::E2BIG
                } else {
                    e
                }
            })?;
            total += s.len() + 1 + 8;
            if total > max_total {
                return Err(Errno::E2BIG);
            }
            out.push(s);
        }
        Ok(out)
    }

    /// The calling thread's id.
    pub fn tid(&self) -> u32 {
        self.host_call(syscalls::Sysno::gettid, [0; 6]) as u32
    }

    /// Whether thread `tid` of this process still exists.
    pub fn thread_alive(&self, tid: u32) -> bool {
        let pid = self.host_call(syscalls::Sysno::getpid, [0; 6]) as u64;
        self.host_call(syscalls::Sysno::tgkill, [pid, u64::from(tid), 0, 0, 0, 0]) != Errno::ESRCH.ret()
    }

    /// Makes a host call.
    pub fn host_call(&self, nr: syscalls::Sysno, args: [u64; 6]) -> i64 {
        self.host.syscall(nr.id() as u32, args)
    }
}
