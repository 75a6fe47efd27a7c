//! `execve`, `execveat`: checked here, then re-entered through a fresh `cloister-rt`, so that
//! every image the sandbox runs is loaded by the runtime and stays under the same policy.

use super::exec_memo;
use crate::abi::{AT_EMPTY_PATH, AT_FDCWD, PATH_MAX};
use crate::binfmt::{self, Target};
use crate::config::{Config, Handover};
use crate::errno::{Errno, KResult};
use crate::kernel::Kernel;
use crate::syscall::{Disposition, ExecPlan, Syscall};
use crate::task::TaskCtx;
use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;

/// Most bytes of arguments and environment accepted, as Linux's usual `ARG_MAX` (2 MiB).
const ARG_MAX: usize = 2 * 1024 * 1024;

/// `execve(path, argv, envp)`.
pub fn execve(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [path, argv, envp, ..] = call.args;
    dispose(task.read_cstring(path, PATH_MAX).and_then(|p| exec(k, task, p, argv, envp)))
}

/// `execveat(dirfd, path, argv, envp, flags)`: the descriptor forms become paths. The
/// descriptor itself may be close-on-exec (`fexecve` of an `O_CLOEXEC` descriptor), gone by
/// the time the runtime loads the program: where the file still has a name, that name is used.
pub fn execveat(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [dirfd, path, argv, envp, flags, _] = call.args;
    let resolved = task.read_cstring(path, PATH_MAX).map(|p| {
        let dirfd = dirfd as i32;
        if p.first() == Some(&b'/') || i64::from(dirfd) == AT_FDCWD {
            p
        } else {
            let fd_path = format!("/proc/self/fd/{dirfd}").into_bytes();
            let named = match k.vfs() {
                Some(vfs) => vfs.guest_of_fd(crate::vfs::host::Hc(task.host), dirfd).ok(),
                None => host_readlink(task, &fd_path).filter(|t| t.first() == Some(&b'/')),
            };
            let mut base = named.unwrap_or(fd_path);
            if !(p.is_empty() && flags & AT_EMPTY_PATH != 0) {
                base.push(b'/');
                base.extend_from_slice(&p);
            }
            base
        }
    });
    dispose(resolved.and_then(|p| exec(k, task, p, argv, envp)))
}

/// What a `/proc/self/fd` link names, unless the file has no name any more.
fn host_readlink(task: &TaskCtx<'_>, path: &[u8]) -> Option<Vec<u8>> {
    let mut cpath = path.to_vec();
    cpath.push(0);
    let target = crate::vfs::host::Hc(task.host).readlink(&cpath).ok()?;
    (!target.is_empty() && !target.ends_with(b" (deleted)")).then_some(target)
}

fn dispose(plan: KResult<ExecPlan>) -> Disposition {
    match plan {
        Ok(plan) => Disposition::Exec(plan),
        Err(e) => Disposition::Return(e.ret()),
    }
}

fn exec(k: &Kernel, task: &TaskCtx<'_>, path: Vec<u8>, argv: u64, envp: u64) -> KResult<ExecPlan> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    // `/proc/self/exe` is the runtime on the host: exec'ing it means the program itself. (Not
    // for an image the host loaded, which the kernel knows nothing of (ptrace): there the
    // host's link is the program.)
    let own_pid = || task.host_call(syscalls::Sysno::getpid, [0; 6]) as u64;
    let exe = &k.process.image().exe;
    let path =
        if !exe.is_empty() && crate::procfs::classify(&path, own_pid) == Some(crate::procfs::ProcFile::Exe) {
            exe.clone()
        } else {
            path
        };
    let argv = task.read_string_array(argv, ARG_MAX)?;
    let envp = task.read_string_array(envp, ARG_MAX)?;
    // Whether some lookup of this exec led through `/proc` or `/dev` (see `exec_memo`).
    let volatile = core::cell::Cell::new(false);
    let lookup = |guest: &[u8]| match k.vfs() {
        Some(vfs) => vfs.program_lookup(crate::vfs::host::Hc(task.host), guest).map(|(host, guest, v)| {
            volatile.set(volatile.get() | v);
            (host, guest)
        }),
        None => Ok(([guest, b"\0"].concat(), None)),
    };
    // Read before the lookup, so that a change made meanwhile leaves what it finds unkept.
    let stamp = k.vfs().filter(|_| exec_memo::named_for_keeps(&path)).map(|v| v.lookup_stamp());
    let target = match stamp.and_then(|s| remembered(k, task, &path, s)) {
        Some(target) => target,
        None => {
            let target = looked_up(task, &lookup, &path, &argv)?;
            if let Some(s) = stamp.filter(|_| !volatile.get()) {
                remember(k, &path, s, &target);
            }
            target
        }
    };
    // A runtime that loads the next image is told what was checked, so that it need not look
    // the program up again (a backend whose host loads images has no use for it).
    let target = task.host.runtime_loads_images().then_some(target);
    // A vfork child execs with its parent's timers in its memory: they are not its own.
    let itimers = if crate::sys::timer::owned(k, task) { k.timers.intervals() } else { [(0, 0); 3] };
    Ok(plan(k, task.tid(), itimers, path, argv, envp, target))
}

/// What an earlier exec of `path` found, when the view's stamp is still `stamp` and that still
/// holds ([`exec_memo`]). Out of line, as [`remember`]: their temporaries stay out of the frame
/// under [`binfmt::target`]'s walk, which may run on a program's 8 KiB signal stack.
#[inline(never)]
fn remembered(k: &Kernel, task: &TaskCtx<'_>, path: &[u8], stamp: (u64, u64)) -> Option<Box<Target>> {
    // Copied out and checked on the host without the lock: a vfork child that dies in a
    // host call must not leave its parent's memo locked.
    let target = k.exec_memo.lock().get(path, stamp)?;
    exec_memo::still_holds(task.host, &target).then(|| Box::new(target))
}

/// [`binfmt::target`], boxed: targets are large, and [`exec`]'s frame lies under the walk.
#[inline(never)]
fn looked_up(
    task: &TaskCtx<'_>,
    lookup: binfmt::Lookup<'_>,
    path: &[u8],
    argv: &[Vec<u8>],
) -> KResult<Box<Target>> {
    binfmt::target(task.host, lookup, path, argv).map(Box::new)
}

/// Keeps what an exec of `path` found (see [`remembered`]).
#[inline(never)]
fn remember(k: &Kernel, path: &[u8], stamp: (u64, u64), target: &Target) {
    if let Some(entry) = exec_memo::entry(path, stamp, target) {
        k.exec_memo.lock().put(entry);
    }
}

/// The runtime's command line: `cloister-rt PROGRAM ARGV...`, and the environment with the
/// configuration for the next image in place of any the program tried to pass. Out of line:
/// its configuration would otherwise sit in [`exec`]'s frame under the lookup's walk, and the
/// handler may run on a program's 8 KiB signal stack.
#[inline(never)]
fn plan(
    k: &Kernel,
    tid: u32,
    itimers: [(u64, u64); 3],
    program: Vec<u8>,
    argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    target: Option<Box<Target>>,
) -> ExecPlan {
    // The view's table lies in the shared memory ([`Config::mount_table`]): what is cloned and
    // encoded here is a few short fields.
    let mut next = k.config.clone();
    next.lineage = k.random.lineage_after_exec();
    next.blocked = k.signals.virtually_blocked(tid);
    next.itimers = itimers;
    next.handover = target.as_ref().map(|t| Handover {
        exe: (t.file.dev, t.file.ino),
        interp: t.interp.as_ref().map(|i| (i.dev, i.ino)),
    });
    let prefix = format!("{}=", Config::ENV).into_bytes();
    let mut env: Vec<Vec<u8>> = envp.into_iter().filter(|e| !e.starts_with(&prefix)).collect();
    let mut ours = prefix;
    ours.extend_from_slice(next.encode().as_bytes());
    env.push(ours);
    let mut args = Vec::with_capacity(argv.len() + 5);
    args.push(b"cloister-rt".to_vec());
    args.push(program);
    match target {
        // The runtime loads the checked ELF: it needs its names and the arguments after the
        // `#!` lines were followed, not the program's own.
        Some(t) => {
            let host = |c: &binfmt::Checked| c.host.strip_suffix(b"\0").unwrap_or(&c.host).to_vec();
            args.push(t.exe.unwrap_or_default());
            args.push(host(&t.file));
            args.push(t.interp.as_ref().map(host).unwrap_or_default());
            args.extend(t.argv.unwrap_or(argv));
        }
        None => args.extend(argv),
    }
    ExecPlan { path: k.config.rt_path.as_bytes().to_vec(), argv: args, envp: env }
}
