//! Memory the whole sandbox shares: one page every process maps, for state that must be the
//! same in all of them (the virtual clock of reproducible mode).
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
}

impl Shared {
    /// Size of the mapping.
    pub const SIZE: usize = 4096;
    /// Identifies a page laid out as this version expects.
    pub const MAGIC: u64 = 0x636c_6f69_7374_0001;
}

const _: () = assert!(core::mem::size_of::<Shared>() <= Shared::SIZE);
