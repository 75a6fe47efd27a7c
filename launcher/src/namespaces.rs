//! The sandbox's own namespaces: mount, pid, ipc and uts namespaces for every run with a
//! filesystem view and in reproducible mode, and with `--net none` a network namespace.
//!
//! **With a view**, the launcher creates the sandbox's first process with `clone(CLONE_NEWNS)`
//! (plus `CLONE_NEWUSER`, mapping only the caller's own uid and gid, when the launcher is not
//! root or root may not create the others by itself). That process makes every mount private
//! and lays out the view's mounts ([`crate::view::mounts`]: the host tree read-only, the state
//! directory and `rw` mounts writable, hidden paths covered by empty stand-ins), then goes on
//! with the usual path of [`crate::spawn`] (Landlock, seccomp, exec). This is the part of the
//! floor that Landlock does not give: a program that jumps into the runtime's gate cannot
//! `chmod`, `chown` or touch host files, nor `stat` or connect to hidden ones.
//!
//! **With a view, and in reproducible mode,** it adds `CLONE_NEWPID`: the program sees only the
//! sandbox's processes, with ids that (in reproducible mode) are the same on every run, a
//! `/proc` (and so `ps`) that agrees with them, and in reproducible mode without a view a
//! fresh, empty `/tmp` (a view decides what `/tmp` is itself). For root, whom `RLIMIT_NPROC`
//! does not hold, the namespace's `pid_max` carries the processes limit (see
//! [`crate::limits::pid_max`]). The first process is then pid 1 of
//! the new pid namespace and acts as a minimal init: it makes every mount private, lays out the
//! view's mounts if any, mounts a fresh `proc` on `/proc` (and a tmpfs on `/tmp`), sets up the
//! floor like any sandboxed process, and forks the program, which becomes pid 2 and continues
//! the usual path of [`crate::spawn`]. The program cannot be pid 1 itself: the kernel drops
//! signals a namespace's init has no handler for, so `sh -c 'kill -TERM $$'` would outlive its
//! own kill.
//!
//! Init is the sandbox's keeper ([`crate::keeper`], which every sandbox has): it reaps every
//! process of the namespace and, when the program ends, exits with the program's status, and
//! the kernel then kills whatever is left in the namespace. It passes on the supervisor's
//! signals to the program.
//!
//! **With `--net none`** the first process (init, when there is one) makes a network namespace
//! with `unshare(CLONE_NEWNET)` once its user namespace's ids are mapped, and brings the new
//! namespace's loopback up ([`crate::net`]), before any mount: everything the sandbox starts is
//! in it. Without a view or a pid namespace that is the only set-up step, and a launcher that is
//! root makes no other namespace. Made apart from the `clone`, so that a host that refuses it
//! costs the sandbox the network namespace alone, not its mount and pid namespaces.
//!
//! **With `--net wire:PATH`** it also makes the wire's TAP device in that namespace and sends its
//! descriptor to the supervisor ([`crate::net::tap`]). A wire has no fallback: a host that
//! refuses the network namespace, or the device, fails the run (exit 125) with the step that
//! failed.
//!
//! Where the host refuses the namespaces (`EPERM`, `EINVAL`, ... from `clone`, or from a set-up
//! step inside the new namespaces), the launcher says so in one line on stderr for each thing
//! it goes without ([`UNAVAILABLE`], [`NO_MOUNT_NAMESPACE`], [`NO_NETWORK_NAMESPACE`]) and starts
//! the program again without them; process ids are then the host's, the view's floor is
//! Landlock alone, and `--net none` falls back to the seccomp floor of [`crate::net`].
//!
//! In a user namespace only the caller's own ids are mapped: files of other users and groups
//! (root's included) show the overflow ids (`nobody`, `nogroup`), and `setgroups` is refused.
//!
//! What this does not do: ipc and uts namespaces, and hiding the launcher's command
//! line in init's `/proc/1/cmdline`. A program or script stored under the host's `/tmp` is not
//! reachable by that path inside a reproducible sandbox without a view (the fresh tmpfs covers
//! it).
//!
//! Read first: namespaces(7), pid_namespaces(7), mount_namespaces(7), user_namespaces(7),
//! network_namespaces(7), clone(2), unshare(2), mount(2).

use crate::failure::Failure;
use crate::net::tap::{TapConfig, TapFailure};
use crate::view::mounts::MountPlan;
use std::os::fd::RawFd;

/// The line printed when the host does not let a reproducible sandbox have its own pid
/// namespace.
pub const UNAVAILABLE: &str =
    "cloister: reproducible mode without a pid namespace on this host: process ids are the host's";

/// The line printed when the host does not let a sandbox with a view have its own pid
/// namespace.
pub const NO_PID_NAMESPACE: &str =
    "cloister: no pid namespace on this host: the program sees the host's processes and ids, and as root its processes limit is not held";

/// How the line printed when the host does not let a sandbox with a view have its own mount
/// namespace begins; the reason follows.
pub const NO_MOUNT_NAMESPACE: &str = "cloister: no mount namespace on this host";

/// How the line printed when the host does not let a sandbox have its own network namespace
/// begins; the reason and what the sandbox gets instead follow.
pub const NO_NETWORK_NAMESPACE: &str = "cloister: no network namespace on this host";

/// Set-up steps inside the new namespaces, numbered after [`crate::spawn`]'s own steps in the
/// error record the child sends the launcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Step {
    /// Writing `/proc/self/{setgroups,uid_map,gid_map}` in a new user namespace.
    IdMaps = 32,
    /// `mount(NULL, "/", NULL, MS_REC | MS_PRIVATE)`.
    PrivateMounts,
    /// A fresh `proc` on `/proc`.
    Proc,
    /// A fresh tmpfs on `/tmp`.
    Tmp,
    /// Forking the program (pid 2) from init.
    ForkProgram,
    /// Making the host's mounts read-only ([`crate::view::mounts`]).
    ReadOnly,
    /// Giving `/dev`, `/proc` and `/sys` back their read-write mounts.
    KernelTrees,
    /// Binding the state directory and the `rw` mounts writable.
    Writable,
    /// Binding an empty stand-in over a hidden path.
    StandIn,
    /// `unshare(CLONE_NEWNET)`.
    NetNamespace,
    /// Bringing the network namespace's loopback up.
    Loopback,
    /// Making the wire's TAP device (`/dev/net/tun`, `TUNSETIFF`).
    Tap,
    /// Giving the TAP device its address and MTU, and bringing it up.
    TapConfigure,
    /// Sending the TAP device's descriptor to the supervisor.
    TapHandOver,
    /// Capping the pid namespace's processes (`/proc/sys/kernel/pid_max`).
    PidMax,
}

impl Step {
    const ALL: [Step; 15] = [
        Step::IdMaps,
        Step::PrivateMounts,
        Step::Proc,
        Step::Tmp,
        Step::ForkProgram,
        Step::ReadOnly,
        Step::KernelTrees,
        Step::Writable,
        Step::StandIn,
        Step::NetNamespace,
        Step::Loopback,
        Step::Tap,
        Step::TapConfigure,
        Step::TapHandOver,
        Step::PidMax,
    ];

    /// The step an error record's code names, if it is one of these.
    pub fn from_code(code: u8) -> Option<Step> {
        Step::ALL.into_iter().find(|s| *s as u8 == code)
    }

    /// What failed, for the user.
    pub fn describe(self) -> &'static str {
        match self {
            Step::IdMaps => "cannot map the sandbox's user and group ids in its user namespace",
            Step::PrivateMounts => "cannot make the sandbox's mounts private (mount --make-rprivate /)",
            Step::Proc => "cannot mount a fresh /proc in the sandbox's pid namespace",
            Step::Tmp => "cannot mount a fresh tmpfs on the sandbox's /tmp",
            Step::ForkProgram => "cannot fork the program from the sandbox's init",
            Step::ReadOnly => "cannot make the host's mounts read-only in the sandbox's mount namespace",
            Step::KernelTrees => "cannot keep /dev, /proc and /sys writable in the sandbox's mount namespace",
            Step::Writable => {
                "cannot bind the state directory or an rw mount writable in the sandbox's mount namespace"
            }
            Step::StandIn => {
                "cannot bind an empty stand-in over a hidden path in the sandbox's mount namespace"
            }
            Step::NetNamespace => "cannot create the sandbox's network namespace",
            Step::Loopback => "cannot bring up the loopback interface in the sandbox's network namespace",
            Step::PidMax => {
                "cannot cap the processes of the sandbox's pid namespace (/proc/sys/kernel/pid_max)"
            }
            Step::Tap => {
                "cannot make the TAP device eth0 in the sandbox's network namespace (--net wire and \
                 --net nat need /dev/net/tun, readable and writable by you)"
            }
            Step::TapConfigure => "cannot set the address or route of the TAP device eth0, or bring it up",
            Step::TapHandOver => "cannot hand the TAP device eth0 to the supervisor",
        }
    }
}

/// Whether an errno means "this host does not allow it" rather than a fault to report.
fn refused(errno: i32) -> bool {
    matches!(errno, libc::EPERM | libc::EACCES | libc::EINVAL | libc::ENOSPC | libc::EUSERS | libc::ENOSYS)
}

/// One `/proc/self/*_map` line, formatted before the fork.
#[derive(Clone, Copy)]
struct IdMap {
    line: [u8; 32],
    len: usize,
}

impl IdMap {
    /// `id id 1`: the id maps to itself, and nothing else is mapped.
    fn identity(id: u32) -> IdMap {
        let text = format!("{id} {id} 1\n");
        let mut line = [0u8; 32];
        line[..text.len()].copy_from_slice(text.as_bytes());
        IdMap { line, len: text.len() }
    }
}

/// Whether and how the sandbox gets its own namespaces; decided in the launcher, before the
/// fork, and copied into the child with the rest of its memory.
pub struct Namespaces {
    /// A pid namespace with init and a fresh `/proc` (reproducible mode; false once the host
    /// refused).
    pid: bool,
    /// The view's mounts, laid out in a mount namespace of the sandbox's own (`None` without a
    /// view, or once the host refused).
    view: Option<MountPlan>,
    /// A network namespace with its loopback up (`--net none`; false once the host refused).
    net: bool,
    /// What the sandbox gets instead of the network namespace, for the line said when the host
    /// refuses it.
    net_fallback: String,
    /// Add a user namespace (not root, or root without the right to create the others).
    user: bool,
    /// `user` was set only because root was refused the network namespace: it goes when that
    /// namespace does.
    user_for_net: bool,
    /// The wire's TAP device, made in the network namespace, which is then required.
    tap: Option<TapConfig>,
    /// The socket the TAP device's descriptor goes to the supervisor over (-1 without a wire).
    tap_channel: RawFd,
    uid_map: IdMap,
    gid_map: IdMap,
    /// Mount an empty tmpfs on `/tmp` (not when something the sandbox needs lies under it).
    fresh_tmp: bool,
    /// The pid namespace is for isolation (a view), not for reproducible ids: which line a
    /// host that refuses it gets.
    pid_for_isolation: bool,
    /// `pid_max` for the pid namespace, in decimal: the processes limit for root, whom
    /// `RLIMIT_NPROC` does not hold (empty: none).
    pid_max: ([u8; 20], usize),
}

impl Namespaces {
    /// The plan for a sandbox: a pid namespace if `pid` (reproducible mode), with a fresh
    /// `/tmp` in it if `fresh_tmp`; a mount namespace laid out by `view` when there is one; a
    /// network namespace when `net` is given, which says what the sandbox gets instead where
    /// the host refuses one.
    pub fn new(pid: bool, fresh_tmp: bool, view: Option<MountPlan>, net: Option<String>) -> Namespaces {
        // SAFETY: geteuid and getegid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        Namespaces {
            pid,
            view,
            net: net.is_some(),
            net_fallback: net.unwrap_or_default(),
            user: uid != 0,
            user_for_net: false,
            tap: None,
            tap_channel: -1,
            uid_map: IdMap::identity(uid),
            gid_map: IdMap::identity(gid),
            fresh_tmp,
            pid_for_isolation: false,
            pid_max: ([0; 20], 0),
        }
    }

    /// Says whether the pid namespace isolates a view's sandbox (rather than giving
    /// reproducible mode its ids), and caps its processes with `pid_max` when given.
    pub fn with_pids(mut self, isolation: bool, pid_max: Option<u64>) -> Namespaces {
        self.pid_for_isolation = isolation;
        if let Some(max) = pid_max {
            let digits = max.to_string();
            let n = digits.len().min(20);
            self.pid_max.0[..n].copy_from_slice(&digits.as_bytes()[..n]);
            self.pid_max.1 = n;
        }
        self
    }

    /// Adds a wire: the network namespace gets the TAP device `tap`, whose descriptor goes over
    /// the socket set with [`Namespaces::set_tap_channel`]; without the namespace the run fails.
    pub fn with_tap(mut self, tap: Option<TapConfig>) -> Namespaces {
        self.tap = tap;
        self
    }

    /// The socket of this attempt's child for the TAP device's descriptor.
    pub fn set_tap_channel(&mut self, fd: RawFd) {
        self.tap_channel = fd;
    }

    /// Whether the process this plan was copied into runs in new namespaces, or is to make one
    /// (true in the child of a [`Namespaces::fork`] that created them).
    pub fn active(&self) -> bool {
        self.mounts_active() || self.net
    }

    /// Whether that process runs in a new mount namespace.
    pub fn mounts_active(&self) -> bool {
        self.pid || self.view.is_some()
    }

    /// Whether that process has the view's mounts laid out in its own mount namespace.
    pub fn view_active(&self) -> bool {
        self.view.is_some()
    }

    /// Whether that process is to make its own network namespace (and so whether the program
    /// runs in one, once [`Namespaces::enter`] succeeded).
    pub fn net_active(&self) -> bool {
        self.net
    }

    /// Whether that process is also init of a new pid namespace, with a fresh `/proc`.
    pub fn pid_active(&self) -> bool {
        self.pid
    }

    /// Gives up on every namespace, saying once on stderr what the sandbox goes without.
    fn give_up(&mut self, why: &str) {
        self.give_up_mounts(why);
        self.give_up_net(why);
    }

    /// Gives up on the network namespace, saying so once on stderr.
    fn give_up_net(&mut self, why: &str) {
        if std::mem::take(&mut self.net) {
            eprintln!("{NO_NETWORK_NAMESPACE}: {why}; {}", self.net_fallback);
        }
        if std::mem::take(&mut self.user_for_net) {
            self.user = false;
        }
    }

    /// Gives up on the mount and pid namespaces, saying once on stderr what the sandbox goes
    /// without.
    fn give_up_mounts(&mut self, why: &str) {
        if self.pid {
            self.pid = false;
            eprintln!("{}", if self.pid_for_isolation { NO_PID_NAMESPACE } else { UNAVAILABLE });
        }
        if self.view.take().is_some() {
            eprintln!(
                "{NO_MOUNT_NAMESPACE}: {why}; the view's floor is Landlock alone (chmod, chown, \
                 utimes and stat reach host paths through the runtime's gate)"
            );
        }
    }

    /// Forks the sandbox's first process: with `clone` into new namespaces when wanted and
    /// allowed, with a plain `fork` otherwise. Returns 0 in the child, like `fork`.
    pub fn fork(&mut self) -> Result<libc::pid_t, Failure> {
        while self.active() {
            // The network namespace is made inside (see `enter`); a root launcher that wants
            // only that one clones nothing new.
            let mut flags = libc::SIGCHLD;
            if self.mounts_active() {
                // With its own System V IPC and POSIX message queues, and its own host name,
                // neither shared with the host nor changed for it.
                flags |= libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
            }
            if self.pid {
                flags |= libc::CLONE_NEWPID;
            }
            if self.user {
                flags |= libc::CLONE_NEWUSER;
            }
            // SAFETY: without CLONE_VM and with a null stack, clone behaves like fork: the child
            // gets a copy of the calling thread and its memory and returns 0 here. The child
            // then runs only async-signal-safe calls (see `spawn`), so glibc's state, which is
            // not told about this fork, is never consulted.
            let pid = unsafe { libc::syscall(libc::SYS_clone, libc::c_long::from(flags), 0, 0, 0, 0) };
            if pid >= 0 {
                return Ok(pid as libc::pid_t);
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(errno) if refused(errno) && !self.user => self.user = true,
                Some(_) if self.tap.is_some() => {
                    return Err(Failure::Setup(format!(
                        "cannot create the sandbox's namespaces, which --net wire and nat need: {e}"
                    )))
                }
                Some(errno) if refused(errno) => self.give_up(&format!("cannot create it: {e}")),
                _ => return Err(Failure::Setup(format!("cannot create the sandbox's namespaces: {e}"))),
            }
        }
        // SAFETY: the child runs only raw system calls on data prepared before, then execs or
        // exits (see `spawn`).
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(Failure::Setup(format!("cannot fork: {}", std::io::Error::last_os_error())));
        }
        Ok(pid)
    }

    /// After the child reported that set-up step `code` failed with `errno`: whether to start
    /// again without namespaces (the failure was one of their steps, refused by the host). Says
    /// so on stderr when it is.
    pub fn retry_without(&mut self, code: u8, errno: i32) -> bool {
        let Some(step) = Step::from_code(code).filter(|_| refused(errno)) else { return false };
        let why = format!("{}: {}", step.describe(), std::io::Error::from_raw_os_error(errno));
        match step {
            // Root may be refused what a user namespace allows (a container without
            // CAP_SYS_ADMIN), as `fork` finds for the others.
            Step::NetNamespace if self.net && !self.user => {
                self.user = true;
                self.user_for_net = true;
            }
            // A wire has no fallback: its failures are reported.
            Step::NetNamespace | Step::Loopback | Step::IdMaps if self.tap.is_some() => return false,
            Step::Tap | Step::TapConfigure | Step::TapHandOver => return false,
            Step::NetNamespace | Step::Loopback if self.net => self.give_up_net(&why),
            // Without its ids the user namespace serves no namespace.
            Step::IdMaps if self.active() => self.give_up(&why),
            Step::NetNamespace | Step::Loopback | Step::IdMaps => return false,
            _ if self.mounts_active() => self.give_up_mounts(&why),
            _ => return false,
        }
        true
    }

    /// In the sandbox's first process, first thing after `PR_SET_PDEATHSIG`: in a new pid
    /// namespace (where it is init) checks that the launcher is still there; maps the ids of a
    /// new user namespace; makes a network namespace and brings its loopback up; makes the
    /// mounts private, lays out the view's mounts, and in a new pid namespace mounts a fresh
    /// `/proc` and `/tmp`. On error `errno` says why.
    ///
    /// `err_r` and `err_w` are this process's copies of the error pipe's ends.
    ///
    /// # Safety
    /// Only in the child of [`Namespaces::fork`] that created the namespaces, before it execs or
    /// forks: it makes only async-signal-safe calls and does not allocate.
    pub unsafe fn enter(&self, err_r: RawFd, err_w: RawFd) -> Result<(), Step> {
        // SAFETY: raw system calls on descriptors this process owns and on constant C strings
        // and buffers prepared before the fork.
        unsafe {
            if self.pid {
                // getppid() is 0 here (the launcher is outside the namespace), so the usual
                // check that the launcher did not die before PR_SET_PDEATHSIG took effect looks
                // at the error pipe instead: once our copy of the read end is closed, only the
                // launcher holds one, and a pipe without readers polls as POLLERR.
                libc::close(err_r);
                let mut pfd = libc::pollfd { fd: err_w, events: libc::POLLOUT, revents: 0 };
                if libc::poll(&mut pfd, 1, 0) == 1 && pfd.revents & libc::POLLERR != 0 {
                    libc::_exit(125);
                }
            }
            if self.user {
                // "deny" must precede gid_map for an unprivileged writer; kernels before 3.19
                // have no such file and need none.
                if write_file(c"/proc/self/setgroups", b"deny\n") != 0
                    && *libc::__errno_location() != libc::ENOENT
                {
                    return Err(Step::IdMaps);
                }
                if write_file(c"/proc/self/uid_map", &self.uid_map.line[..self.uid_map.len]) != 0
                    || write_file(c"/proc/self/gid_map", &self.gid_map.line[..self.gid_map.len]) != 0
                {
                    return Err(Step::IdMaps);
                }
            }
            // Here, not in the clone: a refusal then costs the sandbox this namespace alone
            // (`retry_without`), and init and everything it starts are in it.
            if self.net {
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return Err(Step::NetNamespace);
                }
                if crate::net::bring_up_loopback().is_err() {
                    return Err(Step::Loopback);
                }
                if let Some(tap) = &self.tap {
                    tap.create_and_send(self.tap_channel).map_err(|failure| match failure {
                        TapFailure::Create => Step::Tap,
                        TapFailure::Configure => Step::TapConfigure,
                        TapFailure::HandOver => Step::TapHandOver,
                    })?;
                }
            }
            if !self.mounts_active() {
                return Ok(());
            }
            // Without this, mounts below would propagate to the host's shared mounts.
            let none = std::ptr::null::<libc::c_char>();
            if libc::mount(none, c"/".as_ptr(), none, libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) != 0
            {
                return Err(Step::PrivateMounts);
            }
            // Before the fresh /proc: the view's read-only step leaves the kernel's trees as they
            // were, and the new proc mount then sits on top of the host's.
            if let Some(view) = &self.view {
                view.apply()?;
                if self.net {
                    view.own_sysfs_net();
                }
            }
            if !self.pid {
                return Ok(());
            }
            let proc_flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
            if libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                proc_flags,
                std::ptr::null(),
            ) != 0
            {
                return Err(Step::Proc);
            }
            // The processes limit for root: no pid above this in the namespace (Linux 6.14 and
            // later keep pid_max per pid namespace; the launcher asks only there).
            let (digits, n) = &self.pid_max;
            if *n > 0 && write_file(c"/proc/sys/kernel/pid_max", &digits[..*n]) != 0 {
                return Err(Step::PidMax);
            }
            // Under a view the fresh /proc goes read-only with the rest of the host's trees:
            // the modes and owners of its entries are the kernel's, the same in every /proc of
            // the host, so a raw `chmod` of `/proc/sysrq-trigger` here would be one everywhere.
            let read_only = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | proc_flags;
            if self.view.is_some()
                && libc::mount(none, c"/proc".as_ptr(), none, read_only, std::ptr::null()) != 0
            {
                return Err(Step::Proc);
            }
            if self.fresh_tmp
                && libc::mount(
                    c"tmpfs".as_ptr(),
                    c"/tmp".as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    c"mode=1777".as_ptr().cast(),
                ) != 0
            {
                return Err(Step::Tmp);
            }
            libc::prctl(libc::PR_SET_NAME, c"cloister-init".as_ptr());
        }
        Ok(())
    }
}

/// Writes `bytes` to the file `path` in one `write`; returns 0, or -1 with `errno` set.
///
/// # Safety
/// Async-signal-safe; `path` and `bytes` must be valid for the duration of the call.
unsafe fn write_file(path: &std::ffi::CStr, bytes: &[u8]) -> i32 {
    // SAFETY: open/write/close on a C string and a buffer the caller keeps alive.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return -1;
        }
        let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        let errno = *libc::__errno_location();
        libc::close(fd);
        if n != bytes.len() as isize {
            *libc::__errno_location() = if n < 0 { errno } else { libc::EIO };
            return -1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(pid: bool) -> Namespaces {
        Namespaces::new(pid, false, None, Some("the fallback".into()))
    }

    #[test]
    fn a_refused_network_namespace_costs_only_itself() {
        let mut ns = plan(true);
        let root = !ns.user;
        assert!(ns.retry_without(Step::NetNamespace as u8, libc::EPERM));
        if root {
            // Tried once more through a user namespace, as `fork` does for the others.
            assert!(ns.user && ns.net_active());
            assert!(ns.retry_without(Step::NetNamespace as u8, libc::EPERM));
        }
        assert!(!ns.net_active() && ns.pid_active());
        assert_eq!(ns.user, !root, "the user namespace was for the network alone");
        assert!(!ns.retry_without(Step::Loopback as u8, libc::EPERM), "nothing left to give up");
    }

    #[test]
    fn a_refused_mount_keeps_the_network_namespace() {
        let mut ns = plan(true);
        assert!(ns.retry_without(Step::Proc as u8, libc::EPERM));
        assert!(ns.net_active() && !ns.pid_active() && ns.active());
        let mut ns = plan(true);
        assert!(ns.retry_without(Step::IdMaps as u8, libc::EPERM));
        assert!(!ns.active(), "without its ids the user namespace serves none");
    }

    #[test]
    fn faults_that_are_not_refusals_are_reported() {
        let mut ns = plan(false);
        assert!(!ns.retry_without(Step::Loopback as u8, libc::EIO));
        assert!(ns.net_active());
        let codes: Vec<u8> = Step::ALL.iter().map(|s| *s as u8).collect();
        assert!(codes.windows(2).all(|w| w[1] == w[0] + 1) && codes[0] == 32, "{codes:?}");
    }
}
