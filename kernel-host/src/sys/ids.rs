//! User and group ids in reproducible mode: the program runs as [`VIRTUAL_UID`] /
//! [`VIRTUAL_GID`] (`cloister`), whoever started it, so that `id`, `ls -l` of the files it
//! makes and anything that prints its user repeat on every machine. The host's ids still
//! decide what the program may do; only what it is told changes. `/etc/passwd` and
//! `/etc/group` are the sandbox's own (see [`crate::procfs`]), and a `stat` of the sandbox's own
//! files shows the virtual owner ([`crate::vfs::stamp`]).

use crate::kernel::Kernel;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;

/// The user id the program sees.
pub const VIRTUAL_UID: u32 = 1000;
/// The group id the program sees.
pub const VIRTUAL_GID: u32 = 1000;

/// `/etc/passwd` in reproducible mode.
pub const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\n\
cloister:x:1000:1000:cloister:/home/cloister:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
/// `/etc/group` in reproducible mode.
pub const GROUP: &[u8] = b"root:x:0:\ncloister:x:1000:\nnogroup:x:65534:\n";

/// `getuid`, `geteuid`.
pub fn getuid(_k: &Kernel, _task: &mut TaskCtx<'_>, _call: &Syscall) -> Disposition {
    Disposition::Return(i64::from(VIRTUAL_UID))
}

/// `getgid`, `getegid`.
pub fn getgid(_k: &Kernel, _task: &mut TaskCtx<'_>, _call: &Syscall) -> Disposition {
    Disposition::Return(i64::from(VIRTUAL_GID))
}

/// `getresuid(ruid, euid, suid)` and `getresgid`: all three the virtual id.
pub fn getres(_k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let id = if call.nr == syscalls::Sysno::getresuid.id() as u32 { VIRTUAL_UID } else { VIRTUAL_GID };
    for &ptr in &call.args[..3] {
        if let Err(e) = task.mem.write(ptr, &id.to_ne_bytes()) {
            return Disposition::Return(e.ret());
        }
    }
    Disposition::Return(0)
}

/// `getgroups(size, list)`: the virtual group alone.
pub fn getgroups(_k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [size, list, ..] = call.args;
    if size as i32 == 0 {
        return Disposition::Return(1);
    }
    match task.mem.write(list, &VIRTUAL_GID.to_ne_bytes()) {
        Ok(()) => Disposition::Return(1),
        Err(e) => Disposition::Return(e.ret()),
    }
}

/// Whether every id among `ids` is `-1` (unchanged) or the virtual `id`.
fn only_virtual(ids: &[u64], id: u32) -> bool {
    ids.iter().all(|&v| v as u32 == u32::MAX || v as u32 == id)
}

/// `setuid`, `setreuid`, `setresuid`, `setgid`, `setregid`, `setresgid`: setting the ids the
/// program already has does nothing and succeeds; any other is refused (`EPERM`), as for an
/// unprivileged user. A program that "drops privileges" to what `getuid` said must not make
/// the host's process really change its ids.
pub fn setids(_k: &Kernel, _task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    use syscalls::Sysno;
    let nr = call.nr;
    let (count, id) = match nr {
        n if n == Sysno::setuid.id() as u32 => (1, VIRTUAL_UID),
        n if n == Sysno::setreuid.id() as u32 => (2, VIRTUAL_UID),
        n if n == Sysno::setresuid.id() as u32 => (3, VIRTUAL_UID),
        n if n == Sysno::setgid.id() as u32 => (1, VIRTUAL_GID),
        n if n == Sysno::setregid.id() as u32 => (2, VIRTUAL_GID),
        _ => (3, VIRTUAL_GID),
    };
    let ok = only_virtual(&call.args[..count], id);
    Disposition::Return(if ok { 0 } else { crate::errno::Errno::EPERM.ret() })
}

/// `setfsuid`, `setfsgid`: the previous id, which is the virtual one; nothing changes.
pub fn setfsid(_k: &Kernel, _task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let uid = call.nr == syscalls::Sysno::setfsuid.id() as u32;
    Disposition::Return(i64::from(if uid { VIRTUAL_UID } else { VIRTUAL_GID }))
}

/// `setgroups(size, list)`: the virtual group alone, or none, is what the program has.
pub fn setgroups(_k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [size, list, ..] = call.args;
    let n = (size as i32).clamp(0, 65536) as usize;
    let mut ok = true;
    for i in 0..n {
        let mut id = [0u8; 4];
        if let Err(e) = task.mem.read(list + 4 * i as u64, &mut id) {
            return Disposition::Return(e.ret());
        }
        ok &= u32::from_ne_bytes(id) == VIRTUAL_GID;
    }
    Disposition::Return(if ok { 0 } else { crate::errno::Errno::EPERM.ret() })
}
