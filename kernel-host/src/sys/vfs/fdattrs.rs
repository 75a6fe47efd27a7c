//! Attribute changes by descriptor (`fchmod`, `fchown`, `futimens`, `fsetxattr`,
//! `fremovexattr`, and the `*at` calls given `AT_EMPTY_PATH`). A descriptor opened read-only on
//! a lower file names the host's file: changing it must copy it up and change the copy, as a
//! change by path would; otherwise the host's file would change. Descriptors of anything else
//! (upper files, pipes, sockets) are the host's.

use super::attrs::{requested_mtime, TimesArg};
use super::{hc, Outcome, CWD};
use crate::abi::AT_SYMLINK_NOFOLLOW;
use crate::errno::Errno;
use crate::kernel::Kernel;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;
use crate::vfs::mount::Layers;
use crate::vfs::Place;
use syscalls::Sysno;

/// Changes the attributes of what `fd` names: on its upper copy when it is a lower file (the
/// host call `nr` with the arguments `args` builds from the copy's path), else as asked.
fn change_fd(
    k: &Kernel,
    task: &mut TaskCtx<'_>,
    call: &Syscall,
    fd: u64,
    times: Option<TimesArg>,
    host: impl FnOnce(u64) -> (Sysno, [u64; 6]),
) -> Disposition {
    super::with_view(k, task, call, |vfs, task| -> Outcome {
        let h = hc(task);
        // A file the sandbox made or copied up (tar's `fchown`, `fchmod` and `futimens` of each
        // file it extracts) is changed where it is; reproducible mode must stamp it first.
        if k.config.reproducible.is_none() && vfs.fd_is_own(h, fd as i32) == Some(true) {
            return Ok(Disposition::Host(*call));
        }
        // Not a file the view shows (a pipe, a socket, a deleted file): the host's.
        let Some((target, node)) = vfs.node_of_fd(h, fd as i32)? else { return Ok(Disposition::Host(*call)) };
        // Reproducible mode keeps the sandbox's own files' modification times itself.
        let stamp = |task: &TaskCtx<'_>, path: &[u8]| {
            if let (Some(arg), Some(_)) = (times, k.config.reproducible) {
                match requested_mtime(task, arg) {
                    Some(Some(ns)) => vfs.stamp(h, path, ns),
                    Some(None) => super::stamp_change(k, task, &node, path, false),
                    None => {}
                }
            }
        };
        match &vfs.mounts.get(node.mount).layers {
            // The descriptor is the lower file's (whether or not a copy is up by now).
            Layers::Overlay { lower, .. }
                if crate::vfs::path::host_cpath(lower, node.suffix()).strip_suffix(&[0])
                    == Some(&target[..]) =>
            {
                let up = match node.place {
                    Place::Lower => vfs.copy_up(h, &node, true)?,
                    _ => node.host_upper(vfs),
                };
                stamp(task, &up);
                let p = task.push_scratch(&up)?;
                let (nr, args) = host(p);
                Ok(Disposition::Host(Syscall::new(nr, args)))
            }
            Layers::Direct { writable: false, .. } => Err(Errno::EROFS),
            Layers::Passthrough => {
                super::attrs::kernel_tree_change(&node.guest)?;
                Ok(Disposition::Host(*call))
            }
            _ => {
                if vfs.is_private(&node) {
                    stamp(task, &node.host);
                }
                Ok(Disposition::Host(*call))
            }
        }
    })
}

/// `fchmod(fd, mode)`.
pub fn fchmod(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [fd, mode, ..] = call.args;
    fchmod_of(k, task, call, fd, mode)
}

/// Changes the mode of what `fd` names (`fchmod`, `fchmodat2` with `AT_EMPTY_PATH`).
pub(super) fn fchmod_of(
    k: &Kernel,
    task: &mut TaskCtx<'_>,
    call: &Syscall,
    fd: u64,
    mode: u64,
) -> Disposition {
    change_fd(k, task, call, fd, None, |p| (Sysno::fchmodat, [CWD, p, mode, 0, 0, 0]))
}

/// `fchown(fd, uid, gid)`.
pub fn fchown(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [fd, uid, gid, ..] = call.args;
    change_fd(k, task, call, fd, None, |p| (Sysno::fchownat, [CWD, p, uid, gid, AT_SYMLINK_NOFOLLOW, 0]))
}

/// `fsetxattr(fd, name, value, size, flags)`.
pub fn fsetxattr(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [fd, name, value, size, flags, _] = call.args;
    if super::attrs::overlay_own(task, name) {
        return Disposition::Return(Errno::EPERM.ret());
    }
    change_fd(k, task, call, fd, None, |p| (Sysno::lsetxattr, [p, name, value, size, flags, 0]))
}

/// `fremovexattr(fd, name)`.
pub fn fremovexattr(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [fd, name, ..] = call.args;
    if super::attrs::overlay_own(task, name) {
        return Disposition::Return(Errno::EPERM.ret());
    }
    change_fd(k, task, call, fd, None, |p| (Sysno::lremovexattr, [p, name, 0, 0, 0, 0]))
}

/// `utimensat(fd, NULL, times, 0)`: `futimens`.
pub fn futimens(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [fd, _, times, ..] = call.args;
    change_fd(k, task, call, fd, Some(TimesArg::Timespec(times)), |p| {
        (Sysno::utimensat, [CWD, p, times, AT_SYMLINK_NOFOLLOW, 0, 0])
    })
}

/// `fchownat(fd, "", uid, gid, AT_EMPTY_PATH)`.
pub fn fchownat_empty(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [fd, _, uid, gid, ..] = call.args;
    change_fd(k, task, call, fd, None, |p| (Sysno::fchownat, [CWD, p, uid, gid, AT_SYMLINK_NOFOLLOW, 0]))
}
