//! Memory the whole sandbox shares: a few pages every process maps, for state that must be the
//! same in all of them (the virtual clock of reproducible mode, the view's generation and the
//! directories it resolved, which program each process runs).
//!
//! The launcher creates it (a memfd) and hands it to every process as a reserved descriptor;
//! the runtime maps it at start-up, and fork and exec keep it. Only atomics live here: no
//! lock can be left held by a process that dies.

use crate::exes::SharedExes;
use crate::learned::LearnedSites;
use crate::timer_fds::TimerFds;
use crate::vfs::shared_dirs::SharedDirs;
use core::sync::atomic::AtomicU64;

/// The layout of the shared page.
#[repr(C)]
pub struct Shared {
    /// [`Shared::MAGIC`], written by the launcher: a runtime that finds anything else refuses
    /// to use the page.
    pub magic: AtomicU64,
    /// Nanoseconds the virtual clock has advanced since the sandbox started.
    pub clock_ns: AtomicU64,
    /// Bumped by every change to the overlay's names that can change where a path leads
    /// (a deletion, a rename, a new symlink or opaque directory): each process's cache of
    /// resolved directories is good only while this stays the same.
    pub vfs_generation: AtomicU64,
    /// Bumped by every copy-up: a path that led to a lower file may lead to its upper copy
    /// since, though no name changed (what an exec remembers, [`crate::sys::exec_memo`]).
    pub copy_ups: AtomicU64,
    /// Opaque directories the sandbox has made: until there is one, no lookup needs to look
    /// for them.
    pub opaque_dirs: AtomicU64,
    /// Files the sandbox changed that have other names in a lower tree (hard links), indexed
    /// by their lower identity: until there is one, no lookup needs to look in the index.
    pub indexed: AtomicU64,
    /// Directories the view resolved in the current generation, for every process to reuse.
    pub dirs: SharedDirs,
    /// The program each process runs, for another process's `/proc/PID/exe`.
    pub exes: SharedExes,
    /// Timer descriptors' timers in reproducible mode: one per descriptor, whichever
    /// processes hold it.
    pub timer_fds: TimerFds,
    /// Call sites of the program interpreter that every image loads patched.
    pub learned: LearnedSites,
}

impl Shared {
    /// A zeroed page, for a kernel that has no shared memory (one process, or a unit test).
    pub fn private() -> &'static Shared {
        let layout = core::alloc::Layout::new::<Shared>();
        // SAFETY: all-zero bytes are a valid `Shared` (every field is atomics); the allocation
        // has its layout and is never freed. Built in place: it is too large for a small stack.
        let shared = unsafe {
            let p = alloc::alloc::alloc_zeroed(layout).cast::<Shared>();
            if p.is_null() {
                alloc::alloc::handle_alloc_error(layout);
            }
            &*p
        };
        shared.magic.store(Shared::MAGIC, core::sync::atomic::Ordering::Relaxed);
        shared
    }
}

impl Shared {
    /// Size of the mapping: whole pages.
    pub const SIZE: usize = core::mem::size_of::<Shared>().div_ceil(4096) * 4096;
    /// Identifies a page laid out as this version expects.
    pub const MAGIC: u64 = 0x636c_6f69_7374_0007;
}

const _: () = assert!(core::mem::size_of::<Shared>() <= Shared::SIZE);
const _: () = assert!(Shared::SIZE <= 64 * 1024);
