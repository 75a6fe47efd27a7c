//! Writes through an overlay: copy-up, whiteouts, opaque directories.
//!
//! A lower file is copied into the upper layer (data, mode, owner, times) the first time the
//! program changes it, into a file with no name (`O_TMPFILE`) that is linked in place when
//! whole, so that two processes copying the same file at once end with one whole copy and no
//! one sees half of one. Deleting a lower name
//! leaves a whiteout (a character device 0/0) in its place; a directory made where a lower
//! one was deleted is marked opaque (`user.overlay.opaque` = `y`) so that the old entries
//! stay hidden. Renaming a directory that has lower contents first copies all of it up and
//! marks the copy opaque ([`Vfs::copy_up_whole`]), as `mv` across file systems would copy:
//! the moved directory then no longer depends on where its lower tree was.

use super::host::{Hc, Stat, AT_REMOVEDIR, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use super::mount::Layers;
use super::path::{self, host_cpath};
use super::walk::{Node, Place};
use super::Vfs;
use crate::errno::{Errno, KResult};
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use syscalls::Sysno;

/// `RENAME_NOREPLACE`.
pub const RENAME_NOREPLACE: u64 = 1;
/// `RENAME_EXCHANGE`.
pub const RENAME_EXCHANGE: u64 = 2;

impl Vfs {
    fn overlay_of(&self, node: &Node) -> Option<(&[u8], &[u8])> {
        match &self.mounts.get(node.mount).layers {
            Layers::Overlay { lower, upper } => Some((lower, upper)),
            _ => None,
        }
    }

    /// Whether the lower tree has this name (so that removing it needs a whiteout).
    pub fn lower_has(&self, h: Hc<'_>, node: &Node) -> bool {
        match node.place {
            Place::Lower => true,
            Place::Upper if node.in_upper_only_dir => false,
            Place::Upper => self.overlay_of(node).is_some_and(|(lower, upper)| {
                !self.opaque_above(h, upper, node.suffix())
                    && h.lstat(&host_cpath(lower, node.suffix())).is_ok()
            }),
            _ => false,
        }
    }

    /// The device and inode number of the lower file a copied-up `node` came from: the numbers
    /// a `stat` shows, so that a file (a directory a program is extracting into, say) keeps
    /// its identity when the first write copies it up, as on overlayfs.
    pub fn lower_identity(&self, h: Hc<'_>, node: &Node) -> Option<(u64, u64)> {
        let (lower, upper) = self.overlay_of(node)?;
        if node.place != Place::Upper || node.in_upper_only_dir || self.opaque_above(h, upper, node.suffix())
        {
            return None;
        }
        if node.is_dir() && h.is_opaque(&node.host) {
            return None;
        }
        let st = h.lstat(&host_cpath(lower, node.suffix())).ok()?;
        (st.kind() == node.stat.as_ref()?.kind()).then(|| (st.dev(), st.ino()))
    }

    /// The link count a `stat` of `node` shows when it is the indexed copy of a lower file
    /// with several names (see [`Vfs::index_path`]): the lower file's, the number of names
    /// the view shows it by, rather than the copy's, which counts the index and only the names
    /// linked up so far.
    pub fn shown_nlink(&self, h: Hc<'_>, node: &Node, st: &Stat) -> Option<u64> {
        if node.place != Place::Upper || st.kind() != S_IFREG || st.nlink() < 2 || !self.any_indexed() {
            return None;
        }
        let (lower, _) = self.overlay_of(node)?;
        let low = h.lstat(&host_cpath(lower, node.suffix())).ok()?;
        let index = h.lstat(&self.index_path(low.dev(), low.ino())?).ok()?;
        (index.dev() == st.dev() && index.ino() == st.ino()).then(|| low.nlink())
    }

    /// Makes sure the upper layer has every directory from the mount's root down to the
    /// parent of `node`, copying them up from the lower tree.
    pub fn copy_up_parents(&self, h: Hc<'_>, node: &Node) -> KResult<()> {
        let Some((lower, upper)) = self.overlay_of(node) else { return Ok(()) };
        if node.in_upper_only_dir {
            return Ok(());
        }
        copy_up_dirs(h, lower, upper, path::parent(node.suffix()), || self.names_changed())
    }

    /// Copies a lower node into the upper layer (data too unless `with_data` is false, for an
    /// `O_TRUNC` open) and returns its upper path.
    pub fn copy_up(&self, h: Hc<'_>, node: &Node, with_data: bool) -> KResult<Vec<u8>> {
        let (lower, upper) = self.overlay_of(node).ok_or(Errno::EROFS)?;
        if node.place != Place::Lower {
            return Ok(node.host.clone());
        }
        let st = node.stat.as_ref().ok_or(Errno::ENOENT)?;
        self.copy_up_parents(h, node)?;
        let up = host_cpath(upper, node.suffix());
        let made = (|| {
            match st.kind() {
                S_IFDIR => copy_up_dirs(h, lower, upper, node.suffix(), || self.names_changed())?,
                S_IFLNK => {
                    let mut target = h.readlink(&node.host)?;
                    target.push(0);
                    match h.symlink(&target, &up) {
                        Ok(()) | Err(Errno::EEXIST) => h.copy_attrs(&up, st),
                        Err(e) => return Err(e),
                    }
                }
                S_IFREG if st.nlink() > 1 => self.copy_up_linked(h, node, &up, st, with_data)?,
                S_IFREG => copy_up_file(h, &node.host, &up, st, with_data)?,
                // Devices stay the host's; pipes and sockets have no contents to copy.
                S_IFCHR | super::host::S_IFBLK => return Err(Errno::EPERM),
                _ => match h.mknod(&up, st.mode(), 0) {
                    Ok(()) | Err(Errno::EEXIST) => h.copy_attrs(&up, st),
                    Err(e) => return Err(e),
                },
            }
            Ok(())
        })();
        // After the copy, finished or not (the upper layer may have the name now), so that a
        // lookup made meanwhile is not kept as current.
        self.copied_up();
        made.map(|()| up)
    }

    /// Copies up a lower file that has other names (hard links): one of its names copied up
    /// already left the copy in the index, and this name becomes a link of it; else this
    /// copy is made and indexed.
    fn copy_up_linked(&self, h: Hc<'_>, node: &Node, up: &[u8], st: &Stat, with_data: bool) -> KResult<()> {
        let Some(index) = self.index_path(st.dev(), st.ino()) else {
            return copy_up_file(h, &node.host, up, st, with_data);
        };
        match h.link(&index, up) {
            Ok(()) | Err(Errno::EEXIST) => return Ok(()),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        copy_up_file(h, &node.host, up, st, with_data)?;
        // Best effort: without the index entry the other names keep showing the lower file.
        // The index directory is made by its first entry: most runs never need it.
        let linked = match h.link(up, &index) {
            Err(Errno::ENOENT) => {
                let dir = [path::parent(path::strip_nul(&index)), b"\0"].concat();
                matches!(h.mkdir(&dir, 0o700), Ok(()) | Err(Errno::EEXIST)) && h.link(up, &index).is_ok()
            }
            r => r.is_ok(),
        };
        if linked {
            self.shared.indexed.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }

    /// The upper copy a lower file with other names got when one of its names was changed
    /// (see [`Vfs::index_path`]): linked in at this name (`suffix` of the overlay with layers
    /// `lower` and `upper`) too, so that this name shows the changed file; `None` when the
    /// file was not copied up through any name.
    pub(super) fn indexed_copy(
        &self,
        h: Hc<'_>,
        (lower, upper): (&[u8], &[u8]),
        suffix: &[u8],
        st: &Stat,
    ) -> Option<(Vec<u8>, Stat)> {
        if st.kind() != S_IFREG || st.nlink() < 2 || !self.any_indexed() {
            return None;
        }
        let index = self.index_path(st.dev(), st.ino())?;
        h.lstat(&index).ok()?;
        copy_up_dirs(h, lower, upper, path::parent(suffix), || self.names_changed()).ok()?;
        let up = host_cpath(upper, suffix);
        match h.link(&index, &up) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(_) => return None,
        }
        let copy = h.lstat(&up).ok()?;
        Some((up, copy))
    }

    /// Prepares a missing node for creation: its parents exist in the upper layer and a
    /// whiteout in its place is gone. Returns whether there was one (a directory made there
    /// must then be opaque).
    pub fn prepare_create(&self, h: Hc<'_>, node: &Node) -> KResult<bool> {
        if self.overlay_of(node).is_none() {
            return Ok(false);
        }
        self.copy_up_parents(h, node)?;
        if node.whiteout {
            h.unlink(&node.host, 0)?;
            self.names_changed();
        }
        Ok(node.whiteout)
    }

    /// Marks a directory just made in the upper layer opaque.
    pub fn make_opaque(&self, h: Hc<'_>, upper_path: &[u8]) -> KResult<()> {
        h.set_opaque(upper_path)?;
        self.shared.opaque_dirs.fetch_add(1, Ordering::AcqRel);
        self.names_changed();
        Ok(())
    }

    /// Removes `node` from the view: from the upper layer, and with a whiteout when the lower
    /// tree has it. A directory must already be empty in the view.
    pub fn remove(&self, h: Hc<'_>, node: &Node) -> KResult<()> {
        let is_dir = node.is_dir();
        let whiteout = self.lower_has(h, node);
        self.names_changed();
        if node.place == Place::Upper {
            if is_dir {
                // What is left in it are whiteouts of lower entries, which go with it.
                for e in h.list(&node.host)? {
                    let child = [path::strip_nul(&node.host), b"/", &e.name, b"\0"].concat();
                    h.unlink(&child, 0)?;
                }
            }
            h.unlink(&node.host, if is_dir { AT_REMOVEDIR } else { 0 })?;
        }
        if whiteout {
            self.copy_up_parents(h, node)?;
            let (_, upper) = self.overlay_of(node).ok_or(Errno::EROFS)?;
            h.mknod(&host_cpath(upper, node.suffix()), S_IFCHR, 0)?;
        }
        // Again after the change: a walk between the first bump and the change may have
        // remembered the old names under the new generation.
        self.names_changed();
        Ok(())
    }

    /// Renames `from` onto `to`, both in this overlay (`to` resolved without following),
    /// as `renameat2` with `flags`.
    pub fn rename(&self, h: Hc<'_>, from: &Node, to: &Node, flags: u64) -> KResult<()> {
        if from.guest == to.guest {
            return Ok(());
        }
        if path::is_within(&to.guest, &from.guest) {
            return Err(Errno::EINVAL);
        }
        if flags & RENAME_EXCHANGE != 0 {
            if !to.exists() {
                return Err(Errno::ENOENT);
            }
            if path::is_within(&from.guest, &to.guest) {
                return Err(Errno::EINVAL);
            }
            let (from_lower, to_lower) = (self.lower_has(h, from), self.lower_has(h, to));
            let a = self.copy_up_whole(h, from)?;
            let b = self.copy_up_whole(h, to)?;
            self.names_changed();
            h.rename(&a, &b, RENAME_EXCHANGE)?;
            // A directory that moved over a lower name must hide that name's entries.
            if from.is_dir() && to_lower && !h.is_opaque(&b) {
                self.make_opaque(h, &b)?;
            }
            if to.is_dir() && from_lower && !h.is_opaque(&a) {
                self.make_opaque(h, &a)?;
            }
            self.names_changed();
            return Ok(());
        }
        if to.exists() {
            if flags & RENAME_NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            match (from.is_dir(), to.is_dir()) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !self.listing(h, to)?.is_empty() => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
        }
        let from_lower = self.lower_has(h, from);
        let to_lower = to.exists() && self.lower_has(h, to);
        let src = self.copy_up_whole(h, from)?;
        self.copy_up_parents(h, to)?;
        self.names_changed();
        let dst = to.host_upper(self);
        if to.whiteout {
            h.unlink(&dst, 0)?;
        } else if to.place == Place::Upper && to.is_dir() {
            // Only whiteouts are left in it; the host's rename wants it empty.
            for e in h.list(&dst)? {
                h.unlink(&[path::strip_nul(&dst), b"/", &e.name, b"\0"].concat(), 0)?;
            }
        }
        h.rename(&src, &dst, 0)?;
        if from.is_dir() && (to.whiteout || to_lower) {
            self.make_opaque(h, &dst)?;
        }
        if from_lower {
            h.mknod(&from.host_upper(self), S_IFCHR, 0)?;
        }
        // Again after the change (see `remove`).
        self.names_changed();
        Ok(())
    }
}

impl Vfs {
    /// Copies `node` up so that the upper layer alone holds what the view shows there: a file
    /// as [`Vfs::copy_up`] does; a directory with lower contents with all of them, depth
    /// first, and then marked opaque, so that it can move to where its lower tree does not
    /// follow (a directory rename across layers, as `mv` across file systems would copy).
    pub fn copy_up_whole(&self, h: Hc<'_>, node: &Node) -> KResult<Vec<u8>> {
        if !node.is_dir() || !self.lower_has(h, node) {
            return self.copy_up(h, node, true);
        }
        let up = self.copy_up(h, node, true)?;
        for entry in self.listing(h, node)? {
            let child = self.lookup(h, &path::join(&node.guest, &entry.name))?;
            if child.exists() {
                self.copy_up_whole(h, &child)?;
            }
        }
        self.make_opaque(h, &up)?;
        // What the upper directory hid of the lower one is hidden whole now.
        for entry in h.list(&up)? {
            let child = [path::strip_nul(&up), b"/", &entry.name, b"\0"].concat();
            if h.lstat(&child).is_ok_and(|st| st.is_whiteout()) {
                h.unlink(&child, 0)?;
            }
        }
        Ok(up)
    }
}

impl Node {
    /// Where this node lives or would live in its overlay's upper layer.
    pub fn host_upper(&self, vfs: &Vfs) -> Vec<u8> {
        match vfs.overlay_of(self) {
            Some((_, upper)) => host_cpath(upper, self.suffix()),
            None => self.host.clone(),
        }
    }
}

/// Creates in `upper` every directory from the root down to `dir` (a suffix), each with the
/// lower directory's mode, owner and times. `made` is told before the first is made: lookups
/// that took a directory for lower-only must look again.
fn copy_up_dirs(h: Hc<'_>, lower: &[u8], upper: &[u8], dir: &[u8], made: impl Fn()) -> KResult<()> {
    if dir.is_empty() || dir == b"/" {
        return Ok(());
    }
    // Most of the time the whole chain is there already.
    if h.lstat(&host_cpath(upper, dir)).is_ok_and(|st| st.is_dir()) {
        return Ok(());
    }
    let mut end = 0;
    loop {
        end = match dir[end + 1..].iter().position(|&b| b == b'/') {
            Some(i) => end + 1 + i,
            None => dir.len(),
        };
        let up = host_cpath(upper, &dir[..end]);
        match h.lstat(&up) {
            Ok(st) if st.is_dir() => {}
            Ok(_) => return Err(Errno::ENOTDIR),
            Err(_) => {
                let st = h.lstat(&host_cpath(lower, &dir[..end]))?;
                if st.kind() != S_IFDIR {
                    return Err(Errno::ENOTDIR);
                }
                made();
                match h.mkdir(&up, 0o700) {
                    Ok(()) => h.copy_attrs(&up, &st),
                    Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if end == dir.len() {
            return Ok(());
        }
    }
}

/// Copies a regular file's data and attributes from `low` to `up`.
fn copy_up_file(h: Hc<'_>, low: &[u8], up: &[u8], st: &Stat, with_data: bool) -> KResult<()> {
    const O_WRONLY_CREAT_EXCL: u64 = 0o1 | 0o100 | 0o200;
    let cloexec = crate::abi::O_CLOEXEC;
    let tid = h.call(Sysno::gettid, [0; 6]).unwrap_or(0);
    let tmp = [
        path::strip_nul(path::parent(path::strip_nul(up))),
        alloc::format!("/.cloister-copy-up.{tid}\0").as_bytes(),
    ]
    .concat();
    let _ = h.unlink(&tmp, 0);
    let out = h.open(&tmp, O_WRONLY_CREAT_EXCL | cloexec, 0o600)?;
    let copied = if with_data { copy_data(h, low, out, st.size()) } else { Ok(()) };
    h.close(out);
    let done = copied.and_then(|()| {
        copy_xattrs(h, low, &tmp);
        h.copy_attrs(&tmp, st);
        h.rename(&tmp, up, RENAME_NOREPLACE)
    });
    match done {
        Ok(()) => Ok(()),
        // Another process copied it first: its copy is as good as this one.
        Err(Errno::EEXIST) => {
            let _ = h.unlink(&tmp, 0);
            Ok(())
        }
        Err(e) => {
            let _ = h.unlink(&tmp, 0);
            Err(e)
        }
    }
}

/// Copies `size` bytes of `src` into descriptor `out`, extent by extent (`SEEK_DATA` /
/// `SEEK_HOLE`) so that a sparse file stays sparse, each by `copy_file_range` (a reflink or an
/// in-kernel copy) where the host can, else through a buffer.
fn copy_data(h: Hc<'_>, src: &[u8], out: i32, size: u64) -> KResult<()> {
    const SEEK_DATA: u64 = 3;
    const SEEK_HOLE: u64 = 4;
    let input = h.open(src, crate::abi::O_CLOEXEC, 0)?;
    let mut result = Ok(());
    let mut at = 0u64;
    while at < size {
        // A file system without extents says the whole file is data.
        let (start, end) = match h.call(Sysno::lseek, [input as u64, at, SEEK_DATA, 0, 0, 0]) {
            Ok(start) => {
                let end = h
                    .call(Sysno::lseek, [input as u64, start as u64, SEEK_HOLE, 0, 0, 0])
                    .unwrap_or(size as i64);
                (start as u64, (end as u64).min(size))
            }
            Err(_) => break,
        };
        // A file that changes under the copy could report an extent that does not move on.
        if end <= at {
            break;
        }
        if let Err(e) = copy_range(h, input, out, start, end) {
            result = Err(e);
            break;
        }
        at = end;
    }
    h.close(input);
    // The file's length includes a hole at its end.
    result.and_then(|()| h.call(Sysno::ftruncate, [out as u64, size, 0, 0, 0, 0]).map(drop))
}

/// Copies bytes `start..end` of `input` to the same place in `out`.
fn copy_range(h: Hc<'_>, input: i32, out: i32, start: u64, end: u64) -> KResult<()> {
    let mut off_in = start;
    let mut off_out = start;
    while off_in < end {
        let len = (end - off_in).min(1 << 30);
        let args = [
            input as u64,
            &mut off_in as *mut u64 as u64,
            out as u64,
            &mut off_out as *mut u64 as u64,
            len,
            0,
        ];
        match h.call(Sysno::copy_file_range, args) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(_) => {
                h.call(Sysno::lseek, [input as u64, off_in, 0, 0, 0, 0])?;
                h.call(Sysno::lseek, [out as u64, off_out, 0, 0, 0, 0])?;
                return copy_by_buffer(h, input, out, end - off_in);
            }
        }
    }
    Ok(())
}

/// Copies the extended attributes a program may see (not the overlay's own, not `security.*`,
/// which need privileges the sandbox should not use) from `low` to `up` (a file, or the
/// `/proc/self/fd` link of one, which is followed). Best effort, as overlayfs's copy-up of
/// attributes the upper file system refuses.
fn copy_xattrs(h: Hc<'_>, low: &[u8], up: &[u8]) {
    let mut names = alloc::vec![0u8; 4096];
    let Ok(n) = h.call(
        Sysno::llistxattr,
        [low.as_ptr() as u64, names.as_mut_ptr() as u64, names.len() as u64, 0, 0, 0],
    ) else {
        return;
    };
    let mut value = alloc::vec![0u8; 64 * 1024];
    for name in names[..n as usize].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"security.")
            || name.starts_with(b"trusted.overlay.")
            || super::host::is_view_xattr(name)
        {
            continue;
        }
        let cname = [name, b"\0"].concat();
        let got = h.call(
            Sysno::lgetxattr,
            [low.as_ptr() as u64, cname.as_ptr() as u64, value.as_mut_ptr() as u64, value.len() as u64, 0, 0],
        );
        if let Ok(len) = got {
            let _ = h.call(
                Sysno::lsetxattr,
                [up.as_ptr() as u64, cname.as_ptr() as u64, value.as_ptr() as u64, len as u64, 0, 0],
            );
        }
    }
}

/// Copies `len` bytes from `input`'s offset to `out`'s through a buffer.
fn copy_by_buffer(h: Hc<'_>, input: i32, out: i32, mut len: u64) -> KResult<()> {
    let mut buf = alloc::vec![0u8; 64 * 1024];
    while len > 0 {
        let want = (buf.len() as u64).min(len);
        let n = h.call(Sysno::read, [input as u64, buf.as_mut_ptr() as u64, want, 0, 0, 0])?;
        if n == 0 {
            return Ok(());
        }
        len -= n as u64;
        let mut done = 0;
        while done < n as usize {
            let w = h.call(
                Sysno::write,
                [out as u64, buf[done..].as_ptr() as u64, (n as usize - done) as u64, 0, 0, 0],
            )?;
            done += w as usize;
        }
    }
    Ok(())
}

/// Whether a mode names a type the overlay may create.
pub fn creatable(mode: u32) -> bool {
    !matches!(mode & S_IFMT, S_IFCHR | super::host::S_IFBLK)
}
