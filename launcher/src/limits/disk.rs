//! `overlay_bytes`: a size limit on the sandbox's private layer, so that a program cannot fill
//! the host's disk. Without it the overlay's upper tree and the private `/tmp` and `/dev/shm`
//! are directories of the state directory, on the host's disk, and grow as far as the program
//! writes.
//!
//! With it the sandbox's first process mounts a tmpfs of that size over the state directory in
//! the sandbox's own mount namespace ([`PrivateDisk::mount`], after the view's mounts), and lays
//! out in it what the launcher had made on disk (the `upper/`, `tmp/`, `index/`, `hidden/` and
//! `sys/` directories, the stand-ins, the shared page with the view's packed mount table, which
//! [`kernel_host::vfs::mount::MAX_PACKED`] keeps under the 1 MiB of a file copied here).
//! Everything the program writes then counts against one total, enforced by the host kernel: a
//! write beyond it fails with `ENOSPC`, whoever makes it (through the view or past it). The
//! host's disk gets nothing.
//!
//! The supervisor, outside the namespace, cannot see that tmpfs by its path: the first process
//! sends it a descriptor of the tmpfs's root ([`PrivateDisk::send`], [`receive`]), which keeps
//! the tmpfs alive after the sandbox's namespace is gone, and the change report reads the upper
//! tree through `/proc/self/fd/N` ([`reroot`]).
//!
//! What it does not do: the layer is in memory (tmpfs pages, swappable where the host has
//! swap), so the limit also bounds how much memory it takes; with `--changes DIR` the upper
//! tree is copied into DIR after the run ([`super::keep`]); and without a mount namespace (a
//! host that refuses one) it cannot hold, which cloister says once on stderr.
//!
//! Read first: tmpfs(5) (`size=`), mount_namespaces(7), unix(7) (`SCM_RIGHTS`).

use crate::failure::Failure;
use std::ffi::CString;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What the first process recreates in the tmpfs: one entry of the state directory as the
/// launcher laid it out, parents before children.
#[derive(Debug)]
struct Entry {
    path: CString,
    mode: libc::mode_t,
    /// A regular file's bytes; `None` for a directory.
    content: Option<Vec<u8>>,
}

/// The tmpfs that holds a sandbox's private layer, prepared before the fork.
#[derive(Debug)]
pub struct PrivateDisk {
    state: CString,
    options: CString,
    entries: Vec<Entry>,
}

impl PrivateDisk {
    /// A private layer of `bytes` over the state directory `state`, whose current contents
    /// (directories and small files: the launcher's layout, not the program's data) are copied
    /// into it when it is mounted.
    pub fn new(state: &Path, bytes: u64) -> Result<PrivateDisk, Failure> {
        let cstring = |p: &Path| {
            CString::new(p.as_os_str().as_bytes())
                .map_err(|_| Failure::Setup(format!("{}: the path contains a NUL byte", p.display())))
        };
        let mut entries = Vec::new();
        let mut pending = vec![state.to_path_buf()];
        while let Some(dir) = pending.pop() {
            let mut children: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map_err(|e| Failure::Setup(format!("cannot read {}: {e}", dir.display())))?
                .flatten()
                .map(|e| e.path())
                .collect();
            children.sort();
            for child in children {
                let meta = std::fs::symlink_metadata(&child)
                    .map_err(|e| Failure::Setup(format!("cannot look at {}: {e}", child.display())))?;
                let mode = meta.permissions().mode() & 0o7777;
                let content = if meta.is_dir() {
                    pending.push(child.clone());
                    None
                } else if meta.is_file() && meta.size() <= 1 << 20 {
                    Some(
                        std::fs::read(&child)
                            .map_err(|e| Failure::Setup(format!("cannot read {}: {e}", child.display())))?,
                    )
                } else {
                    continue;
                };
                entries.push(Entry { path: cstring(&child)?, mode, content });
            }
        }
        // A directory's entries come after it: `pending` is depth-first, and each directory was
        // recorded before its own children were listed.
        Ok(PrivateDisk {
            state: cstring(state)?,
            options: CString::new(format!("size={bytes},mode=0700")).expect("digits"),
            entries,
        })
    }

    /// The state directory the tmpfs goes on (for the Landlock rule the child adds on it).
    pub fn state(&self) -> &std::ffi::CStr {
        &self.state
    }

    /// In the sandbox's first process, in its own mount namespace after the view's mounts:
    /// mounts the tmpfs over the state directory and lays the launcher's layout out in it.
    /// Returns 0, or -1 with `errno` set.
    ///
    /// # Safety
    /// Async-signal-safe: raw system calls on data prepared before the fork; no allocation.
    pub unsafe fn mount(&self) -> i32 {
        // SAFETY: C strings and buffers that live in `self`; the calls change only this
        // process's mount namespace and the new tmpfs.
        unsafe {
            let flags = libc::MS_NOSUID | libc::MS_NODEV;
            if libc::mount(
                c"tmpfs".as_ptr(),
                self.state.as_ptr(),
                c"tmpfs".as_ptr(),
                flags,
                self.options.as_ptr().cast(),
            ) != 0
            {
                return -1;
            }
            // Owner-writable first, so that read-only stand-in directories can be filled;
            // their own modes are set afterwards, children before parents.
            for entry in &self.entries {
                match &entry.content {
                    None => {
                        if libc::mkdir(entry.path.as_ptr(), 0o700) != 0 {
                            return -1;
                        }
                    }
                    Some(bytes) => {
                        let fd = libc::open(
                            entry.path.as_ptr(),
                            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                            0o600,
                        );
                        if fd < 0 {
                            return -1;
                        }
                        let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
                        libc::close(fd);
                        if written != bytes.len() as isize {
                            return -1;
                        }
                    }
                }
            }
            for entry in self.entries.iter().rev() {
                if libc::chmod(entry.path.as_ptr(), entry.mode) != 0 {
                    return -1;
                }
            }
        }
        0
    }

    /// In the sandbox's first process, after [`PrivateDisk::mount`]: sends a descriptor of the
    /// tmpfs's root over `channel` to the supervisor. Returns whether it went.
    ///
    /// # Safety
    /// Async-signal-safe; `channel` must be a connected unix socket this process owns.
    pub unsafe fn send(&self, channel: RawFd) -> bool {
        // SAFETY: open and sendmsg on a C string of `self` and on buffers on this stack that
        // outlive the calls.
        unsafe {
            let fd = libc::open(self.state.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC);
            if fd < 0 {
                return false;
            }
            let sent = crate::fdpass::send(channel, fd);
            libc::close(fd);
            sent
        }
    }
}

/// The tmpfs's root as the supervisor reaches it: through `/proc/self/fd/N` of `root`, its
/// descriptor.
fn through(root: &OwnedFd) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", root.as_raw_fd()))
}

/// After the run, puts the layer in the tmpfs `root` where the change report reads it: copied
/// into `--changes DIR`, where `cloister changes` finds it too ([`super::keep`]), or, when
/// nothing is kept, read in place ([`reroot`]).
pub fn hand_to_report(view: &mut crate::view::View, root: &OwnedFd) {
    if view.state.is_kept() {
        let upper = view.state.upper();
        if let Err(e) = super::keep::copy_tree(&through(root).join("upper"), &upper) {
            eprintln!(
                "cloister: cannot copy the changes out of the size-limited layer into {}: {e}",
                upper.display()
            );
        }
    } else {
        let state = view.state.dir().to_path_buf();
        reroot(&mut view.mounts, &state, root);
    }
}

/// Points the view's overlay mounts at the tmpfs `root` instead of the state directory `state`
/// on disk, for the change report.
fn reroot(mounts: &mut [kernel_host::config::Mount], state: &Path, root: &OwnedFd) {
    let through = through(root);
    for mount in mounts {
        if let kernel_host::config::MountKind::Overlay { upper, .. } = &mut mount.kind {
            if let Ok(rest) = Path::new(upper.as_str()).strip_prefix(state) {
                *upper = through.join(rest).to_string_lossy().into_owned();
            }
        }
    }
}

/// The line said once when the limit cannot hold (no mount namespace here).
pub const NOT_HELD: &str =
    "cloister: overlay_bytes does not hold here: the sandbox has no mount namespace of its own, so its private layer is on the host's disk";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_recorded_parents_first_with_modes_and_contents() {
        let dir = std::env::temp_dir().join(format!("cloister-disk-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("hidden/0")).unwrap();
        std::fs::create_dir_all(dir.join("upper")).unwrap();
        std::fs::write(dir.join("shared"), b"page").unwrap();
        std::fs::set_permissions(dir.join("hidden/0"), std::fs::Permissions::from_mode(0o555)).unwrap();
        let disk = PrivateDisk::new(&dir, 8 << 20).unwrap();
        let names: Vec<String> = disk
            .entries
            .iter()
            .map(|e| e.path.to_str().unwrap().strip_prefix(dir.to_str().unwrap()).unwrap().to_owned())
            .collect();
        std::fs::set_permissions(dir.join("hidden/0"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let at = |n: &str| names.iter().position(|x| x == n).unwrap();
        assert!(at("/hidden") < at("/hidden/0"), "{names:?}");
        assert_eq!(disk.entries[at("/hidden/0")].mode, 0o555);
        assert_eq!(disk.entries[at("/shared")].content.as_deref(), Some(&b"page"[..]));
        assert_eq!(disk.options.to_str().unwrap(), "size=8388608,mode=0700");
    }
}
