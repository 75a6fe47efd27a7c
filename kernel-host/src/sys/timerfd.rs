//! `timerfd_create`, `timerfd_settime`, `timerfd_gettime`, and `read` of a timer descriptor, in
//! reproducible mode.
//!
//! A timer descriptor is a real timerfd that the host never arms; its timer is kept in the
//! sandbox's shared memory ([`crate::timer_fds`]: parent and child of a fork share the one
//! file, and so the one timer), referenced from the table of each process that holds it
//! ([`crate::timer`]). When it fires cloister sets the descriptor's expiration count
//! (`TFD_IOC_SET_TICKS`), which the host keeps per open file, so `read`, `poll` and `epoll` on
//! it work natively in every holder.
//! Timer descriptors are placed at [`TIMERFD_FDS`], where `read` traps, so that a blocking
//! `read` is a wait like any other (`wake.rs`). See `timerfd_create(2)`.

use super::ret;
use super::timer::{checkpoint, owned, settime, write_spec, TIMER_ABSTIME};
use super::wake::{self, Wait, Woken};
use crate::abi::O_NONBLOCK;
use crate::errno::Errno;
use crate::kernel::Kernel;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;
use crate::time::TimePair;
use crate::timer::{Kind, Notify, Slot, Timer};
use syscalls::Sysno;

/// Descriptors timer descriptors are moved to: `read` traps for these numbers alone. Below the
/// runtime's reserved ones and the default `RLIMIT_NOFILE` of 1024, above what programs use.
pub const TIMERFD_FDS: core::ops::RangeInclusive<i32> = 960..=1019;

const TFD_TIMER_CANCEL_ON_SET: u64 = 2;
const TFD_NONBLOCK: u64 = 0o4000;
const TFD_CLOEXEC: u64 = 0o2_000_000;
const TFD_IOC_SET_TICKS: u64 = 0x4008_5400;
const F_DUPFD: u64 = 0;
const F_GETFL: u64 = 3;
const F_DUPFD_CLOEXEC: u64 = 1030;
const POLLIN: i16 = 1;
const RWF_NOWAIT: u64 = 8;

/// Adds `n` expirations to a timer descriptor's count. The count cannot be read without
/// taking it, so what the program has not read yet is taken and put back with the new ones.
pub(super) fn add_ticks(task: &TaskCtx<'_>, t: &Timer, n: u64) -> bool {
    let Kind::Fd(fd) = t.kind else { return true };
    let fd = fd as u64;
    let mut cur = [0u8; 32];
    if task.host_call(Sysno::timerfd_gettime, [fd, cur.as_mut_ptr() as u64, 0, 0, 0, 0]) < 0 {
        return false;
    }
    // Taken without blocking even on a blocking descriptor (another thread may read it
    // first, and this runs under the timers' lock). A host kernel without RWF_NOWAIT for
    // timerfds refuses, and the expirations not read yet are lost.
    let mut unread = 0u64;
    let iov = [&mut unread as *mut u64 as u64, 8];
    if task.host_call(Sysno::preadv2, [fd, iov.as_ptr() as u64, 1, u64::MAX, 0, RWF_NOWAIT]) != 8 {
        unread = 0;
    }
    let ticks = unread.saturating_add(n);
    if task.host_call(Sysno::ioctl, [fd, TFD_IOC_SET_TICKS, &ticks as *const u64 as u64, 0, 0, 0]) < 0 {
        // A host kernel without CONFIG_CHECKPOINT_RESTORE: one expiration, by arming the real
        // timer at a time already past.
        let mut spec = [0u8; 32];
        spec[16..32].copy_from_slice(&TimePair { secs: 0, frac: 1 }.to_bytes());
        task.host_call(Sysno::timerfd_settime, [fd, TIMER_ABSTIME, spec.as_ptr() as u64, 0, 0, 0]);
    }
    true
}

/// Whether descriptor `fd` can be read without blocking.
fn readable(task: &TaskCtx<'_>, fd: i32) -> bool {
    let mut pfd = [0u8; 8];
    pfd[..4].copy_from_slice(&fd.to_ne_bytes());
    pfd[4..6].copy_from_slice(&POLLIN.to_ne_bytes());
    task.host_call(Sysno::poll, [pfd.as_mut_ptr() as u64, 1, 0, 0, 0, 0]) > 0
}

/// `timerfd_create(clock, flags)`: a real timerfd the host never arms, moved to
/// [`TIMERFD_FDS`] so that `read` of it traps.
pub fn timerfd_create(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    // The process that arms a timer owns the table (a vfork child will not take it).
    owned(k, task);
    let [clock, flags, ..] = call.args;
    ret((|| {
        if !matches!(clock, 0 | 1 | 7..=9) || flags & !(TFD_NONBLOCK | TFD_CLOEXEC) != 0 {
            return Err(Errno::EINVAL);
        }
        let fd = Errno::check(task.host_call(Sysno::timerfd_create, [1, flags, 0, 0, 0, 0]))?;
        let dup = if flags & TFD_CLOEXEC != 0 { F_DUPFD_CLOEXEC } else { F_DUPFD };
        let low = *TIMERFD_FDS.start() as u64;
        let moved = task.host_call(Sysno::fcntl, [fd as u64, dup, low, 0, 0, 0]);
        let fd = if TIMERFD_FDS.contains(&(moved as i32)) && moved >= low as i64 {
            task.host_call(Sysno::close, [fd as u64, 0, 0, 0, 0, 0]);
            moved
        } else {
            // The range is full (or the descriptor limit lower): the timer still works, but
            // a blocking `read` of it does not trap (see docs/reproducible.md).
            if moved >= 0 {
                task.host_call(Sysno::close, [moved as u64, 0, 0, 0, 0, 0]);
            }
            fd
        };
        // The timer is shared with the processes this one forks from now on.
        let pid = task.host_call(Sysno::getpid, [0; 6]) as u32;
        let alive = |p: u32| task.host_call(Sysno::kill, [u64::from(p), 0, 0, 0, 0, 0]) != Errno::ESRCH.ret();
        let shared = k.timers.fds().alloc(pid, alive);
        let timer = Timer {
            kind: Kind::Fd(fd as i32),
            clock,
            notify: Notify::Fd,
            value: shared.0,
            slot: Slot::default(),
            overrun: 0,
        };
        if k.timers.put(timer).is_err() {
            k.timers.fds().release(shared, pid);
            task.host_call(Sysno::close, [fd as u64, 0, 0, 0, 0, 0]);
            return Err(Errno::EMFILE);
        }
        Ok(fd)
    })())
}

/// `timerfd_settime(fd, flags, new, old)`. Setting a timer forgets the expirations not read
/// yet, as Linux does. A descriptor cloister did not make (inherited through exec, or passed
/// over a socket) is the host's.
pub fn timerfd_settime(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let Some(v) = k.clock.virtual_clock() else { return Disposition::Host(*call) };
    let [fd, flags, new, old, ..] = call.args;
    let kind = Kind::Fd(fd as i32);
    if k.timers.get(kind).is_none() {
        return Disposition::Host(*call);
    }
    if flags & !(TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return ret(Err(Errno::EINVAL));
    }
    checkpoint(k, task);
    let zero = [0u8; 32];
    task.host_call(Sysno::timerfd_settime, [fd, 0, zero.as_ptr() as u64, 0, 0, 0]);
    let result = settime(k, v, task, kind, flags, new, old);
    checkpoint(k, task);
    ret(result)
}

/// `timerfd_gettime(fd, cur)`.
pub fn timerfd_gettime(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let Some(v) = k.clock.virtual_clock() else { return Disposition::Host(*call) };
    let [fd, cur, ..] = call.args;
    match k.timers.get(Kind::Fd(fd as i32)) {
        Some(t) => ret(write_spec(task, cur, t.slot, v.elapsed(), false).map(|_| 0)),
        None => Disposition::Host(*call),
    }
}

/// `read(fd, buf, len)` of a descriptor in [`TIMERFD_FDS`]: on a blocking timer descriptor
/// that has no expiration to read, a wait until its next one.
pub fn read(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let fd = call.args[0] as i32;
    if k.clock.virtual_clock().is_none() || k.timers.get(Kind::Fd(fd)).is_none() {
        return Disposition::Host(*call);
    }
    checkpoint(k, task);
    let flags = task.host_call(Sysno::fcntl, [fd as u64, F_GETFL, 0, 0, 0, 0]);
    if flags < 0 || flags as u64 & O_NONBLOCK != 0 || readable(task, fd) {
        return Disposition::Host(*call);
    }
    match wake::until(k, task, Wait::Readable(fd), None, task.sigmask) {
        Some(Woken::Signalled) => ret(Err(Errno::EINTR)),
        Some(Woken::Later) => Disposition::Return(0),
        _ => Disposition::Host(*call),
    }
}
