//! The process: what image runs, its program break, its forks.
//!
//! After `execve` the host believes `cloister-rt` is the program. The runtime tells the kernel
//! what it really loaded ([`ProcessImage`]), and the kernel answers for it: `/proc/self/exe`,
//! `/proc/self/cmdline` and `/proc/self/auxv` (through [`crate::procfs`]) and a program break
//! that starts right after the program's own image rather than after the runtime's.

use crate::abi::{page_up, MAP_FIXED_NOREPLACE, MAP_PRIVATE_ANON, PROT_RW};
use crate::sync::SpinLock;
use crate::task::TaskCtx;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use syscalls::Sysno;

/// What the runtime loaded, as the program should see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessImage {
    /// Absolute path of the executable (the interpreter for a `#!` script), as
    /// `/proc/self/exe` shows it.
    pub exe: Vec<u8>,
    /// The program's arguments, each followed by a NUL, as `/proc/self/cmdline` shows them.
    pub cmdline: Vec<u8>,
    /// The auxiliary vector the program was given, as `/proc/self/auxv` shows it.
    pub auxv: Vec<u8>,
    /// Where the program's memory holds its environment strings (start, end), each
    /// `NAME=value` followed by a NUL (without the runtime's own variable), read when
    /// `/proc/self/environ` is: as the host reads its own area, so what the program wrote over
    /// its strings shows, and no image keeps a copy of its environment in its heap. `None`:
    /// an empty environment.
    pub environ_area: Option<(u64, u64)>,
    /// Where the program's break starts: at the end of its image, or (address randomisation)
    /// some pages above it.
    pub brk_start: u64,
}

/// Per-process state.
pub struct Process {
    image: ProcessImage,
    exe_cstr: Vec<u8>,
    brk: SpinLock<u64>,
    forks: AtomicU64,
    /// The number of the fork in progress (set under the `brk` lock).
    fork_index: AtomicU64,
}

impl Process {
    /// State for a freshly loaded image.
    pub fn new(image: ProcessImage) -> Self {
        let mut exe_cstr = image.exe.clone();
        exe_cstr.push(0);
        let brk = SpinLock::new(page_up(image.brk_start));
        Process { image, exe_cstr, brk, forks: AtomicU64::new(0), fork_index: AtomicU64::new(0) }
    }

    /// The loaded image.
    pub fn image(&self) -> &ProcessImage {
        &self.image
    }

    /// The executable's path with its terminating NUL.
    pub fn exe_cstr(&self) -> &[u8] {
        &self.exe_cstr
    }

    /// Takes every lock this subsystem holds, before a fork, and numbers the fork: the lock
    /// makes two forks racing from two threads get two numbers.
    pub fn lock_for_fork(&self) {
        self.brk.raw_lock();
        let index = self.forks.fetch_add(1, Ordering::Relaxed);
        self.fork_index.store(index, Ordering::Relaxed);
    }

    /// Releases what [`Process::lock_for_fork`] took; returns the fork's number.
    pub fn unlock_after_fork(&self, child: bool) -> u64 {
        let index = self.fork_index.load(Ordering::Relaxed);
        if child {
            self.forks.store(0, Ordering::Relaxed);
        }
        self.brk.raw_unlock();
        index
    }

    /// `brk(2)`: moves the break to `addr` if the pages can be mapped; always returns the
    /// break in force afterwards, as the raw system call does.
    pub fn brk(&self, task: &TaskCtx<'_>, addr: u64) -> u64 {
        let mut cur = self.brk.lock();
        let start = page_up(self.image.brk_start);
        // Below the start, or past the top of the user address space (where rounding up to
        // a page would wrap): the break stays where it is.
        const USER_TOP: u64 = 0x7fff_ffff_f000;
        if addr < start || addr > USER_TOP {
            return *cur;
        }
        let (old_end, new_end) = (page_up(*cur), page_up(addr));
        if new_end > old_end {
            let got = task.host_call(
                Sysno::mmap,
                [old_end, new_end - old_end, PROT_RW, MAP_PRIVATE_ANON | MAP_FIXED_NOREPLACE, u64::MAX, 0],
            );
            if got as u64 != old_end {
                if got >= 0 {
                    task.host_call(Sysno::munmap, [got as u64, new_end - old_end, 0, 0, 0, 0]);
                }
                return *cur;
            }
        } else if new_end < old_end {
            task.host_call(Sysno::munmap, [new_end, old_end - new_end, 0, 0, 0, 0]);
        }
        *cur = addr;
        addr
    }
}
