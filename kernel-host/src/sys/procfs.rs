//! `open`, `openat`, `readlink`, `readlinkat` and the `stat` family: the `/proc` files that
//! would describe the runtime instead of the program are answered by the kernel; every other
//! path goes to the filesystem view ([`super::vfs`]), or to the host unchanged without one.

use super::ret;
use super::vfs::open::open_path;
use super::vfs::stat::{readlink_path, stat_path, statx_path};
use crate::abi::{AT_FDCWD, AT_SYMLINK_NOFOLLOW, MFD_CLOEXEC, O_ACCMODE, O_CLOEXEC, O_WRONLY, PATH_MAX};
use crate::errno::{Errno, KResult};
use crate::kernel::Kernel;
use crate::procfs::{classify, ProcFile};
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;
use alloc::vec::Vec;
use syscalls::Sysno;

/// `open(path, flags, mode)`.
pub fn open(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [path, flags, mode, ..] = call.args;
    open_common(k, task, call, AT_FDCWD as u64, path, flags, mode)
}

/// `openat(dirfd, path, flags, mode)`.
pub fn openat(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [dirfd, path, flags, mode, ..] = call.args;
    open_common(k, task, call, dirfd, path, flags, mode)
}

fn served(k: &Kernel, task: &TaskCtx<'_>, path: u64) -> Option<ProcFile> {
    let mut buf = [0u8; 64];
    // Paths the kernel serves are short and absolute: anything unreadable or longer than the
    // buffer is the host's to answer (with its own EFAULT or ENAMETOOLONG).
    let n = task.mem.read_cstr(path, &mut buf).ok()?;
    let own_pid = || task.host_call(Sysno::getpid, [0; 6]) as u64;
    let file = classify(&buf[..n], own_pid)?;
    // A kernel without an image serves a program the host loaded itself (the ptrace backend):
    // the host's `/proc/self` already describes it.
    let own = matches!(file, ProcFile::Exe | ProcFile::Cmdline | ProcFile::Auxv | ProcFile::Environ);
    (!own || !k.process.image().exe.is_empty()).then_some(file)
}

fn open_common(
    k: &Kernel,
    task: &mut TaskCtx<'_>,
    call: &Syscall,
    dirfd: u64,
    path: u64,
    flags: u64,
    mode: u64,
) -> Disposition {
    let pass = |task: &mut TaskCtx<'_>| open_path(k, task, call, dirfd, path, flags, mode);
    let served = served(k, task, path);
    let contents: Vec<u8> = match served {
        None => return pass(task),
        Some(ProcFile::Exe) => {
            return match task.push_scratch(k.process.exe_cstr()) {
                Ok(addr) => {
                    // Without a view, this rewritten call is what runs on the host.
                    let moved = Syscall::new(Sysno::openat, [AT_FDCWD as u64, addr, flags, mode, 0, 0]);
                    open_path(k, task, &moved, AT_FDCWD as u64, addr, flags, mode)
                }
                Err(e) => ret(Err(e)),
            };
        }
        Some(ProcFile::Hostname) => match k.identity.hostname() {
            Some(name) => {
                let mut v = name.to_vec();
                v.push(b'\n');
                v
            }
            None => return pass(task),
        },
        Some(ProcFile::Cmdline) => k.process.image().cmdline.clone(),
        Some(ProcFile::Auxv) => k.process.image().auxv.clone(),
        Some(ProcFile::Environ) => match k.process.image().environ_area {
            Some((start, end)) => {
                let mut bytes = alloc::vec![0u8; end.saturating_sub(start) as usize];
                match task.mem.read(start, &mut bytes) {
                    Ok(()) => bytes,
                    Err(e) => return ret(Err(e)),
                }
            }
            None => Vec::new(),
        },
        Some(ProcFile::OsRelease) => match k.config.reproducible {
            Some(_) => [crate::identity::RELEASE, b"\n"].concat(),
            None => return pass(task),
        },
        Some(ProcFile::CpuList) => match k.config.reproducible {
            Some(r) => crate::procfs::cpu_list(r.cpus),
            None => return pass(task),
        },
        Some(ProcFile::CpuInfo) => match k.config.reproducible {
            Some(r) => match host_read_file(task, b"/proc/cpuinfo\0") {
                Ok(host) => crate::procfs::cpuinfo(&host, r.cpus),
                Err(e) => return ret(Err(e)),
            },
            None => return pass(task),
        },
        Some(ProcFile::RandomDevice) if flags & O_ACCMODE == O_WRONLY => return pass(task),
        Some(ProcFile::RandomUuid) if k.random.is_seeded() => {
            let mut b = [0u8; 16];
            k.random.fill(&mut b);
            crate::procfs::uuid(b)
        }
        Some(ProcFile::RandomUuid) => return pass(task),
        Some(ProcFile::Uptime) | Some(ProcFile::LoadAvg) => match k.clock.virtual_clock() {
            Some(v) if served == Some(ProcFile::Uptime) => {
                let up = crate::time::MONOTONIC_BASE_NS + v.tick();
                alloc::format!(
                    "{}.{:02} {}.{:02}\n",
                    up / 1_000_000_000,
                    up / 10_000_000 % 100,
                    up / 1_000_000_000,
                    up / 10_000_000 % 100
                )
                .into_bytes()
            }
            Some(_) => b"0.00 0.00 0.00 1/1 2\n".to_vec(),
            None => return pass(task),
        },
        Some(ProcFile::EtcPasswd) | Some(ProcFile::EtcGroup) if k.config.reproducible.is_some() => {
            let served = served.unwrap_or(ProcFile::EtcGroup);
            if served == ProcFile::EtcPasswd {
                super::ids::PASSWD.to_vec()
            } else {
                super::ids::GROUP.to_vec()
            }
        }
        Some(ProcFile::EtcPasswd) | Some(ProcFile::EtcGroup) => return pass(task),
        Some(ProcFile::EtcHostname) => match k.identity.hostname() {
            Some(name) => [name, b"\n"].concat(),
            None => return pass(task),
        },
        Some(ProcFile::RandomDevice) if k.random.is_seeded() => {
            // A device would never end; a program reading more than this sees end of file.
            let mut bytes = alloc::vec![0u8; RANDOM_DEVICE_LEN];
            k.random.fill(&mut bytes);
            bytes
        }
        Some(ProcFile::RandomDevice) => return pass(task),
        Some(ProcFile::MountInfo) | Some(ProcFile::Mounts) | Some(ProcFile::MountStats) => match k
            .vfs
            .as_ref()
        {
            Some(vfs) => match host_read_file(task, b"/proc/self/mountinfo\0") {
                Ok(host) if served == Some(ProcFile::MountInfo) => vfs.mountinfo(super::vfs::hc(task), &host),
                Ok(host) if served == Some(ProcFile::MountStats) => {
                    vfs.mountstats_file(super::vfs::hc(task), &host)
                }
                Ok(host) => vfs.mounts_file(super::vfs::hc(task), &host),
                Err(e) => return ret(Err(e)),
            },
            None => return pass(task),
        },
    };
    if flags & O_ACCMODE != 0 {
        return ret(Err(Errno::EACCES));
    }
    ret(memfd_with(task, &contents, flags & O_CLOEXEC != 0))
}

/// Bytes a seeded `/dev/urandom` holds.
const RANDOM_DEVICE_LEN: usize = 64 * 1024;

/// Reads a whole host file (NUL-terminated `path`) into kernel memory.
fn host_read_file(task: &TaskCtx<'_>, path: &[u8]) -> KResult<Vec<u8>> {
    let check = Errno::check;
    let fd =
        check(task.host_call(Sysno::openat, [AT_FDCWD as u64, path.as_ptr() as u64, O_CLOEXEC, 0, 0, 0]))?;
    let mut out = Vec::new();
    let mut chunk = alloc::vec![0u8; 4096];
    let result = loop {
        match check(
            task.host_call(Sysno::read, [fd as u64, chunk.as_mut_ptr() as u64, chunk.len() as u64, 0, 0, 0]),
        ) {
            Ok(0) => break Ok(out),
            Ok(n) => out.extend_from_slice(&chunk[..n as usize]),
            Err(e) => break Err(e),
        }
    };
    task.host_call(Sysno::close, [fd as u64, 0, 0, 0, 0, 0]);
    result
}

/// A read-only view of `contents` as a fresh descriptor.
fn memfd_with(task: &TaskCtx<'_>, contents: &[u8], cloexec: bool) -> KResult<i64> {
    let check = Errno::check;
    let name = b"cloister-proc\0";
    let flags = if cloexec { MFD_CLOEXEC } else { 0 };
    let fd = check(task.host_call(Sysno::memfd_create, [name.as_ptr() as u64, flags, 0, 0, 0, 0]))?;
    let mut done = 0;
    while done < contents.len() {
        let rest = &contents[done..];
        let r = task.host_call(Sysno::write, [fd as u64, rest.as_ptr() as u64, rest.len() as u64, 0, 0, 0]);
        if r <= 0 {
            task.host_call(Sysno::close, [fd as u64, 0, 0, 0, 0, 0]);
            return Err(Errno::from_ret(r).unwrap_or(Errno::ENOMEM));
        }
        done += r as usize;
    }
    check(task.host_call(Sysno::lseek, [fd as u64, 0, 0, 0, 0, 0]))?;
    Ok(fd)
}

/// `readlink(path, buf, size)`.
pub fn readlink(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [path, buf, size, ..] = call.args;
    readlink_common(k, task, call, [AT_FDCWD as u64, path, buf, size])
}

/// `readlinkat(dirfd, path, buf, size)`.
pub fn readlinkat(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [dirfd, path, buf, size, ..] = call.args;
    readlink_common(k, task, call, [dirfd, path, buf, size])
}

fn readlink_common(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall, at: [u64; 4]) -> Disposition {
    let [_, path, buf, size] = at;
    if served(k, task, path) != Some(ProcFile::Exe) {
        return readlink_path(k, task, call, at);
    }
    if size as i64 <= 0 {
        return ret(Err(Errno::EINVAL));
    }
    let exe = &k.process.image().exe;
    let n = exe.len().min(size as usize).min(PATH_MAX);
    ret(task.mem.write(buf, &exe[..n]).map(|_| n as i64))
}

/// Points a `stat` that follows `/proc/self/exe` at the program instead of the runtime, and
/// hands every other path to the view: `at` are the `*at` form's `dirfd, path, buf, flags`.
fn stat_common(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall, at: [u64; 4]) -> Disposition {
    let [_, path, buf, flags] = at;
    let nofollow = flags & AT_SYMLINK_NOFOLLOW != 0;
    if nofollow || served(k, task, path) != Some(ProcFile::Exe) {
        return stat_path(k, task, call, at);
    }
    match task.push_scratch(k.process.exe_cstr()) {
        Ok(addr) => {
            // Without a view, this rewritten call is what runs on the host.
            let moved = Syscall::new(Sysno::newfstatat, [AT_FDCWD as u64, addr, buf, flags, 0, 0]);
            stat_path(k, task, &moved, [AT_FDCWD as u64, addr, buf, flags])
        }
        Err(e) => ret(Err(e)),
    }
}

/// `stat(path, buf)`.
pub fn stat(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [path, buf, ..] = call.args;
    stat_common(k, task, call, [AT_FDCWD as u64, path, buf, 0])
}

/// `lstat(path, buf)`.
pub fn lstat(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [path, buf, ..] = call.args;
    stat_common(k, task, call, [AT_FDCWD as u64, path, buf, AT_SYMLINK_NOFOLLOW])
}

/// `newfstatat(dirfd, path, buf, flags)`.
pub fn newfstatat(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [dirfd, path, buf, flags, ..] = call.args;
    stat_common(k, task, call, [dirfd, path, buf, flags])
}

/// `statx(dirfd, path, flags, mask, buf)`: `/proc/self/exe` followed means the program.
pub fn statx(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [_, path, flags, ..] = call.args;
    if flags & AT_SYMLINK_NOFOLLOW != 0 || served(k, task, path) != Some(ProcFile::Exe) {
        return statx_path(k, task, call);
    }
    match task.push_scratch(k.process.exe_cstr()) {
        Ok(addr) => {
            let mut moved = *call;
            moved.args[0] = AT_FDCWD as u64;
            moved.args[1] = addr;
            statx_path(k, task, &moved)
        }
        Err(e) => ret(Err(e)),
    }
}
