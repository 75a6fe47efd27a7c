//! Host calls the kernel makes for a tracee, made by the supervisor.
//!
//! The kernel believes it runs in the calling process. Most of its own host calls do not care
//! (`lstat` of a layer, `clock_gettime`, `getrandom`), but a few name the caller, and are
//! translated here:
//!
//! - `getpid`/`gettid` answer the tracee's ids (as the supervisor numbers them: the kernel only
//!   compares them with each other and passes them to `tgkill`, which the supervisor makes);
//! - files the kernel makes get the tracee's umask (`/proc/PID/status`);
//! - `getcwd` reads the tracee's `/proc/PID/cwd`, and `chdir`/`fchdir` are not made here but
//!   left to the tracer, which makes the tracee's call one of them ([`Deferred`]);
//! - `/proc/self` and `/proc/thread-self` in a path argument become `/proc/PID` and
//!   `/proc/PID/task/TID`, and other absolute paths are looked up under `/proc/PID/root`, so
//!   that they reach the tracee's mount namespace;
//! - a descriptor argument is the tracee's (a directory it opened, a file it lists) unless the
//!   kernel opened it itself during this call: it is copied into the supervisor with
//!   `pidfd_getfd` for the call, sharing the open file (and its offset) with the tracee;
//! - calls on the caller's own signals, children and descriptor table that return at once
//!   (a timer's signal, a look for a child, a timer descriptor) are made by the tracee
//!   ([`remote`]).
//!
//! What is not translated, and so differs from the in-process backend (see
//! docs/architecture.md, Backends): relative paths (the kernel's are absolute), `/proc`
//! (the supervisor's shows the host's pids), and a descriptor the kernel makes in the
//! supervisor cannot be handed over, except a memfd (a served `/proc` file), which the tracer
//! has the tracee make and fills itself.

use super::remote;
use super::sys;
use kernel_host::Host;
use std::cell::RefCell;
use std::ffi::CStr;
use syscalls::Sysno;

const AT_FDCWD: i64 = -100;

/// The host, as one traced thread's kernel sees it.
pub struct TraceeHost {
    /// The tracee's process (thread group) id.
    pub pid: libc::pid_t,
    /// The calling thread.
    pub tid: libc::pid_t,
    /// A pidfd of the process, for `pidfd_getfd` (`-1`: none).
    pub pidfd: i32,
    /// Descriptors the kernel opened in the supervisor during this call.
    own: RefCell<Vec<i64>>,
    /// The last memfd the kernel made (descriptor, `memfd_create` flags): contents it means to
    /// hand the program (a served `/proc` file), which the tracer moves into the tracee.
    handover: std::cell::Cell<Option<(i32, u64)>>,
    /// A change of the working directory the kernel made, which must happen in the tracee:
    /// `chdir` of this host path, or `fchdir` of this descriptor of the tracee's.
    deferred: RefCell<Option<Deferred>>,
    /// Descriptors the tracee made for the kernel during this call ([`remote`]: a timer
    /// descriptor and its moved copy), which the kernel may move and close there.
    made: RefCell<Vec<i64>>,
    /// The tracee's wait status, if it ended while it made a call for the kernel.
    lost: std::cell::Cell<Option<i32>>,
}

/// A call the kernel made that must act on the tracee, not on the supervisor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deferred {
    /// `chdir(path)`; the path without its NUL.
    Chdir(Vec<u8>),
    /// `fchdir(fd)`.
    Fchdir(u64),
}

impl TraceeHost {
    /// The host for thread `tid` of process `pid`.
    pub fn new(pid: libc::pid_t, tid: libc::pid_t, pidfd: i32) -> Self {
        TraceeHost {
            pid,
            tid,
            pidfd,
            own: RefCell::new(Vec::new()),
            handover: std::cell::Cell::new(None),
            deferred: RefCell::new(None),
            made: RefCell::new(Vec::new()),
            lost: std::cell::Cell::new(None),
        }
    }

    /// The tracee's wait status if it ended while it made a call for the kernel: the tracer
    /// handles it as the report it took.
    pub fn lost(&self) -> Option<i32> {
        self.lost.get()
    }

    /// Makes `nr` in the tracee if only it can ([`remote`]); `None` when the supervisor makes it.
    fn in_tracee(&self, nr: u32, args: [u64; 6]) -> Option<i64> {
        if self.lost.get().is_some() {
            return remote::plan_exists(nr, &args).then_some(-i64::from(libc::ESRCH));
        }
        let made = self.made.borrow().contains(&(args[0] as i32 as i64));
        let r = match remote::call(&remote::Ids { pid: self.pid, tid: self.tid }, nr, args, made) {
            remote::Made::NotHere => return None,
            remote::Made::Result(r) => r,
            remote::Made::Lost(status) => {
                self.lost.set(Some(status));
                return Some(-i64::from(libc::ESRCH));
            }
        };
        match Sysno::new(nr as usize) {
            Some(Sysno::timerfd_create | Sysno::fcntl) if r >= 0 => self.made.borrow_mut().push(r),
            Some(Sysno::close) => self.made.borrow_mut().retain(|&fd| fd != args[0] as i32 as i64),
            _ => {}
        }
        Some(r)
    }

    /// The working-directory change the kernel asked for during this call, if any.
    pub fn deferred(&self) -> Option<Deferred> {
        self.deferred.borrow().clone()
    }

    /// The memfd the kernel made during this call and did not close, if any.
    pub fn memfd(&self) -> Option<i32> {
        self.handover.get().map(|(fd, _)| fd)
    }

    /// The memfd the kernel returns to the program, if `value` (a `Return`) is one it made here.
    pub fn handover(&self, value: i64) -> Option<(i32, u64)> {
        self.handover.get().filter(|&(fd, _)| i64::from(fd) == value)
    }

    fn raw(nr: u32, a: [u64; 6]) -> i64 {
        // SAFETY: a raw system call with the kernel's own arguments: its pointers address the
        // supervisor's memory (the kernel's buffers), as they would in the in-process backend.
        let r = unsafe { libc::syscall(libc::c_long::from(nr), a[0], a[1], a[2], a[3], a[4], a[5]) };
        if r < 0 {
            -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
        } else {
            r
        }
    }

    /// `path` (a NUL-terminated string in the supervisor's memory) as the supervisor must name
    /// it to reach what the tracee would: `/proc/self` is `/proc/PID`, and any other absolute
    /// path outside `/proc` is looked up under `/proc/PID/root`, in the tracee's mount namespace
    /// (the view's own mounts: its fresh `/tmp`, the private layer's tmpfs). The kernel's own
    /// host paths have no symbolic links (it resolves them itself), which that prefix would
    /// resolve against the supervisor's root.
    fn host_path(&self, path: u64) -> Option<Vec<u8>> {
        if path == 0 {
            return None;
        }
        // SAFETY: the kernel's path arguments are NUL-terminated strings in its own memory.
        let p = unsafe { CStr::from_ptr(path as *const libc::c_char) }.to_bytes();
        let (rest, own) = if let Some(rest) = p.strip_prefix(b"/proc/self") {
            (rest, format!("/proc/{}", self.pid))
        } else if let Some(rest) = p.strip_prefix(b"/proc/thread-self") {
            (rest, format!("/proc/{}/task/{}", self.pid, self.tid))
        } else if p.starts_with(b"/") && !(p == b"/proc" || p.starts_with(b"/proc/")) {
            (p, format!("/proc/{}/root", self.pid))
        } else {
            return None;
        };
        // `/proc/self` itself stays: it is a link (to the caller's pid), and the kernel only
        // asks what it is, leaving the reading of it to the tracee.
        if !(rest.starts_with(b"/") || (rest.is_empty() && own.ends_with("/root"))) {
            return None;
        }
        Some([own.as_bytes(), rest, b"\0"].concat())
    }

    /// The index of the descriptor argument of `nr`, and whether it may be `AT_FDCWD`.
    fn fd_arg(nr: u32) -> Option<usize> {
        let s = Sysno::new(nr as usize)?;
        use Sysno::*;
        match s {
            fstat | lseek | getdents64 | fcntl | read | pread64 | preadv2 | ioctl | fstatfs | fgetxattr
            | ftruncate | bind | connect | getsockname | getpeername | sendto | flistxattr
            | timerfd_gettime | timerfd_settime | newfstatat | statx | openat | openat2 | readlinkat
            | faccessat | faccessat2 | fchmodat | fchownat | mkdirat | unlinkat | utimensat => Some(0),
            _ => None,
        }
    }

    /// The tracee's umask (`Umask:` in `/proc/PID/status`).
    fn umask(&self) -> Option<libc::mode_t> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let v = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
        libc::mode_t::from_str_radix(v.trim(), 8).ok()
    }

    /// What `readlink` of `/proc/self` or `/proc/thread-self` reads in the tracee: its ids in
    /// its own pid namespace (the last of `NSpid`/`NStid` in `/proc/TID/status`).
    fn own_proc_link(&self, nr: u32, args: &[u64; 6]) -> Option<Vec<u8>> {
        let path = match Sysno::new(nr as usize)? {
            Sysno::readlink => args[0],
            Sysno::readlinkat if args[0] as i32 as i64 == AT_FDCWD => args[1],
            _ => return None,
        };
        if path == 0 {
            return None;
        }
        // SAFETY: the kernel's path arguments are NUL-terminated strings in its own memory.
        let p = unsafe { CStr::from_ptr(path as *const libc::c_char) }.to_bytes();
        if p != b"/proc/self" && p != b"/proc/thread-self" {
            return None;
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.tid)).ok()?;
        let last = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().last())
                .map(str::to_owned)
        };
        let pid = last("NSpid:")?;
        Some(if p == b"/proc/self" {
            pid.into_bytes()
        } else {
            format!("{pid}/task/{}", last("NStid:")?).into_bytes()
        })
    }

    /// The indexes of the path arguments of `nr` (not a symlink's target).
    fn path_args(nr: u32) -> &'static [usize] {
        let Some(s) = Sysno::new(nr as usize) else { return &[] };
        use Sysno::*;
        match s {
            open | stat | lstat | readlink | access | statfs | truncate | lgetxattr | getxattr
            | lsetxattr | setxattr | llistxattr | listxattr | lremovexattr | removexattr | mkdir | rmdir
            | unlink | chmod | chown | lchown | creat | utime | utimes => &[0],
            rename | link => &[0, 1],
            symlink => &[1],
            openat | openat2 | newfstatat | statx | readlinkat | faccessat | faccessat2 | mkdirat
            | unlinkat | mknodat | fchmodat | fchmodat2 | fchownat | utimensat | futimesat => &[1],
            renameat | renameat2 | linkat => &[1, 3],
            symlinkat => &[2],
            _ => &[],
        }
    }
}

impl Host for TraceeHost {
    fn syscall(&self, nr: u32, mut args: [u64; 6]) -> i64 {
        match Sysno::new(nr as usize) {
            Some(Sysno::getpid) => return i64::from(self.pid),
            // Made by the tracer in the tracee once the kernel has decided (see `deferred`).
            Some(Sysno::chdir) if args[0] != 0 => {
                // SAFETY: the kernel's path arguments are NUL-terminated strings in its memory.
                let path = unsafe { CStr::from_ptr(args[0] as *const libc::c_char) }.to_bytes().to_vec();
                *self.deferred.borrow_mut() = Some(Deferred::Chdir(path));
                return 0;
            }
            Some(Sysno::fchdir) => {
                *self.deferred.borrow_mut() = Some(Deferred::Fchdir(args[0]));
                return 0;
            }
            Some(Sysno::gettid) => return i64::from(self.tid),
            Some(Sysno::getcwd) => {
                let link = format!("/proc/{}/cwd\0", self.tid);
                let n = Self::raw(
                    Sysno::readlink.id() as u32,
                    [link.as_ptr() as u64, args[0], args[1].saturating_sub(1), 0, 0, 0],
                );
                if n < 0 {
                    return n;
                }
                // SAFETY: readlink wrote `n` bytes to the kernel's buffer of `args[1]` bytes,
                // and left room for the NUL.
                unsafe { *(args[0] as *mut u8).add(n as usize) = 0 };
                return n + 1;
            }
            _ => {}
        }
        if let Some(r) = self.in_tracee(nr, args) {
            return r;
        }
        match Sysno::new(nr as usize) {
            // Calls that would act on the supervisor's own signals or children, and that the
            // tracee cannot make for the kernel without the tracer waiting for it: not made.
            Some(
                Sysno::rt_sigpending
                | Sysno::rt_sigtimedwait
                | Sysno::rt_sigaction
                | Sysno::rt_sigprocmask
                | Sysno::waitid
                | Sysno::timerfd_create,
            ) => return -i64::from(libc::ENOSYS),
            // A descriptor the kernel did not open here is the tracee's, never the supervisor's.
            Some(Sysno::close | Sysno::write | Sysno::copy_file_range | Sysno::sendfile)
                if !self.own.borrow().contains(&(args[0] as i32 as i64)) =>
            {
                return -i64::from(libc::EBADF)
            }
            Some(Sysno::close_range | Sysno::dup2 | Sysno::dup3) => return -i64::from(libc::ENOSYS),
            _ => {}
        }
        // Kept alive until the call is made.
        if let Some(link) = self.own_proc_link(nr, &args) {
            let (buf, size) =
                if nr == Sysno::readlink.id() as u32 { (args[1], args[2]) } else { (args[2], args[3]) };
            let n = link.len().min(size as usize);
            // SAFETY: the kernel's buffer of `size` bytes, in its own memory.
            unsafe { std::ptr::copy_nonoverlapping(link.as_ptr(), buf as *mut u8, n) };
            return n as i64;
        }
        let renamed: Vec<(usize, Vec<u8>)> =
            Self::path_args(nr).iter().filter_map(|&i| self.host_path(args[i]).map(|p| (i, p))).collect();
        for (i, p) in &renamed {
            args[*i] = p.as_ptr() as u64;
        }
        let mut borrowed = None;
        if let Some(i) = Self::fd_arg(nr) {
            let fd = args[i] as i32 as i64;
            if fd >= 0 && fd != AT_FDCWD && !self.own.borrow().contains(&fd) && self.pidfd >= 0 {
                // A descriptor opened here relative to one of the tracee's would be the
                // supervisor's; the kernel then resolves the path itself (its fallback).
                if nr == Sysno::openat2.id() as u32 {
                    return -i64::from(libc::ENOSYS);
                }
                match sys::dup_fd(self.pidfd, fd as i32) {
                    Ok(copy) => {
                        args[i] = copy as u64;
                        borrowed = Some(copy);
                    }
                    Err(_) => return -i64::from(libc::EBADF),
                }
            }
        }
        // Files the kernel makes get the tracee's umask, not the supervisor's.
        let creates = match Sysno::new(nr as usize) {
            Some(Sysno::mkdir | Sysno::mkdirat | Sysno::mknodat | Sysno::creat) => true,
            Some(Sysno::open) => args[1] & libc::O_CREAT as u64 != 0,
            Some(Sysno::openat) => args[2] & libc::O_CREAT as u64 != 0,
            Some(Sysno::openat2) if args[2] != 0 => {
                // SAFETY: openat2's third argument is the kernel's `open_how`, in its own
                // memory, whose first word is the flags.
                let flags = unsafe { *(args[2] as *const u64) };
                flags & libc::O_CREAT as u64 != 0
            }
            _ => false,
        };
        let saved = creates.then(|| self.umask()).flatten().map(|m| {
            // SAFETY: umask cannot fail; the supervisor's is put back right after the call.
            unsafe { libc::umask(m) }
        });
        let r = Self::raw(nr, args);
        if let Some(m) = saved {
            // SAFETY: as above.
            unsafe { libc::umask(m) };
        }
        if let Some(copy) = borrowed {
            sys::close(copy);
        }
        match Sysno::new(nr as usize) {
            Some(Sysno::open | Sysno::openat | Sysno::openat2) if r >= 0 => {
                self.own.borrow_mut().push(r);
            }
            Some(Sysno::memfd_create) if r >= 0 => {
                self.own.borrow_mut().push(r);
                self.handover.set(Some((r as i32, args[1])));
            }
            Some(Sysno::close) => {
                self.own.borrow_mut().retain(|&fd| fd != args[0] as i64);
                if self.memfd().is_some_and(|fd| i64::from(fd) == args[0] as i64) {
                    self.handover.set(None);
                }
            }
            _ => {}
        }
        r
    }
}
