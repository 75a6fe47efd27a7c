//! The stat family, `access`, `statfs`, `readlink` through the view. A `stat` is answered
//! from the lookup the walk already made: no second host call.

use super::hc;
use super::{existing, host_call, Outcome, CWD};
use crate::abi::{AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW, PATH_MAX};
use crate::errno::Errno;
use crate::kernel::Kernel;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;
use crate::vfs::host::{S_IFDIR, S_IFREG};
use crate::vfs::{Place, Vfs};
use syscalls::Sysno;

/// `W_OK` of `access`.
const W_OK: u64 = 2;
/// `AT_EACCESS`.
const AT_EACCESS: u64 = 0x200;

/// Whether an `*at` call with these flags names its descriptor itself (`AT_EMPTY_PATH` and
/// an empty path): then it is the host's.
fn names_descriptor(task: &TaskCtx<'_>, path: u64, flags: u64) -> bool {
    let mut first = [0u8; 1];
    flags & AT_EMPTY_PATH != 0 && (path == 0 || task.mem.read(path, &mut first).is_ok_and(|()| first[0] == 0))
}

/// `stat`, `lstat`, `newfstatat` once `/proc` had its say: `dirfd`, `path`, `buf`, `flags`.
pub fn stat_path(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall, at: [u64; 4]) -> Disposition {
    let [dirfd, path, buf, flags] = at;
    if names_descriptor(task, path, flags) {
        return fstat(k, task, call);
    }
    super::with_view(k, task, call, |vfs, task| {
        let node = existing(vfs, task, dirfd, path, flags & AT_SYMLINK_NOFOLLOW == 0)?;
        match node.stat.clone() {
            Some(mut st) => {
                if let Some(n) = vfs.shown_nlink(hc(task), &node, &st) {
                    st.raw[16..24].copy_from_slice(&n.to_ne_bytes());
                }
                if let Some((dev, ino)) = vfs.lower_identity(hc(task), &node) {
                    st.raw[0..8].copy_from_slice(&dev.to_ne_bytes());
                    st.raw[8..16].copy_from_slice(&ino.to_ne_bytes());
                }
                if k.config.reproducible.is_some() {
                    let epoch = super::virtual_epoch(k);
                    let now = || super::virtual_now(k).unwrap_or(epoch);
                    vfs.reproducible_stat(hc(task), &node, &mut st, epoch, now);
                }
                task.mem.write(buf, &st.raw[..])?;
                super::value(0)
            }
            None => host_call(task, Sysno::newfstatat, &node.host, |p| {
                [CWD, p, buf, flags & !AT_EMPTY_PATH, 0, 0]
            }),
        }
    })
}

/// `statx(dirfd, path, flags, mask, buf)` once `/proc` had its say.
pub fn statx_path(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [dirfd, path, flags, mask, buf, _] = call.args;
    if names_descriptor(task, path, flags) {
        return fstat(k, task, call);
    }
    super::with_view(k, task, call, |vfs, task| {
        let node = existing(vfs, task, dirfd, path, flags & AT_SYMLINK_NOFOLLOW == 0)?;
        let flags = if node.place == Place::Passthrough { flags } else { flags | AT_SYMLINK_NOFOLLOW };
        let h = hc(task);
        let lower = vfs.lower_identity(h, &node);
        if lower.is_some() || (k.config.reproducible.is_some() && vfs.is_private(&node)) {
            let mut out = alloc::vec![0u8; 256];
            h.call(Sysno::statx, [CWD, node.host.as_ptr() as u64, flags, mask, out.as_mut_ptr() as u64, 0])?;
            if let Some((dev, ino)) = lower {
                set_statx_identity(&mut out, dev, ino);
            }
            if let Some(n) = node.stat.as_ref().and_then(|st| vfs.shown_nlink(h, &node, st)) {
                out[16..20].copy_from_slice(&(n.min(u64::from(u32::MAX)) as u32).to_ne_bytes());
            }
            if k.config.reproducible.is_some() {
                let epoch = super::virtual_epoch(k);
                vfs.reproducible_statx(h, &node, &mut out, epoch, || super::virtual_now(k).unwrap_or(epoch));
            }
            task.mem.write(buf, &out)?;
            return super::value(0);
        }
        host_call(task, Sysno::statx, &node.host, |p| [CWD, p, flags, mask, buf, 0])
    })
}

/// `fstat(fd, buf)`, and `newfstatat`/`statx` given `AT_EMPTY_PATH`, with a view: a file of
/// the sandbox's own directory shows what a `stat` of its path shows (the lower file's numbers
/// for a copied-up file; in reproducible mode, virtual times and numbers), so that a program
/// comparing the two (SQLite, tar, find) sees one file. Anything else is the host's answer.
pub fn fstat(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let fd = call.args[0];
    let Some(vfs) = k.vfs.as_ref() else { return Disposition::Host(*call) };
    let h = hc(task);
    let is_statx = call.nr == Sysno::statx.id() as u32;
    let Ok(mut st) = h.fstat(fd as i32) else { return Disposition::Host(*call) };
    // The node must be the descriptor's own file, not a copy made since it was opened.
    let node = if vfs.in_state_dir(h, st.dev()) && vfs.fd_is_own(h, fd as i32) != Some(false) {
        vfs.node_of_fd(h, fd as i32)
            .ok()
            .flatten()
            .filter(|(target, n)| n.host.strip_suffix(&[0]) == Some(&target[..]))
            .map(|(_, n)| n)
    } else {
        None
    };
    let epoch = super::virtual_epoch(k);
    let now = || super::virtual_now(k).unwrap_or(epoch);
    let repro = k.config.reproducible.is_some();
    let result = match (node, is_statx) {
        (None, true) => return Disposition::Host(*call),
        (None, false) => {
            let buf = if call.nr == Sysno::fstat.id() as u32 { call.args[1] } else { call.args[2] };
            task.mem.write(buf, &st.raw[..])
        }
        (Some(node), true) => {
            let [_, _, flags, mask, buf, _] = call.args;
            let mut out = alloc::vec![0u8; 256];
            let empty = b"\0";
            h.call(Sysno::statx, [fd, empty.as_ptr() as u64, flags, mask, out.as_mut_ptr() as u64, 0])
                .and_then(|_| {
                    if let Some((dev, ino)) = vfs.lower_identity(h, &node) {
                        set_statx_identity(&mut out, dev, ino);
                    }
                    if repro {
                        vfs.reproducible_statx(h, &node, &mut out, epoch, now);
                    }
                    task.mem.write(buf, &out)
                })
        }
        (Some(node), false) => {
            let buf = if call.nr == Sysno::fstat.id() as u32 { call.args[1] } else { call.args[2] };
            if let Some(n) = vfs.shown_nlink(h, &node, &st) {
                st.raw[16..24].copy_from_slice(&n.to_ne_bytes());
            }
            if let Some((dev, ino)) = vfs.lower_identity(h, &node) {
                st.raw[0..8].copy_from_slice(&dev.to_ne_bytes());
                st.raw[8..16].copy_from_slice(&ino.to_ne_bytes());
            }
            if repro {
                vfs.reproducible_stat(h, &node, &mut st, epoch, now);
            }
            task.mem.write(buf, &st.raw[..])
        }
    };
    super::finish(result.map(|()| Disposition::Return(0)))
}

/// Puts device `dev` and inode `ino` into a `struct statx` (the device split as the kernel
/// encodes a `dev_t`).
fn set_statx_identity(out: &mut [u8], dev: u64, ino: u64) {
    let (major, minor) = crate::vfs::host::dev_numbers(dev);
    out[32..40].copy_from_slice(&ino.to_ne_bytes());
    out[136..140].copy_from_slice(&(major as u32).to_ne_bytes());
    out[140..144].copy_from_slice(&(minor as u32).to_ne_bytes());
}

/// `access(path, mode)`.
pub fn access(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [path, mode, ..] = call.args;
    access_in_view(k, task, call, [CWD, path, mode, 0])
}

/// `faccessat(dirfd, path, mode)`.
pub fn faccessat(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [dirfd, path, mode, ..] = call.args;
    access_in_view(k, task, call, [dirfd, path, mode, 0])
}

/// `faccessat2(dirfd, path, mode, flags)`.
pub fn faccessat2(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [dirfd, path, mode, flags, ..] = call.args;
    if names_descriptor(task, path, flags) {
        return Disposition::Host(*call);
    }
    access_in_view(k, task, call, [dirfd, path, mode, flags])
}

fn access_in_view(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall, at: [u64; 4]) -> Disposition {
    let [dirfd, path, mode, flags] = at;
    super::with_view(k, task, call, |vfs, task| {
        let node = existing(vfs, task, dirfd, path, flags & AT_SYMLINK_NOFOLLOW == 0)?;
        let kind = node.stat.as_ref().map(|s| s.kind());
        if mode & W_OK != 0 && matches!(kind, Some(S_IFREG | S_IFDIR)) {
            super::writable(vfs, &node)?;
        }
        let flags =
            flags & AT_EACCESS | if node.place == Place::Passthrough { 0 } else { AT_SYMLINK_NOFOLLOW };
        if node.place == Place::Lower && mode & W_OK != 0 {
            // The lower tree may be mounted read-only under the sandbox (its mount namespace):
            // the host then says EROFS, which it says only once the permission bits allowed the
            // write, and the write would be copied up. So that answer is a yes.
            let h = hc(task);
            return match h.call(Sysno::faccessat2, [CWD, node.host.as_ptr() as u64, mode, flags, 0, 0]) {
                Ok(_) | Err(Errno::EROFS) => super::value(0),
                Err(e) => Err(e),
            };
        }
        host_call(task, Sysno::faccessat2, &node.host, |p| [CWD, p, mode, flags, 0, 0])
    })
}

/// `inotify_add_watch(fd, path, mask)`.
pub fn inotify_add_watch(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    const IN_DONT_FOLLOW: u64 = 0x0200_0000;
    let [fd, path, mask, ..] = call.args;
    super::with_view(k, task, call, |vfs, task| {
        let node = existing(vfs, task, CWD, path, mask & IN_DONT_FOLLOW == 0)?;
        host_call(task, Sysno::inotify_add_watch, &node.host, |p| [fd, p, mask, 0, 0, 0])
    })
}

/// `statfs(path, buf)`.
pub fn statfs(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [path, buf, ..] = call.args;
    super::with_view(k, task, call, |vfs, task| {
        let node = existing(vfs, task, CWD, path, true)?;
        if node.place != Place::Lower {
            return host_call(task, Sysno::statfs, &node.host, |p| [p, buf, 0, 0, 0, 0]);
        }
        // A lower tree mounted read-only under the sandbox still takes writes (into the
        // overlay): `ST_RDONLY` is not the program's to see.
        const ST_RDONLY: u64 = 1;
        const F_FLAGS: usize = 80;
        let mut out = [0u8; 120];
        hc(task).call(Sysno::statfs, [node.host.as_ptr() as u64, out.as_mut_ptr() as u64, 0, 0, 0, 0])?;
        let flags = u64::from_ne_bytes(out[F_FLAGS..F_FLAGS + 8].try_into().unwrap_or([0; 8])) & !ST_RDONLY;
        out[F_FLAGS..F_FLAGS + 8].copy_from_slice(&flags.to_ne_bytes());
        task.mem.write(buf, &out)?;
        super::value(0)
    })
}

/// `readlink`/`readlinkat` once `/proc` had its say. A link in `/proc` that names a host
/// path (`/proc/self/cwd`, `/proc/self/fd/N`, `root`) reads as the guest path.
pub fn readlink_path(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall, at: [u64; 4]) -> Disposition {
    let [dirfd, path, buf, size] = at;
    super::with_view(k, task, call, |vfs, task| {
        if size as i64 <= 0 {
            return Err(Errno::EINVAL);
        }
        let node = existing(vfs, task, dirfd, path, false)?;
        if node.place == Place::Passthrough {
            return proc_link(k, vfs, task, &node.host, buf, size);
        }
        if !node.is_symlink() {
            return Err(Errno::EINVAL);
        }
        host_call(task, Sysno::readlinkat, &node.host, |p| [CWD, p, buf, size, 0, 0])
    })
}

fn proc_link(k: &Kernel, vfs: &Vfs, task: &mut TaskCtx<'_>, host: &[u8], buf: u64, size: u64) -> Outcome {
    let target = super::hc(task).readlink(host)?;
    // Another sandboxed process's `exe` is the runtime on the host: it recorded its program.
    let runtime = target.as_slice() == k.config().rt_path.as_bytes();
    let recorded =
        || crate::exes::pid_of_exe_link(host.strip_suffix(b"\0").unwrap_or(host)).and_then(|p| vfs.exe_of(p));
    let shown = match (runtime.then(recorded).flatten(), target.first()) {
        (Some(program), _) => program,
        (None, Some(b'/')) => vfs.guest_of_host(&target).unwrap_or(target),
        (None, _) => target,
    };
    let n = shown.len().min(size as usize).min(PATH_MAX);
    task.mem.write(buf, &shown[..n])?;
    super::value(n as i64)
}
