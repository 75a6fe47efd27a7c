//! The view's Landlock floor: what the host kernel lets the sandbox reach however it makes its
//! calls. The program may read everything the view shows (the host tree under it), write only
//! in the sandbox's state directory (the overlay's upper layer, the private tmpfs trees) and in
//! the `rw` mounts the user asked for, and not read the host files the view hides.
//!
//! The kernel's own trees (`/dev`, `/proc`, `/sys`) are never granted for writing as a whole,
//! even when the view shows them read-write: the Landlock module grants the devices programs
//! write to (`/dev/null`, terminals) on its own.
//!
//! [`writable_paths`] and [`hidden_paths`] are also what the sandbox's mount namespace
//! ([`super::mounts`]) keeps writable and covers with stand-ins, so both layers of the floor
//! agree on one list.

use super::table::{covers, host_path};
use super::View;
use crate::landlock::{FloorOptions, FsFloor};
use kernel_host::config::MountKind;
use std::path::PathBuf;

/// Trees no `rw` mount opens for writing as a whole.
pub const KERNEL_TREES: [&str; 3] = ["/dev", "/proc", "/sys"];

/// The host trees the sandbox may write to: the state directory first, then the host paths of
/// the `rw` mounts (except the kernel's own trees).
pub fn writable_paths(view: &View) -> Vec<PathBuf> {
    let mut write = vec![view.state.dir().to_path_buf()];
    for m in &view.mounts {
        if let MountKind::ReadWrite { host } = &m.kind {
            if !KERNEL_TREES.iter().any(|t| covers(t, host)) {
                write.push(PathBuf::from(host));
            }
        }
    }
    write
}

/// The host paths the view hides: for each hidden mount, what the program would find at its
/// guest path without it (not resolved: a path may be a symbolic link, or missing).
pub fn hidden_paths(view: &View) -> Vec<PathBuf> {
    hidden_stand_ins(view).into_iter().map(|(host, _)| host).collect()
}

/// [`hidden_paths`], each with the stand-in the view shows in its place.
pub fn hidden_stand_ins(view: &View) -> Vec<(PathBuf, PathBuf)> {
    let mut hidden = Vec::new();
    for m in &view.mounts {
        if let MountKind::Hidden { host: stand_in } = &m.kind {
            let others: Vec<_> = view.mounts.iter().filter(|o| o.guest != m.guest).cloned().collect();
            // The state directory is hidden from the view, not from the runtime, which writes
            // the program's changes there.
            if let Some(host) = host_path(&others, &m.guest).filter(|h| !h.starts_with(view.state.dir())) {
                hidden.push((host, PathBuf::from(stand_in)));
            }
        }
    }
    hidden
}

/// The floor for `view` when the sandbox has its own mount namespace: writes only, when the
/// namespace covers every hidden path with a stand-in, so that Landlock need not check every
/// read. A hidden path that holds a writable one (a `--hide` of the state directory's parent)
/// gets no stand-in ([`super::mounts`]), and then reads stay confined here too.
pub fn fs_floor_under_mounts(view: &View) -> FsFloor {
    let floor = fs_floor(view);
    let canonical = |p: &PathBuf| p.canonicalize().ok();
    let writable: Vec<PathBuf> = floor.write.iter().filter_map(canonical).collect();
    let uncovered =
        floor.hidden.iter().filter_map(canonical).any(|h| writable.iter().any(|w| w.starts_with(&h)));
    if uncovered {
        return floor;
    }
    FsFloor { read: Vec::new(), hidden: Vec::new(), ..floor }
}

/// The floor for `view` without a mount namespace: reads confined too.
pub fn fs_floor(view: &View) -> FsFloor {
    let mut write = writable_paths(view);
    // A standard stream redirected to a file is reopened by path (`> /dev/stdout`): the
    // program may write what it was given to write to.
    for fd in 1..=2 {
        if let Ok(target) = std::fs::read_link(format!("/proc/self/fd/{fd}")) {
            if std::fs::metadata(&target).is_ok_and(|m| m.is_file()) {
                write.push(target);
            }
        }
    }
    FsFloor { read: vec![PathBuf::from("/")], write, hidden: hidden_paths(view) }
}

/// The scopes a view's sandbox gets: no signals to processes outside it, no connections to
/// abstract unix sockets outside it (host daemons, X11).
pub fn options() -> FloorOptions {
    FloorOptions { scope_signals: true, scope_abstract_unix: true, net: None }
}

/// Capabilities a root program in a view's sandbox keeps: Docker's default set for a
/// container, less `CAP_NET_RAW` and `CAP_MKNOD` (the network floor and the view refuse what
/// they are for). The rest would let root reach past the view and the floor in ways Landlock
/// and the mount namespace do not see: `CAP_SYS_RAWIO` (`iopl`, raw device commands),
/// `CAP_SYS_ADMIN` (hundreds of administrative operations), `CAP_DAC_READ_SEARCH`
/// (`open_by_handle_at` past every path check), `CAP_SYS_PTRACE`, `CAP_SYS_MODULE`,
/// `CAP_SYS_TIME`, `CAP_SYS_BOOT`, `CAP_BPF`, `CAP_PERFMON`, `CAP_SYSLOG` and the others.
const KEPT_CAPABILITIES: [libc::c_ulong; 12] = [
    0,  // CAP_CHOWN
    1,  // CAP_DAC_OVERRIDE
    3,  // CAP_FOWNER
    4,  // CAP_FSETID
    5,  // CAP_KILL
    6,  // CAP_SETGID
    7,  // CAP_SETUID
    8,  // CAP_SETPCAP
    10, // CAP_NET_BIND_SERVICE
    18, // CAP_SYS_CHROOT
    29, // CAP_AUDIT_WRITE
    31, // CAP_SETFCAP
];

/// Drops every capability but [`KEPT_CAPABILITIES`] from the bounding set, so that no program
/// the sandbox execs gets them, root included. A caller without `CAP_SETPCAP` has none of
/// them to lose, and its `EPERM` is ignored.
///
/// Async-signal-safe: `prctl`s only.
pub fn drop_capabilities() {
    // Past the last capability the kernel knows, PR_CAPBSET_DROP fails with EINVAL.
    for cap in 0..64 {
        if !KEPT_CAPABILITIES.contains(&cap) {
            // SAFETY: prctl with integer arguments changes only this process's bounding set.
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } != 0
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL)
            {
                break;
            }
        }
    }
}
