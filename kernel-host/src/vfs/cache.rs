//! What each process remembers of the view between calls: the directories it resolved and
//! the guest paths of the directory descriptors it made `*at` calls relative to. Both are good
//! for one generation of the overlay's names ([`crate::shared::Shared::vfs_generation`]); the
//! sandbox-wide table of resolved directories is [`super::shared_dirs`].

use super::host::Stat;
use super::walk::Layering;
use alloc::vec::Vec;

/// Directories resolved lately: lexical path → canonical path, valid for one generation of
/// the overlay's names (see [`crate::shared::Shared::vfs_generation`]). A directory known to be in the lower
/// tree only spares the lookups in it a call: the upper layer cannot have their names until
/// a directory is made there, which starts a new generation.
#[derive(Default)]
pub(crate) struct DirCache {
    generation: u64,
    entries: Vec<(Vec<u8>, CachedDir)>,
    next: usize,
}

/// A cached directory: its canonical path, and which layers its entries can come from.
type CachedDir = (Vec<u8>, Layering);

/// Entries a process keeps: enough for the directories a program works in at once.
const DIR_CACHE_LEN: usize = 64;

impl DirCache {
    pub(crate) fn get(&mut self, generation: u64, key: &[u8]) -> Option<CachedDir> {
        if generation != self.generation {
            self.entries.clear();
            self.generation = generation;
            return None;
        }
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    pub(crate) fn insert(&mut self, generation: u64, key: Vec<u8>, value: CachedDir) {
        if generation != self.generation {
            return;
        }
        if self.entries.len() < DIR_CACHE_LEN {
            self.entries.push((key, value));
        } else {
            self.entries[self.next] = (key, value);
            self.next = (self.next + 1) % DIR_CACHE_LEN;
        }
    }
}

/// Directory descriptors resolved lately: descriptor → guest path, each with the host's
/// identity of the directory it was for and the generation of the overlay's names, so that a
/// descriptor closed and reused, or a directory renamed since, is looked up afresh. Spares the
/// `readlink` of `/proc/self/fd/N` (several microseconds: procfs builds the path every time)
/// in every `*at` call relative to a descriptor. An entry also keeps what
/// [`super::Vfs::upper_only_below`] found for the descriptor, which holds as long as the entry
/// does: tar asks it at every file it makes, and it costs a host `stat` of a long path.
#[derive(Default)]
pub(crate) struct FdMemo {
    entries: Vec<FdMemoEntry>,
    next: usize,
}

struct FdMemoEntry {
    fd: i32,
    dev: u64,
    ino: u64,
    generation: u64,
    guest: Vec<u8>,
    upper_only: Option<bool>,
}

/// Descriptors a process keeps in [`FdMemo`]: the directories `*at` calls are relative to at
/// once (tar's destination, find's current directories).
const FD_MEMO_LEN: usize = 16;

impl FdMemo {
    fn find(&mut self, fd: i32, st: &Stat, generation: u64) -> Option<&mut FdMemoEntry> {
        self.entries
            .iter_mut()
            .find(|e| e.fd == fd && e.dev == st.dev() && e.ino == st.ino() && e.generation == generation)
    }

    /// The guest path of `fd`, still the directory `st` describes, in this generation.
    pub(crate) fn get(&mut self, fd: i32, st: &Stat, generation: u64) -> Option<Vec<u8>> {
        self.find(fd, st, generation).map(|e| e.guest.clone())
    }

    /// What [`super::Vfs::upper_only_below`] found for the same descriptor, if it asked.
    pub(crate) fn upper_only(&mut self, fd: i32, st: &Stat, generation: u64) -> Option<bool> {
        self.find(fd, st, generation).and_then(|e| e.upper_only)
    }

    /// Remembers what [`super::Vfs::upper_only_below`] found, with the entry it is about.
    pub(crate) fn set_upper_only(&mut self, fd: i32, st: &Stat, generation: u64, upper_only: bool) {
        if let Some(e) = self.find(fd, st, generation) {
            e.upper_only = Some(upper_only);
        }
    }

    pub(crate) fn insert(&mut self, fd: i32, st: &Stat, generation: u64, guest: Vec<u8>) {
        let entry = FdMemoEntry { fd, dev: st.dev(), ino: st.ino(), generation, guest, upper_only: None };
        if let Some(old) = self.entries.iter_mut().find(|e| e.fd == fd) {
            *old = entry;
        } else if self.entries.len() < FD_MEMO_LEN {
            self.entries.push(entry);
        } else {
            self.entries[self.next] = entry;
            self.next = (self.next + 1) % FD_MEMO_LEN;
        }
    }
}
