//! Calls that make, remove and move names: `mkdir`, `mknod`, `unlink`, `rmdir`, `rename`,
//! `link`, `symlink` (and their `*at` forms). In an overlay they change the upper layer
//! (with whiteouts for lower names, see [`crate::vfs::overlay`]); in a writable host tree
//! they run on the host.

use super::{done, existing, hc, host_call, resolve, same_mount, writable, CWD};
use crate::abi::PATH_MAX;
use crate::errno::Errno;
use crate::kernel::Kernel;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;
use crate::vfs::host::AT_REMOVEDIR;
use crate::vfs::mount::Layers;
use crate::vfs::overlay::creatable;
use crate::vfs::{Node, Place, Vfs};
use syscalls::Sysno;

/// `AT_SYMLINK_FOLLOW` of `linkat`.
const AT_SYMLINK_FOLLOW: u64 = 0x400;

fn is_overlay(vfs: &Vfs, node: &Node) -> bool {
    matches!(vfs.mounts.get(node.mount).layers, Layers::Overlay { .. })
}

/// A name about to be made: it must be free, in a tree the program may change.
fn new_name(vfs: &Vfs, task: &TaskCtx<'_>, dirfd: u64, path: u64) -> Result<Node, Errno> {
    let node = resolve(vfs, task, dirfd, path, false)?;
    // The kernel's own trees take no new names from the sandbox (a cgroup, a device node).
    if node.place == Place::Passthrough {
        return Err(Errno::EROFS);
    }
    if node.exists() {
        return Err(Errno::EEXIST);
    }
    writable(vfs, &node)?;
    Ok(node)
}

/// `mkdir(path, mode)`.
pub fn mkdir(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [path, mode, ..] = call.args;
    make(k, task, call, [CWD, path, 0o040000 | (mode & 0o7777), 0])
}

/// `mkdirat(dirfd, path, mode)`.
pub fn mkdirat(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [dirfd, path, mode, ..] = call.args;
    make(k, task, call, [dirfd, path, 0o040000 | (mode & 0o7777), 0])
}

/// `mknod(path, mode, dev)`.
pub fn mknod(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [path, mode, dev, ..] = call.args;
    make(k, task, call, [CWD, path, mode, dev])
}

/// `mknodat(dirfd, path, mode, dev)`.
pub fn mknodat(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [dirfd, path, mode, dev, ..] = call.args;
    make(k, task, call, [dirfd, path, mode, dev])
}

/// Makes a directory (`mode` has `S_IFDIR`) or a node; devices are refused in the view.
fn make(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall, at: [u64; 4]) -> Disposition {
    let [dirfd, path, mode, dev] = at;
    super::with_view(k, task, call, |vfs, task| {
        let mode = mode as u32;
        if !creatable(mode) {
            return Err(Errno::EPERM);
        }
        let node = new_name(vfs, task, dirfd, path)?;
        let h = hc(task);
        let was_whiteout = vfs.prepare_create(h, &node)?;
        if mode & 0o170000 == 0o040000 {
            h.mkdir(&node.host, mode & 0o7777)?;
            if was_whiteout {
                vfs.make_opaque(h, &node.host)?;
            }
        } else {
            h.mknod(&node.host, mode, dev)?;
        }
        super::stamp_change(k, task, &node, &node.host, true);
        super::value(0)
    })
}

/// `unlink(path)`.
pub fn unlink(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [path, ..] = call.args;
    remove(k, task, call, [CWD, path, 0])
}

/// `rmdir(path)`.
pub fn rmdir(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [path, ..] = call.args;
    remove(k, task, call, [CWD, path, AT_REMOVEDIR])
}

/// `unlinkat(dirfd, path, flags)`.
pub fn unlinkat(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [dirfd, path, flags, ..] = call.args;
    remove(k, task, call, [dirfd, path, flags])
}

fn remove(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall, at: [u64; 3]) -> Disposition {
    let [dirfd, path, flags] = at;
    super::with_view(k, task, call, |vfs, task| {
        let node = existing(vfs, task, dirfd, path, false)?;
        let rmdir = flags & AT_REMOVEDIR != 0;
        if node.place == Place::Passthrough {
            return Err(Errno::EROFS);
        }
        if vfs.mounts.get(node.mount).guest == node.guest {
            return Err(Errno::EBUSY);
        }
        match (rmdir, node.is_dir()) {
            (true, false) => return Err(Errno::ENOTDIR),
            (false, true) => return Err(Errno::EISDIR),
            _ => {}
        }
        writable(vfs, &node)?;
        super::stamp_change(k, task, &node, &node.host_upper(vfs), true);
        if !is_overlay(vfs, &node) {
            // Made from here (a removal does not block) so that the generation moves after the
            // change: a directory removed here may be one a process resolved and remembers,
            // and a walk between an earlier bump and the change would remember it again.
            let h = hc(task);
            let result = h.call(Sysno::unlinkat, [CWD, node.host.as_ptr() as u64, flags, 0, 0, 0]);
            vfs.names_changed();
            return result.map(|_| Disposition::Return(0));
        }
        let h = hc(task);
        if rmdir && !vfs.listing(h, &node)?.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        done(vfs.remove(h, &node))
    })
}

/// `rename(old, new)`.
pub fn rename(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [old, new, ..] = call.args;
    rename_in_view(k, task, call, [CWD, old, CWD, new, 0])
}

/// `renameat(olddirfd, old, newdirfd, new)`.
pub fn renameat(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [od, old, nd, new, ..] = call.args;
    rename_in_view(k, task, call, [od, old, nd, new, 0])
}

/// `renameat2(olddirfd, old, newdirfd, new, flags)`.
pub fn renameat2(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [od, old, nd, new, flags, _] = call.args;
    rename_in_view(k, task, call, [od, old, nd, new, flags])
}

fn rename_in_view(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall, at: [u64; 5]) -> Disposition {
    let [od, old, nd, new, flags] = at;
    super::with_view(k, task, call, |vfs, task| {
        let from = existing(vfs, task, od, old, false)?;
        let to = resolve(vfs, task, nd, new, false)?;
        if from.place == Place::Passthrough || to.place == Place::Passthrough {
            return Err(Errno::EROFS);
        }
        same_mount(&from, &to)?;
        writable(vfs, &from)?;
        if vfs.mounts.get(from.mount).guest == from.guest || vfs.mounts.get(to.mount).guest == to.guest {
            return Err(Errno::EBUSY);
        }
        if is_overlay(vfs, &from) {
            vfs.rename(hc(task), &from, &to, flags)?;
            super::stamp_change(k, task, &from, &from.host_upper(vfs), true);
            super::stamp_change(k, task, &to, &to.host_upper(vfs), true);
            return super::value(0);
        }
        super::stamp_change(k, task, &from, &from.host, true);
        super::stamp_change(k, task, &to, &to.host, true);
        // From here, so that the generation moves after the change (see `remove`).
        let args = [CWD, from.host.as_ptr() as u64, CWD, to.host.as_ptr() as u64, flags, 0];
        let result = hc(task).call(Sysno::renameat2, args);
        vfs.names_changed();
        result.map(|_| Disposition::Return(0))
    })
}

/// `link(old, new)`.
pub fn link(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [old, new, ..] = call.args;
    link_in_view(k, task, call, [CWD, old, CWD, new, 0])
}

/// `linkat(olddirfd, old, newdirfd, new, flags)`.
pub fn linkat(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [od, old, nd, new, flags, _] = call.args;
    link_in_view(k, task, call, [od, old, nd, new, flags])
}

fn link_in_view(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall, at: [u64; 5]) -> Disposition {
    let [od, old, nd, new, flags] = at;
    if flags & crate::abi::AT_EMPTY_PATH != 0 {
        // A descriptor given a name (an `O_TMPFILE` published): the name is the view's.
        return super::with_view(k, task, call, |vfs, task| {
            let to = new_name(vfs, task, nd, new)?;
            vfs.prepare_create(hc(task), &to)?;
            super::stamp_change(k, task, &to, &to.host, true);
            let empty = task.push_scratch(b"\0")?;
            let dst = task.push_scratch(&to.host)?;
            Ok(Disposition::Host(Syscall::new(
                Sysno::linkat,
                [od, empty, CWD, dst, crate::abi::AT_EMPTY_PATH, 0],
            )))
        });
    }
    super::with_view(k, task, call, |vfs, task| {
        let from = existing(vfs, task, od, old, flags & AT_SYMLINK_FOLLOW != 0)?;
        let to = new_name(vfs, task, nd, new)?;
        if from.place == Place::Passthrough {
            // `/proc/self/fd/N` of a file with no name (an `O_TMPFILE`) made in the sandbox's
            // own directory: given a name there. Anything else (a host file's descriptor)
            // would become a second name of a host file.
            let target = hc(task).readlink(&from.host)?;
            let unnamed = target.strip_suffix(b" (deleted)").unwrap_or(&target);
            if !vfs.mounts.private_roots().any(|root| crate::vfs::path::is_within(unnamed, root)) {
                return Err(Errno::EXDEV);
            }
            vfs.prepare_create(hc(task), &to)?;
            let dst = task.push_scratch(&to.host)?;
            return host_call(task, Sysno::linkat, &from.host, |p| [CWD, p, CWD, dst, AT_SYMLINK_FOLLOW, 0]);
        }
        same_mount(&from, &to)?;
        if from.is_dir() {
            return Err(Errno::EPERM);
        }
        let h = hc(task);
        let src = super::for_change(vfs, task, &from, true)?;
        vfs.prepare_create(h, &to)?;
        super::stamp_change(k, task, &to, &to.host, true);
        let dst = task.push_scratch(&to.host)?;
        host_call(task, Sysno::linkat, &src, |p| [CWD, p, CWD, dst, 0, 0])
    })
}

/// `symlink(target, path)`.
pub fn symlink(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [target, path, ..] = call.args;
    symlink_in_view(k, task, call, [target, CWD, path])
}

/// `symlinkat(target, dirfd, path)`.
pub fn symlinkat(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [target, dirfd, path, ..] = call.args;
    symlink_in_view(k, task, call, [target, dirfd, path])
}

fn symlink_in_view(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall, at: [u64; 3]) -> Disposition {
    let [target, dirfd, path] = at;
    super::with_view(k, task, call, |vfs, task| {
        let text = task.read_cstring(target, PATH_MAX)?;
        if text.is_empty() {
            return Err(Errno::ENOENT);
        }
        let node = new_name(vfs, task, dirfd, path)?;
        let h = hc(task);
        vfs.prepare_create(h, &node)?;
        let mut text = text;
        text.push(0);
        h.symlink(&text, &node.host)?;
        super::stamp_change(k, task, &node, &node.host, true);
        super::value(0)
    })
}
