//! The floor: what no program in a sandbox may do, enforced by a seccomp filter built with
//! seccompiler and installed before the runtime starts, so nothing inside the process can
//! lift it. Calls that are never needed return an errno (`ENOSYS` for io_uring, so programs
//! fall back to ordinary I/O; `EPERM` for the rest). See the threat model in the docs.

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};
use std::collections::BTreeMap;

/// Calls refused with `EPERM`, whatever their arguments.
const DENIED: &[i64] = &[
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_userfaultfd,
    libc::SYS_acct,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_open_by_handle_at,
    libc::SYS_lookup_dcookie,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_open_tree,
    SYS_OPEN_TREE_ATTR,
    libc::SYS_mount_setattr,
    libc::SYS_setns,
    libc::SYS_quotactl,
    libc::SYS_vhangup,
    libc::SYS_ptrace,
];

/// `open_tree_attr` (Linux 6.15), which the libc crate does not name yet: `open_tree` with
/// mount attributes, and as able to hand out a descriptor of any host path.
const SYS_OPEN_TREE_ATTR: i64 = 467;

/// io_uring submits work the seccomp filter never sees: refused as if absent.
const ABSENT: &[i64] = &[libc::SYS_io_uring_setup, libc::SYS_io_uring_enter, libc::SYS_io_uring_register];

/// `ioctl` requests that push input into a terminal.
const TERMINAL_INJECTION: &[u64] = &[libc::TIOCSTI, 0x541C /* TIOCLINUX */];

/// `personality` bits that weaken the address space.
const WEAKENING_PERSONALITY: &[u64] = &[
    0x0040_0000, // READ_IMPLIES_EXEC
    0x0004_0000, // ADDR_NO_RANDOMIZE
    0x0010_0000, // MMAP_PAGE_ZERO
    0x0020_0000, // ADDR_COMPAT_LAYOUT
];

/// Why the floor could not be built.
#[derive(Debug)]
pub struct FloorError(seccompiler::BackendError);

impl std::fmt::Display for FloorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot build the seccomp floor: {}", self.0)
    }
}

/// A rule that matches when every one of `conds` does.
pub(crate) fn rule(conds: Vec<SeccompCondition>) -> Result<SeccompRule, FloorError> {
    SeccompRule::new(conds).map_err(FloorError)
}

/// A condition on the low 32 bits of argument `arg` (the calls the floor looks at take `int`s).
pub(crate) fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, FloorError> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).map_err(FloorError)
}

/// A program that returns `errno` for the calls `rules` match and allows everything else.
pub(crate) fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32) -> Result<BpfProgram, FloorError> {
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        TargetArch::x86_64,
    )
    .map_err(FloorError)?;
    filter.try_into().map_err(FloorError)
}

/// The floor's programs, in the order they are installed.
pub fn programs() -> Result<Vec<BpfProgram>, FloorError> {
    let mut eperm: BTreeMap<i64, Vec<SeccompRule>> = DENIED.iter().map(|&nr| (nr, vec![])).collect();
    let ioctl = TERMINAL_INJECTION
        .iter()
        .map(|&req| rule(vec![cond(1, SeccompCmpOp::Eq, req)?]))
        .collect::<Result<_, _>>()?;
    eperm.insert(libc::SYS_ioctl, ioctl);
    let personality = WEAKENING_PERSONALITY
        .iter()
        .map(|&bit| {
            rule(vec![cond(0, SeccompCmpOp::MaskedEq(bit), bit)?, cond(0, SeccompCmpOp::Ne, 0xffff_ffff)?])
        })
        .collect::<Result<_, _>>()?;
    eperm.insert(libc::SYS_personality, personality);
    let enosys = ABSENT.iter().map(|&nr| (nr, vec![])).collect();
    Ok(vec![compile(eperm, libc::EPERM)?, compile(enosys, libc::ENOSYS)?])
}
