//! The syscall table, as data: number → name, handler, support level, when it is redirected,
//! and how its arguments print in a trace. The list of supported calls in the docs and in
//! `cloister syscalls` is printed from this table.

use crate::abi::{AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW};
use crate::kernel::Kernel;
use crate::redirect::{Cond, When};
use crate::sys;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;
use syscalls::Sysno;

/// A handler: decode, validate, call the subsystem, return a disposition.
pub type Handler = fn(&Kernel, &mut TaskCtx<'_>, &Syscall) -> Disposition;

/// How completely a call is emulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// As Linux does it.
    Full,
    /// Served, with the difference the note gives.
    Partial(&'static str),
}

/// How an argument prints in a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A signed integer.
    Int,
    /// Flags or a mask, in hex.
    Hex,
    /// A descriptor (`AT_FDCWD` by name).
    Fd,
    /// A guest pointer to a NUL-terminated path, printed as the string.
    Path,
    /// A guest pointer, in hex.
    Ptr,
}

/// One row of the table.
pub struct Entry {
    /// The call.
    pub sysno: Sysno,
    /// Its handler.
    pub handler: Handler,
    /// How completely it is served.
    pub support: Support,
    /// When the policy redirects it.
    pub when: When,
    /// Which of its calls are redirected.
    pub cond: Cond,
    /// Its arguments, for traces.
    pub args: &'static [Arg],
}

macro_rules! entry {
    ($nr:ident, $handler:path, $support:expr, $when:ident, $cond:expr, [$($arg:ident),*]) => {
        Entry {
            sysno: Sysno::$nr,
            handler: $handler,
            support: $support,
            when: When::$when,
            cond: $cond,
            args: &[$(Arg::$arg),*],
        }
    };
}

use Support::{Full, Partial};

/// Every call the kernel serves.
#[rustfmt::skip]
pub static TABLE: &[Entry] = &[
    // identity
    entry!(uname, sys::identity::uname, Full, Identity, Cond::Always, [Ptr]),
    entry!(getuid, sys::ids::getuid, Partial("1000 in reproducible mode; permissions stay the host user's"), Reproducible, Cond::Always, []),
    entry!(geteuid, sys::ids::getuid, Partial("1000 in reproducible mode; permissions stay the host user's"), Reproducible, Cond::Always, []),
    entry!(getgid, sys::ids::getgid, Partial("1000 in reproducible mode"), Reproducible, Cond::Always, []),
    entry!(getegid, sys::ids::getgid, Partial("1000 in reproducible mode"), Reproducible, Cond::Always, []),
    entry!(getresuid, sys::ids::getres, Partial("1000 in reproducible mode"), Reproducible, Cond::Always, [Ptr, Ptr, Ptr]),
    entry!(getresgid, sys::ids::getres, Partial("1000 in reproducible mode"), Reproducible, Cond::Always, [Ptr, Ptr, Ptr]),
    entry!(getgroups, sys::ids::getgroups, Partial("the virtual group alone in reproducible mode"), Reproducible, Cond::Always, [Int, Ptr]),
    entry!(setuid, sys::ids::setids, Partial("only to the virtual id, and then without effect, in reproducible mode"), Reproducible, Cond::Always, [Int]),
    entry!(setreuid, sys::ids::setids, Partial("only to the virtual id, and then without effect, in reproducible mode"), Reproducible, Cond::Always, [Int, Int]),
    entry!(setresuid, sys::ids::setids, Partial("only to the virtual id, and then without effect, in reproducible mode"), Reproducible, Cond::Always, [Int, Int, Int]),
    entry!(setgid, sys::ids::setids, Partial("only to the virtual id, and then without effect, in reproducible mode"), Reproducible, Cond::Always, [Int]),
    entry!(setregid, sys::ids::setids, Partial("only to the virtual id, and then without effect, in reproducible mode"), Reproducible, Cond::Always, [Int, Int]),
    entry!(setresgid, sys::ids::setids, Partial("only to the virtual id, and then without effect, in reproducible mode"), Reproducible, Cond::Always, [Int, Int, Int]),
    entry!(setfsuid, sys::ids::setfsid, Partial("without effect in reproducible mode"), Reproducible, Cond::Always, [Int]),
    entry!(setfsgid, sys::ids::setfsid, Partial("without effect in reproducible mode"), Reproducible, Cond::Always, [Int]),
    entry!(setgroups, sys::ids::setgroups, Partial("only the virtual group, and then without effect, in reproducible mode"), Reproducible, Cond::Always, [Int, Ptr]),
    entry!(sethostname, sys::identity::sethostname, Partial("EPERM: the sandbox's name is fixed"), Identity, Cond::Always, [Ptr, Int]),
    // time
    entry!(clock_gettime, sys::time::clock_gettime, Full, Clocks, Cond::Always, [Int, Ptr]),
    entry!(gettimeofday, sys::time::gettimeofday, Full, Clocks, Cond::Always, [Ptr, Ptr]),
    entry!(time, sys::time::time, Full, Clocks, Cond::Always, [Ptr]),
    entry!(clock_nanosleep, sys::time::clock_nanosleep, Full, Clocks, Cond::Always, [Int, Hex, Ptr, Ptr]),
    entry!(nanosleep, sys::time::nanosleep, Full, Reproducible, Cond::Always, [Ptr, Ptr]),
    entry!(times, sys::time::times, Partial("user time is the virtual clock's; system time is zero"), Reproducible, Cond::Always, [Ptr]),
    entry!(getrusage, sys::time::getrusage, Partial("only user time, from the virtual clock; the rest reads zero"), Reproducible, Cond::Always, [Int, Ptr]),
    entry!(sysinfo, sys::time::sysinfo, Partial("virtual uptime; loads zero, one process"), Reproducible, Cond::Always, [Ptr]),
    // timers on the virtual clock
    entry!(alarm, sys::timer::alarm, Partial("fires on the virtual clock, at the first clock read or wait that reaches it"), Reproducible, Cond::Always, [Int]),
    entry!(setitimer, sys::timer::setitimer, Partial("all three timers fire on the virtual clock, at the first clock read or wait that reaches them; ITIMER_VIRTUAL and ITIMER_PROF count sleeps too"), Reproducible, Cond::Always, [Int, Ptr, Ptr]),
    entry!(getitimer, sys::timer::getitimer, Full, Reproducible, Cond::Always, [Int, Ptr]),
    entry!(timer_create, sys::timer::timer_create, Partial("fires on the virtual clock, at the first clock read or wait that reaches it; not inherited by fork, lost at exec"), Reproducible, Cond::Always, [Int, Ptr, Ptr]),
    entry!(timer_settime, sys::timer::timer_settime, Partial("absolute times on the timer's clock as the program reads it"), Reproducible, Cond::Always, [Int, Hex, Ptr, Ptr]),
    entry!(timer_gettime, sys::timer::timer_gettime, Full, Reproducible, Cond::Always, [Int, Ptr]),
    entry!(timer_getoverrun, sys::timer::timer_getoverrun, Partial("the expirations a single check found beyond the first"), Reproducible, Cond::Always, [Int]),
    entry!(timer_delete, sys::timer::timer_delete, Full, Reproducible, Cond::Always, [Int]),
    entry!(timerfd_create, sys::timerfd::timerfd_create, Partial("a host timerfd numbered from 960 whose count the virtual clock sets; TFD_TIMER_CANCEL_ON_SET never cancels"), Reproducible, Cond::Always, [Int, Hex]),
    entry!(timerfd_settime, sys::timerfd::timerfd_settime, Partial("fires on the virtual clock; after exec, or over a socket, the descriptor is the host's"), Reproducible, Cond::Always, [Fd, Hex, Ptr, Ptr]),
    entry!(timerfd_gettime, sys::timerfd::timerfd_gettime, Full, Reproducible, Cond::Always, [Fd, Ptr]),
    entry!(read, sys::timerfd::read, Partial("a blocking read of a timer descriptor waits on the virtual clock"), Reproducible, Cond::FdRange(0, 960, 1019), [Fd, Ptr, Int]),
    entry!(pause, sys::wait::pause, Partial("a timer's expiry on the virtual clock ends it"), Reproducible, Cond::Always, []),
    // processors and directories, in reproducible mode
    entry!(sched_getaffinity, sys::sched::sched_getaffinity, Partial("processors 0..cpus of the policy"), Reproducible, Cond::Always, [Int, Int, Ptr]),
    entry!(getcpu, sys::getcpu::getcpu, Partial("always processor 0, node 0"), Reproducible, Cond::Always, [Ptr, Ptr, Ptr]),
    entry!(rseq, sys::getcpu::rseq, Partial("ENOSYS in reproducible mode: the processor number stays getcpu's"), Reproducible, Cond::Refuse(crate::Errno::ENOSYS.0 as u16), [Ptr, Int, Hex, Hex]),
    entry!(getdents64, sys::dir::getdents64, Partial("sorted by name, and merged across an overlay's layers; d_off is the entry's position"), ReproducibleOrView, Cond::Always, [Fd, Ptr, Int]),
    // timed waits on the virtual clock
    entry!(futex, sys::wait::futex, Partial("absolute deadlines follow the program's clock; a timed wait that times out advances the virtual clock"), Clocks, Cond::NonZero(3), [Ptr, Hex, Int, Ptr, Ptr, Int]),
    entry!(poll, sys::wait::poll, Partial("a timeout advances the virtual clock; so does a virtual timer's expiry, which ends the wait"), Reproducible, Cond::Always, [Ptr, Int, Int]),
    entry!(ppoll, sys::wait::ppoll, Partial("the runtime's signals stay unblocked; a timeout advances the virtual clock; so does a virtual timer's expiry, which ends the wait"), Always, Cond::MaskGiven(3), [Ptr, Int, Ptr, Ptr, Int]),
    entry!(select, sys::wait::select, Partial("a timeout advances the virtual clock; so does a virtual timer's expiry, which ends the wait"), Reproducible, Cond::Always, [Int, Ptr, Ptr, Ptr, Ptr]),
    entry!(pselect6, sys::wait::pselect6, Partial("the runtime's signals stay unblocked; a timeout advances the virtual clock; so does a virtual timer's expiry, which ends the wait"), Always, Cond::MaskGiven(5), [Int, Ptr, Ptr, Ptr, Ptr, Ptr]),
    entry!(epoll_wait, sys::wait::epoll_wait, Partial("a timeout advances the virtual clock; so does a virtual timer's expiry, which ends the wait"), Reproducible, Cond::Always, [Fd, Ptr, Int, Int]),
    entry!(epoll_pwait, sys::wait::epoll_pwait, Partial("the runtime's signals stay unblocked; a timeout advances the virtual clock; so does a virtual timer's expiry, which ends the wait"), Always, Cond::MaskGiven(4), [Fd, Ptr, Int, Int, Ptr, Int]),
    entry!(epoll_pwait2, sys::wait::epoll_pwait2, Partial("the runtime's signals stay unblocked; a timeout advances the virtual clock; so does a virtual timer's expiry, which ends the wait"), Always, Cond::MaskGiven(4), [Fd, Ptr, Int, Ptr, Ptr, Int]),
    entry!(wait4, sys::wait::wait_child, Partial("the caller's virtual timers fire while it waits and interrupt it first; a WNOHANG poll made while a signal a timer queued is pending and blocked reports no child, once"), Reproducible, Cond::Always, [Int, Ptr, Hex, Ptr]),
    entry!(waitid, sys::wait::wait_child, Partial("the caller's virtual timers fire while it waits and interrupt it first; a WNOHANG poll made while a signal a timer queued is pending and blocked reports no child, once"), Reproducible, Cond::Always, [Int, Int, Ptr, Hex, Ptr]),
    entry!(rt_sigtimedwait, sys::wait::rt_sigtimedwait, Partial("a timeout advances the virtual clock; a virtual timer's signal it waits for ends it when the clock reaches the expiry"), Reproducible, Cond::Always, [Ptr, Ptr, Ptr, Int]),
    entry!(rt_sigsuspend, sys::wait::rt_sigsuspend, Partial("the runtime's signals stay unblocked; a virtual timer's expiry ends it"), Always, Cond::Always, [Ptr, Int]),
    // the runtime's processor settings (TSC and CPUID faulting), kept virtual
    entry!(prctl, sys::cpu::prctl_set_tsc, Partial("PR_SET_TSC is accepted and not applied: rdtsc stays virtual"), Reproducible, Cond::Equals(0, 26), [Int, Int]),
    entry!(arch_prctl, sys::cpu::arch_prctl_set_cpuid, Partial("ARCH_SET_CPUID is accepted and not applied: cpuid stays filtered"), Reproducible, Cond::Equals(0, 0x1012), [Hex, Int]),
    // randomness
    entry!(getrandom, sys::random::getrandom, Partial("GRND_RANDOM and GRND_NONBLOCK read the same seeded stream"), Seed, Cond::Always, [Ptr, Int, Hex]),
    // signals
    entry!(rt_sigaction, sys::signal::rt_sigaction, Partial("SIGSYS, SIGSEGV and SIGBUS are virtual, and never in a handler's host mask"), Always, Cond::Always, [Int, Ptr, Ptr, Int]),
    entry!(rt_sigprocmask, sys::signal::rt_sigprocmask, Partial("SIGSYS, SIGSEGV and SIGBUS are blocked only in the program's view"), Always, Cond::Always, [Int, Ptr, Ptr, Int]),
    // descriptors the runtime reserves
    entry!(close, sys::fd::close, Partial("closing a reserved descriptor succeeds and keeps it open"), ReservedFd, Cond::ReservedFd(0), [Fd]),
    entry!(close_range, sys::fd::close_range, Partial("reserved descriptors are skipped"), ReservedFd, Cond::Always, [Fd, Fd, Hex]),
    entry!(dup2, sys::fd::dup_onto, Partial("EBADF onto a reserved descriptor"), ReservedFd, Cond::ReservedFd(1), [Fd, Fd]),
    entry!(fcntl, sys::fd::fcntl, Partial("F_SETFD and F_SETFL on a reserved descriptor succeed without effect"), ReservedFd, Cond::ReservedFd(0), [Fd, Int, Hex]),
    entry!(dup3, sys::fd::dup_onto, Partial("EBADF onto a reserved descriptor"), ReservedFd, Cond::ReservedFd(1), [Fd, Fd, Hex]),
    // processes
    entry!(execve, sys::exec::execve, Full, Always, Cond::Always, [Path, Ptr, Ptr]),
    entry!(execveat, sys::exec::execveat, Partial("a descriptor is re-opened by its name; fexecve of a deleted file fails"), Always, Cond::Always, [Fd, Path, Ptr, Ptr, Hex]),
    entry!(fork, sys::process::fork, Full, Always, Cond::Always, []),
    entry!(clone, sys::process::clone, Full, Always, Cond::MaskClear(0, crate::abi::CLONE_VM), [Hex, Ptr, Ptr, Ptr, Hex]),
    entry!(clone3, sys::process::clone3, Partial("ENOSYS: libc falls back to clone"), Always, Cond::Always, [Ptr, Int]),
    entry!(brk, sys::process::brk, Full, Always, Cond::Always, [Ptr]),
    // /proc/self answered for the program, not the runtime
    entry!(open, sys::procfs::open, Full, Always, Cond::Always, [Path, Hex, Hex]),
    entry!(openat, sys::procfs::openat, Full, Always, Cond::Always, [Fd, Path, Hex, Hex]),
    entry!(readlink, sys::procfs::readlink, Full, Always, Cond::Always, [Path, Ptr, Int]),
    entry!(readlinkat, sys::procfs::readlinkat, Full, Always, Cond::Always, [Fd, Path, Ptr, Int]),
    entry!(stat, sys::procfs::stat, Full, Always, Cond::Always, [Path, Ptr]),
    entry!(newfstatat, sys::procfs::newfstatat, Full, Always, Cond::MaskClearView(3, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, 0), [Fd, Path, Ptr, Hex]),
    entry!(statx, sys::procfs::statx, Full, Always, Cond::MaskClearView(2, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, 0), [Fd, Path, Hex, Hex, Ptr]),
    // the filesystem view: every other path call
    entry!(lstat, sys::procfs::lstat, Full, View, Cond::Always, [Path, Ptr]),
    entry!(fstat, sys::vfs::stat::fstat, Partial("a copied-up file shows its lower file's numbers; in reproducible mode the sandbox's own files show virtual times and numbers"), View, Cond::Always, [Fd, Ptr]),
    entry!(creat, sys::vfs::open::creat, Full, View, Cond::Always, [Path, Hex]),
    entry!(openat2, sys::vfs::open::openat2, Partial("ENOSYS when resolve flags are given: the view does not apply them"), View, Cond::Always, [Fd, Path, Ptr, Int]),
    entry!(access, sys::vfs::stat::access, Full, View, Cond::Always, [Path, Hex]),
    entry!(faccessat, sys::vfs::stat::faccessat, Full, View, Cond::Always, [Fd, Path, Hex]),
    entry!(faccessat2, sys::vfs::stat::faccessat2, Full, View, Cond::Always, [Fd, Path, Hex, Hex]),
    entry!(statfs, sys::vfs::stat::statfs, Full, View, Cond::Always, [Path, Ptr]),
    entry!(mkdir, sys::vfs::names::mkdir, Full, View, Cond::Always, [Path, Hex]),
    entry!(mkdirat, sys::vfs::names::mkdirat, Full, View, Cond::Always, [Fd, Path, Hex]),
    entry!(mknod, sys::vfs::names::mknod, Partial("EPERM for devices"), View, Cond::Always, [Path, Hex, Hex]),
    entry!(mknodat, sys::vfs::names::mknodat, Partial("EPERM for devices"), View, Cond::Always, [Fd, Path, Hex, Hex]),
    entry!(unlink, sys::vfs::names::unlink, Full, View, Cond::Always, [Path]),
    entry!(unlinkat, sys::vfs::names::unlinkat, Full, View, Cond::Always, [Fd, Path, Hex]),
    entry!(rmdir, sys::vfs::names::rmdir, Full, View, Cond::Always, [Path]),
    entry!(rename, sys::vfs::names::rename, Partial("a directory with lower contents is copied up whole first, as mv across file systems would"), View, Cond::Always, [Path, Path]),
    entry!(renameat, sys::vfs::names::renameat, Partial("a directory with lower contents is copied up whole first, as mv across file systems would"), View, Cond::Always, [Fd, Path, Fd, Path]),
    entry!(renameat2, sys::vfs::names::renameat2, Partial("a directory with lower contents is copied up whole first, as mv across file systems would"), View, Cond::Always, [Fd, Path, Fd, Path, Hex]),
    entry!(link, sys::vfs::names::link, Full, View, Cond::Always, [Path, Path]),
    entry!(linkat, sys::vfs::names::linkat, Full, View, Cond::Always, [Fd, Path, Fd, Path, Hex]),
    entry!(symlink, sys::vfs::names::symlink, Full, View, Cond::Always, [Path, Path]),
    entry!(symlinkat, sys::vfs::names::symlinkat, Full, View, Cond::Always, [Path, Fd, Path]),
    entry!(chmod, sys::vfs::attrs::chmod, Full, View, Cond::Always, [Path, Hex]),
    entry!(fchmodat, sys::vfs::attrs::fchmodat, Full, View, Cond::Always, [Fd, Path, Hex]),
    entry!(fchmodat2, sys::vfs::attrs::fchmodat2, Full, View, Cond::Always, [Fd, Path, Hex, Hex]),
    entry!(setxattrat, sys::vfs::attrs::unserved, Partial("ENOSYS with a view: libraries fall back to setxattr"), View, Cond::Always, [Fd, Path, Hex, Ptr, Ptr, Int]),
    entry!(getxattrat, sys::vfs::attrs::unserved, Partial("ENOSYS with a view: libraries fall back to getxattr"), View, Cond::Always, [Fd, Path, Hex, Ptr, Ptr, Int]),
    entry!(listxattrat, sys::vfs::attrs::unserved, Partial("ENOSYS with a view: libraries fall back to listxattr"), View, Cond::Always, [Fd, Path, Hex, Ptr, Int]),
    entry!(removexattrat, sys::vfs::attrs::unserved, Partial("ENOSYS with a view: libraries fall back to removexattr"), View, Cond::Always, [Fd, Path, Hex, Ptr]),
    entry!(file_getattr, sys::vfs::attrs::unserved, Partial("ENOSYS with a view"), View, Cond::Always, [Fd, Path, Ptr, Int, Hex]),
    entry!(file_setattr, sys::vfs::attrs::unserved, Partial("ENOSYS with a view"), View, Cond::Always, [Fd, Path, Ptr, Int, Hex]),
    entry!(name_to_handle_at, sys::vfs::attrs::unserved, Partial("ENOSYS with a view: handles would name host files"), View, Cond::Always, [Fd, Path, Ptr, Ptr, Hex]),
    entry!(fanotify_mark, sys::vfs::attrs::unserved, Partial("ENOSYS with a view"), View, Cond::Always, [Fd, Hex, Hex, Fd, Path]),
    entry!(open_tree_attr, sys::vfs::attrs::unserved, Partial("ENOSYS with a view: it would open a host path"), View, Cond::Always, [Fd, Path, Hex, Ptr, Int]),
    entry!(chown, sys::vfs::attrs::chown, Full, View, Cond::Always, [Path, Int, Int]),
    entry!(lchown, sys::vfs::attrs::lchown, Full, View, Cond::Always, [Path, Int, Int]),
    entry!(fchownat, sys::vfs::attrs::fchownat, Full, View, Cond::Always, [Fd, Path, Int, Int, Hex]),
    entry!(utime, sys::vfs::attrs::utime, Full, View, Cond::Always, [Path, Ptr]),
    entry!(utimes, sys::vfs::attrs::utimes, Full, View, Cond::Always, [Path, Ptr]),
    entry!(futimesat, sys::vfs::attrs::futimesat, Full, View, Cond::Always, [Fd, Path, Ptr]),
    entry!(utimensat, sys::vfs::attrs::utimensat, Full, View, Cond::Always, [Fd, Path, Ptr, Hex]),
    entry!(fchmod, sys::vfs::fdattrs::fchmod, Partial("on a lower file, the upper copy changes; the descriptor keeps showing the lower one"), View, Cond::Always, [Fd, Hex]),
    entry!(fchown, sys::vfs::fdattrs::fchown, Partial("on a lower file, the upper copy changes; the descriptor keeps showing the lower one"), View, Cond::Always, [Fd, Int, Int]),
    entry!(fsetxattr, sys::vfs::fdattrs::fsetxattr, Partial("on a lower file, the upper copy changes; user.overlay.* is the view's own"), View, Cond::Always, [Fd, Ptr, Ptr, Int, Hex]),
    entry!(fremovexattr, sys::vfs::fdattrs::fremovexattr, Partial("on a lower file, the upper copy changes; user.overlay.* is the view's own"), View, Cond::Always, [Fd, Ptr]),
    entry!(truncate, sys::vfs::attrs::truncate, Full, View, Cond::Always, [Path, Int]),
    entry!(setxattr, sys::vfs::attrs::setxattr, Partial("user.overlay.* is the view's own: EPERM"), View, Cond::Always, [Path, Ptr, Ptr, Int, Hex]),
    entry!(lsetxattr, sys::vfs::attrs::setxattr, Partial("user.overlay.* is the view's own: EPERM"), View, Cond::Always, [Path, Ptr, Ptr, Int, Hex]),
    entry!(removexattr, sys::vfs::attrs::removexattr, Partial("user.overlay.* is the view's own: EPERM"), View, Cond::Always, [Path, Ptr]),
    entry!(lremovexattr, sys::vfs::attrs::removexattr, Partial("user.overlay.* is the view's own: EPERM"), View, Cond::Always, [Path, Ptr]),
    entry!(getxattr, sys::vfs::attrs::readxattr, Full, View, Cond::Always, [Path, Ptr, Ptr, Int]),
    entry!(lgetxattr, sys::vfs::attrs::readxattr, Full, View, Cond::Always, [Path, Ptr, Ptr, Int]),
    entry!(listxattr, sys::vfs::attrs::readxattr, Full, View, Cond::Always, [Path, Ptr, Int]),
    entry!(llistxattr, sys::vfs::attrs::readxattr, Full, View, Cond::Always, [Path, Ptr, Int]),
    entry!(chdir, sys::vfs::cwd::chdir, Full, View, Cond::Always, [Path]),
    entry!(fchdir, sys::vfs::cwd::fchdir, Full, View, Cond::Always, [Fd]),
    entry!(getcwd, sys::vfs::cwd::getcwd, Full, View, Cond::Always, [Ptr, Int]),
    entry!(chroot, sys::vfs::cwd::chroot, Partial("EPERM: the view is the program's root"), View, Cond::Always, [Path]),
    entry!(bind, sys::vfs::socket::bind, Partial("a unix-socket path is resolved in the view"), View, Cond::Always, [Fd, Ptr, Int]),
    entry!(connect, sys::vfs::socket::connect, Partial("a unix-socket path is resolved in the view"), View, Cond::Always, [Fd, Ptr, Int]),
    entry!(sendto, sys::vfs::socket::sendto, Partial("a unix-socket path is resolved in the view"), View, Cond::NonZero(4), [Fd, Ptr, Int, Hex, Ptr, Int]),
    entry!(getsockname, sys::vfs::socket::sockname, Partial("a unix socket's path is the view's"), View, Cond::Always, [Fd, Ptr, Ptr]),
    entry!(getpeername, sys::vfs::socket::sockname, Partial("a unix socket's path is the view's"), View, Cond::Always, [Fd, Ptr, Ptr]),
    entry!(inotify_add_watch, sys::vfs::stat::inotify_add_watch, Partial("watches the layer that holds the file when the watch starts"), View, Cond::Always, [Fd, Path, Hex]),
];

/// Highest call number the index covers.
const INDEX_LEN: usize = 512;

/// Number → position in [`TABLE`] plus one (0: not served), built at compile time.
static INDEX: [u8; INDEX_LEN] = {
    let mut index = [0u8; INDEX_LEN];
    let mut i = 0;
    while i < TABLE.len() {
        let nr = TABLE[i].sysno.id() as usize;
        assert!(nr < INDEX_LEN && index[nr] == 0, "duplicate or out-of-range table entry");
        index[nr] = (i + 1) as u8;
        i += 1;
    }
    index
};

/// The entry for a call number.
pub fn lookup(nr: u32) -> Option<&'static Entry> {
    match INDEX.get(nr as usize) {
        Some(&pos) if pos != 0 => Some(&TABLE[pos as usize - 1]),
        _ => None,
    }
}
