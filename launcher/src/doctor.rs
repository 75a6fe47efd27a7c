//! `cloister doctor`: which of the protections and capabilities cloister builds on this host
//! offers, one line each, with what it means for a sandbox.
//!
//! Every probe that changes irreversible state (no_new_privs, seccomp filters, namespaces,
//! TSC and CPUID faulting) runs in a forked child that exits right after; the others (the
//! Landlock ABI, the vDSO, `/proc/cpuinfo`) only read. See `seccomp(2)`, `unshare(2)`,
//! `landlock_create_ruleset(2)`, `prctl(2)` (`PR_SET_TSC`) and `arch_prctl(2)`
//! (`ARCH_SET_CPUID`). The processes limit's line makes and removes a pids cgroup when the
//! doctor runs as root (see [`crate::limits::cgroup`]).

use crate::landlock::{self, FloorStatus, Gap};
use std::arch::asm;
use std::fmt::Write;

/// `arch_prctl` codes (`asm/prctl.h`).
const ARCH_GET_CPUID: libc::c_ulong = 0x1011;
const ARCH_SET_CPUID: libc::c_ulong = 0x1012;
/// `si_code` of a seccomp trap.
const SYS_SECCOMP: libc::c_int = 1;
/// A child's exit status when the instruction or call it tried did not fault or trap.
const DID_NOT_FAULT: i32 = 200;

/// One line of the report.
#[derive(Debug)]
pub struct Check {
    /// What was probed.
    pub name: &'static str,
    /// `Ok(detail)` when the host offers it, `Err(why not)` otherwise.
    pub outcome: Result<String, String>,
    /// What it means when available.
    pub yes: &'static str,
    /// What it means when not.
    pub no: &'static str,
}

impl Check {
    /// Whether the host offers it.
    pub fn available(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// How a probe run in a child ended.
enum ChildEnd {
    Exit(i32),
    Signal(i32),
}

/// Runs `probe` in a forked child and returns how the child ended; the child's state (filters,
/// namespaces, flags) dies with it. `probe` returns the child's exit status.
fn in_child(probe: fn() -> i32) -> Result<ChildEnd, String> {
    // SAFETY: the launcher is single-threaded when it runs the doctor, and the child only
    // makes async-signal-safe calls before `_exit`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("cannot fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        let code = probe();
        // SAFETY: ending the forked child without running the parent's exit handlers.
        unsafe { libc::_exit(code) }
    }
    let mut status = 0;
    // SAFETY: reaping our own child into a valid status word.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(format!("cannot wait for the probe: {}", std::io::Error::last_os_error()));
    }
    if libc::WIFSIGNALED(status) {
        Ok(ChildEnd::Signal(libc::WTERMSIG(status)))
    } else {
        Ok(ChildEnd::Exit(libc::WEXITSTATUS(status)))
    }
}

/// The name of an errno value.
fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOSYS => "ENOSYS",
        libc::EINVAL => "EINVAL",
        libc::ENODEV => "ENODEV",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EACCES => "EACCES",
        libc::ENOSPC => "ENOSPC",
        libc::EUSERS => "EUSERS",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        _ => return format!("errno {errno}"),
    };
    name.to_string()
}

/// The errno of the last failed call, as a child's exit status (never 0).
fn errno_status() -> i32 {
    // SAFETY: reading this thread's errno.
    let errno = unsafe { *libc::__errno_location() };
    errno.clamp(1, 199)
}

/// A probe whose child exits 0 when the feature works, or with an errno.
fn simple(probe: fn() -> i32) -> Result<String, String> {
    match in_child(probe)? {
        ChildEnd::Exit(0) => Ok(String::new()),
        ChildEnd::Exit(DID_NOT_FAULT) => Err("did not fault".into()),
        ChildEnd::Exit(errno) => Err(errno_name(errno)),
        ChildEnd::Signal(sig) => Err(format!("probe killed by signal {sig}")),
    }
}

fn seccomp_install(flags: libc::c_ulong, program: &[libc::sock_filter]) -> libc::c_long {
    let prog = libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr() as *mut _ };
    // SAFETY: `prog` points to `program`, which outlives the call.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return -1;
        }
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    }
}

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter { code: code as u16, jt: 0, jf: 0, k }
}

const ALLOW_ALL: [libc::sock_filter; 1] = [libc::sock_filter {
    code: (libc::BPF_RET | libc::BPF_K) as u16,
    jt: 0,
    jf: 0,
    k: libc::SECCOMP_RET_ALLOW,
}];

fn probe_no_new_privs() -> i32 {
    // SAFETY: prctl with integer arguments.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return errno_status();
        }
        if libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 {
            0
        } else {
            libc::EINVAL
        }
    }
}

fn probe_seccomp_filter() -> i32 {
    if seccomp_install(0, &ALLOW_ALL) != 0 {
        return errno_status();
    }
    0
}

extern "C" fn on_sigsys(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the host passes a valid siginfo to an SA_SIGINFO handler.
    let code = unsafe { (*info).si_code };
    // SAFETY: ending the probe's child.
    unsafe { libc::_exit(if code == SYS_SECCOMP { 0 } else { DID_NOT_FAULT }) }
}

extern "C" fn exit_on_signal(_: libc::c_int) {
    // SAFETY: ending the probe's child: the instruction faulted as asked.
    unsafe { libc::_exit(0) }
}

/// Sets `handler` (an `extern "C"` function of the right shape for `flags`) for `sig`.
fn handle(sig: libc::c_int, handler: libc::sighandler_t, flags: libc::c_int) -> bool {
    // SAFETY: a zeroed sigaction is valid; `handler` is a function that only calls `_exit`.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = handler;
        act.sa_flags = flags;
        libc::sigaction(sig, &act, std::ptr::null_mut()) == 0
    }
}

fn probe_ret_trap() -> i32 {
    type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);
    if !handle(libc::SIGSYS, on_sigsys as Handler as libc::sighandler_t, libc::SA_SIGINFO) {
        return errno_status();
    }
    let program = [
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_getppid as u32,
        },
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_TRAP),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    if seccomp_install(0, &program) != 0 {
        return errno_status();
    }
    // SAFETY: a call without arguments; the filter turns it into SIGSYS.
    unsafe { libc::syscall(libc::SYS_getppid) };
    DID_NOT_FAULT
}

fn probe_user_notif() -> i32 {
    let listener = seccomp_install(libc::SECCOMP_FILTER_FLAG_NEW_LISTENER, &ALLOW_ALL);
    if listener < 0 {
        return errno_status();
    }
    0
}

/// Unshares `flag`, with a new user namespace when that alone is refused (as an unprivileged
/// user must).
fn unshare(flag: libc::c_int) -> i32 {
    // SAFETY: unshare with flags only changes this (forked) process.
    unsafe {
        if libc::unshare(flag) == 0 || libc::unshare(libc::CLONE_NEWUSER | flag) == 0 {
            0
        } else {
            errno_status()
        }
    }
}

fn probe_user_ns() -> i32 {
    unshare(libc::CLONE_NEWUSER)
}

/// The child's status when the host tree was made read-only by remounting instead of with
/// `mount_setattr`.
const REMOUNTED: i32 = 201;

/// A mount namespace, made read-only the way a filesystem view's sandbox makes it.
fn probe_mount_ns() -> i32 {
    let status = unshare(libc::CLONE_NEWNS);
    if status != 0 {
        return status;
    }
    let none = std::ptr::null::<libc::c_char>();
    // SAFETY: mount with constant C strings; it changes only this child's new namespace.
    if unsafe { libc::mount(none, c"/".as_ptr(), none, libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) }
        != 0
    {
        return errno_status();
    }
    match crate::view::mounts::probe_read_only() {
        Ok(true) => 0,
        Ok(false) => REMOUNTED,
        Err(errno) => errno.clamp(1, 199),
    }
}

fn mount_ns() -> Result<String, String> {
    match in_child(probe_mount_ns)? {
        ChildEnd::Exit(0) => Ok(String::new()),
        ChildEnd::Exit(REMOUNTED) => Ok("read-only by remounting: no mount_setattr".into()),
        ChildEnd::Exit(errno) => Err(errno_name(errno)),
        ChildEnd::Signal(sig) => Err(format!("probe killed by signal {sig}")),
    }
}

fn probe_pid_ns() -> i32 {
    unshare(libc::CLONE_NEWPID)
}

/// A network namespace with its loopback up, the way `--net none` makes it.
fn probe_net_ns() -> i32 {
    let status = unshare(libc::CLONE_NEWNET);
    if status != 0 {
        return status;
    }
    match crate::net::bring_up_loopback() {
        Ok(()) => 0,
        Err(errno) => errno.clamp(1, 199),
    }
}

fn probe_tsc() -> i32 {
    if !handle(libc::SIGSEGV, exit_on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t, 0) {
        return errno_status();
    }
    // SAFETY: prctl with integer arguments, in the probe's child.
    if unsafe { libc::prctl(libc::PR_SET_TSC, libc::PR_TSC_SIGSEGV, 0, 0, 0) } != 0 {
        return errno_status();
    }
    // SAFETY: `rdtsc` writes only eax and edx; here it should raise SIGSEGV.
    unsafe { asm!("rdtsc", out("eax") _, out("edx") _, options(nostack, nomem, preserves_flags)) };
    DID_NOT_FAULT
}

fn probe_cpuid() -> i32 {
    if !handle(libc::SIGSEGV, exit_on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t, 0) {
        return errno_status();
    }
    // SAFETY: arch_prctl with integer arguments, in the probe's child.
    unsafe {
        if libc::syscall(libc::SYS_arch_prctl, ARCH_GET_CPUID, 0) < 0 {
            return errno_status();
        }
        if libc::syscall(libc::SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0 {
            return errno_status();
        }
    }
    // SAFETY: `cpuid` writes eax, ebx, ecx and edx; rbx, which LLVM reserves, is saved in
    // another register and restored. Here it should raise SIGSEGV.
    unsafe {
        asm!(
            "mov {save}, rbx",
            "cpuid",
            "mov rbx, {save}",
            save = out(reg) _,
            inout("eax") 0 => _,
            inout("ecx") 0 => _,
            out("edx") _,
            options(nostack, preserves_flags),
        );
    }
    DID_NOT_FAULT
}

/// The host's Landlock ABI and which parts of the floor it can enforce: the filesystem (with
/// what an older ABI leaves out of it), TCP ports, scopes.
fn landlock_floor() -> Result<String, String> {
    let abi = landlock::abi().map_err(errno_name)?;
    let missing = match landlock::host_support() {
        FloorStatus::PartiallyEnforced { missing, .. } => missing,
        FloorStatus::Enforced { .. } => Vec::new(),
        FloorStatus::Unsupported { why } => return Err(why),
    };
    let fs_gaps: Vec<&str> = [Gap::Refer, Gap::Truncate, Gap::DeviceIoctl]
        .into_iter()
        .filter(|g| missing.contains(g))
        .map(Gap::short)
        .collect();
    let fs = if fs_gaps.is_empty() { "fs".to_string() } else { format!("fs without {}", fs_gaps.join(", ")) };
    let net = if missing.contains(&Gap::TcpPorts) { "no net" } else { "net" };
    let scopes = if missing.contains(&Gap::SignalScope) { "no scopes" } else { "scopes" };
    Ok(format!("ABI {abi}: {fs}, {net}, {scopes}"))
}

fn vdso() -> Result<String, String> {
    // SAFETY: getauxval only reads the auxiliary vector.
    let at = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) };
    if at != 0 {
        Ok(String::new())
    } else {
        Err(String::new())
    }
}

/// Whether `cpuid` can be made to fault on this host (what `--reproducible` needs to hide
/// RDRAND and RDSEED).
pub fn cpuid_faulting() -> bool {
    // Asking for the state this process already has (cpuid enabled) changes nothing, and the
    // host answers ENODEV when it cannot fault `cpuid` at all: no probe child is needed on
    // the start-up path. `cloister doctor` runs the full probe.
    // SAFETY: arch_prctl with integer arguments only.
    unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_SET_CPUID, 1) == 0 }
}

fn probe_subreaper() -> i32 {
    // SAFETY: prctl with integer arguments, in the probe's child.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return errno_status();
    }
    0
}

/// Whether `processes` holds: `RLIMIT_NPROC` for anyone but root, a pids cgroup for root
/// (made and removed again to find out).
fn processes_limit() -> Result<String, String> {
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 {
        return Ok("RLIMIT_NPROC".into());
    }
    crate::limits::cgroup::PidsCgroup::create(1 << 20).map(|cgroup| {
        cgroup.remove();
        "pids cgroup".into()
    })
}

type Probe = fn() -> Result<String, String>;

/// What is probed, how, and what each answer means for a sandbox.
const CHECKS: &[(&str, Probe, &str, &str)] = &[
    (
        "no_new_privs",
        || simple(probe_no_new_privs),
        "set for every sandbox: setuid programs gain nothing",
        "cloister cannot run: seccomp filters need it",
    ),
    (
        "seccomp filter",
        || simple(probe_seccomp_filter),
        "the floor (calls no sandboxed program may make) is enforced by the host kernel",
        "cloister cannot run here",
    ),
    (
        "SECCOMP_RET_TRAP",
        || simple(probe_ret_trap),
        "redirected calls reach the in-process kernel as SIGSYS",
        "the in-process backend cannot work",
    ),
    (
        "user notification",
        || simple(probe_user_notif),
        "a supervisor can serve calls through SECCOMP_RET_USER_NOTIF",
        "no seccomp user notification",
    ),
    (
        "user namespace",
        || simple(probe_user_ns),
        "sandboxes can have their own user ids and capabilities",
        "sandboxes run in the host's namespaces (the seccomp floor still holds)",
    ),
    (
        "mount namespace",
        mount_ns,
        "a filesystem view's sandbox sees the host tree read-only and hidden paths emptied, even \
         through the runtime's gate",
        "a filesystem view rests on Landlock alone: chmod, chown, utimes and stat reach host paths \
         through the runtime's gate",
    ),
    (
        "pid namespace",
        || simple(probe_pid_ns),
        "sandboxed processes can be kept from seeing the host's",
        "sandboxed processes see the host's process list",
    ),
    (
        "net namespace",
        || simple(probe_net_ns),
        "--net none (the untrusted policy's) gives the sandbox its own loopback and nothing else",
        "--net none refuses IP, packet and netlink sockets instead: no loopback in the sandbox",
    ),
    (
        "Landlock",
        landlock_floor,
        "the host kernel confines host paths (fs), TCP ports (net), signals and abstract sockets \
         (scopes)",
        "host paths are not confined by the host kernel",
    ),
    (
        "TSC faulting",
        || simple(probe_tsc),
        "--reproducible answers rdtsc/rdtscp from the virtual clock",
        "rdtsc reads the host's counter, even in --reproducible",
    ),
    (
        "CPUID faulting",
        || simple(probe_cpuid),
        "--reproducible hides RDRAND/RDSEED from cpuid",
        "cpuid shows the CPU's RDRAND/RDSEED, even in --reproducible",
    ),
    (
        "subreaper",
        || simple(probe_subreaper),
        "a process that daemonizes stays in the sandbox and is killed at its end (and with the \
         supervisor)",
        "a daemonizing process outlives the run unless the sandbox has a pid namespace",
    ),
    (
        "processes limit",
        processes_limit,
        "limits.processes (--limit processes=N) stops a fork bomb at N",
        "run as root, limits.processes does not hold (the kernel exempts root from RLIMIT_NPROC)",
    ),
    (
        "vDSO",
        vdso,
        "clock reads skip the system call (withheld with --time-offset and --reproducible)",
        "every clock read is a system call",
    ),
];

/// Probes the host.
pub fn checks() -> Vec<Check> {
    CHECKS.iter().map(|&(name, probe, yes, no)| Check { name, outcome: probe(), yes, no }).collect()
}

/// The report: one line per check.
pub fn render(checks: &[Check]) -> String {
    let lines: Vec<(&str, String, &str)> = checks
        .iter()
        .map(|c| match &c.outcome {
            Ok(d) if d.is_empty() => (c.name, "yes".to_string(), c.yes),
            Ok(d) => (c.name, format!("yes ({d})"), c.yes),
            Err(e) if e.is_empty() => (c.name, "no".to_string(), c.no),
            Err(e) => (c.name, format!("no ({e})"), c.no),
        })
        .collect();
    let width = lines.iter().map(|(_, status, _)| status.len()).max().unwrap_or(0).max(19);
    let mut out = String::new();
    for (name, status, meaning) in lines {
        let _ = writeln!(out, "{name:<18} {status:<width$}  {meaning}");
    }
    out
}

/// `cloister doctor`: prints the report; always exits 0.
pub fn run() -> i32 {
    print!("{}", render(&checks()));
    0
}
