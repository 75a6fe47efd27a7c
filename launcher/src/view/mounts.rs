//! The view's mount namespace: the second layer of the floor under the filesystem view, for
//! what Landlock does not confine. A program that jumps into the runtime's own `syscall`
//! skips the view; Landlock then still refuses it reads of hidden files and writes to host
//! files, but not `chmod`, `chown`, `utimes`, `setxattr` or `stat` on host paths, nor
//! connecting to a pathname unix socket. In a mount namespace of its own (see
//! [`crate::namespaces`]) the sandbox therefore gets, before Landlock is enforced and before
//! the runtime is executed:
//!
//! 1. the whole host tree read-only (`mount_setattr(2)` with `AT_RECURSIVE`, or one
//!    `MS_REMOUNT | MS_BIND | MS_RDONLY` per mount where the kernel is older than 5.12),
//!    `/dev` and `/sys` included (a read-only mount does not stop reads and writes of device
//!    nodes, only changing them), except `/proc` and `/dev/pts`, which stay as they were
//!    (Landlock refuses writes to `/proc` anyway; the view's `/dev/shm` is in the state
//!    directory);
//! 2. the state directory and every `rw` mount's host path bound onto themselves and made
//!    writable again (unless the host had them read-only already), so that the kernel-host
//!    vfs, which runs in the program's process, can write the overlay's upper layer and the
//!    tmpfs trees, and `rw` mounts work;
//! 3. the empty stand-ins (`STATE/hidden/N`, one for each) bound read-only over every
//!    hidden host path ([`super::floor::hidden_paths`]), so that even a `stat` or a `connect`
//!    through the gate finds an empty directory or file there;
//! 4. an empty file (`STATE/hidden/block`) bound over every block device under `/dev`: a
//!    sandbox run as root would otherwise read the disks below every file the view hides
//!    (the owner's permission bits suffice, no capability is needed). A device the host adds
//!    during the run (a new loop device) is not covered.
//!
//! Everything is decided here, before the fork, as C strings; the child ([`MountPlan::apply`])
//! only makes raw system calls on them. What this does not do: mounts below a writable path
//! stay read-only (the bind copies them, step 1 made them so); a hidden path that contains a
//! writable path (a `--hide` of a parent of the state directory) is not covered, since that
//! would hide the writable path too: Landlock still refuses reading it.
//!
//! Read first: mount_namespaces(7), mount(2) (`MS_BIND`, `MS_REMOUNT`), mount_setattr(2),
//! proc(5) (`/proc/PID/mountinfo`), statfs(2).

use super::floor::{hidden_stand_ins, writable_paths};

/// The kernel's trees whose mounts keep their host flags in the sandbox's namespace.
const LEFT_AS_THEY_WERE: [&str; 2] = ["/proc", "/dev/pts"];
use super::View;
use crate::failure::Failure;
use crate::namespaces::Step;
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// `AT_RECURSIVE` (`linux/fcntl.h`): `mount_setattr` on the whole mount tree below.
const AT_RECURSIVE: libc::c_uint = 0x8000;
/// `AT_NO_AUTOMOUNT`: `mount_setattr` follows automount points by default; an autofs mount
/// point (systemd's `/proc/sys/fs/binfmt_misc`) must be changed, not triggered.
const AT_NO_AUTOMOUNT: libc::c_uint = libc::AT_NO_AUTOMOUNT as libc::c_uint;
/// `MOUNT_ATTR_RDONLY` (`linux/mount.h`).
const MOUNT_ATTR_RDONLY: u64 = 1;

/// `struct mount_attr` (`linux/mount.h`), its first version.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

// MOUNT_ATTR_SIZE_VER0: the kernel reads this many bytes.
const _: () = assert!(std::mem::size_of::<MountAttr>() == 32);

/// The kernel's `struct statfs` on x86_64 (`asm-generic/statfs.h`): libc's keeps `f_flags`
/// private, and glibc's `statvfs` may read `/proc/mounts`, which a forked child must not.
#[repr(C)]
#[derive(Default)]
struct Statfs {
    f_type: i64,
    f_bsize: i64,
    f_blocks: u64,
    f_bfree: u64,
    f_bavail: u64,
    f_files: u64,
    f_ffree: u64,
    f_fsid: [i32; 2],
    f_namelen: i64,
    f_frsize: i64,
    f_flags: i64,
    f_spare: [i64; 4],
}

const _: () = assert!(std::mem::size_of::<Statfs>() == 120);
const _: () = assert!(std::mem::offset_of!(Statfs, f_flags) == 80);

/// The `ST_*` flags of the mount `path` lies on, or `None` with `errno` set. In the launcher
/// and the tests only: `statfs` triggers automounts.
fn mount_flags(path: &CStr) -> Option<u64> {
    let mut st = Statfs::default();
    // SAFETY: a valid C string and a structure of the size the kernel writes.
    let r = unsafe { libc::syscall(libc::SYS_statfs, path.as_ptr(), &mut st as *mut Statfs) };
    (r == 0).then_some(st.f_flags as u64)
}

/// One mount of the host's table, as `/proc/self/mountinfo` listed it before the fork.
#[derive(Debug)]
struct HostMount {
    /// Where it is mounted.
    point: CString,
    /// Under `/dev`, `/proc` or `/sys`: left as it was.
    kernel: bool,
    /// Mounted read-write on the host.
    writable: bool,
    /// Its `nosuid`, `nodev` and `noexec`, for a remount.
    flags: libc::c_ulong,
    /// No later mount of the list sits at the same point (only the top one is reachable by
    /// its path).
    top: bool,
}

/// A host path the sandbox writes to, bound onto itself.
#[derive(Debug)]
struct Writable {
    path: CString,
    /// Its mount was read-write on the host: the bind is made writable again.
    was_writable: bool,
    /// Its mount's `nosuid`, `nodev` and `noexec`, which the bind copies, for a remount.
    flags: libc::c_ulong,
}

/// An empty stand-in bound over a hidden host path.
#[derive(Debug)]
struct StandIn {
    source: CString,
    target: CString,
    /// The `nosuid`, `nodev` and `noexec` of the state directory's mount, which the bind
    /// copies, for a remount.
    flags: libc::c_ulong,
}

/// The mounts of a view's sandbox, prepared before the fork.
#[derive(Debug)]
pub struct MountPlan {
    host: Vec<HostMount>,
    writable: Vec<Writable>,
    stand_ins: Vec<StandIn>,
    /// Where a fresh sysfs is staged (`STATE/sys`), and the two paths under it bound over the
    /// host's network directories ([`MountPlan::own_sysfs_net`]).
    sys_stage: Option<[CString; 3]>,
}

impl MountPlan {
    /// The plan for `view`, from the host's current mount table.
    pub fn new(view: &View) -> Result<MountPlan, Failure> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| Failure::Setup(format!("cannot read /proc/self/mountinfo: {e}")))?;
        let mut hidden = hidden_stand_ins(view);
        let devices = block_devices(Path::new("/dev"));
        if !devices.is_empty() {
            let stand_in = view.state.block_stand_in()?;
            hidden.extend(devices.into_iter().map(|d| (d, stand_in.clone())));
        }
        let mut plan = MountPlan::from_parts(&mountinfo, &writable_paths(view), &hidden);
        let stage = view.state.sys_stage();
        plan.sys_stage =
            [cstring(&stage), cstring(&stage.join("class/net")), cstring(&stage.join("devices/virtual/net"))]
                .into_iter()
                .collect::<Option<Vec<CString>>>()
                .and_then(|v| v.try_into().ok());
        Ok(plan)
    }

    /// Shows the file `source` (in the state directory) at the host path `target`, read-only,
    /// as a hidden path's stand-in is shown: `--net nat`'s `/etc/resolv.conf`. A `target` that
    /// does not exist is left alone.
    pub fn cover_file(&mut self, source: &Path, target: &Path) {
        let Ok(target) = target.canonicalize() else { return };
        if self.stand_ins.iter().any(|s| s.target.as_bytes() == target.as_os_str().as_encoded_bytes()) {
            return;
        }
        if let (Some(source), Some(target)) = (cstring(source), cstring(&target)) {
            let flags = kept_flags(mount_flags(&source).unwrap_or(0));
            self.stand_ins.push(StandIn { source, target, flags });
        }
    }

    /// In the sandbox's own network namespace, after [`MountPlan::apply`]: shows the
    /// namespace's interfaces in `/sys/class/net` and `/sys/devices/virtual/net` instead of the
    /// host's, from a fresh sysfs (which lists the network devices of the namespace that
    /// mounts it) staged in the state directory and bound over those two, read-only. Best
    /// effort: where the host refuses the sysfs mount, the host's names stay.
    ///
    /// # Safety
    /// Async-signal-safe: `mount`/`umount2` on C strings prepared before the fork.
    pub unsafe fn own_sysfs_net(&self) {
        let Some([stage, class_net, virtual_net]) = &self.sys_stage else { return };
        let none = std::ptr::null::<libc::c_char>();
        let flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        // SAFETY: mount calls on C strings that live in `self`; they change only this
        // process's mount namespace.
        unsafe {
            if libc::mount(c"sysfs".as_ptr(), stage.as_ptr(), c"sysfs".as_ptr(), flags, std::ptr::null()) != 0
            {
                return;
            }
            for (from, to) in [(class_net, c"/sys/class/net"), (virtual_net, c"/sys/devices/virtual/net")] {
                if libc::mount(from.as_ptr(), to.as_ptr(), none, libc::MS_BIND, std::ptr::null()) == 0 {
                    libc::mount(
                        none,
                        to.as_ptr(),
                        none,
                        libc::MS_BIND | libc::MS_REMOUNT | flags,
                        std::ptr::null(),
                    );
                }
            }
            libc::umount2(stage.as_ptr(), libc::MNT_DETACH);
        }
    }

    /// The plan from a mount table's text, the writable host paths, and the hidden host paths
    /// with the empty directory or file that stands in for each.
    fn from_parts(mountinfo: &str, writable: &[PathBuf], hidden: &[(PathBuf, PathBuf)]) -> MountPlan {
        let mut host: Vec<HostMount> = mountinfo.lines().filter_map(parse_mountinfo_line).collect();
        for i in 0..host.len() {
            host[i].top = !host[i + 1..].iter().any(|later| later.point == host[i].point);
        }
        let mut writable: Vec<PathBuf> = writable.iter().filter_map(|p| p.canonicalize().ok()).collect();
        // Parents first (paths compare component by component): a path below another is bound
        // on top of the parent's bind.
        writable.sort();
        writable.dedup();
        let mut hidden: Vec<(PathBuf, &Path)> = hidden
            .iter()
            .filter_map(|(p, stand_in)| Some((p.canonicalize().ok()?, stand_in.as_path())))
            // Covering a writable path would hide it from the runtime too.
            .filter(|(h, _)| !writable.iter().any(|w| w.starts_with(h)))
            .collect();
        // Outer paths first: an inner one is then gone (inside the empty stand-in) and skipped.
        hidden.sort();
        hidden.dedup_by(|a, b| a.0 == b.0);
        let stand_ins = hidden
            .iter()
            .filter_map(|(h, source)| {
                let flags = kept_flags(mount_flags(&cstring(source)?).unwrap_or(0));
                Some(StandIn { source: cstring(source)?, target: cstring(h)?, flags })
            })
            .collect();
        let writable = writable
            .iter()
            .filter_map(|p| {
                let path = cstring(p)?;
                let st = mount_flags(&path).unwrap_or(libc::ST_RDONLY);
                Some(Writable { was_writable: st & libc::ST_RDONLY == 0, flags: kept_flags(st), path })
            })
            .collect();
        MountPlan { host, writable, stand_ins, sys_stage: None }
    }

    /// In the sandbox's new mount namespace, after its mounts were made private: makes the host
    /// tree read-only but for the writable paths and the kernel's trees, and covers the hidden
    /// paths. On error `errno` says why.
    ///
    /// # Safety
    /// Only in a forked child in a mount namespace of its own, before it execs: it makes only
    /// async-signal-safe calls and does not allocate.
    pub unsafe fn apply(&self) -> Result<(), Step> {
        // SAFETY: the caller's contract.
        unsafe { self.apply_with(true) }
    }

    /// [`MountPlan::apply`], with `mount_setattr` or (`setattr` false, as on kernels before
    /// 5.12) without it.
    ///
    /// # Safety
    /// As for [`MountPlan::apply`].
    unsafe fn apply_with(&self, setattr: bool) -> Result<(), Step> {
        // SAFETY: raw system calls on C strings and structures prepared before the fork or on
        // this stack.
        unsafe {
            let modern = setattr && set_attr(c"/", AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0) == 0;
            if modern {
                // The recursive call took the kernel's trees too: give back what they had.
                for m in self.host.iter().filter(|m| m.kernel && m.writable && m.top) {
                    if set_attr(&m.point, AT_NO_AUTOMOUNT, 0, MOUNT_ATTR_RDONLY) != 0 && !unreachable_path() {
                        return Err(Step::KernelTrees);
                    }
                }
            } else if !setattr || errno() == libc::ENOSYS {
                for m in self.host.iter().filter(|m| !m.kernel) {
                    if remount(&m.point, true, m.flags) != 0 && !unreachable_path() {
                        return Err(Step::ReadOnly);
                    }
                }
            } else {
                return Err(Step::ReadOnly);
            }
            let none = std::ptr::null::<libc::c_char>();
            for w in &self.writable {
                // MS_REC: a bind of the top mount alone would hide the mounts below it.
                if libc::mount(
                    w.path.as_ptr(),
                    w.path.as_ptr(),
                    none,
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(Step::Writable);
                }
                // The bind copied the read-only flag set above (not a lock: the host's own
                // read-only mounts stay so, and cannot be made writable in a user namespace).
                if w.was_writable && set_read_only(modern, &w.path, false, w.flags) != 0 {
                    return Err(Step::Writable);
                }
            }
            for s in &self.stand_ins {
                if libc::mount(s.source.as_ptr(), s.target.as_ptr(), none, libc::MS_BIND, std::ptr::null())
                    != 0
                {
                    // Removed on the host since, or inside a stand-in bound just before.
                    if unreachable_path() {
                        continue;
                    }
                    return Err(Step::StandIn);
                }
                // The stand-in comes from the writable state directory; the program must not
                // change it through the gate either.
                if set_read_only(modern, &s.target, true, s.flags) != 0 {
                    return Err(Step::StandIn);
                }
            }
        }
        Ok(())
    }
}

/// The block devices under `dir` (the host's `/dev`) that the caller may read, searched on
/// `dir`'s own filesystem: not through links, nor into the trees mounted below it (`/dev/pts`,
/// `/dev/shm`). A device the caller cannot read the sandbox cannot either (same user, fewer
/// capabilities), so a rootless sandbox usually needs none covered.
fn block_devices(dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(top) = std::fs::symlink_metadata(dir) else { return Vec::new() };
    let readable = |p: &Path| {
        cstring(p).is_some_and(|c| {
            // SAFETY: faccessat on a NUL-terminated path; it only reads it.
            unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::R_OK, libc::AT_EACCESS) == 0 }
        })
    };
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            // The directory entry's own type: no stat for the hundreds of character devices.
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_block_device() && readable(&entry.path()) {
                found.push(entry.path());
            } else if kind.is_dir() && entry.metadata().is_ok_and(|m| m.dev() == top.dev()) {
                dirs.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

/// For `cloister doctor`, in a forked child that has a mount namespace of its own with private
/// mounts: makes its root mount read-only the way [`MountPlan::apply`] would. `Ok(true)` with
/// `mount_setattr`, `Ok(false)` by remounting (Linux before 5.12), or the errno.
pub fn probe_read_only() -> Result<bool, i32> {
    // SAFETY: system calls on constant C strings; they change only this process's namespace.
    unsafe {
        if set_attr(c"/", AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0) == 0 {
            return Ok(true);
        }
        let root = mount_flags(c"/").map_or(0, kept_flags);
        if errno() == libc::ENOSYS && remount(c"/", true, root) == 0 {
            return Ok(false);
        }
    }
    Err(errno())
}

/// Sets and clears mount attributes of the mount at `path` (and below it with
/// `AT_RECURSIVE`); returns 0, or -1 with `errno` set.
///
/// # Safety
/// Async-signal-safe; `path` must be valid for the call.
unsafe fn set_attr(path: &CStr, flags: libc::c_uint, set: u64, clear: u64) -> libc::c_long {
    let attr = MountAttr { attr_set: set, attr_clr: clear, propagation: 0, userns_fd: 0 };
    // SAFETY: a C string and a structure on this stack, both valid for the call.
    unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    }
}

/// Makes the mount at `path` read-only or writable, with `mount_setattr` when the kernel has it
/// (`modern`), else by remounting it with its `flags` ([`remount`]); returns 0, or -1 with
/// `errno` set.
///
/// # Safety
/// Async-signal-safe; `path` must be valid for the call.
unsafe fn set_read_only(modern: bool, path: &CStr, read_only: bool, flags: libc::c_ulong) -> i32 {
    // SAFETY: forwarded to calls with the same contract.
    unsafe {
        if modern {
            let (set, clear) = if read_only { (MOUNT_ATTR_RDONLY, 0) } else { (0, MOUNT_ATTR_RDONLY) };
            set_attr(path, AT_NO_AUTOMOUNT, set, clear) as i32
        } else {
            remount(path, read_only, flags)
        }
    }
}

/// `MS_REMOUNT | MS_BIND` of the mount at `path`, read-only or not, repeating its `nosuid`,
/// `nodev` and `noexec` (`flags`: a user namespace may not drop them, they are locked) and, by
/// giving no atime flag, keeping its atime behaviour. Returns 0, or -1 with `errno` set.
///
/// # Safety
/// Async-signal-safe; `path` must be valid for the call.
unsafe fn remount(path: &CStr, read_only: bool, flags: libc::c_ulong) -> i32 {
    // SAFETY: mount with C strings valid for the call.
    unsafe {
        let mut flags = libc::MS_REMOUNT | libc::MS_BIND | flags;
        if read_only {
            flags |= libc::MS_RDONLY;
        }
        let none = std::ptr::null::<libc::c_char>();
        libc::mount(none, path.as_ptr(), none, flags, std::ptr::null())
    }
}

/// The `MS_*` flags a remount must repeat, from `statfs`'s `ST_*` flags.
fn kept_flags(st_flags: u64) -> libc::c_ulong {
    [(libc::ST_NOSUID, libc::MS_NOSUID), (libc::ST_NODEV, libc::MS_NODEV), (libc::ST_NOEXEC, libc::MS_NOEXEC)]
        .into_iter()
        .filter(|&(st, _)| st_flags & st != 0)
        .fold(0, |flags, (_, ms)| flags | ms)
}

fn errno() -> i32 {
    // SAFETY: reading this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Whether the last call failed because its path is not there (any more) or not reachable by
/// this process, and so not by the program either.
fn unreachable_path() -> bool {
    matches!(errno(), libc::ENOENT | libc::ENOTDIR | libc::EACCES)
}

/// Whether the mount `path` lies on is read-write on the host.
#[cfg(test)]
fn mount_writable(path: &Path) -> bool {
    cstring(path).and_then(|c| mount_flags(&c)).is_some_and(|flags| flags & libc::ST_RDONLY == 0)
}

fn cstring(path: &Path) -> Option<CString> {
    CString::new(path.as_os_str().as_bytes()).ok()
}

/// One line of `/proc/self/mountinfo`: `ID PARENT MAJ:MIN ROOT POINT OPTIONS ...`; `None` for
/// a line that is not one.
fn parse_mountinfo_line(line: &str) -> Option<HostMount> {
    let mut fields = line.split(' ');
    let point = unescape(fields.nth(4)?);
    let options = fields.next()?;
    // `/proc` (the program's own files there; the fresh one of the sandbox's pid namespace
    // goes read-only once mounted, namespaces.rs) and `/dev/pts` (terminals) keep their flags;
    // `/dev` and `/sys` go read-only with the rest: a read-only mount still lets devices be
    // read and written, but not chmod-ed, chown-ed or created, nor `/sys` knobs changed.
    let kernel = LEFT_AS_THEY_WERE
        .iter()
        .any(|t| point.strip_prefix(t.as_bytes()).is_some_and(|r| r.is_empty() || r[0] == b'/'));
    let flags = options
        .split(',')
        .filter_map(|o| match o {
            "nosuid" => Some(libc::MS_NOSUID),
            "nodev" => Some(libc::MS_NODEV),
            "noexec" => Some(libc::MS_NOEXEC),
            _ => None,
        })
        .fold(0, |flags, f| flags | f);
    Some(HostMount {
        point: CString::new(point).ok()?,
        kernel,
        writable: options.split(',').any(|o| o == "rw"),
        flags,
        top: true,
    })
}

/// A mountinfo field with its octal escapes (`\040` for a space, `\011`, `\012`, `\134`)
/// decoded.
fn unescape(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |v, c| v.wrapping_mul(8).wrapping_add(c - b'0')));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
24 27 0:6 / /dev rw,nosuid,relatime - devtmpfs devtmpfs rw
26 24 0:24 / /dev/pts rw,relatime - devpts devpts rw
29 26 0:26 / /dev/pts ro,relatime - devpts devpts rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
28 27 0:25 / /mnt/with\\040space ro,nosuid,nodev - tmpfs t ro
40 23 0:37 / /sys/fs/cgroup/x rw,relatime - cgroup cgroup rw
41 27 0:38 / /devices rw - tmpfs t rw
";

    #[test]
    fn mountinfo_is_read_with_escapes_kernel_trees_stacking_and_locked_flags() {
        let plan = MountPlan::from_parts(MOUNTINFO, &[], &[]);
        let seen: Vec<(&[u8], bool, bool, bool, libc::c_ulong)> =
            plan.host.iter().map(|m| (m.point.as_bytes(), m.kernel, m.writable, m.top, m.flags)).collect();
        let (nosuid, nodev, noexec) = (libc::MS_NOSUID, libc::MS_NODEV, libc::MS_NOEXEC);
        assert_eq!(
            seen,
            [
                (&b"/proc"[..], true, true, true, nosuid | nodev | noexec),
                (b"/dev", false, true, true, nosuid),
                (b"/dev/pts", true, true, false, 0),
                (b"/dev/pts", true, false, true, 0),
                (b"/", false, true, true, 0),
                (b"/mnt/with space", false, false, true, nosuid | nodev),
                (b"/sys/fs/cgroup/x", false, true, true, 0),
                (b"/devices", false, true, true, 0),
            ]
        );
    }

    #[test]
    fn hidden_paths_get_the_stand_in_of_their_type_and_never_cover_a_writable_path() {
        let dir = std::env::temp_dir().join(format!("cloister-mounts-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for d in ["state", "home/.ssh", "home/.config/gh", "outer/rw"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        fs::write(dir.join("home/.netrc"), "x").unwrap();
        let dir = dir.canonicalize().unwrap();
        let p = |rel: &str| dir.join(rel);
        let plan = MountPlan::from_parts(
            "",
            &[p("state"), p("outer/rw"), p("state")],
            &[
                (p("home/.config/gh"), p("state/hidden/0")),
                (p("home/.netrc"), p("state/hidden/1")),
                (p("home/.ssh"), p("state/hidden/2")),
                (p("outer"), p("state/hidden/3")),
                (p("missing"), p("state/hidden/4")),
                (p("home/.config"), p("state/hidden/5")),
            ],
        );
        let shown = |c: &CString| {
            Path::new(std::ffi::OsStr::from_bytes(c.as_bytes())).strip_prefix(&dir).unwrap().to_owned()
        };
        let writable: Vec<PathBuf> = plan.writable.iter().map(|w| shown(&w.path)).collect();
        assert_eq!(writable, [PathBuf::from("outer/rw"), PathBuf::from("state")]);
        assert!(plan.writable.iter().all(|w| w.was_writable));
        let stand_ins: Vec<(PathBuf, PathBuf)> =
            plan.stand_ins.iter().map(|s| (shown(&s.target), shown(&s.source))).collect();
        fs::remove_dir_all(&dir).unwrap();
        let expected: Vec<(PathBuf, PathBuf)> = [
            ("home/.config", "state/hidden/5"),
            ("home/.config/gh", "state/hidden/0"),
            ("home/.netrc", "state/hidden/1"),
            ("home/.ssh", "state/hidden/2"),
        ]
        .into_iter()
        .map(|(t, s)| (PathBuf::from(t), PathBuf::from(s)))
        .collect();
        assert_eq!(stand_ins, expected);
    }

    /// Lays out a plan in a forked child's own mount namespace, with `mount_setattr` or by
    /// remounting, and checks from inside: the state directory writable, the rest of its file
    /// system read-only, the hidden directory an empty read-only stand-in, `/dev` read-only
    /// with `/dev/null` still writable.
    fn apply_in_a_child(setattr: bool) {
        let dir =
            std::env::temp_dir().join(format!("cloister-mounts-apply-{setattr}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for d in ["state/hidden/0", "secret"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        fs::write(dir.join("secret/key"), "k").unwrap();
        let dir = dir.canonicalize().unwrap();
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let plan = MountPlan::from_parts(
            &mountinfo,
            &[dir.join("state")],
            &[(dir.join("secret"), dir.join("state/hidden/0"))],
        );
        let c = |p: &Path| cstring(p).unwrap();
        let (state, outside, secret, key) =
            (c(&dir.join("state")), c(&dir), c(&dir.join("secret")), c(&dir.join("secret/key")));
        let outside_was_writable = mount_writable(&dir);
        let dev_was_writable = mount_writable(Path::new("/dev"));
        let read_only = |p: &CStr| mount_flags(p).map(|f| f & libc::ST_RDONLY != 0);
        // SAFETY: the child makes only raw system calls on data prepared above, then exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: as above; the namespace and mounts are the child's own.
            unsafe {
                // A namespace of the child's own (through a user namespace when not root), with
                // private mounts, as the sandbox's first process has them.
                let own = libc::unshare(libc::CLONE_NEWNS) == 0
                    || libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) == 0;
                let none = std::ptr::null::<libc::c_char>();
                let private = own
                    && libc::mount(
                        none,
                        c"/".as_ptr(),
                        none,
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    ) == 0;
                let code = if !private {
                    77
                } else if let Err(step) = plan.apply_with(setattr) {
                    step as i32
                } else if read_only(&state) != Some(false) {
                    10
                } else if outside_was_writable && read_only(&outside) != Some(true) {
                    11
                } else if libc::access(key.as_ptr(), libc::F_OK) == 0 {
                    12
                } else if read_only(&secret) != Some(true) {
                    13
                } else if libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY) < 0 {
                    14
                } else if dev_was_writable && read_only(c"/dev") != Some(true) {
                    15
                } else {
                    0
                };
                libc::_exit(code);
            }
        }
        let mut status = 0;
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        fs::remove_dir_all(&dir).unwrap();
        match libc::WEXITSTATUS(status) {
            0 => {}
            77 => eprintln!("skipped: no mount namespace for this test process"),
            code => panic!("check {code} failed in the child (32 and up: a namespaces::Step)"),
        }
    }

    #[test]
    fn a_plan_is_laid_out_with_mount_setattr() {
        apply_in_a_child(true);
    }

    #[test]
    fn a_plan_is_laid_out_by_remounting_where_mount_setattr_is_missing() {
        apply_in_a_child(false);
    }

    #[test]
    fn a_remount_repeats_the_locked_flags_only() {
        let all = libc::ST_NOSUID | libc::ST_NODEV | libc::ST_NOEXEC | libc::ST_RDONLY | libc::ST_RELATIME;
        assert_eq!(kept_flags(all), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
        assert_eq!(kept_flags(0), 0);
    }
}
