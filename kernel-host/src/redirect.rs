//! Which calls a configuration redirects, in the form the redirect filter needs.
//!
//! Each [`crate::table::Entry`] says when it is redirected ([`When`]) and on which argument
//! values ([`Cond`]); [`rules`] resolves both against a [`Config`] into concrete [`Rule`]s,
//! one per call number, that the launcher compiles to BPF. A number without a rule is never
//! trapped and runs on the host at native speed.

use crate::config::{Config, RESERVED_FDS};
use crate::table::TABLE;
use alloc::vec::Vec;
use syscalls::Sysno;

/// `SECCOMP_RET_DATA` of the runtime's traps. The redirect filter returns it and the SIGSYS
/// handler checks `si_errno` for it, to tell its own traps from those of a filter the program
/// installed itself.
pub const TRAP_DATA: u16 = 0xc15;

/// When an entry is redirected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Always: the runtime needs it to keep working (signals, exec, fork, `/proc/self`).
    Always,
    /// When the host name is virtual (set, or reproducible mode).
    Identity,
    /// When clocks are shifted or virtual.
    Clocks,
    /// When randomness is seeded.
    Seed,
    /// In reproducible mode.
    Reproducible,
    /// When the runtime holds a reserved descriptor (tracing, shared memory) that must not be
    /// closed.
    ReservedFd,
    /// When the sandbox has a filesystem view.
    View,
    /// In reproducible mode or with a filesystem view (directory listings).
    ReproducibleOrView,
}

/// On which argument values an entry is redirected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    /// Every call.
    Always,
    /// When argument `0`-based index has none of the bits of the mask set.
    MaskClear(u8, u64),
    /// When the argument is not zero (e.g. a new mask is given, not only queried).
    NonZero(u8),
    /// When the argument is a descriptor the runtime reserves.
    ReservedFd(u8),
    /// When the argument (a descriptor) lies in `lo..=hi`: timer descriptors, which the
    /// kernel places there so that `read` traps for them and for nothing else.
    FdRange(u8, u32, u32),
    /// When the argument equals the value (as 32 bits).
    Equals(u8, u32),
    /// When the argument (a signal mask for the call's duration) is given; every call in
    /// reproducible mode, where the call's timeout matters too.
    MaskGiven(u8),
    /// Flags argument `0` has none of mask `1` set; with a filesystem view, none of mask `2`
    /// (a path call the view must see even where `/proc` alone need not); with a view in
    /// reproducible mode, every call (the sandbox's own files show virtual times).
    MaskClearView(u8, u64, u64),
    /// Every call, answered by the filter itself with this errno: nothing to serve, so no
    /// trap to pay for (the entry's handler gives the same answer to a backend that traps it).
    Refuse(u16),
}

/// A resolved argument test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgTest {
    /// Every call.
    Always,
    /// `lo <= args[arg] <= hi` (compared as 32-bit, as descriptors are).
    InRange {
        /// Argument index.
        arg: u8,
        /// Lowest value.
        lo: u32,
        /// Highest value.
        hi: u32,
    },
    /// `args[arg] & mask == 0`.
    MaskClear {
        /// Argument index.
        arg: u8,
        /// Mask.
        mask: u64,
    },
    /// `args[arg] != 0`.
    NonZero {
        /// Argument index.
        arg: u8,
    },
    /// No call traps: the filter fails every one with `errno`.
    Refuse {
        /// The errno.
        errno: u16,
    },
}

/// One redirected call number and the test that selects its trapped calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The call number.
    pub nr: u32,
    /// Which calls of that number trap.
    pub test: ArgTest,
}

/// The rules for a configuration, sorted by number.
pub fn rules(config: &Config) -> Vec<Rule> {
    let view = config.has_view();
    let mut out: Vec<Rule> = TABLE.iter().filter_map(|e| rule_of(config, view, e)).collect();
    out.sort_by_key(|r| r.nr);
    out
}

/// The rule for call number `nr`, if the filter traps it, under `config` and with a
/// filesystem view or not (`view`: a runtime's configuration names its mount table but does not
/// hold it, see [`Config::mount_table`]). The runtime asks in its signal handler, on whatever stack the
/// program gave it: no list is built nor sorted.
pub fn rule_for(config: &Config, view: bool, nr: u32) -> Option<Rule> {
    TABLE.iter().filter(|e| e.sysno.id() as u32 == nr).find_map(|e| rule_of(config, view, e))
}

/// The rule a table entry makes under `config` (with a view or not); `None` when the
/// configuration leaves it out.
fn rule_of(config: &Config, view: bool, e: &crate::table::Entry) -> Option<Rule> {
    Some(e)
        .filter(|e| match e.when {
            When::Always => true,
            When::Identity => config.hostname.is_some() || config.reproducible.is_some(),
            When::Clocks => config.virtual_clocks(),
            When::Seed => config.seed.is_some(),
            When::Reproducible => config.reproducible.is_some(),
            When::ReservedFd => config.reserved_fds().next().is_some(),
            When::View => view,
            When::ReproducibleOrView => config.reproducible.is_some() || view,
        })
        .map(|e| {
            let test = match e.cond {
                Cond::Always => ArgTest::Always,
                Cond::MaskClear(arg, mask) => ArgTest::MaskClear { arg, mask },
                Cond::MaskClearView(arg, _, with_view) if view => {
                    if with_view == 0 || config.reproducible.is_some() {
                        ArgTest::Always
                    } else {
                        ArgTest::MaskClear { arg, mask: with_view }
                    }
                }
                Cond::MaskClearView(arg, plain, _) => ArgTest::MaskClear { arg, mask: plain },
                Cond::NonZero(arg) => ArgTest::NonZero { arg },
                Cond::Equals(arg, value) => ArgTest::InRange { arg, lo: value, hi: value },
                Cond::FdRange(arg, lo, hi) => ArgTest::InRange { arg, lo, hi },
                Cond::MaskGiven(_) if config.reproducible.is_some() => ArgTest::Always,
                Cond::MaskGiven(arg) => ArgTest::NonZero { arg },
                Cond::ReservedFd(arg) => {
                    ArgTest::InRange { arg, lo: *RESERVED_FDS.start() as u32, hi: *RESERVED_FDS.end() as u32 }
                }
                Cond::Refuse(errno) => ArgTest::Refuse { errno },
            };
            Rule { nr: e.sysno.id() as u32, test }
        })
}

/// Calls whose handlers only ever answer [`crate::Disposition::Return`],
/// [`crate::Disposition::Host`] with no step after the host call ([`crate::AfterHost`]), or
/// [`crate::Disposition::Exec`] (whose plan the backend lays out into one host call). A
/// backend may serve these without the frame a trap gives it: the in-process runtime patches
/// their call sites to enter it directly (`interposer/rt/src/patch.rs`). Forks, which need
/// the trap's frame to start the child from, and timed waits and sleeps, which advance the
/// virtual clock after the host call, stay out. Waiting for a child is in: a shell that runs
/// commands in a loop waits for each, and an exec is most of a `vfork` child's life.
const IN_PLACE: &[Sysno] = &[
    Sysno::open,
    Sysno::openat,
    Sysno::openat2,
    Sysno::creat,
    Sysno::close,
    Sysno::fcntl,
    Sysno::dup2,
    Sysno::dup3,
    Sysno::stat,
    Sysno::fstat,
    Sysno::lstat,
    Sysno::newfstatat,
    Sysno::statx,
    Sysno::statfs,
    Sysno::access,
    Sysno::faccessat,
    Sysno::faccessat2,
    Sysno::readlink,
    Sysno::readlinkat,
    Sysno::getdents64,
    Sysno::getcwd,
    Sysno::chdir,
    Sysno::fchdir,
    Sysno::mkdir,
    Sysno::mkdirat,
    Sysno::unlink,
    Sysno::unlinkat,
    Sysno::rmdir,
    Sysno::rename,
    Sysno::renameat,
    Sysno::renameat2,
    Sysno::link,
    Sysno::linkat,
    Sysno::symlink,
    Sysno::symlinkat,
    Sysno::chmod,
    Sysno::fchmod,
    Sysno::fchmodat,
    Sysno::chown,
    Sysno::fchown,
    Sysno::lchown,
    Sysno::fchownat,
    Sysno::utimensat,
    Sysno::truncate,
    Sysno::getxattr,
    Sysno::lgetxattr,
    Sysno::listxattr,
    Sysno::llistxattr,
    Sysno::fsetxattr,
    Sysno::mknod,
    Sysno::mknodat,
    Sysno::fchmodat2,
    Sysno::utime,
    Sysno::utimes,
    Sysno::futimesat,
    Sysno::setxattr,
    Sysno::lsetxattr,
    Sysno::removexattr,
    Sysno::lremovexattr,
    Sysno::fremovexattr,
    Sysno::inotify_add_watch,
    Sysno::bind,
    Sysno::connect,
    Sysno::sendto,
    Sysno::getsockname,
    Sysno::getpeername,
    Sysno::close_range,
    Sysno::execve,
    Sysno::execveat,
    Sysno::wait4,
    Sysno::waitid,
    // Its host calls are made by the handler, which answers a value.
    Sysno::brk,
    // The mask a call leaves is applied by the backend as the call returns, the same way.
    Sysno::rt_sigprocmask,
    Sysno::rt_sigaction,
    Sysno::uname,
    Sysno::getuid,
    Sysno::geteuid,
    Sysno::getgid,
    Sysno::getegid,
    Sysno::getresuid,
    Sysno::getresgid,
    Sysno::getgroups,
    Sysno::times,
    Sysno::getrusage,
    Sysno::sysinfo,
    Sysno::sched_getaffinity,
    Sysno::getcpu,
    Sysno::clock_gettime,
    Sysno::gettimeofday,
    Sysno::time,
    Sysno::getrandom,
];

/// Whether call `nr` may be served in place, without a trap's frame (see [`IN_PLACE`]).
pub fn served_in_place(nr: u32) -> bool {
    IN_PLACE.iter().any(|s| s.id() as u32 == nr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(rules: &[Rule], nr: Sysno) -> bool {
        rules.iter().any(|r| r.nr == nr.id() as u32)
    }

    /// A runtime knows its view apart from its configuration, which comes without the mount
    /// table: each rule it looks up is the filter's, built from the whole configuration.
    #[test]
    fn one_rule_looked_up_is_the_filters() {
        let mount = crate::config::Mount {
            guest: "/".into(),
            kind: crate::config::MountKind::ReadOnly { host: "/".into() },
        };
        for repro in [None, Some(crate::config::Reproducible::default())] {
            let full =
                Config { mounts: alloc::vec![mount.clone()], reproducible: repro, ..Config::default() };
            let runtime = Config { mounts: alloc::vec![], ..full.clone() };
            for rule in rules(&full) {
                assert_eq!(rule_for(&runtime, true, rule.nr), Some(rule), "{}", rule.nr);
            }
            assert_eq!(rule_for(&runtime, true, Sysno::getppid.id() as u32), None);
            let plain = Config { reproducible: repro, ..Config::default() };
            for rule in rules(&plain) {
                assert_eq!(rule_for(&plain, false, rule.nr), Some(rule), "{}", rule.nr);
            }
        }
    }

    #[test]
    fn flags_add_their_calls_and_nothing_else() {
        let base = rules(&Config::default());
        assert!(has(&base, Sysno::execve) && has(&base, Sysno::rt_sigaction));
        assert!(!has(&base, Sysno::uname) && !has(&base, Sysno::getrandom));
        assert!(!has(&base, Sysno::getppid));
        let cfg = Config { hostname: Some("h".into()), seed: Some(1), ..Config::default() };
        let more = rules(&cfg);
        assert!(has(&more, Sysno::uname) && has(&more, Sysno::getrandom));
        assert!(!has(&more, Sysno::clock_gettime));
    }

    #[test]
    fn reserved_descriptors_resolve_to_equality_tests() {
        let cfg = Config { trace_fd: Some(1000), ..Config::default() };
        let close = rules(&cfg).into_iter().find(|r| r.nr == Sysno::close.id() as u32);
        assert_eq!(close.map(|r| r.test), Some(ArgTest::InRange { arg: 0, lo: 1022, hi: 1023 }));
    }

    #[test]
    fn calls_served_in_place_are_in_the_table_and_never_fork_or_sleep() {
        for sysno in super::IN_PLACE {
            assert!(crate::table::lookup(sysno.id() as u32).is_some(), "{sysno:?} is not served");
        }
        for sysno in [
            Sysno::clone,
            Sysno::clone3,
            Sysno::fork,
            Sysno::vfork,
            Sysno::nanosleep,
            Sysno::rt_sigsuspend,
            Sysno::poll,
            Sysno::futex,
        ] {
            assert!(!super::served_in_place(sysno.id() as u32), "{sysno:?}");
        }
    }
}
