//! Directory listings as the view shows them: an overlay directory lists its upper entries
//! and the lower entries not deleted or replaced there; every directory lists the mounts
//! inside it.

use super::host::Hc;
use super::mount::Layers;
use super::path::{self, host_cpath};
use super::walk::{Node, Place};
use super::Vfs;
use crate::dirs::Entry;
use crate::errno::KResult;
use alloc::vec::Vec;

/// `DT_DIR`.
const DT_DIR: u8 = 4;

/// A directory entry's type (`DT_*`) for a file of type `kind` (`S_IFMT` bits): the same
/// bits, shifted.
fn dirent_type(kind: u32) -> u8 {
    (kind >> 12) as u8
}

impl Vfs {
    /// Where the lower directory under an upper one is, if it shows through (it exists and
    /// no opaque directory hides it).
    fn lower_dir_under(&self, h: Hc<'_>, node: &Node) -> Option<Vec<u8>> {
        let Layers::Overlay { lower, upper } = &self.mounts.get(node.mount).layers else { return None };
        if node.place != Place::Upper || h.is_opaque(&node.host) || self.opaque_above(h, upper, node.suffix())
        {
            return None;
        }
        let low = host_cpath(lower, node.suffix());
        h.lstat(&low).is_ok_and(|st| st.is_dir()).then_some(low)
    }

    /// Whether the host's own listing of the directory `node` differs from the view's, so
    /// that the kernel must serve it.
    pub fn needs_merge(&self, h: Hc<'_>, node: &Node) -> bool {
        node.place != Place::Passthrough
            && (self.mounts.children_of(&node.guest).next().is_some()
                || self.lower_dir_under(h, node).is_some())
    }

    /// The entries of directory `node`, sorted by name.
    pub fn listing(&self, h: Hc<'_>, node: &Node) -> KResult<Vec<Entry>> {
        let mut entries = h.list(&node.host)?;
        if let Some(low) = self.lower_dir_under(h, node) {
            let mut upper_names: Vec<Vec<u8>> = entries.iter().map(|e| e.name.clone()).collect();
            upper_names.sort_unstable();
            entries.retain(|e| !is_whiteout_entry(h, &node.host, e));
            for e in h.list(&low)? {
                if upper_names.binary_search(&e.name).is_err() {
                    entries.push(e);
                }
            }
        }
        for name in self.mounts.children_of(&node.guest) {
            // A mount shows what it holds; one that holds nothing (a hidden path that was not
            // there at the start) hides whatever the host has made there since. The kernel's
            // trees (`/proc`, `/sys`, `/dev`) are the host's: always there, never looked up.
            let Ok(mounted) = self.lookup(h, &path::join(&node.guest, name)) else { continue };
            let (ino, kind) = match (&mounted.place, &mounted.stat) {
                (_, Some(st)) => (st.ino(), dirent_type(st.kind())),
                (Place::Passthrough, None) => (1, DT_DIR),
                (_, None) => {
                    entries.retain(|e| e.name != name);
                    continue;
                }
            };
            // The mount covers whatever the layers have of that name (a host symlink under a
            // `--tmpfs`): it lists as the type mounted there, with the covered entry's inode
            // number, as a mount point lists on Linux.
            match entries.iter_mut().find(|e| e.name == name) {
                Some(e) => e.kind = kind,
                None => entries.push(Entry { ino, kind, name: name.to_vec() }),
            }
        }
        entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }
}

/// Whether an upper entry is a whiteout (a character device: its rdev tells).
fn is_whiteout_entry(h: Hc<'_>, dir: &[u8], e: &Entry) -> bool {
    const DT_CHR: u8 = 2;
    const DT_UNKNOWN: u8 = 0;
    if e.kind != DT_CHR && e.kind != DT_UNKNOWN {
        return false;
    }
    let p = [path::strip_nul(dir), b"/", &e.name, b"\0"].concat();
    h.lstat(&p).is_ok_and(|st| st.is_whiteout())
}
