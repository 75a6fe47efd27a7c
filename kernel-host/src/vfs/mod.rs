//! The filesystem view: the program sees the host's files through the policy's mount table
//! (read-only, read-write, overlay, private, hidden trees), and its writes to an overlay land
//! in a private upper layer.
//!
//! Every path-taking call is resolved here, component by component, against the view
//! ([`walk`]); the call then runs on the host against the host path the walk found, with
//! `RESOLVE_NO_SYMLINKS` where the host allows it so that a link swapped in meanwhile cannot
//! lead elsewhere. Descriptors stay the host's, so reads, writes, `mmap`, `dup` and fork
//! need nothing from the kernel. The guest path of a descriptor or of the working directory
//! is derived from the host's (`/proc/self/fd`), mapped back through the mount table, so
//! nothing about them has to be kept across fork and exec.
//!
//! The upper layer has overlayfs's on-disk form (`userxattr`): whiteouts are character
//! devices 0/0, opaque directories carry `user.overlay.opaque`. See [`overlay`].

pub mod cache;
pub mod host;
pub mod listing;
pub mod mount;
pub mod mountinfo;
pub mod overlay;
pub mod path;
pub mod shared_dirs;
pub mod stamp;
pub mod walk;

use crate::errno::{Errno, KResult};
use crate::shared::Shared;
use crate::sync::SpinLock;
use alloc::vec::Vec;
use cache::{DirCache, FdMemo};
use core::sync::atomic::Ordering;
use host::{Hc, Stat};
use mount::MountTable;
pub use walk::{Layering, Node, Place};

/// What is known of the mount the state directory is: unknown until first asked.
const MOUNT_UNKNOWN: u64 = 0;
/// The state directory is not a mount of its own (no mount namespace): a file's mount cannot
/// tell whether it is the sandbox's.
const MOUNT_SHARED: u64 = u64::MAX;

/// The view of one process image.
pub struct Vfs {
    pub(crate) mounts: MountTable,
    shared: &'static Shared,
    dir_cache: SpinLock<DirCache>,
    /// The device of the sandbox's own directory (upper layers, private trees), once looked
    /// up; 0 until then.
    state_dev: core::sync::atomic::AtomicU64,
    /// The guest working directory, once derived from the host's, with the process it is
    /// for: a `vfork` child shares this memory but not its parent's working directory.
    cwd: SpinLock<Option<(i64, Vec<u8>)>>,
    fd_memo: SpinLock<FdMemo>,
    /// The sandbox's state directory (NUL-terminated host path), when the launcher made one.
    state_dir: Option<Vec<u8>>,
    /// The id of the mount that is the state directory ([`MOUNT_UNKNOWN`], [`MOUNT_SHARED`]).
    state_mount: core::sync::atomic::AtomicU64,
}

impl Vfs {
    /// The view a mount table shows; `None` when the table is empty.
    pub fn new(mounts: MountTable, shared: &'static Shared) -> Option<Vfs> {
        (!mounts.is_empty()).then(|| Vfs {
            mounts,
            shared,
            dir_cache: SpinLock::new(DirCache::default()),
            state_dev: 0.into(),
            cwd: SpinLock::new(None),
            fd_memo: SpinLock::new(FdMemo::default()),
            state_dir: None,
            state_mount: MOUNT_UNKNOWN.into(),
        })
    }

    /// Names the sandbox's state directory through the path of its shared page, which lies in
    /// it (see [`crate::config::Config::shared_path`]).
    pub fn with_shared_path(mut self, shared_path: Option<&str>) -> Vfs {
        self.state_dir = shared_path.map(|p| {
            let dir = path::parent(p.as_bytes());
            [dir, b"\0"].concat()
        });
        self
    }

    /// Where the upper copy of the lower file with device `dev` and inode `ino` is indexed
    /// (NUL-terminated), when that file has several names: `STATE/index/DEV-INO`, a hard link
    /// of the copy, so that each of its names copied up later is made a link of the same copy
    /// and a change through one name shows through the others, as overlayfs's `index=on`
    /// does. `None` without a state directory.
    pub(crate) fn index_path(&self, dev: u64, ino: u64) -> Option<Vec<u8>> {
        let state = self.state_dir.as_deref()?;
        Some(
            alloc::format!("{}/index/{dev:x}-{ino:x}\0", core::str::from_utf8(path::strip_nul(state)).ok()?)
                .into_bytes(),
        )
    }

    /// Whether any file was indexed (see [`Vfs::index_path`]).
    pub(crate) fn any_indexed(&self) -> bool {
        self.shared.indexed.load(Ordering::Acquire) > 0
    }

    /// Whether descriptor `fd` is a file of the sandbox's own directory (an upper layer, a
    /// private tree), where changing it changes nothing of the host's: `None` when that cannot
    /// be told cheaply. It can when the state directory is a mount of its own, as the launcher's
    /// mount namespace makes it (bound onto itself): then every file on that mount is inside
    /// it, and one `statx` of the descriptor says.
    pub fn fd_is_own(&self, h: Hc<'_>, fd: i32) -> Option<bool> {
        let mut mount = self.state_mount.load(Ordering::Relaxed);
        if mount == MOUNT_UNKNOWN {
            mount = self
                .state_dir
                .as_deref()
                .and_then(|dir| h.mount_of(crate::abi::AT_FDCWD, dir).ok())
                .and_then(|(id, is_root)| is_root.then_some(id))
                .unwrap_or(MOUNT_SHARED);
            self.state_mount.store(mount, Ordering::Relaxed);
        }
        if mount == MOUNT_SHARED {
            return None;
        }
        h.mount_of(fd as i64, b"\0").ok().map(|(id, _)| id == mount)
    }

    fn generation(&self) -> u64 {
        self.shared.vfs_generation.load(Ordering::Acquire)
    }

    /// Records a change to the overlay's names that may change where some path leads.
    pub(crate) fn names_changed(&self) {
        self.shared.vfs_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Records a copy-up: the path leads to the upper copy from now on.
    pub(crate) fn copied_up(&self) {
        self.shared.copy_ups.fetch_add(1, Ordering::AcqRel);
    }

    /// What a path's lookup depends on besides the host's files: the generation of the
    /// overlay's names and the copy-ups made. Read before a lookup whose result is kept.
    pub(crate) fn lookup_stamp(&self) -> (u64, u64) {
        (self.generation(), self.shared.copy_ups.load(Ordering::Acquire))
    }

    /// Whether device `dev` holds the sandbox's own directory (its upper layers and private
    /// trees): only files there can be the view's own.
    pub fn in_state_dir(&self, h: Hc<'_>, dev: u64) -> bool {
        let mut known = self.state_dev.load(Ordering::Relaxed);
        if known == 0 {
            // Upper layers come first, so a private tree not made yet costs no failed `lstat`.
            known = self
                .mounts
                .private_roots()
                .find_map(|root| h.lstat(&path::host_cpath(root, b"")).ok())
                .map_or(u64::MAX, |st| st.dev());
            self.state_dev.store(known, Ordering::Relaxed);
        }
        known == dev
    }

    /// The program process `pid` of the sandbox recorded it runs ([`crate::exes`]).
    pub fn exe_of(&self, pid: u32) -> Option<Vec<u8>> {
        self.shared.exes.lookup(pid)
    }

    /// Records that process `pid` runs the program at guest path `exe`.
    pub fn record_exe(&self, pid: u32, exe: &[u8]) {
        self.shared.exes.record(pid, exe);
    }

    /// The guest path of a host path, if the view shows that file.
    pub fn guest_of_host(&self, host: &[u8]) -> Option<Vec<u8>> {
        self.mounts.guest_of_host(host)
    }

    /// The guest working directory.
    pub fn cwd(&self, h: Hc<'_>) -> KResult<Vec<u8>> {
        let pid = h.call(syscalls::Sysno::getpid, [0; 6])?;
        if let Some((owner, cwd)) = &*self.cwd.lock() {
            if *owner == pid {
                return Ok(cwd.clone());
            }
        }
        let mut buf = alloc::vec![0u8; crate::abi::PATH_MAX];
        let n = h.call(syscalls::Sysno::getcwd, [buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0, 0, 0])?;
        buf.truncate((n as usize).saturating_sub(1));
        // A working directory outside the view (left by whoever started the program) reads
        // as the root, where the program's relative paths then start.
        let cwd = self.guest_of_host(&buf).unwrap_or_else(|| Vec::from(&b"/"[..]));
        *self.cwd.lock() = Some((pid, cwd.clone()));
        Ok(cwd)
    }

    /// Records the guest working directory after a `chdir` to it.
    pub fn set_cwd(&self, h: Hc<'_>, guest: Vec<u8>) {
        let pid = h.call(syscalls::Sysno::getpid, [0; 6]).unwrap_or(0);
        *self.cwd.lock() = Some((pid, guest));
    }

    /// Forgets the working directory: the host's changed.
    pub fn cwd_changed(&self) {
        *self.cwd.lock() = None;
    }

    /// The guest path of the directory open as `fd`.
    pub fn guest_of_fd(&self, h: Hc<'_>, fd: i32) -> KResult<Vec<u8>> {
        self.fd_and_guest(h, fd).map(|(_, guest)| guest)
    }

    /// [`Self::guest_of_fd`], with the descriptor's `fstat`, which it makes anyway.
    fn fd_and_guest(&self, h: Hc<'_>, fd: i32) -> KResult<(Stat, Vec<u8>)> {
        let st = h.fstat(fd)?;
        let generation = self.generation();
        if let Some(guest) = self.fd_memo.lock().get(fd, &st, generation) {
            return Ok((st, guest));
        }
        let target = fd_target(h, fd)?;
        if target.first() != Some(&b'/') {
            return Err(Errno::ENOTDIR);
        }
        let guest = self.guest_of_host(&target).ok_or(Errno::ENOENT)?;
        if st.is_dir() {
            self.fd_memo.lock().insert(fd, &st, generation, guest.clone());
        }
        Ok((st, guest))
    }

    /// What descriptor `fd` names: its host path, and the view's node at the guest path that
    /// host path shows (which may now be another layer's file: a copy made since). `None` for
    /// what the view does not show (a pipe, a socket, a deleted or hidden file).
    pub fn node_of_fd(&self, h: Hc<'_>, fd: i32) -> KResult<Option<(Vec<u8>, Node)>> {
        let Ok(target) = fd_target(h, fd) else { return Ok(None) };
        let Some(guest) = self.guest_of_host(&target) else { return Ok(None) };
        Ok(Some((target, self.lookup(h, &guest)?)))
    }

    /// Whether relative paths from `dirfd` (`AT_FDCWD`: the working directory) lie in an
    /// overlay's upper layer only, so that the host can resolve them relative to the descriptor
    /// itself: the directory is one the sandbox made where the host has none (everything
    /// beneath it is the upper layer's), no mount of the view lies below it, and the descriptor
    /// is that very upper directory (not a lower one a working directory was left on, or one
    /// replaced since).
    pub fn upper_only_below(&self, h: Hc<'_>, dirfd: i64) -> bool {
        if dirfd as i32 as i64 == crate::abi::AT_FDCWD {
            let (Ok(base), Ok(identity)) = (self.cwd(h), h.lstat(b".\0")) else { return false };
            return self.is_upper_only_dir(h, &base, &identity);
        }
        let fd = dirfd as i32;
        let Ok((identity, base)) = self.fd_and_guest(h, fd) else { return false };
        let generation = self.generation();
        if let Some(known) = self.fd_memo.lock().upper_only(fd, &identity, generation) {
            return known;
        }
        let found = self.is_upper_only_dir(h, &base, &identity);
        self.fd_memo.lock().set_upper_only(fd, &identity, generation, found);
        found
    }

    /// [`Self::upper_only_below`] for the directory at guest path `base`, whose host identity
    /// the descriptor or working directory gave as `identity`.
    fn is_upper_only_dir(&self, h: Hc<'_>, base: &[u8], identity: &Stat) -> bool {
        let comps: Vec<&[u8]> = path::components(base).collect();
        if !matches!(self.canonical_dir(h, &comps), Ok((canonical, Layering::UpperOnly, _)) if canonical == base)
        {
            return false;
        }
        if self.mounts.iter().any(|m| m.guest != base && path::is_within(m.guest, base)) {
            return false;
        }
        self.lookup(h, base)
            .ok()
            .and_then(|node| node.stat)
            .is_some_and(|st| node_is_upper_dir(&st, identity))
    }

    /// Resolves `path` as an `*at` call does: absolute, or relative to `dirfd` (`AT_FDCWD`:
    /// the working directory).
    pub fn resolve_at(&self, h: Hc<'_>, dirfd: i64, path: &[u8], follow: bool) -> KResult<Node> {
        if path.first() == Some(&b'/') {
            return self.walk_with(h, b"/", path, follow);
        }
        let base = if dirfd as i32 as i64 == crate::abi::AT_FDCWD {
            self.cwd(h)?
        } else {
            self.guest_of_fd(h, dirfd as i32)?
        };
        self.walk_with(h, &base, path, follow)
    }

    /// The host path (NUL-terminated) of the file `path` names, following links: what the
    /// runtime opens to load a program or its interpreter.
    pub fn host_path_of(&self, h: Hc<'_>, path: &[u8]) -> KResult<Vec<u8>> {
        let node = self.resolve_at(h, crate::abi::AT_FDCWD, path, true)?;
        if node.exists() {
            Ok(node.host)
        } else {
            Err(Errno::ENOENT)
        }
    }

    /// [`Vfs::host_path_of`], with the file's canonical guest path beside it: what
    /// `/proc/self/exe` shows for a program loaded from there. The guest path is `None` where
    /// the host resolves the path itself (`/proc`), so only a lexical one is known.
    pub fn program_of(&self, h: Hc<'_>, path: &[u8]) -> KResult<(Vec<u8>, Option<Vec<u8>>)> {
        self.program_lookup(h, path).map(|(host, guest, _)| (host, guest))
    }

    /// [`Vfs::program_of`], and whether the walk went through a tree the view passes to the
    /// host (`/proc`, `/dev`) or one of `/proc`'s links: then the same path may lead to
    /// another file at the next call (`/proc/self/fd/N`, `/proc/self/cwd/...`).
    pub fn program_lookup(&self, h: Hc<'_>, path: &[u8]) -> KResult<(Vec<u8>, Option<Vec<u8>>, bool)> {
        let node = self.resolve_at(h, crate::abi::AT_FDCWD, path, true)?;
        if !node.exists() {
            return Err(Errno::ENOENT);
        }
        let volatile = node.via_proc_link || node.place == walk::Place::Passthrough;
        let guest = (node.place != walk::Place::Passthrough).then_some(node.guest);
        Ok((node.host, guest, volatile))
    }

    /// Locks taken around fork.
    pub(crate) fn lock_for_fork(&self) {
        self.dir_cache.raw_lock();
        self.cwd.raw_lock();
        self.fd_memo.raw_lock();
    }

    /// Releases what [`Vfs::lock_for_fork`] took.
    pub(crate) fn unlock_after_fork(&self) {
        self.fd_memo.raw_unlock();
        self.cwd.raw_unlock();
        self.dir_cache.raw_unlock();
    }
}

/// Whether `upper` (the upper directory's `lstat`) is the directory `base` (a descriptor's or
/// the working directory's) is open on.
fn node_is_upper_dir(upper: &Stat, base: &Stat) -> bool {
    upper.is_dir() && upper.dev() == base.dev() && upper.ino() == base.ino()
}

/// The host path descriptor `fd` names (`/proc/self/fd/N`); `EBADF` when it is not open.
fn fd_target(h: Hc<'_>, fd: i32) -> KResult<Vec<u8>> {
    let link = alloc::format!("/proc/self/fd/{fd}\0");
    h.readlink(link.as_bytes()).map_err(|e| if e == Errno::ENOENT { Errno::EBADF } else { e })
}

#[cfg(test)]
mod tests;
