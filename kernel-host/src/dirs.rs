//! Directory order: in reproducible mode `getdents64` lists a directory sorted by name, so that
//! `ls -f`, `os.listdir` and `readdir` loops see the same order on every run, whatever order
//! the filesystem keeps (hash order on ext4, creation order on tmpfs).
//!
//! The first read of a directory (at offset 0) reads all of it from the host, sorts it and
//! keeps it, keyed by descriptor and inode; later reads are served from the copy. `d_off` of
//! each entry is its position, so `telldir` values are positions too.
//! See `getdents64(2)` and `linux_dirent64`.

use crate::sync::SpinLock;
use alloc::vec::Vec;

/// Fixed part of a `linux_dirent64`: `d_ino` (8), `d_off` (8), `d_reclen` (2), `d_type` (1).
const HEADER: usize = 19;

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Inode number.
    pub ino: u64,
    /// File type (`DT_*`).
    pub kind: u8,
    /// Name, without the NUL.
    pub name: Vec<u8>,
}

impl Entry {
    /// Size of this entry as a `linux_dirent64`, padded to 8 bytes.
    pub fn reclen(&self) -> usize {
        (HEADER + self.name.len() + 1).div_ceil(8) * 8
    }

    /// Appends the `linux_dirent64` form, with `d_off` = `off`.
    pub fn write(&self, off: u64, out: &mut Vec<u8>) {
        let reclen = self.reclen();
        let start = out.len();
        out.extend_from_slice(&self.ino.to_ne_bytes());
        out.extend_from_slice(&off.to_ne_bytes());
        out.extend_from_slice(&(reclen as u16).to_ne_bytes());
        out.push(self.kind);
        out.extend_from_slice(&self.name);
        out.resize(start + reclen, 0);
    }
}

/// Parses the `linux_dirent64` records of one host `getdents64` result. Malformed records end
/// the parse (the unchecked bytes come from the host kernel, but a short one must not loop).
pub fn parse(buf: &[u8], out: &mut Vec<Entry>) {
    let mut at = 0;
    while at + HEADER <= buf.len() {
        let word = |i: usize| u64::from_ne_bytes(buf[i..i + 8].try_into().unwrap_or([0; 8]));
        let reclen = usize::from(u16::from_ne_bytes([buf[at + 16], buf[at + 17]]));
        if reclen < HEADER + 1 || at + reclen > buf.len() {
            break;
        }
        let name_area = &buf[at + HEADER..at + reclen];
        let len = name_area.iter().position(|&b| b == 0).unwrap_or(name_area.len());
        out.push(Entry { ino: word(at), kind: buf[at + 18], name: name_area[..len].to_vec() });
        at += reclen;
    }
}

/// A directory read through the kernel.
struct Listing {
    fd: i32,
    dev: u64,
    ino: u64,
    /// The host's offset once everything was read: while the descriptor is still there, the
    /// listing is current.
    host_end: i64,
    entries: Vec<Entry>,
    next: usize,
}

/// The listings of open directories.
#[derive(Default)]
pub struct Dirs {
    listings: SpinLock<Vec<Listing>>,
}

/// Where a read of a directory stands.
pub enum Read {
    /// The kernel does not know this directory at this offset: read it (and call
    /// [`Dirs::start`]).
    Unknown,
    /// Entries to return: the `linux_dirent64` bytes.
    Entries(Vec<u8>),
    /// The buffer cannot hold the next entry.
    TooSmall,
}

impl Dirs {
    /// Serves the next entries of descriptor `fd` (inode `dev:ino`, host offset `host_off`)
    /// that fit in `room` bytes.
    pub fn read(&self, fd: i32, dev: u64, ino: u64, host_off: i64, room: usize) -> Read {
        let mut listings = self.listings.lock();
        let Some(l) = listings
            .iter_mut()
            .find(|l| l.fd == fd && l.dev == dev && l.ino == ino && l.host_end == host_off)
        else {
            return Read::Unknown;
        };
        let mut out = Vec::new();
        while let Some(e) = l.entries.get(l.next) {
            if out.len() + e.reclen() > room {
                break;
            }
            e.write(l.next as u64 + 1, &mut out);
            l.next += 1;
        }
        if out.is_empty() && l.next < l.entries.len() {
            return Read::TooSmall;
        }
        Read::Entries(out)
    }

    /// A seek the program made (`seekdir`, `lseek`) on a directory the kernel lists: positions
    /// are entry indices. Moves the listing of `fd` to `pos` and returns the host offset to
    /// put the descriptor back at, or `None` if the kernel has no such listing.
    pub fn seek(&self, fd: i32, dev: u64, ino: u64, pos: i64) -> Option<i64> {
        let mut listings = self.listings.lock();
        let l = listings.iter_mut().find(|l| l.fd == fd && l.dev == dev && l.ino == ino)?;
        let pos = usize::try_from(pos).ok().filter(|&p| p <= l.entries.len())?;
        l.next = pos;
        Some(l.host_end)
    }

    /// Keeps a freshly read directory, sorted by name, replacing any listing of `fd`.
    pub fn start(&self, fd: i32, dev: u64, ino: u64, host_end: i64, mut entries: Vec<Entry>) {
        entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let mut listings = self.listings.lock();
        listings.retain(|l| l.fd != fd);
        listings.push(Listing { fd, dev, ino, host_end, entries, next: 0 });
    }

    /// Takes the lock before a fork.
    pub fn lock_for_fork(&self) {
        self.listings.raw_lock();
    }

    /// Releases it after the fork.
    pub fn unlock_after_fork(&self) {
        self.listings.raw_unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_come_back_sorted_in_pieces() {
        let names: [&[u8]; 3] = [b"zeta", b"alpha", b"mid"];
        let mut host = Vec::new();
        for (i, n) in names.iter().enumerate() {
            Entry { ino: i as u64 + 10, kind: 8, name: n.to_vec() }.write(99, &mut host);
        }
        let mut parsed = Vec::new();
        parse(&host, &mut parsed);
        assert_eq!(parsed.len(), 3);
        let dirs = Dirs::default();
        dirs.start(3, 1, 2, 500, parsed);
        let Read::Entries(first) = dirs.read(3, 1, 2, 500, 40) else { panic!() };
        assert!(matches!(dirs.read(3, 1, 2, 500, 8), Read::TooSmall));
        let mut got = Vec::new();
        parse(&first, &mut got);
        assert_eq!(got.iter().map(|e| e.name.as_slice()).collect::<Vec<_>>(), [b"alpha"]);
        let Read::Entries(rest) = dirs.read(3, 1, 2, 500, 4096) else { panic!() };
        got.clear();
        parse(&rest, &mut got);
        assert_eq!(got.iter().map(|e| e.name.as_slice()).collect::<Vec<_>>(), [&b"mid"[..], b"zeta"]);
        assert!(matches!(dirs.read(3, 1, 2, 500, 4096), Read::Entries(e) if e.is_empty()));
        assert!(matches!(dirs.read(3, 1, 2, 0, 4096), Read::Unknown));
        assert!(matches!(dirs.read(4, 1, 2, 500, 4096), Read::Unknown));
    }
}
