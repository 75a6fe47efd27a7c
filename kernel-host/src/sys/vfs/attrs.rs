//! Calls that change or read a file's attributes by path: `chmod`, `chown`, the `utime`
//! family, `truncate`, the extended-attribute calls. A change to a lower file copies it up
//! first; the call then runs on the host against the host path.

use super::{existing, for_change, host_call, Outcome, CWD};
use crate::abi::AT_SYMLINK_NOFOLLOW;
use crate::errno::Errno;
use crate::kernel::Kernel;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;
use crate::vfs::{Place, Vfs};
use syscalls::Sysno;

/// What a change does to a file's modification time, which reproducible mode keeps itself
/// (see [`crate::vfs::stamp`]).
#[derive(Clone, Copy)]
enum Stamp {
    /// Nothing (mode, owner, attributes change only the change time).
    Keep,
    /// Now (a truncation).
    Now,
    /// What a `utime` family call asks for.
    Times(TimesArg),
}

/// The times argument of a `utime` family call.
#[derive(Clone, Copy)]
pub(super) enum TimesArg {
    /// `utime`'s `struct utimbuf` (pointer).
    Utimbuf(u64),
    /// `utimes`' and `futimesat`'s `struct timeval[2]`.
    Timeval(u64),
    /// `utimensat`'s `struct timespec[2]`.
    Timespec(u64),
}

/// The modification time (nanoseconds) a `utime` family call sets: `None` when it leaves it
/// alone (`UTIME_OMIT`), `Some(None)` for "now".
pub(super) fn requested_mtime(task: &TaskCtx<'_>, arg: TimesArg) -> Option<Option<u64>> {
    const UTIME_NOW: u64 = (1 << 30) - 1;
    const UTIME_OMIT: u64 = (1 << 30) - 2;
    let read = |addr: u64, at: u64| -> Option<u64> {
        let mut b = [0u8; 8];
        task.mem.read(addr + at, &mut b).ok().map(|()| u64::from_ne_bytes(b))
    };
    let ns = |sec: u64, nsec: u64| sec.saturating_mul(1_000_000_000).saturating_add(nsec);
    match arg {
        TimesArg::Utimbuf(0) | TimesArg::Timeval(0) | TimesArg::Timespec(0) => Some(None),
        TimesArg::Utimbuf(p) => Some(read(p, 8).map(|s| ns(s, 0))),
        TimesArg::Timeval(p) => Some(read(p, 16).zip(read(p, 24)).map(|(s, us)| ns(s, us * 1000))),
        TimesArg::Timespec(p) => match read(p, 24) {
            Some(UTIME_OMIT) => None,
            Some(UTIME_NOW) => Some(None),
            nsec => Some(read(p, 16).zip(nsec).map(|(s, n)| ns(s, n))),
        },
    }
}

/// Changes the attributes of the file `dirfd`/`path` names with host call `nr`, whose
/// arguments `args` builds from the host path's address; in reproducible mode the file's
/// virtual modification time follows `stamp`.
#[allow(clippy::too_many_arguments)]
fn change(
    k: &Kernel,
    task: &mut TaskCtx<'_>,
    call: &Syscall,
    at: [u64; 2],
    follow: bool,
    with_data: bool,
    stamp: Stamp,
    host: impl FnOnce(u64) -> (Sysno, [u64; 6]),
) -> Disposition {
    let [dirfd, path] = at;
    super::with_view(k, task, call, |vfs, task| {
        let node = existing(vfs, task, dirfd, path, follow)?;
        let target = if node.place == Place::Passthrough {
            kernel_tree_change(&node.guest)?;
            node.host.clone()
        } else {
            for_change(vfs, task, &node, with_data)?
        };
        if k.config.reproducible.is_some() && node.place != Place::Passthrough {
            match stamp {
                Stamp::Keep => {}
                Stamp::Now => super::stamp_change(k, task, &node, &target, false),
                Stamp::Times(arg) => match requested_mtime(task, arg) {
                    None => {}
                    Some(None) => super::stamp_change(k, task, &node, &target, false),
                    Some(Some(ns)) => vfs.stamp(super::hc(task), &target, ns),
                },
            }
        }
        let p = task.push_scratch(&target)?;
        let (nr, args) = host(p);
        Ok(Disposition::Host(Syscall::new(nr, args)))
    })
}

/// `chmod(path, mode)`.
pub fn chmod(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [path, mode, ..] = call.args;
    change(k, task, call, [CWD, path], true, true, Stamp::Keep, |p| {
        (Sysno::fchmodat, [CWD, p, mode, 0, 0, 0])
    })
}

/// `fchmodat(dirfd, path, mode)` (the flags argument is glibc's, never the kernel's).
pub fn fchmodat(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [dirfd, path, mode, ..] = call.args;
    change(k, task, call, [dirfd, path], true, true, Stamp::Keep, |p| {
        (Sysno::fchmodat, [CWD, p, mode, 0, 0, 0])
    })
}

/// `fchmodat2(dirfd, path, mode, flags)`: `fchmodat` with `AT_SYMLINK_NOFOLLOW` (Linux refuses
/// to change a link's mode: `EOPNOTSUPP`) and `AT_EMPTY_PATH`.
pub fn fchmodat2(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [dirfd, path, mode, flags, ..] = call.args;
    if flags & crate::abi::AT_EMPTY_PATH != 0 {
        return super::fdattrs::fchmod_of(k, task, call, dirfd, mode);
    }
    let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
    change(k, task, call, [dirfd, path], follow, true, Stamp::Keep, |p| {
        (Sysno::fchmodat2, [CWD, p, mode, flags & AT_SYMLINK_NOFOLLOW, 0, 0])
    })
}

/// Path calls the view does not serve yet, refused as a kernel without them would refuse
/// them (`ENOSYS`), so that libraries fall back to the calls it does serve: the `*xattrat`
/// family, `file_getattr`/`file_setattr`, `name_to_handle_at`, `fanotify_mark`,
/// `open_tree_attr`. Run on the host, they would take the program's path past the view.
pub fn unserved(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    super::with_view(k, task, call, |_, _| Err(Errno::ENOSYS))
}

/// `chown(path, uid, gid)`.
pub fn chown(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [path, uid, gid, ..] = call.args;
    change(k, task, call, [CWD, path], true, true, Stamp::Keep, |p| {
        (Sysno::fchownat, [CWD, p, uid, gid, AT_SYMLINK_NOFOLLOW, 0])
    })
}

/// `lchown(path, uid, gid)`.
pub fn lchown(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [path, uid, gid, ..] = call.args;
    change(k, task, call, [CWD, path], false, true, Stamp::Keep, |p| {
        (Sysno::fchownat, [CWD, p, uid, gid, AT_SYMLINK_NOFOLLOW, 0])
    })
}

/// `fchownat(dirfd, path, uid, gid, flags)`.
pub fn fchownat(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [dirfd, path, uid, gid, flags, _] = call.args;
    if flags & crate::abi::AT_EMPTY_PATH != 0 {
        return super::fdattrs::fchownat_empty(k, task, call);
    }
    let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
    change(k, task, call, [dirfd, path], follow, true, Stamp::Keep, |p| {
        (Sysno::fchownat, [CWD, p, uid, gid, AT_SYMLINK_NOFOLLOW, 0])
    })
}

/// `utime(path, times)`.
pub fn utime(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [path, times, ..] = call.args;
    change(k, task, call, [CWD, path], true, true, Stamp::Times(TimesArg::Utimbuf(times)), |p| {
        (Sysno::utime, [p, times, 0, 0, 0, 0])
    })
}

/// `utimes(path, times)`.
pub fn utimes(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [path, times, ..] = call.args;
    change(k, task, call, [CWD, path], true, true, Stamp::Times(TimesArg::Timeval(times)), |p| {
        (Sysno::utimes, [p, times, 0, 0, 0, 0])
    })
}

/// `futimesat(dirfd, path, times)`.
pub fn futimesat(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [dirfd, path, times, ..] = call.args;
    change(k, task, call, [dirfd, path], true, true, Stamp::Times(TimesArg::Timeval(times)), |p| {
        (Sysno::futimesat, [CWD, p, times, 0, 0, 0])
    })
}

/// `utimensat(dirfd, path, times, flags)` with a path (without one it is `futimens`).
pub fn utimensat(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [dirfd, path, times, flags, ..] = call.args;
    if path == 0 || flags & crate::abi::AT_EMPTY_PATH != 0 {
        return super::fdattrs::futimens(k, task, call);
    }
    let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
    change(k, task, call, [dirfd, path], follow, true, Stamp::Times(TimesArg::Timespec(times)), |p| {
        (Sysno::utimensat, [CWD, p, times, AT_SYMLINK_NOFOLLOW, 0, 0])
    })
}

/// `truncate(path, length)`.
pub fn truncate(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [path, length, ..] = call.args;
    change(k, task, call, [CWD, path], true, length != 0, Stamp::Now, |p| {
        (Sysno::truncate, [p, length, 0, 0, 0, 0])
    })
}

/// Whether the attribute name at `name` is one of the view's own
/// ([`crate::vfs::host::is_view_xattr`]): setting one would change what the upper layer means.
pub(super) fn overlay_own(task: &TaskCtx<'_>, name: u64) -> bool {
    // As long as the longest prefix: a shorter name cannot start with one.
    let mut prefix = [0u8; 14];
    task.mem.read(name, &mut prefix).is_ok() && crate::vfs::host::is_view_xattr(&prefix)
}

/// `setxattr`, `lsetxattr`: `path, name, value, size, flags`.
pub fn setxattr(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [path, name, value, size, flags, _] = call.args;
    if overlay_own(task, name) {
        return Disposition::Return(Errno::EPERM.ret());
    }
    let follow = call.nr == Sysno::setxattr.id() as u32;
    change(k, task, call, [CWD, path], follow, true, Stamp::Keep, |p| {
        (Sysno::lsetxattr, [p, name, value, size, flags, 0])
    })
}

/// `removexattr`, `lremovexattr`: `path, name`.
pub fn removexattr(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [path, name, ..] = call.args;
    if overlay_own(task, name) {
        return Disposition::Return(Errno::EPERM.ret());
    }
    let follow = call.nr == Sysno::removexattr.id() as u32;
    change(k, task, call, [CWD, path], follow, true, Stamp::Keep, |p| {
        (Sysno::lremovexattr, [p, name, 0, 0, 0, 0])
    })
}

/// Reads attributes by path: `getxattr`/`lgetxattr` (`path, name, value, size`) and
/// `listxattr`/`llistxattr` (`path, list, size`).
pub fn readxattr(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let nr = call.nr;
    let get = nr == Sysno::getxattr.id() as u32 || nr == Sysno::lgetxattr.id() as u32;
    if get && overlay_own(task, call.args[1]) {
        return Disposition::Return(Errno::ENODATA.ret());
    }
    let follow = nr == Sysno::getxattr.id() as u32 || nr == Sysno::listxattr.id() as u32;
    let host_nr = if get { Sysno::lgetxattr } else { Sysno::llistxattr };
    let args = call.args;
    super::with_view(k, task, call, |vfs: &Vfs, task| -> Outcome {
        let node = existing(vfs, task, CWD, args[0], follow)?;
        if !get && node.place != Place::Passthrough {
            return list_own_hidden(task, &node.host, args[1], args[2]);
        }
        let nr = if node.place == Place::Passthrough {
            Sysno::new(call.nr as usize).unwrap_or(host_nr)
        } else {
            host_nr
        };
        host_call(task, nr, &node.host, |p| [p, args[1], args[2], args[3], 0, 0])
    })
}

/// `llistxattr` of host path `host` into the program's `list` (`size` bytes; 0 asks for the
/// length), without the view's own attributes (`user.overlay.*`, `user.cloister.*`).
fn list_own_hidden(task: &TaskCtx<'_>, host: &[u8], list: u64, size: u64) -> Outcome {
    let h = super::hc(task);
    let mut names = alloc::vec![0u8; 64 * 1024];
    let n = h.call(
        Sysno::llistxattr,
        [host.as_ptr() as u64, names.as_mut_ptr() as u64, names.len() as u64, 0, 0, 0],
    )?;
    let mut shown = alloc::vec::Vec::with_capacity(n as usize);
    for name in names[..n as usize].split_inclusive(|&b| b == 0) {
        if !crate::vfs::host::is_view_xattr(name) {
            shown.extend_from_slice(name);
        }
    }
    if size == 0 {
        return super::value(shown.len() as i64);
    }
    if shown.len() as u64 > size {
        return Err(Errno::ERANGE);
    }
    task.mem.write(list, &shown)?;
    super::value(shown.len() as i64)
}

/// Whether the program may change the attributes of a file in the kernel's own trees
/// (`/dev`, `/proc`, `/sys`, which the view shows as the host's): only its terminals'
/// (`/dev/pts`), as `mesg` and `script` do. A `chmod 666 /dev/sda` or a `/sys` knob's owner
/// are the host's business.
pub(super) fn kernel_tree_change(guest: &[u8]) -> Result<(), Errno> {
    if crate::vfs::path::is_within(guest, b"/dev/pts") {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}
