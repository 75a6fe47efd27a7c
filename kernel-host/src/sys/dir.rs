//! `getdents64`: listings served by the kernel (see [`crate::dirs`]): sorted in reproducible
//! mode, and merged across an overlay's layers where the view needs it.

use super::ret;
use crate::dirs::{self, Read};
use crate::errno::{Errno, KResult};
use crate::kernel::Kernel;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;
use alloc::vec::Vec;
use syscalls::Sysno;

/// `SEEK_CUR`.
const SEEK_CUR: u64 = 1;

/// `getdents64(fd, dirp, count)`.
pub fn getdents64(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    if k.config.reproducible.is_none() && k.vfs.is_none() {
        return Disposition::Host(*call);
    }
    let [fd, dirp, count, ..] = call.args;
    let check = Errno::check;
    let identity = || -> KResult<(u64, u64, i64)> {
        let mut st = [0u8; 144];
        check(task.host_call(Sysno::fstat, [fd, st.as_mut_ptr() as u64, 0, 0, 0, 0]))?;
        let dev = u64::from_ne_bytes(st[0..8].try_into().unwrap_or([0; 8]));
        let ino = u64::from_ne_bytes(st[8..16].try_into().unwrap_or([0; 8]));
        let off = check(task.host_call(Sysno::lseek, [fd, 0, SEEK_CUR, 0, 0, 0]))?;
        Ok((dev, ino, off))
    };
    // Anything odd (not a directory, a seek the kernel did not make) is the host's to answer.
    let Ok((dev, ino, off)) = identity() else { return Disposition::Host(*call) };
    let room = count.min(i32::MAX as u64) as usize;
    let fd32 = fd as i32;
    match k.dirs.read(fd32, dev, ino, off, room) {
        Read::Entries(bytes) => return ret(task.mem.write(dirp, &bytes).map(|_| bytes.len() as i64)),
        Read::TooSmall => return ret(Err(Errno::EINVAL)),
        Read::Unknown if off != 0 => {
            // The program moved the descriptor to one of the positions this kernel handed out
            // as `d_off`: serve from there, and put the host's offset back at the end.
            return match k.dirs.seek(fd32, dev, ino, off) {
                Some(end) => {
                    task.host_call(Sysno::lseek, [fd, end as u64, 0, 0, 0, 0]);
                    match k.dirs.read(fd32, dev, ino, end, room) {
                        Read::Entries(bytes) => ret(task.mem.write(dirp, &bytes).map(|_| bytes.len() as i64)),
                        _ => ret(Err(Errno::EINVAL)),
                    }
                }
                None => Disposition::Host(*call),
            };
        }
        Read::Unknown => {}
    }
    let merged = match k.vfs.as_ref().map(|v| merged_listing(v, task, fd32)) {
        Some(Ok(merged)) => merged,
        Some(Err(e)) => return ret(Err(e)),
        None => None,
    };
    if merged.is_none() && k.config.reproducible.is_none() {
        return Disposition::Host(*call);
    }
    let mut entries = Vec::new();
    let mut chunk = alloc::vec![0u8; 32 * 1024];
    loop {
        match check(
            task.host_call(Sysno::getdents64, [fd, chunk.as_mut_ptr() as u64, chunk.len() as u64, 0, 0, 0]),
        ) {
            Ok(0) => break,
            Ok(n) => dirs::parse(&chunk[..n as usize], &mut entries),
            Err(e) => return ret(Err(e)),
        }
    }
    // The host's entries were read to the end even when the view's are served instead: the
    // descriptor's offset then tells a rewind from a continued read.
    let end = match check(task.host_call(Sysno::lseek, [fd, 0, SEEK_CUR, 0, 0, 0])) {
        Ok(end) => end,
        Err(e) => return ret(Err(e)),
    };
    if let Some(m) = merged {
        entries = m;
    }
    if k.config.reproducible.is_some() {
        if let Some(vfs) = k.vfs.as_ref() {
            virtual_inodes(vfs, task, fd32, &mut entries);
        }
    }
    k.dirs.start(fd32, dev, ino, end, entries);
    match k.dirs.read(fd32, dev, ino, end, room) {
        Read::Entries(bytes) => ret(task.mem.write(dirp, &bytes).map(|_| bytes.len() as i64)),
        _ => ret(Err(Errno::EINVAL)),
    }
}

/// In reproducible mode, gives the entries of a directory that is wholly the sandbox's own (made
/// by it where the host has none, or in a private tree) the inode numbers `stat` shows for them
/// ([`crate::vfs::stamp::inode_of`]), so that `ls -i` and `scandir` agree with `stat` and
/// repeat from run to run. A directory that merges a host directory keeps the host's numbers,
/// as its host entries' `stat` does.
fn virtual_inodes(vfs: &crate::vfs::Vfs, task: &TaskCtx<'_>, fd: i32, entries: &mut [dirs::Entry]) {
    let h = crate::vfs::host::Hc(task.host);
    let Ok(Some((_, node))) = vfs.node_of_fd(h, fd) else { return };
    let own = |n: &crate::vfs::Node| {
        vfs.is_private(n) && !(n.place == crate::vfs::Place::Upper && vfs.lower_has(h, n))
    };
    if !node.is_dir() || !own(&node) {
        return;
    }
    let parent = crate::vfs::path::parent(&node.guest);
    let parent_own = vfs.lookup(h, parent).is_ok_and(|p| own(&p));
    for e in entries.iter_mut() {
        match &e.name[..] {
            b"." => e.ino = crate::vfs::stamp::inode_of(&node.guest),
            b".." if parent_own => e.ino = crate::vfs::stamp::inode_of(parent),
            b".." => {}
            name => e.ino = crate::vfs::stamp::inode_of(&crate::vfs::path::join(&node.guest, name)),
        }
    }
}

/// The view's listing of directory `fd`, when it differs from the host's.
fn merged_listing(vfs: &crate::vfs::Vfs, task: &TaskCtx<'_>, fd: i32) -> KResult<Option<Vec<dirs::Entry>>> {
    let h = crate::vfs::host::Hc(task.host);
    let Some((_, node)) = vfs.node_of_fd(h, fd)? else { return Ok(None) };
    let guest = &node.guest;
    if !node.is_dir() || !vfs.needs_merge(h, &node) {
        return Ok(None);
    }
    const DT_DIR: u8 = 4;
    let ino = |n: &crate::vfs::Node| n.stat.as_ref().map_or(1, |s| s.ino());
    let parent = vfs.lookup(h, crate::vfs::path::parent(guest)).map_or(1, |p| ino(&p));
    let mut entries = alloc::vec![
        dirs::Entry { ino: ino(&node), kind: DT_DIR, name: b".".to_vec() },
        dirs::Entry { ino: parent, kind: DT_DIR, name: b"..".to_vec() },
    ];
    entries.extend(vfs.listing(h, &node)?);
    Ok(Some(entries))
}
