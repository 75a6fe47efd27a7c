//! Unix-socket addresses in `bind` and `connect`: a path names a file in the view, so it is
//! resolved like any other (a socket bound in an overlay lands in the upper layer). Other
//! families, and abstract names, pass through.

use super::{hc, writable, Outcome, CWD};
use crate::errno::Errno;
use crate::kernel::Kernel;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;
use crate::vfs::Place;
use alloc::vec::Vec;
use syscalls::Sysno;

/// `AF_UNIX`.
const AF_UNIX: u16 = 1;
/// Bytes of `sun_path`.
const SUN_PATH: usize = 108;
/// `EADDRINUSE`.
const EADDRINUSE: Errno = Errno(98);

/// The path of a `sockaddr_un` at `addr` (`len` bytes), if it names a file.
fn unix_path(task: &TaskCtx<'_>, addr: u64, len: u64) -> Option<Vec<u8>> {
    if addr == 0 || !(3..=(2 + SUN_PATH) as u64).contains(&len) {
        return None;
    }
    let mut raw = alloc::vec![0u8; len as usize];
    task.mem.read(addr, &mut raw).ok()?;
    if u16::from_ne_bytes([raw[0], raw[1]]) != AF_UNIX || raw[2] == 0 {
        return None;
    }
    let path = &raw[2..];
    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
    Some(path[..end].to_vec())
}

/// A `sockaddr_un` for host path `host` (NUL-terminated), if it fits.
fn sockaddr_for(host: &[u8]) -> Option<Vec<u8>> {
    (host.len() <= SUN_PATH).then(|| [&AF_UNIX.to_ne_bytes()[..], host].concat())
}

/// Runs `nr` (`bind` or `connect`) on socket `fd` for host path `host` from the handler. A
/// path too long for `sun_path` (an upper layer adds its own prefix) is reached through the
/// descriptor of its directory, `/proc/self/fd/N/NAME`.
fn at_host_path(task: &TaskCtx<'_>, nr: Sysno, fd: u64, host: &[u8]) -> Outcome {
    let h = hc(task);
    if let Some(sa) = sockaddr_for(host) {
        let r = h.call(nr, [fd, sa.as_ptr() as u64, sa.len() as u64, 0, 0, 0])?;
        return super::value(r);
    }
    const O_PATH_CLOEXEC: u64 = 0o10000000 | crate::abi::O_CLOEXEC;
    let host = crate::vfs::path::strip_nul(host);
    let dir = [crate::vfs::path::parent(host), b"\0"].concat();
    let dirfd = h.open(&dir, O_PATH_CLOEXEC, 0)?;
    let short =
        [alloc::format!("/proc/self/fd/{dirfd}/").as_bytes(), crate::vfs::path::file_name(host), b"\0"]
            .concat();
    let r = match sockaddr_for(&short) {
        Some(sa) => h.call(nr, [fd, sa.as_ptr() as u64, sa.len() as u64, 0, 0, 0]),
        None => Err(Errno::ENAMETOOLONG),
    };
    h.close(dirfd);
    super::value(r?)
}

/// `bind(fd, addr, len)`.
pub fn bind(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [fd, addr, len, ..] = call.args;
    let Some(path) = unix_path(task, addr, len) else { return Disposition::Host(*call) };
    super::with_view(k, task, call, |vfs, task| {
        let node = vfs.resolve_at(hc(task), CWD as i64, &path, false)?;
        if node.exists() {
            return Err(EADDRINUSE);
        }
        writable(vfs, &node)?;
        vfs.prepare_create(hc(task), &node)?;
        at_host_path(task, Sysno::bind, fd, &node.host)
    })
}

/// `connect(fd, addr, len)`: a stream connection may wait for the listener, so it runs from
/// the program's context when the host path fits in an address.
pub fn connect(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [fd, addr, len, ..] = call.args;
    let Some(path) = unix_path(task, addr, len) else { return Disposition::Host(*call) };
    super::with_view(k, task, call, |vfs, task| {
        let node = vfs.resolve_at(hc(task), CWD as i64, &path, true)?;
        if node.place == Place::Missing {
            return Err(Errno::ENOENT);
        }
        match sockaddr_for(&node.host) {
            Some(sa) => {
                let at = task.push_scratch(&sa)?;
                Ok(Disposition::Host(Syscall::new(Sysno::connect, [fd, at, sa.len() as u64, 0, 0, 0])))
            }
            None => at_host_path(task, Sysno::connect, fd, &node.host),
        }
    })
}

/// `sendto(fd, buf, len, flags, addr, addrlen)` with a unix-socket path: the datagram goes to
/// the socket the path names in the view.
pub fn sendto(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [fd, buf, len, flags, addr, addrlen] = call.args;
    let Some(path) = unix_path(task, addr, addrlen) else { return Disposition::Host(*call) };
    super::with_view(k, task, call, |vfs, task| {
        let node = vfs.resolve_at(hc(task), CWD as i64, &path, true)?;
        if node.place == Place::Missing {
            return Err(Errno::ENOENT);
        }
        let sa = sockaddr_for(&node.host).ok_or(Errno::ENAMETOOLONG)?;
        let at = task.push_scratch(&sa)?;
        Ok(Disposition::Host(Syscall::new(Sysno::sendto, [fd, buf, len, flags, at, sa.len() as u64])))
    })
}

/// `getsockname(fd, addr, addrlen)` and `getpeername`: a unix socket's path is shown as the
/// view names it, not as the host does (the upper layer's, the private `/tmp`'s).
pub fn sockname(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [fd, addr, addrlen, ..] = call.args;
    super::with_view(k, task, call, |vfs, task| {
        let mut room = [0u8; 4];
        task.mem.read(addrlen, &mut room)?;
        let room = u32::from_ne_bytes(room) as usize;
        let mut raw = alloc::vec![0u8; 128];
        let mut len = raw.len() as u32;
        let h = hc(task);
        let nr =
            if call.nr == Sysno::getpeername.id() as u32 { Sysno::getpeername } else { Sysno::getsockname };
        h.call(nr, [fd, raw.as_mut_ptr() as u64, &mut len as *mut u32 as u64, 0, 0, 0])?;
        raw.truncate((len as usize).min(raw.len()));
        let named = raw.len() > 2 && u16::from_ne_bytes([raw[0], raw[1]]) == AF_UNIX && raw[2] != 0;
        if named {
            let end = raw[2..].iter().position(|&b| b == 0).map_or(raw.len(), |i| i + 2);
            if let Some(guest) = vfs.guest_of_host(&raw[2..end]) {
                raw = [&AF_UNIX.to_ne_bytes()[..], &guest, b"\0"].concat();
            }
        }
        // As the kernel does: copy what fits, and say how long the whole address is.
        task.mem.write(addr, &raw[..raw.len().min(room)])?;
        task.mem.write(addrlen, &(raw.len() as u32).to_ne_bytes())?;
        super::value(0)
    })
}
