//! `open`, `openat`, `openat2`, `creat` through the view. The descriptor the program gets is
//! the host's, opened on the layer that holds the file: a lower file opened for writing is
//! copied up first, a new file is made in the upper layer.

use super::{hc, host_call, writable, Outcome, CWD};
use crate::abi::{O_ACCMODE, PATH_MAX};
use crate::errno::Errno;
use crate::kernel::Kernel;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;
use crate::vfs::host::{S_IFDIR, S_IFLNK, S_IFREG};
use crate::vfs::{Place, Vfs};
use syscalls::Sysno;

const O_CREAT: u64 = 0o100;
const O_EXCL: u64 = 0o200;
const O_TRUNC: u64 = 0o1000;
const O_LARGEFILE: u64 = 0o100000;
const O_NOFOLLOW: u64 = 0o400000;
const O_TMPFILE: u64 = 0o20200000;
const O_PATH: u64 = 0o10000000;
/// The flags `openat2` accepts beside `O_PATH` (`open` ignores the others).
const O_PATH_FLAGS: u64 = O_PATH | 0o200000 | O_NOFOLLOW | crate::abi::O_CLOEXEC;
/// Every flag `openat2` accepts (`VALID_OPEN_FLAGS`): `open` ignores the others, so they are
/// dropped rather than turned into `EINVAL`.
const VALID_OPEN_FLAGS: u64 = 0o37777703;
/// `RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS`: the walk followed every link already, so
/// one the host meets now was swapped in since.
const RESOLVE_NO_LINKS: u64 = 0x02 | 0x04;

/// `open(path, flags, mode)` and `openat(dirfd, path, flags, mode)` once `/proc` had its say.
pub fn open_path(
    k: &Kernel,
    task: &mut TaskCtx<'_>,
    call: &Syscall,
    dirfd: u64,
    path: u64,
    flags: u64,
    mode: u64,
) -> Disposition {
    super::with_view(k, task, call, |vfs, task| open_in_view(k, vfs, task, [dirfd, path, flags, mode]))
}

/// `creat(path, mode)`.
pub fn creat(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [path, mode, ..] = call.args;
    open_path(k, task, call, CWD, path, O_CREAT | 1 | O_TRUNC, mode)
}

/// `openat2(dirfd, path, how, size)`: the view resolves the path; with `resolve` restrictions,
/// which it does not apply, `ENOSYS`.
pub fn openat2(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [dirfd, path, how, size, ..] = call.args;
    super::with_view(k, task, call, |vfs, task| {
        if size < 24 {
            return Err(Errno::EINVAL);
        }
        let mut raw = [0u8; 24];
        task.mem.read(how, &mut raw)?;
        let word = |i: usize| u64::from_ne_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        let (flags, mode, resolve) = (word(0), word(1), word(2));
        if flags & !VALID_OPEN_FLAGS != 0 || (mode != 0 && flags & (O_CREAT | O_TMPFILE) == 0) {
            return Err(Errno::EINVAL);
        }
        // The view does not apply `resolve` restrictions: refusing them as an older kernel
        // would makes a program fall back to what it can check, instead of losing them.
        if resolve != 0 {
            return Err(Errno::ENOSYS);
        }
        open_in_view(k, vfs, task, [dirfd, path, flags, mode])
    })
}

fn open_in_view(k: &Kernel, vfs: &Vfs, task: &mut TaskCtx<'_>, at: [u64; 4]) -> Outcome {
    let [dirfd, path, flags, mode] = at;
    let h = hc(task);
    let creat = flags & O_CREAT != 0;
    let excl = creat && flags & O_EXCL != 0;
    let tmpfile = flags & O_TMPFILE == O_TMPFILE;
    let name = task.read_cstring(path, PATH_MAX)?;
    if excl && !tmpfile && flags & O_PATH == 0 && k.config.reproducible.is_none() {
        if let Some(done) = create_below_upper_only(vfs, task, dirfd, &name, flags, mode) {
            return done;
        }
    }
    let node = vfs.resolve_at(h, dirfd as i64, &name, flags & O_NOFOLLOW == 0 && !excl)?;
    let writes = flags & O_ACCMODE != 0 || flags & O_TRUNC != 0 || tmpfile;
    let kind = node.stat.as_ref().map(|s| s.kind());
    let target = match node.place {
        Place::Passthrough => return host_open(task, &node.host, flags, mode, 0),
        Place::Missing if !creat => return Err(Errno::ENOENT),
        Place::Missing if name.ends_with(b"/") => return Err(Errno::EISDIR),
        Place::Missing => {
            writable(vfs, &node)?;
            vfs.prepare_create(h, &node)?;
            node.host.clone()
        }
        _ if excl => return Err(Errno::EEXIST),
        _ if !writes => node.host.clone(),
        // Only a file's contents (and the directory an O_TMPFILE goes in) are copied up; a
        // device or a pipe is opened where it is.
        Place::Lower if kind == Some(S_IFREG) => vfs.copy_up(h, &node, flags & O_TRUNC == 0)?,
        Place::Lower if kind == Some(S_IFDIR) && tmpfile => vfs.copy_up(h, &node, false)?,
        Place::Direct if matches!(kind, Some(S_IFREG | S_IFDIR | S_IFLNK)) => {
            writable(vfs, &node)?;
            node.host.clone()
        }
        _ => node.host.clone(),
    };
    if writes || (creat && !node.exists()) {
        super::stamp_change(k, task, &node, &target, !node.exists());
    }
    host_open(task, &target, flags, mode, RESOLVE_NO_LINKS)
}

/// `open(dirfd, name, O_CREAT | O_EXCL)` of a relative name in a directory the sandbox made
/// where the host has none (tar, cp, unzip, pip filling a new tree): every name beneath it is
/// the upper layer's, so the host resolves it relative to the descriptor itself, with no link
/// followed and nothing outside the directory reached (`RESOLVE_BENEATH`), and makes the file
/// from here (a new regular file never blocks). `None` when that does not apply, or the host
/// met a link or `..` on the way (`ELOOP`, `EXDEV`): then the view resolves the path itself.
fn create_below_upper_only(
    vfs: &Vfs,
    task: &mut TaskCtx<'_>,
    dirfd: u64,
    name: &[u8],
    flags: u64,
    mode: u64,
) -> Option<Outcome> {
    const RESOLVE_BENEATH: u64 = 0x08;
    if name.first() == Some(&b'/') || name.ends_with(b"/") || name.split(|&b| b == b'/').any(|c| c == b"..") {
        return None;
    }
    let h = hc(task);
    if !vfs.upper_only_below(h, dirfd as i64) {
        return None;
    }
    let mut how = [0u64; 3];
    how[0] = (flags & VALID_OPEN_FLAGS) | O_LARGEFILE;
    how[1] = mode & 0o7777;
    how[2] = RESOLVE_NO_LINKS | RESOLVE_BENEATH;
    let cname = [name, b"\0"].concat();
    let args = [dirfd, cname.as_ptr() as u64, how.as_ptr() as u64, 24, 0, 0];
    match h.call(Sysno::openat2, args) {
        Err(Errno::ELOOP | Errno::EXDEV | Errno::ENOSYS) => None,
        result => Some(result.map(Disposition::Return)),
    }
}

/// Opens host path `host` from the program's context (an open may block: a FIFO, a device).
fn host_open(task: &mut TaskCtx<'_>, host: &[u8], flags: u64, mode: u64, resolve: u64) -> Outcome {
    let creating = flags & O_CREAT != 0 || flags & O_TMPFILE == O_TMPFILE;
    let mut how = [0u8; 24];
    let flags =
        if flags & O_PATH != 0 { flags & O_PATH_FLAGS } else { (flags & VALID_OPEN_FLAGS) | O_LARGEFILE };
    how[..8].copy_from_slice(&flags.to_ne_bytes());
    how[8..16].copy_from_slice(&(if creating { mode & 0o7777 } else { 0 }).to_ne_bytes());
    how[16..].copy_from_slice(&resolve.to_ne_bytes());
    let how_at = task.push_scratch(&how)?;
    host_call(task, Sysno::openat2, host, |p| [CWD, p, how_at, 24, 0, 0])
}
