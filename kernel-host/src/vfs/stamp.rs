//! File times and inode numbers in reproducible mode. The host stamps a file with its own
//! clock when the program writes it, and numbers inodes as its file system likes: both differ
//! from run to run. For the sandbox's own files (the overlay's upper layer, private tmpfs
//! trees) the view keeps a virtual modification time instead, in an extended attribute
//! ([`STAMP_XATTR`]), and shows a number derived from the guest path:
//!
//! - a file opened for writing, a directory whose entries change, a file whose times the
//!   program sets, is stamped with the virtual clock's time at that call;
//! - a file the program created is stamped the first time it is looked at (a `stat`): its
//!   contents were written by then, at a point in the program's run that is the same every
//!   run;
//! - a `stat` shows the stamp as its access, modification and change times, the hash of the
//!   guest path as its inode number, [`VIRTUAL_DEV`] as its device, and the program's virtual
//!   user and group as its owner.
//!
//! Host files the view only reads keep the host's times and numbers: they do not change
//! between runs on one machine. A symlink cannot carry the attribute: it shows the epoch.

use super::host::{Hc, Stat, S_IFLNK};
use super::mount::Layers;
use super::walk::{Node, Place};
use super::Vfs;
use syscalls::Sysno;

/// The extended attribute that holds a file's virtual modification time: nanoseconds since
/// 1970, 8 bytes, little-endian.
pub const STAMP_XATTR: &[u8] = b"user.cloister.mtime\0";
/// The device number the sandbox's own files show.
pub const VIRTUAL_DEV: u64 = 0xc15;

impl Vfs {
    /// Whether `node` is one of the sandbox's own files, whose times the view keeps.
    pub fn is_private(&self, node: &Node) -> bool {
        self.writes_privately(node.mount)
            && match node.place {
                Place::Upper | Place::Direct => true,
                Place::Lower | Place::Missing | Place::Passthrough => false,
            }
    }

    /// Whether what the program writes in mount `index` lands in the sandbox's own directory
    /// (an overlay's upper layer, a private tree), where the view keeps file times.
    pub fn writes_privately(&self, index: usize) -> bool {
        match &self.mounts.get(index).layers {
            Layers::Overlay { .. } => true,
            Layers::Direct { private, .. } => *private,
            Layers::Passthrough => false,
        }
    }

    /// Records `ns` as the modification time of the private file at host path `host`.
    pub fn stamp(&self, h: Hc<'_>, host: &[u8], ns: u64) {
        let value = ns.to_le_bytes();
        let _ = h.call(
            Sysno::lsetxattr,
            [host.as_ptr() as u64, STAMP_XATTR.as_ptr() as u64, value.as_ptr() as u64, 8, 0, 0],
        );
    }

    /// The stamp of the private file at `host`; one is made (`now`) if it has none.
    fn stamp_of(&self, h: Hc<'_>, host: &[u8], now: impl FnOnce() -> u64) -> Option<u64> {
        let mut value = [0u8; 8];
        let got = h.call(
            Sysno::lgetxattr,
            [host.as_ptr() as u64, STAMP_XATTR.as_ptr() as u64, value.as_mut_ptr() as u64, 8, 0, 0],
        );
        match got {
            Ok(8) => Some(u64::from_le_bytes(value)),
            _ => {
                let ns = now();
                self.stamp(h, host, ns);
                // A link or a file system without user attributes keeps none.
                let kept = h.call(
                    Sysno::lgetxattr,
                    [host.as_ptr() as u64, STAMP_XATTR.as_ptr() as u64, value.as_mut_ptr() as u64, 8, 0, 0],
                );
                matches!(kept, Ok(8)).then_some(ns)
            }
        }
    }

    /// Rewrites a `struct stat` of `node` for reproducible mode: a private file shows its
    /// stamp (made now, `now()`, if it has none; `epoch` where it cannot keep one), a stable
    /// inode number and [`VIRTUAL_DEV`].
    pub fn reproducible_stat(
        &self,
        h: Hc<'_>,
        node: &Node,
        st: &mut Stat,
        epoch: u64,
        now: impl FnOnce() -> u64,
    ) {
        if !self.is_private(node) {
            return;
        }
        let ns =
            if st.kind() == S_IFLNK { epoch } else { self.stamp_of(h, &node.host, now).unwrap_or(epoch) };
        let (sec, nsec) = ((ns / 1_000_000_000).to_ne_bytes(), (ns % 1_000_000_000).to_ne_bytes());
        for at in [72, 88, 104] {
            st.raw[at..at + 8].copy_from_slice(&sec);
            st.raw[at + 8..at + 16].copy_from_slice(&nsec);
        }
        st.raw[0..8].copy_from_slice(&VIRTUAL_DEV.to_ne_bytes());
        st.raw[8..16].copy_from_slice(&inode_of(&node.guest).to_ne_bytes());
        st.raw[28..32].copy_from_slice(&crate::sys::ids::VIRTUAL_UID.to_ne_bytes());
        st.raw[32..36].copy_from_slice(&crate::sys::ids::VIRTUAL_GID.to_ne_bytes());
    }

    /// Rewrites a `struct statx` the same way (`buf` as the kernel filled it).
    pub fn reproducible_statx(
        &self,
        h: Hc<'_>,
        node: &Node,
        buf: &mut [u8],
        epoch: u64,
        now: impl FnOnce() -> u64,
    ) {
        if !self.is_private(node) || buf.len() < 256 {
            return;
        }
        let mode = u16::from_ne_bytes([buf[28], buf[29]]) as u32;
        let ns = if mode & super::host::S_IFMT == S_IFLNK {
            epoch
        } else {
            self.stamp_of(h, &node.host, now).unwrap_or(epoch)
        };
        let (sec, nsec) = ((ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as u32);
        // stx_atime, stx_btime, stx_ctime, stx_mtime: struct statx_timestamp at 64, 80, 96, 112.
        for at in [64, 80, 96, 112] {
            buf[at..at + 8].copy_from_slice(&sec.to_ne_bytes());
            buf[at + 8..at + 12].copy_from_slice(&nsec.to_ne_bytes());
        }
        buf[32..40].copy_from_slice(&inode_of(&node.guest).to_ne_bytes());
        // stx_uid, stx_gid.
        buf[20..24].copy_from_slice(&crate::sys::ids::VIRTUAL_UID.to_ne_bytes());
        buf[24..28].copy_from_slice(&crate::sys::ids::VIRTUAL_GID.to_ne_bytes());
        // stx_dev_major, stx_dev_minor.
        buf[136..140].copy_from_slice(&0u32.to_ne_bytes());
        buf[140..144].copy_from_slice(&(VIRTUAL_DEV as u32).to_ne_bytes());
    }
}

/// A stable inode number for a guest path (FNV-1a), never 0.
pub fn inode_of(guest: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in guest {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash.max(1)
}
