//! Resource limits: the policy's `limits` section with `--limit NAME=VALUE` and `--timeout`
//! over it, turned into the `setrlimit(2)` values the program's process sets before it execs
//! ([`Rlimits`]), the wall-clock limit the supervisor keeps ([`LimitPlan::wall`]), and for a
//! launcher that is root a pids cgroup for `processes` ([`crate::limits::cgroup`]).
//!
//! Every rlimit is set with its soft and hard value equal, so the program cannot raise it again
//! (raising a hard limit needs `CAP_SYS_RESOURCE` in the host's user namespace); only
//! `cpu_seconds` gets a hard limit one second above the soft one, so that a program first gets
//! `SIGXCPU`, which it may catch to write out what it has, and `SIGKILL` a second later.
//!
//! A sandbox with a filesystem view also gets `RLIMIT_CORE` 0: the kernel writes a core file
//! itself, into the process's working directory on the host, past the view's overlay.
//!
//! `overlay_bytes` is the one total: the sandbox's private layer on a tmpfs of that size in its
//! mount namespace instead of on the host's disk ([`crate::limits::disk`]).
//!
//! What the other limits do not do: they are per process (memory, CPU, file size, descriptors)
//! or per user (processes), never a total for the sandbox; a total needs a cgroup, which
//! cloister makes only for `processes` and only as root. docs/limits.md says what each key covers.
//!
//! Read first: setrlimit(2), prlimit(2), user_namespaces(7) (`RLIMIT_NPROC` there).

pub mod cgroup;
pub mod disk;
pub mod keep;

use crate::failure::Failure;
use policies::Limits;
use std::time::Duration;

/// What a run's limits come to, decided before the fork.
#[derive(Debug, Default)]
pub struct LimitPlan {
    /// The values the program's process sets.
    pub rlimits: Rlimits,
    /// The wall-clock limit of the whole sandbox.
    pub wall: Option<Duration>,
    /// The `processes` limit, for a pids cgroup when `RLIMIT_NPROC` does not hold (root).
    pub processes: Option<u64>,
    /// The size of the private layer's tmpfs ([`crate::limits::disk`]).
    pub overlay_bytes: Option<u64>,
}

/// The most rlimits a run sets: the six keys' five rlimits and `RLIMIT_CORE`.
const MAX_RLIMITS: usize = 6;

/// rlimits prepared for the child, which must not allocate: a fixed array.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rlimits {
    entries: [(u32, u64, u64); MAX_RLIMITS],
    len: usize,
}

impl Rlimits {
    fn push(&mut self, resource: u32, soft: u64, hard: u64) {
        self.entries[self.len] = (resource, soft, hard);
        self.len += 1;
    }

    /// The resources set, as `RLIMIT_*` numbers, with their soft limit (for tests and messages).
    pub fn entries(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.entries[..self.len].iter().map(|&(resource, soft, _)| (resource, soft))
    }

    /// Sets every limit on the calling process; on failure returns the errno.
    ///
    /// # Safety
    /// Async-signal-safe (raw `prlimit64` calls on memory of `self`), for the child of a fork.
    pub unsafe fn apply(&self) -> Result<(), i32> {
        for &(resource, soft, hard) in &self.entries[..self.len] {
            let limit = libc::rlimit64 { rlim_cur: soft, rlim_max: hard };
            // SAFETY: prlimit64 on the calling process (pid 0) reads `limit`, a local, and
            // writes nothing (null old-limit pointer).
            let r = unsafe {
                libc::syscall(
                    libc::SYS_prlimit64,
                    0,
                    resource,
                    &limit as *const libc::rlimit64,
                    std::ptr::null_mut::<libc::rlimit64>(),
                )
            };
            if r != 0 {
                // SAFETY: reading this thread's errno.
                return Err(unsafe { *libc::__errno_location() });
            }
        }
        Ok(())
    }
}

/// The `pid_max` that holds `processes` for root in a pid namespace of the sandbox's own, where
/// `RLIMIT_NPROC` does not hold root and a pids cgroup would cost a join (about 10 ms on a
/// cgroup v1 host: the kernel waits for an RCU grace period). `None` where it cannot: not root
/// (`RLIMIT_NPROC` holds), a kernel before 6.14 (`pid_max` was the whole host's), or a limit
/// under 1,000, which it would hold too loosely: a namespace hands out pids below 300 only
/// until its pids first wrap around, so it holds between `processes` and `processes` + 300.
pub fn pid_max(processes: Option<u64>) -> Option<u64> {
    const PID_MAX_LIMIT: u64 = 4 * 1024 * 1024;
    let processes = processes.filter(|&n| n >= 1_000)?;
    // SAFETY: getuid cannot fail and touches no memory.
    if unsafe { libc::getuid() } != 0 || !kernel_at_least(6, 14) {
        return None;
    }
    Some((processes + 301).min(PID_MAX_LIMIT))
}

/// Whether the running kernel's release is at least `major.minor`.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts =
        release.trim().split(|c: char| !c.is_ascii_digit()).map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
}

/// The limits of a run: the policy's, then each `--limit NAME=VALUE` in turn, then `--timeout`;
/// `no_core_dumps` for a run with a filesystem view.
pub fn plan(
    policy: &Limits,
    flags: &[String],
    timeout: Option<Duration>,
    no_core_dumps: bool,
) -> Result<LimitPlan, Failure> {
    let mut limits = policy.clone();
    for flag in flags {
        let (name, value) =
            parse_flag(flag).map_err(|why| Failure::Setup(format!("--limit {flag}: {why}")))?;
        *limits.slot(name).expect("parse_flag returns known names") = value;
    }
    let mut rlimits = Rlimits::default();
    let mut same = |resource: u32, value: Option<u64>| {
        if let Some(v) = value {
            rlimits.push(resource, v, v);
        }
    };
    same(libc::RLIMIT_NPROC, limits.processes);
    same(libc::RLIMIT_DATA, limits.memory_bytes);
    same(libc::RLIMIT_FSIZE, limits.file_size_bytes);
    same(libc::RLIMIT_NOFILE, limits.open_files);
    if no_core_dumps {
        same(libc::RLIMIT_CORE, Some(0));
    }
    if let Some(cpu) = limits.cpu_seconds {
        rlimits.push(libc::RLIMIT_CPU, cpu, cpu.saturating_add(1));
    }
    let wall = timeout.or(limits.wall_seconds.map(Duration::from_secs));
    Ok(LimitPlan { rlimits, wall, processes: limits.processes, overlay_bytes: limits.overlay_bytes })
}

/// `--timeout SECONDS`: a positive number of seconds, fractions allowed, as coreutils'
/// `timeout` takes; clap prints the error (exit 125).
pub fn parse_timeout(written: &str) -> Result<Duration, String> {
    let most = policies::MAX_WALL_SECONDS;
    match written.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= most as f64 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("give a number of seconds above 0 and at most {most}, such as 30 or 0.5")),
    }
}

/// Reads `NAME=VALUE`: a key of the policy's `limits` section and a whole number (for bytes
/// also with a K, M, G or T suffix, powers of 1024), or `unlimited` to lift the policy's limit.
fn parse_flag(flag: &str) -> Result<(&'static str, Option<u64>), String> {
    let names = Limits::NAMES.join(", ");
    let Some((name, value)) = flag.split_once('=') else {
        return Err(format!("write NAME=VALUE, NAME one of {names}"));
    };
    let Some(&name) = Limits::NAMES.iter().find(|&&n| n == name) else {
        return Err(format!("there is no limit {name:?}; the limits are {names}"));
    };
    if value == "unlimited" {
        return Ok((name, None));
    }
    let bytes = name.ends_with("_bytes");
    let (digits, scale) = match value.char_indices().last() {
        Some((i, unit @ ('K' | 'M' | 'G' | 'T'))) if bytes => {
            let shift = 10 * (1 + "KMGT".find(unit).expect("one of KMGT"));
            (&value[..i], 1u64 << shift)
        }
        _ => (value, 1),
    };
    let fix = if bytes {
        "write a whole number of bytes such as 4294967296 or 4G, or unlimited"
    } else {
        "write a whole number such as 600, or unlimited"
    };
    let n = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("{value:?} is not a limit; {fix}"))?;
    policies::check_limit(name, n).map_err(|(message, fix)| format!("{message}; {fix}"))?;
    Ok((name, Some(n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_override_the_policy_and_unlimited_lifts_a_limit() {
        let policy = Limits { processes: Some(4096), cpu_seconds: Some(5), ..Limits::default() };
        let plan =
            plan(&policy, &flags(&["processes=64", "cpu_seconds=unlimited", "memory_bytes=1G"]), None, false)
                .unwrap();
        let set: Vec<_> = plan.rlimits.entries().collect();
        assert_eq!(set, [(libc::RLIMIT_NPROC, 64), (libc::RLIMIT_DATA, 1 << 30)]);
        assert_eq!((plan.wall, plan.processes), (None, Some(64)));
    }

    #[test]
    fn timeout_wins_over_wall_seconds_and_views_get_no_core_dumps() {
        let policy = Limits { wall_seconds: Some(60), ..Limits::default() };
        let plan = plan(&policy, &[], Some(Duration::from_millis(1500)), true).unwrap();
        assert_eq!(plan.wall, Some(Duration::from_millis(1500)));
        assert_eq!(plan.rlimits.entries().collect::<Vec<_>>(), [(libc::RLIMIT_CORE, 0)]);
        let plan = super::plan(&policy, &flags(&["wall_seconds=2"]), None, false).unwrap();
        assert_eq!(plan.wall, Some(Duration::from_secs(2)));
    }

    #[test]
    fn bad_flags_say_what_to_write() {
        let err = |f: &str| match plan(&Limits::default(), &flags(&[f]), None, false) {
            Err(Failure::Setup(m)) => m,
            other => panic!("{f}: {other:?}"),
        };
        assert!(
            err("memory=1G").contains("there is no limit \"memory\"; the limits are processes, memory_bytes")
        );
        assert!(err("processes").contains("write NAME=VALUE"));
        assert!(err("processes=1K").contains("write a whole number such as 600, or unlimited"));
        assert!(err("open_files=3").contains("open_files 3 is below 16"));
        assert!(err("file_size_bytes=99999999T").contains("is not a limit"));
        assert!(parse_timeout("0").is_err() && parse_timeout("x").is_err());
        assert_eq!(parse_timeout("0.5"), Ok(Duration::from_millis(500)));
    }
}
