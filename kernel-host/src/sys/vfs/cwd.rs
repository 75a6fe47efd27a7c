//! The working directory: `chdir`, `fchdir`, `getcwd`, and `chroot`, which the view refuses.
//! The host's working directory is the host directory the guest one is shown from, so that
//! it is inherited across fork and exec like any; the kernel keeps the guest path beside it.

use super::{existing, hc, Outcome};
use crate::errno::Errno;
use crate::kernel::Kernel;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;
use crate::vfs::Place;
use syscalls::Sysno;

/// `chdir(path)`.
pub fn chdir(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [path, ..] = call.args;
    super::with_view(k, task, call, |vfs, task| {
        let node = existing(vfs, task, super::CWD, path, true)?;
        if node.place != Place::Passthrough && !node.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let h = hc(task);
        h.call(Sysno::chdir, [node.host.as_ptr() as u64, 0, 0, 0, 0, 0])?;
        if node.place == Place::Passthrough {
            vfs.cwd_changed();
        } else {
            vfs.set_cwd(h, node.guest);
        }
        super::value(0)
    })
}

/// `fchdir(fd)`: the host's, and the kernel forgets the guest path it knew.
pub fn fchdir(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [fd, ..] = call.args;
    super::with_view(k, task, call, |vfs, task| {
        hc(task).call(Sysno::fchdir, [fd, 0, 0, 0, 0, 0])?;
        vfs.cwd_changed();
        super::value(0)
    })
}

/// `getcwd(buf, size)`: the guest path, with its NUL; `ERANGE` when it does not fit.
pub fn getcwd(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [buf, size, ..] = call.args;
    super::with_view(k, task, call, |vfs, task| -> Outcome {
        let mut cwd = vfs.cwd(hc(task))?;
        cwd.push(0);
        if cwd.len() as u64 > size {
            return Err(Errno::ERANGE);
        }
        task.mem.write(buf, &cwd)?;
        super::value(cwd.len() as i64)
    })
}

/// `chroot(path)`: the view is the program's root already; changing the host's would take
/// the view's host paths away from it.
pub fn chroot(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    super::with_view(k, task, call, |_, _| Err(Errno::EPERM))
}
