//! Memory the whole sandbox shares: one page every process maps, for state that must be the
//! same in all of them (the virtual clock of reproducible mode, the view's generation).
//!
//! The launcher creates it (a memfd) and hands it to every process as a reserved descriptor;
//! the runtime maps it at start-up, and fork and exec keep it. Only atomics live here: no
//! lock can be left held by a process that dies.

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
    /// Opaque directories the sandbox has made: until there is one, no lookup needs to look
    /// for them.
    pub opaque_dirs: AtomicU64,
}

impl Shared {
    /// A zeroed page, for a kernel that has no shared memory (one process, or a unit test).
    pub fn private() -> &'static Shared {
        alloc::boxed::Box::leak(alloc::boxed::Box::new(Shared {
            magic: Shared::MAGIC.into(),
            clock_ns: 0.into(),
            vfs_generation: 0.into(),
            opaque_dirs: 0.into(),
        }))
    }
}

impl Shared {
    /// Size of the mapping.
    pub const SIZE: usize = 4096;
    /// Identifies a page laid out as this version expects.
    pub const MAGIC: u64 = 0x636c_6f69_7374_0001;
}

const _: () = assert!(core::mem::size_of::<Shared>() <= Shared::SIZE);
