//! Resolved directories shared by the whole sandbox: what every process's own cache
//! ([`super::DirCache`]) holds, in the shared page, so that a fresh process image (every `exec`)
//! starts with the directories its predecessors resolved instead of walking `/usr/lib/...`
//! component by component again.
//!
//! A fixed table of slots, each a [`crate::seqlock::SeqWords`] record: nothing ever waits, and
//! a slot being written, or torn by a writer that died, reads as a miss. Entries are good for
//! one generation of the overlay's names, like the per-process cache's.
//!
//! The page is writable by every process of the sandbox, so what a slot holds is checked before
//! use: lengths within the slot, and a canonical path that is absolute with no `.`, `..` or
//! empty components. A process that scribbles here can mislead the view of the sandbox it runs
//! in, no more: the floor is below the view.

use super::walk::Layering;
use crate::seqlock::{pack, unpack, SeqWords};
use alloc::vec::Vec;

/// Slots in the table.
pub const SLOTS: usize = 128;
/// Words of a slot's payload: its lengths and layering, then the key's bytes, then the
/// canonical path's (none when it equals the key).
const WORDS: usize = 30;
/// Bytes of key and canonical path a slot holds.
const BYTES: usize = (WORDS - 1) * 8;

/// One slot: its generation, then its payload (lengths and layering, then the bytes).
pub type DirSlot = SeqWords<{ WORDS + 1 }>;

/// The shared table of resolved directories.
#[repr(C)]
pub struct SharedDirs {
    slots: [DirSlot; SLOTS],
}

/// FNV-1a: a key's slot.
fn hash(key: &[u8]) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h % SLOTS as u64) as usize
}

fn layering_code(l: Layering) -> u64 {
    match l {
        Layering::Both => 0,
        Layering::LowerOnly => 1,
        Layering::UpperOnly => 2,
    }
}

/// Whether `path` is a canonical absolute path: `/`, or `/`-separated names that are not
/// empty, `.` or `..`.
fn is_canonical(path: &[u8]) -> bool {
    path == b"/"
        || (path.first() == Some(&b'/')
            && !path.contains(&0)
            && path[1..].split(|&b| b == b'/').all(|c| !c.is_empty() && c != b"." && c != b".."))
}

impl SharedDirs {
    /// The two slots `key` may be in.
    fn candidates(&self, key: &[u8]) -> [&DirSlot; 2] {
        let i = hash(key);
        [&self.slots[i], &self.slots[(i + 1) % SLOTS]]
    }

    /// The canonical path and layering of lexical directory `key`, if a process of the sandbox
    /// resolved it in generation `generation`.
    pub fn get(&self, generation: u64, key: &[u8]) -> Option<(Vec<u8>, Layering)> {
        self.candidates(key).into_iter().find_map(|slot| entry(slot, generation, key))
    }

    /// Records that lexical directory `key` is `canonical` with `layering` in generation
    /// `generation`; does nothing when the pair does not fit or the slot is busy.
    pub fn insert(&self, generation: u64, key: &[u8], canonical: &[u8], layering: Layering) {
        let same = canonical == key;
        let len = key.len() + if same { 0 } else { canonical.len() };
        if len > BYTES || key.is_empty() {
            return;
        }
        let [a, b] = self.candidates(key);
        // The key's own slot, else one of an older generation, else the first.
        let slot = [a, b]
            .into_iter()
            .find(|s| entry(s, generation, key).is_some())
            .or_else(|| [a, b].into_iter().find(|s| s.word(0) != generation))
            .unwrap_or(a);
        // A slot being written (or left so by a writer that died) is passed over for the other.
        let slot = if !slot.busy() {
            slot
        } else if !a.busy() {
            a
        } else {
            b
        };
        let canon_len = if same { 0 } else { canonical.len() as u64 };
        let mut bytes = [0u8; BYTES];
        bytes[..key.len()].copy_from_slice(key);
        if !same {
            bytes[key.len()..len].copy_from_slice(canonical);
        }
        let mut words = [0u64; WORDS + 1];
        words[0] = generation;
        words[1] = key.len() as u64 | canon_len << 16 | layering_code(layering) << 32;
        pack(&bytes, &mut words[2..]);
        slot.write(&words);
    }
}

/// A slot's entry, if it is `key`'s in `generation` and was not being written meanwhile.
fn entry(slot: &DirSlot, generation: u64, key: &[u8]) -> Option<(Vec<u8>, Layering)> {
    if slot.word(0) != generation {
        return None;
    }
    let words = slot.read()?;
    if words[0] != generation {
        return None;
    }
    let head = words[1];
    let mut bytes = [0u8; BYTES];
    unpack(&words[2..], &mut bytes);
    let (key_len, canon_len) = ((head & 0xffff) as usize, (head >> 16 & 0xffff) as usize);
    let layering = match head >> 32 {
        0 => Layering::Both,
        1 => Layering::LowerOnly,
        2 => Layering::UpperOnly,
        _ => return None,
    };
    if key_len + canon_len > BYTES || bytes[..key_len] != *key {
        return None;
    }
    let canonical = if canon_len == 0 { &bytes[..key_len] } else { &bytes[key_len..key_len + canon_len] };
    is_canonical(canonical).then(|| (canonical.to_vec(), layering))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> alloc::boxed::Box<SharedDirs> {
        // SAFETY: all-zero bytes are a valid `SharedDirs` (atomics), allocated with its layout.
        unsafe {
            let layout = core::alloc::Layout::new::<SharedDirs>();
            alloc::boxed::Box::from_raw(alloc::alloc::alloc_zeroed(layout).cast::<SharedDirs>())
        }
    }

    #[test]
    fn entries_are_found_for_their_generation_only() {
        let t = table();
        t.insert(3, b"/lib", b"/usr/lib", Layering::LowerOnly);
        t.insert(3, b"/usr/bin", b"/usr/bin", Layering::Both);
        assert_eq!(t.get(3, b"/lib"), Some((b"/usr/lib".to_vec(), Layering::LowerOnly)));
        assert_eq!(t.get(3, b"/usr/bin"), Some((b"/usr/bin".to_vec(), Layering::Both)));
        assert_eq!(t.get(4, b"/lib"), None);
        assert_eq!(t.get(3, b"/li"), None);
        t.insert(4, b"/lib", b"/usr/lib", Layering::UpperOnly);
        assert_eq!(t.get(4, b"/lib"), Some((b"/usr/lib".to_vec(), Layering::UpperOnly)));
    }

    #[test]
    fn what_does_not_fit_or_is_not_canonical_is_not_used() {
        let t = table();
        let long = [b'/'; 1].iter().chain([b'a'; 300].iter()).copied().collect::<Vec<u8>>();
        t.insert(1, &long, &long, Layering::Both);
        assert_eq!(t.get(1, &long), None);
        t.insert(1, b"/x", b"/../etc", Layering::Both);
        assert_eq!(t.get(1, b"/x"), None);
    }

    #[test]
    fn a_slot_being_written_reads_as_a_miss() {
        let t = table();
        t.insert(1, b"/etc", b"/etc", Layering::Both);
        let i = hash(b"/etc");
        t.slots[i].abandon();
        assert_eq!(t.get(1, b"/etc"), None);
        // The writer takes the other slot, and readers find it there.
        t.insert(1, b"/etc", b"/etc", Layering::Both);
        assert_eq!(t.get(1, b"/etc"), Some((b"/etc".to_vec(), Layering::Both)));
        assert!(t.slots[i].busy(), "the busy slot was written");
    }
}
