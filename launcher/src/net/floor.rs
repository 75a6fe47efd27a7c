//! The network part of the floor for `--net none`: seccomp programs on `socket` and
//! `socketpair`, a Landlock layer for when there is no network namespace, and the bounding set.
//!
//! The seccomp programs look at the family (and the type) of a new socket, never at addresses:
//! seccomp cannot read memory, and a family that is not allowed is refused before any address
//! is given. The families are listed by what they may have, not by what they may not: a family
//! the kernel adds later is refused until someone decides it is safe.

use crate::floor::{compile, cond, rule, FloorError};
use crate::landlock::{self, NetFloor, PrepareError, PreparedFloor};
use seccompiler::{BpfProgram, SeccompCmpOp, SeccompRule};
use std::collections::BTreeMap;

/// `AF_ALG`, the kernel's crypto API: local, no network.
const AF_ALG: i32 = 38;

/// Families a sandbox with its own network namespace may open: unix sockets, IP and netlink
/// (which see only the namespace), and the crypto API. Refused among others: `AF_PACKET` (raw
/// frames; issue 6 refuses it in every mode but `host`), `AF_VSOCK` (not confined by a network
/// namespace: it reaches the hypervisor), `AF_BLUETOOTH`, `AF_CAN`, `AF_XDP`, `AF_TIPC`,
/// `AF_RDS`.
pub(super) const IN_NAMESPACE: &[i32] =
    &[libc::AF_UNIX, libc::AF_INET, libc::AF_INET6, libc::AF_NETLINK, AF_ALG];

/// Families a sandbox that wanted a namespace and was refused one may open: nothing that reaches
/// the host's network stack, so no loopback either, and no netlink (route queries would show
/// the host's interfaces and addresses).
pub(super) const WITHOUT_NAMESPACE: &[i32] = &[libc::AF_UNIX, AF_ALG];

/// `SOCK_PACKET`, the obsolete way to get raw frames from an `AF_INET` socket.
const SOCK_PACKET: u64 = 10;
/// The bits of `socket`'s type argument that are the type (the rest are `SOCK_NONBLOCK` and
/// `SOCK_CLOEXEC`).
const SOCK_TYPE_MASK: u64 = 0xf;

/// Refuses `socket` and `socketpair` of every family but `allowed`, with `EAFNOSUPPORT` (what a
/// kernel without the family says, which programs handle: Python falls back from IPv6, glibc's
/// resolver from netlink).
pub(super) fn families(allowed: &[i32]) -> Result<BpfProgram, FloorError> {
    let not_allowed = || -> Result<SeccompRule, FloorError> {
        let conds = allowed
            .iter()
            .map(|&family| cond(0, SeccompCmpOp::Ne, u64::from(family.unsigned_abs())))
            .collect::<Result<_, _>>()?;
        rule(conds)
    };
    let rules: BTreeMap<i64, Vec<SeccompRule>> =
        [(libc::SYS_socket, vec![not_allowed()?]), (libc::SYS_socketpair, vec![not_allowed()?])].into();
    compile(rules, libc::EAFNOSUPPORT)
}

/// Refuses raw IP sockets (`SOCK_RAW` and `SOCK_PACKET`) with `EPERM`, what the kernel says
/// without `CAP_NET_RAW`. Netlink sockets are `SOCK_RAW` too and stay allowed.
pub(super) fn raw_ip() -> Result<BpfProgram, FloorError> {
    let mut socket = Vec::new();
    for (family, kind) in [
        (libc::AF_INET, libc::SOCK_RAW as u64),
        (libc::AF_INET6, libc::SOCK_RAW as u64),
        (libc::AF_INET, SOCK_PACKET),
    ] {
        socket.push(rule(vec![
            cond(0, SeccompCmpOp::Eq, u64::from(family.unsigned_abs()))?,
            cond(1, SeccompCmpOp::MaskedEq(SOCK_TYPE_MASK), kind)?,
        ])?);
    }
    compile([(libc::SYS_socket, socket)].into(), libc::EPERM)
}

/// A Landlock layer that refuses every TCP `bind` and `connect`: without a network namespace
/// the seccomp programs keep the program from making IP sockets, and this keeps it from using
/// one it was handed (an inherited descriptor, one passed over a unix socket).
pub(super) fn tcp_lockout() -> Result<PreparedFloor, PrepareError> {
    landlock::prepare_net(&NetFloor::default())
}

/// Capabilities a sandbox without the host's network never needs: `CAP_NET_ADMIN` configures
/// interfaces (any socket's `SIOCSIFFLAGS` reaches the host's own when there is no namespace)
/// and moves them between namespaces; `CAP_NET_RAW` opens raw and packet sockets.
const NET_CAPABILITIES: [libc::c_ulong; 2] = [12 /* CAP_NET_ADMIN */, 13 /* CAP_NET_RAW */];

/// Drops [`NET_CAPABILITIES`] from the bounding set, so that no program the sandbox execs gets
/// them, root included. A caller without `CAP_SETPCAP` (an unprivileged user outside any user
/// namespace) has none of them to lose, and its `EPERM` is ignored.
///
/// Async-signal-safe: two `prctl`s.
pub(super) fn drop_net_capabilities() {
    for cap in NET_CAPABILITIES {
        // SAFETY: prctl with integer arguments changes only this process's bounding set.
        unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
    }
}
