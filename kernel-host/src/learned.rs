//! Call sites of the sandbox's program interpreter (`ld.so`) that one image learned can be
//! entered without a trap, kept in the memory the sandbox shares ([`crate::shared::Shared`]) so
//! that every later image loads the interpreter with them already patched.
//!
//! Each dynamic program's start runs the same few sites of the same interpreter (`brk`,
//! `access`, `openat`, `newfstatat`; in reproducible mode eight `rdtsc`s), once each: too few
//! times for a process to patch them (`interposer/rt/src/patch.rs`), and a trap or fault each
//! in every image. The table records them by the interpreter's identity and the site's
//! address in its ELF image; the runtime writes a patched copy of the file once per set of
//! sites and maps that instead (`interposer/rt/src/prepatch.rs`).
//!
//! Only atomics: a process that dies half way through an update leaves the table usable.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// Sites the table holds; later ones keep trapping.
pub const CAPACITY: usize = 48;

/// How the names of the patched copies (and of their temporaries) start, in the sandbox's
/// state directory: the launcher removes them with the directory's other private parts.
pub const COPY_PREFIX: &str = "ld-";

/// What a site is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SiteKind {
    /// `mov eax, NR` followed by `syscall`, for call `NR`.
    Syscall(u16),
    /// `rdtsc` and the instructions after it that its jump covers.
    Rdtsc,
}

/// A site: its address in the interpreter's ELF image (`p_vaddr` space) and what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Site {
    /// Where it starts, before the load bias: the `mov`, or the `rdtsc`.
    pub vaddr: u32,
    /// What it is.
    pub kind: SiteKind,
}

impl Site {
    /// One word, never 0 (bit 63 set): the table's form of the site.
    pub fn word(self) -> u64 {
        let kind = match self.kind {
            SiteKind::Syscall(nr) => u64::from(nr),
            SiteKind::Rdtsc => 1 << 16,
        };
        1 << 63 | kind << 32 | u64::from(self.vaddr)
    }

    fn unpack(word: u64) -> Option<Site> {
        if word >> 63 == 0 {
            return None;
        }
        let vaddr = word as u32;
        let kind = match (word >> 32) & 0x1_ffff {
            k if k == 1 << 16 => SiteKind::Rdtsc,
            k if k < 1 << 16 => SiteKind::Syscall(k as u16),
            _ => return None,
        };
        Some(Site { vaddr, kind })
    }
}

/// The claim states of [`LearnedSites::state`].
const FREE: u64 = 0;
const CLAIMING: u64 = 1;
const READY: u64 = 2;
const CLOSED: u64 = 3;

/// The table. All zeros is an empty one.
#[repr(C)]
pub struct LearnedSites {
    /// [`FREE`] until an image claims the table for its interpreter; [`READY`] once the
    /// identity below is written; [`CLOSED`] once the sandbox found it cannot use copies. One interpreter per sandbox: programs with another one
    /// (a musl or a 32-bit loader) just keep trapping.
    state: AtomicU64,
    /// The interpreter's `st_dev`, `st_ino` and size.
    file: [AtomicU64; 3],
    sites: [AtomicU64; CAPACITY],
}

impl LearnedSites {
    /// Whether the table is for the interpreter `file` (`st_dev`, `st_ino`, size), claiming it
    /// for that file if no image did yet.
    fn is_for(&self, file: [u64; 3], claim: bool) -> bool {
        let mut state = self.state.load(Ordering::Acquire);
        if state == FREE && claim {
            if self.state.compare_exchange(FREE, CLAIMING, Ordering::Acquire, Ordering::Acquire).is_ok() {
                for (slot, value) in self.file.iter().zip(file) {
                    slot.store(value, Ordering::Relaxed);
                }
                self.state.store(READY, Ordering::Release);
                return true;
            }
            state = self.state.load(Ordering::Acquire);
        }
        state == READY
            && self.file.iter().zip(file).all(|(slot, value)| slot.load(Ordering::Relaxed) == value)
    }

    /// Closes the table: nothing is learned or found in it any more.
    pub fn close(&self) {
        self.state.store(CLOSED, Ordering::Release);
    }

    /// Records `site` of interpreter `file`. Returns whether it was new.
    pub fn learn(&self, file: [u64; 3], site: Site) -> bool {
        if !self.is_for(file, true) {
            return false;
        }
        let word = site.word();
        for slot in &self.sites {
            match slot.compare_exchange(0, word, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(seen) if seen == word => return false,
                Err(_) => {}
            }
        }
        false
    }

    /// The size of the interpreter with `st_dev` and `st_ino` `id` the table is for, if it is
    /// for that file, and the sites learned of it, in address order.
    pub fn sites_by_identity(&self, id: (u64, u64)) -> Option<(u64, Vec<Site>)> {
        if self.state.load(Ordering::Acquire) != READY {
            return None;
        }
        let file = [id.0, id.1, self.file[2].load(Ordering::Relaxed)];
        (self.file[0].load(Ordering::Relaxed) == id.0 && self.file[1].load(Ordering::Relaxed) == id.1)
            .then(|| (file[2], self.sites_of(file)))
    }

    /// The sites learned for interpreter `file`, in address order; empty if the table is for
    /// another file.
    pub fn sites_of(&self, file: [u64; 3]) -> Vec<Site> {
        if !self.is_for(file, false) {
            return Vec::new();
        }
        let mut out: Vec<Site> =
            self.sites.iter().map_while(|slot| Site::unpack(slot.load(Ordering::Acquire))).collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> alloc::boxed::Box<LearnedSites> {
        // SAFETY: all zeros is a valid table of atomics.
        unsafe { alloc::boxed::Box::new(core::mem::zeroed()) }
    }

    #[test]
    fn sites_are_kept_for_one_interpreter() {
        let t = table();
        let ld = [1, 2, 215_000];
        let a = Site { vaddr: 0x2_09e2, kind: SiteKind::Syscall(21) };
        let b = Site { vaddr: 0x1_b7ab, kind: SiteKind::Rdtsc };
        assert!(t.sites_of(ld).is_empty());
        assert!(t.learn(ld, a));
        assert!(!t.learn(ld, a), "a second report of a site is not new");
        assert!(t.learn(ld, b));
        assert_eq!(t.sites_of(ld), alloc::vec![b, a]);
        // Another interpreter learns nothing and sees nothing.
        let other = [1, 3, 215_000];
        assert!(!t.learn(other, a));
        assert!(t.sites_of(other).is_empty());
        assert!(t.sites_of([1, 2, 215_001]).is_empty(), "same file, other size: changed");
        assert_eq!(t.sites_by_identity((1, 2)), Some((215_000, alloc::vec![b, a])));
        assert_eq!(t.sites_by_identity((1, 3)), None);
        t.close();
        assert!(t.sites_of(ld).is_empty() && t.sites_by_identity((1, 2)).is_none());
        assert!(!t.learn(ld, Site { vaddr: 5, kind: SiteKind::Rdtsc }));
    }

    #[test]
    fn a_full_table_refuses_more() {
        let t = table();
        let ld = [1, 2, 3];
        for i in 0..CAPACITY as u32 {
            assert!(t.learn(ld, Site { vaddr: i, kind: SiteKind::Syscall(0) }));
        }
        assert!(!t.learn(ld, Site { vaddr: 9999, kind: SiteKind::Syscall(0) }));
        assert_eq!(t.sites_of(ld).len(), CAPACITY);
    }

    #[test]
    fn words_round_trip() {
        for site in [
            Site { vaddr: 0, kind: SiteKind::Syscall(0) },
            Site { vaddr: u32::MAX, kind: SiteKind::Syscall(u16::MAX) },
            Site { vaddr: 77, kind: SiteKind::Rdtsc },
        ] {
            assert_eq!(Site::unpack(site.word()), Some(site));
        }
        assert_eq!(Site::unpack(0), None);
    }
}
