//! The path-taking calls, resolved against the filesystem view ([`crate::vfs`]): one module
//! per family. Each handler resolves its paths, does what the overlay needs (copy-up,
//! whiteouts) and then runs the call on the host against the host path, from the program's
//! context where the call may block or writes the program's memory.
//!
//! Without a view every handler here passes the call to the host unchanged.

pub mod attrs;
pub mod cwd;
pub mod fdattrs;
pub mod names;
pub mod open;
pub mod socket;
pub mod stat;

use crate::abi::{AT_FDCWD, PATH_MAX};
use crate::errno::{Errno, KResult};
use crate::kernel::Kernel;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;
use crate::vfs::host::Hc;
use crate::vfs::mount::Layers;
use crate::vfs::{Node, Place, Vfs};
use syscalls::Sysno;

/// `AT_FDCWD` as an argument.
pub(crate) const CWD: u64 = AT_FDCWD as u64;

/// The result of a handler that may end in a host call.
pub(crate) type Outcome = KResult<Disposition>;

/// Turns an outcome into a disposition.
pub(crate) fn finish(outcome: Outcome) -> Disposition {
    outcome.unwrap_or_else(|e| Disposition::Return(e.ret()))
}

/// The host-call interface of a task.
pub(crate) fn hc<'a>(task: &TaskCtx<'a>) -> Hc<'a> {
    Hc(task.host)
}

/// Runs a handler when there is a view, else passes the call through.
pub(crate) fn with_view(
    k: &Kernel,
    task: &mut TaskCtx<'_>,
    call: &Syscall,
    f: impl FnOnce(&Vfs, &mut TaskCtx<'_>) -> Outcome,
) -> Disposition {
    match k.vfs.as_ref() {
        Some(vfs) => finish(f(vfs, task)),
        None => Disposition::Host(*call),
    }
}

/// Reads the path at `ptr` and resolves it against `dirfd`.
pub(crate) fn resolve(vfs: &Vfs, task: &TaskCtx<'_>, dirfd: u64, ptr: u64, follow: bool) -> KResult<Node> {
    let path = task.read_cstring(ptr, PATH_MAX)?;
    vfs.resolve_at(hc(task), dirfd as i64, &path, follow)
}

/// Like [`resolve`], and the name must exist.
pub(crate) fn existing(vfs: &Vfs, task: &TaskCtx<'_>, dirfd: u64, ptr: u64, follow: bool) -> KResult<Node> {
    let node = resolve(vfs, task, dirfd, ptr, follow)?;
    if node.exists() {
        Ok(node)
    } else {
        Err(Errno::ENOENT)
    }
}

/// `EROFS` unless the program may change what is at `node`.
pub(crate) fn writable(vfs: &Vfs, node: &Node) -> KResult<()> {
    match &vfs.mounts.get(node.mount).layers {
        Layers::Direct { writable: false, .. } => Err(Errno::EROFS),
        _ => Ok(()),
    }
}

/// Makes `node` changeable in place: copies it up when it lives in a lower tree. Returns the
/// host path to change.
pub(crate) fn for_change(
    vfs: &Vfs,
    task: &TaskCtx<'_>,
    node: &Node,
    with_data: bool,
) -> KResult<alloc::vec::Vec<u8>> {
    writable(vfs, node)?;
    match node.place {
        Place::Lower => vfs.copy_up(hc(task), node, with_data),
        _ => Ok(node.host.clone()),
    }
}

/// A host call with `host` (a NUL-terminated host path) copied where the call can read it.
pub(crate) fn host_call(
    task: &mut TaskCtx<'_>,
    nr: Sysno,
    host: &[u8],
    args: impl FnOnce(u64) -> [u64; 6],
) -> Outcome {
    let p = task.push_scratch(host)?;
    Ok(Disposition::Host(Syscall::new(nr, args(p))))
}

/// A value returned to the program.
pub(crate) fn value(v: i64) -> Outcome {
    Ok(Disposition::Return(v))
}

/// Runs `f` and answers 0 or its error: for changes made from the handler itself.
pub(crate) fn done(result: KResult<()>) -> Outcome {
    result.map(|()| Disposition::Return(0))
}

/// The virtual clock's wall time now (advancing it), in reproducible mode.
pub(crate) fn virtual_now(k: &Kernel) -> Option<u64> {
    k.clock
        .virtual_clock()
        .filter(|_| k.config.reproducible.is_some())
        .map(|v| v.read(crate::abi::CLOCK_REALTIME).to_ns().unwrap_or(0))
}

/// The virtual clock's start, for files that cannot keep a stamp.
pub(crate) fn virtual_epoch(k: &Kernel) -> u64 {
    k.config.reproducible.map_or(0, |r| (r.epoch.max(0) as u64).saturating_mul(1_000_000_000))
}

/// In reproducible mode, stamps what changed at host path `host` with the virtual clock's
/// time (see [`crate::vfs::stamp`]), and the directory holding it when `name_changed`.
pub(crate) fn stamp_change(k: &Kernel, task: &TaskCtx<'_>, node: &Node, host: &[u8], name_changed: bool) {
    let (Some(vfs), Some(now)) = (k.vfs.as_ref(), virtual_now(k)) else { return };
    let h = hc(task);
    if !vfs.writes_privately(node.mount) {
        return;
    }
    if h.lstat(host).is_ok() {
        vfs.stamp(h, host, now);
    }
    if name_changed {
        let dir = [crate::vfs::path::parent(crate::vfs::path::strip_nul(host)), b"\0"].concat();
        vfs.stamp(h, &dir, now);
    }
}

/// Whether two nodes lie in the same mount (a rename or link across mounts is `EXDEV`).
pub(crate) fn same_mount(a: &Node, b: &Node) -> KResult<()> {
    if a.mount == b.mount {
        Ok(())
    } else {
        Err(Errno::EXDEV)
    }
}
