//! Calls the kernel makes that only the tracee itself can make: they act on the caller's own
//! signals (`rt_sigpending`, `rt_sigaction`, taking a pending signal, queueing one as the
//! kernel would with `si_code` `SI_KERNEL`, which Linux refuses from another process), its
//! children (`waitid`) or its descriptor table (a timer descriptor it makes and moves).
//!
//! The tracee is stopped at the seccomp stop of the call being served. Its registers are
//! rewritten to the wanted call, which it makes up to its exit stop (`PTRACE_SYSCALL`); then
//! `rip` goes back onto its `syscall` instruction with `rax` the served call's number and
//! arguments, and `PTRACE_CONT` makes it trap again at the same seccomp stop (the filter's
//! verdict is the same for the same call), where its registers are put back as they were.
//! Every signal is blocked meanwhile (`PTRACE_SETSIGMASK`), so that none is delivered between
//! the two. Pointer arguments (the kernel's buffers, in the supervisor) are copied to the
//! tracee's stack below the red zone and back; what was there is put back too, since the
//! kernel's own scratch data for the call may be there.
//!
//! Only calls that return at once are made this way, since the tracer serves no other stop
//! while it waits for them: a wait that blocks runs in rounds the tracer does not wait for
//! (`sys/wake.rs`, [`super::tracer`]).

use super::memory::TraceeMemory;
use super::sys::{self, event};
use kernel_host::GuestMemory;
use syscalls::Sysno;

/// How a pointer argument's buffer moves: into the tracee before the call, back after it.
#[derive(Clone, Copy)]
enum Dir {
    In,
    Out,
    Both,
}

/// One pointer argument: its index, its length in bytes and direction.
type Buf = (usize, usize, Dir);

const WNOHANG: u64 = 1;
const F_DUPFD: u64 = 0;
const F_DUPFD_CLOEXEC: u64 = 1030;

/// The pointer arguments of `nr` when the tracee must make it, or `None` when the supervisor
/// makes it (or, for a call that could block, nobody). `made` says whether descriptor
/// argument 0 is one the tracee made for the kernel during this stop.
fn plan(nr: u32, args: &[u64; 6], made: bool) -> Option<Vec<Buf>> {
    let opt = |i: usize, len: usize, dir: Dir| (args[i] != 0).then_some((i, len, dir));
    use Sysno::*;
    let bufs = match Sysno::new(nr as usize)? {
        rt_sigpending => vec![(0, 8, Dir::Out)],
        rt_sigaction => [opt(1, 32, Dir::In), opt(2, 32, Dir::Out)].into_iter().flatten().collect(),
        // Only a look (a zero timeout): the tracer must not wait for the tracee.
        rt_sigtimedwait if args[2] != 0 && zero_timeout(args[2]) => {
            [Some((0, 8, Dir::In)), opt(1, 128, Dir::Out), Some((2, 16, Dir::In))]
                .into_iter()
                .flatten()
                .collect()
        }
        rt_sigqueueinfo => vec![(2, 128, Dir::In)],
        rt_tgsigqueueinfo => vec![(3, 128, Dir::In)],
        tgkill | timerfd_create => vec![],
        waitid if args[3] & WNOHANG != 0 => {
            [opt(2, 128, Dir::Out), opt(4, 144, Dir::Out)].into_iter().flatten().collect()
        }
        poll if args[2] == 0 => vec![(0, args[1] as usize * 8, Dir::Both)],
        fcntl if made && matches!(args[1], F_DUPFD | F_DUPFD_CLOEXEC) => vec![],
        close if made => vec![],
        _ => return None,
    };
    Some(bufs)
}

fn zero_timeout(ts: u64) -> bool {
    // SAFETY: a `timespec` (16 bytes) in the kernel's own memory, as its argument says.
    let t = unsafe { std::slice::from_raw_parts(ts as *const u8, 16) };
    t.iter().all(|&b| b == 0)
}

/// Calls that name the caller by its ids, which the kernel has as the supervisor sees them
/// (`getpid`): the tracee's own, in its pid namespace, replace them.
fn id_args(nr: u32) -> &'static [usize] {
    match Sysno::new(nr as usize) {
        Some(Sysno::rt_sigqueueinfo) => &[0],
        Some(Sysno::rt_tgsigqueueinfo | Sysno::tgkill) => &[0, 1],
        _ => &[],
    }
}

/// A task's ids, as the supervisor and the task itself name them.
pub struct Ids {
    /// Process and thread ids in the supervisor's pid namespace.
    pub pid: libc::pid_t,
    /// See `pid`.
    pub tid: libc::pid_t,
}

impl Ids {
    /// `id` as the tracee names it, if it is one of its own two ids.
    fn own(&self, id: u64) -> Option<u64> {
        let id = id as i64;
        let which = if id == i64::from(self.pid) {
            self.pid
        } else if id == i64::from(self.tid) {
            self.tid
        } else {
            return None;
        };
        super::trace::namespace_id(which, "NSpid:").map(u64::from)
    }
}

/// What became of a call the tracee was to make.
pub enum Made {
    /// The supervisor makes this call itself.
    NotHere,
    /// The tracee made it: its raw result.
    Result(i64),
    /// The tracee ended meanwhile: its wait status, for the tracer.
    Lost(i32),
}

/// Whether `nr` with `args` is a call the tracee would make (for some descriptor argument).
pub fn plan_exists(nr: u32, args: &[u64; 6]) -> bool {
    plan(nr, args, true).is_some()
}

/// Makes call `nr` in the tracee `ids.tid`, stopped at a seccomp stop, if it is one only the
/// tracee can make. `made`: descriptor argument 0 is one the tracee made for the kernel during
/// this stop.
pub fn call(ids: &Ids, nr: u32, mut args: [u64; 6], made: bool) -> Made {
    let Some(bufs) = plan(nr, &args, made) else { return Made::NotHere };
    for &i in id_args(nr) {
        if let Some(own) = ids.own(args[i]) {
            args[i] = own;
        }
    }
    match inject(ids.tid, nr, args, &bufs) {
        Ok(made) => made,
        Err(_) => Made::Result(-i64::from(libc::ESRCH)),
    }
}

fn inject(tid: libc::pid_t, nr: u32, mut args: [u64; 6], bufs: &[Buf]) -> std::io::Result<Made> {
    let mem = TraceeMemory { tid };
    let saved = sys::regs(tid)?;
    let local = args;
    let total: usize = bufs.iter().map(|&(_, len, _)| (len + 15) & !15).sum();
    let base = saved.rsp.saturating_sub(kernel_host::task::RED_ZONE + total as u64);
    let mut backup = vec![0u8; total];
    if mem.read(base, &mut backup).is_err() {
        return Ok(Made::Result(-i64::from(libc::EFAULT)));
    }
    let mut at = base;
    for &(i, len, dir) in bufs {
        if matches!(dir, Dir::In | Dir::Both) {
            // SAFETY: the kernel's buffer of `len` bytes for this argument, in its own memory.
            let data = unsafe { std::slice::from_raw_parts(local[i] as *const u8, len) };
            if mem.write(at, data).is_err() {
                return Ok(Made::Result(-i64::from(libc::EFAULT)));
            }
        }
        args[i] = at;
        at += (len as u64 + 15) & !15;
    }
    let mask = sys::sigmask(tid);
    sys::set_sigmask(tid, !0)?;
    let mut regs = saved;
    regs.orig_rax = u64::from(nr);
    [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9] = args;
    sys::set_regs(tid, &regs)?;
    sys::resume(tid, 0, true)?;
    if let Err(status) = stop_at(tid, libc::SIGTRAP | 0x80, true) {
        return Ok(Made::Lost(status));
    }
    let result = sys::regs(tid)?.rax as i64;
    for &(i, len, dir) in bufs {
        if matches!(dir, Dir::Out | Dir::Both) {
            // SAFETY: as above, written to.
            let data = unsafe { std::slice::from_raw_parts_mut(local[i] as *mut u8, len) };
            let _ = mem.read(args[i], data);
        }
    }
    // Back to the served call's seccomp stop: its `syscall` instruction again.
    let mut back = saved;
    back.rip -= 2;
    back.rax = saved.orig_rax;
    sys::set_regs(tid, &back)?;
    sys::resume(tid, 0, false)?;
    if let Err(status) = stop_at(tid, libc::SIGTRAP | (event::SECCOMP << 8), false) {
        return Ok(Made::Lost(status));
    }
    sys::set_regs(tid, &saved)?;
    let _ = mem.write(base, &backup);
    sys::set_sigmask(tid, mask)?;
    Ok(Made::Result(result))
}

/// Waits for `tid`'s stop with `WSTOPSIG` (and event) `want`; `Err` with its status if it
/// ended first. A signal it stops for meanwhile (only `SIGSTOP` gets through the mask) is
/// held back and sent again once it is at the stop; `syscall_stop`: resume with
/// `PTRACE_SYSCALL`.
fn stop_at(tid: libc::pid_t, want: i32, syscall_stop: bool) -> Result<(), i32> {
    let mut held = None;
    loop {
        let status = sys::wait_task(tid).map_err(|_| 0)?;
        if !libc::WIFSTOPPED(status) {
            return Err(status);
        }
        if status >> 8 == want {
            break;
        }
        let sig = libc::WSTOPSIG(status);
        if status >> 16 == 0 && sig != libc::SIGTRAP {
            held = Some(sig);
        }
        if sys::resume(tid, 0, syscall_stop).is_err() {
            return Err(0);
        }
    }
    if let Some(sig) = held {
        let tgid = super::trace::namespace_id(tid, "Tgid:").map_or(tid, |t| t as libc::pid_t);
        sys::tgkill(tgid, tid, sig);
    }
    Ok(())
}
