//! The host calls the view makes on its own behalf (lookups, copy-up, whiteouts), typed.
//! Paths are NUL-terminated host paths in kernel memory.

use crate::errno::{Errno, KResult};
use crate::task::Host;
use alloc::vec::Vec;
use syscalls::Sysno;

/// `S_IFMT` and the file types.
pub const S_IFMT: u32 = 0o170000;
/// Directory.
pub const S_IFDIR: u32 = 0o040000;
/// Regular file.
pub const S_IFREG: u32 = 0o100000;
/// Symbolic link.
pub const S_IFLNK: u32 = 0o120000;
/// Character device.
pub const S_IFCHR: u32 = 0o020000;
/// Block device.
pub const S_IFBLK: u32 = 0o060000;

const AT_FDCWD: u64 = crate::abi::AT_FDCWD as u64;
const AT_SYMLINK_NOFOLLOW: u64 = crate::abi::AT_SYMLINK_NOFOLLOW;
/// `AT_REMOVEDIR` for `unlinkat`.
pub const AT_REMOVEDIR: u64 = 0x200;
/// The opaque-directory mark of an overlayfs upper layer mounted with `userxattr`.
pub const OPAQUE_XATTR: &[u8] = b"user.overlay.opaque\0";

/// Whether an extended attribute's name is one of the view's own (the overlay's marks,
/// reproducible mode's stamps), which the program may neither see nor set and a copy-up
/// does not carry.
pub fn is_view_xattr(name: &[u8]) -> bool {
    name.starts_with(b"user.overlay.") || name.starts_with(b"user.cloister.")
}

/// A host `struct stat`, as the x86_64 kernel writes it. On the heap: a lookup may run on a
/// program's small signal stack, and a walk holds several.
#[derive(Clone)]
pub struct Stat {
    /// The raw bytes: what a `stat` call of the program receives.
    pub raw: alloc::boxed::Box<[u8; 144]>,
}

impl Stat {
    fn u64_at(&self, at: usize) -> u64 {
        u64::from_ne_bytes(self.raw[at..at + 8].try_into().unwrap_or([0; 8]))
    }
    fn u32_at(&self, at: usize) -> u32 {
        u32::from_ne_bytes(self.raw[at..at + 4].try_into().unwrap_or([0; 4]))
    }
    /// `st_dev`.
    pub fn dev(&self) -> u64 {
        self.u64_at(0)
    }
    /// `st_ino`.
    pub fn ino(&self) -> u64 {
        self.u64_at(8)
    }
    /// `st_nlink`.
    pub fn nlink(&self) -> u64 {
        self.u64_at(16)
    }
    /// `st_mode`.
    pub fn mode(&self) -> u32 {
        self.u32_at(24)
    }
    /// `st_uid`.
    pub fn uid(&self) -> u32 {
        self.u32_at(28)
    }
    /// `st_gid`.
    pub fn gid(&self) -> u32 {
        self.u32_at(32)
    }
    /// `st_rdev`.
    pub fn rdev(&self) -> u64 {
        self.u64_at(40)
    }
    /// `st_size`.
    pub fn size(&self) -> u64 {
        self.u64_at(48)
    }
    /// What moves whenever the file changes: its size and `st_ctim`, which a write, a
    /// `chmod`, a `chown` or a new link each set.
    pub fn change_stamp(&self) -> [u64; 3] {
        [self.size(), self.u64_at(104), self.u64_at(112)]
    }
    /// `st_atim` and `st_mtim`, as the `struct timespec[2]` `utimensat` takes.
    pub fn times(&self) -> [u64; 4] {
        [self.u64_at(72), self.u64_at(80), self.u64_at(88), self.u64_at(96)]
    }
    /// The file type bits.
    pub fn kind(&self) -> u32 {
        self.mode() & S_IFMT
    }
    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind() == S_IFDIR
    }
    /// Whether this is a regular file.
    pub fn is_regular(&self) -> bool {
        self.kind() == S_IFREG
    }
    /// Whether this is an overlay whiteout: a character device 0/0.
    pub fn is_whiteout(&self) -> bool {
        self.kind() == S_IFCHR && self.rdev() == 0
    }
}

/// The major and minor numbers of device number `dev`, as the kernel splits a `dev_t`.
pub fn dev_numbers(dev: u64) -> (u64, u64) {
    ((dev >> 8) & 0xfff | (dev >> 32) & 0xffff_f000, (dev & 0xff) | (dev >> 12) & 0xffff_ff00)
}

/// The device number of `major` and `minor`: [`dev_numbers`] undone.
pub fn makedev(major: u64, minor: u64) -> u64 {
    (major & 0xfff) << 8 | (major & 0xffff_f000) << 32 | (minor & 0xff) | (minor & 0xffff_ff00) << 12
}

/// Host calls, each returning the value or the host's errno.
#[derive(Clone, Copy)]
pub struct Hc<'a>(pub &'a dyn Host);

impl Hc<'_> {
    /// A raw call.
    pub fn call(&self, nr: Sysno, args: [u64; 6]) -> KResult<i64> {
        Errno::check(self.0.syscall(nr.id() as u32, args))
    }

    /// `lstat`.
    pub fn lstat(&self, path: &[u8]) -> KResult<Stat> {
        let mut st = Stat { raw: alloc::boxed::Box::new([0; 144]) };
        self.call(
            Sysno::newfstatat,
            [AT_FDCWD, path.as_ptr() as u64, st.raw.as_mut_ptr() as u64, AT_SYMLINK_NOFOLLOW, 0, 0],
        )?;
        Ok(st)
    }

    /// `stat`: [`Hc::lstat`] following a final symbolic link.
    pub fn stat(&self, path: &[u8]) -> KResult<Stat> {
        let mut st = Stat { raw: alloc::boxed::Box::new([0; 144]) };
        self.call(Sysno::newfstatat, [AT_FDCWD, path.as_ptr() as u64, st.raw.as_mut_ptr() as u64, 0, 0, 0])?;
        Ok(st)
    }

    /// Whether the caller may execute `path`: `faccessat(X_OK)`, which checks the real ids.
    pub fn may_execute(&self, path: &[u8]) -> KResult<()> {
        self.call(Sysno::faccessat, [AT_FDCWD, path.as_ptr() as u64, crate::abi::X_OK, 0, 0, 0]).map(drop)
    }

    /// The id of the mount `path` (relative to `dirfd`; empty: `dirfd` itself) is on, and
    /// whether it is that mount's root (`statx` with `STATX_MNT_ID`).
    pub fn mount_of(&self, dirfd: i64, path: &[u8]) -> KResult<(u64, bool)> {
        const AT_EMPTY_PATH: u64 = 0x1000;
        const STATX_MNT_ID: u64 = 0x1000;
        const STATX_ATTR_MOUNT_ROOT: u64 = 0x2000;
        let mut buf = [0u64; 32];
        let flags = AT_SYMLINK_NOFOLLOW | if path.first() == Some(&0) { AT_EMPTY_PATH } else { 0 };
        let args = [dirfd as u64, path.as_ptr() as u64, flags, STATX_MNT_ID, buf.as_mut_ptr() as u64, 0];
        self.call(Sysno::statx, args)?;
        // `stx_mask` (the low half of word 0) says whether the kernel filled `stx_mnt_id`
        // (word 18); `stx_attributes` is word 1, `stx_attributes_mask` word 7.
        if buf[0] & STATX_MNT_ID == 0 {
            return Err(Errno::ENOSYS);
        }
        let root = buf[7] & STATX_ATTR_MOUNT_ROOT != 0 && buf[1] & STATX_ATTR_MOUNT_ROOT != 0;
        Ok((buf[18], root))
    }

    /// `fstat`.
    pub fn fstat(&self, fd: i32) -> KResult<Stat> {
        let mut st = Stat { raw: alloc::boxed::Box::new([0; 144]) };
        self.call(Sysno::fstat, [fd as u64, st.raw.as_mut_ptr() as u64, 0, 0, 0, 0])?;
        Ok(st)
    }

    /// `readlink`, the whole target.
    ///
    /// Most targets are short (`/bin` → `usr/bin`): a small buffer first, and `PATH_MAX` only
    /// when the target may not have fit. (A page-sized buffer at every exec's walk left a page
    /// of the runtime's heap that the next blocks skipped, a page fault in every new image.)
    pub fn readlink(&self, path: &[u8]) -> KResult<Vec<u8>> {
        const SHORT: usize = 128;
        let read = |len: usize| -> KResult<Vec<u8>> {
            let mut buf = alloc::vec![0u8; len];
            let n = self.call(
                Sysno::readlinkat,
                [AT_FDCWD, path.as_ptr() as u64, buf.as_mut_ptr() as u64, len as u64, 0, 0],
            )?;
            buf.truncate(n as usize);
            Ok(buf)
        };
        let short = read(SHORT)?;
        if short.len() < SHORT {
            return Ok(short);
        }
        read(crate::abi::PATH_MAX)
    }

    /// `openat(AT_FDCWD, path, flags, mode)`.
    pub fn open(&self, path: &[u8], flags: u64, mode: u32) -> KResult<i32> {
        self.call(Sysno::openat, [AT_FDCWD, path.as_ptr() as u64, flags, u64::from(mode), 0, 0])
            .map(|fd| fd as i32)
    }

    /// `close`.
    pub fn close(&self, fd: i32) {
        let _ = self.call(Sysno::close, [fd as u64, 0, 0, 0, 0, 0]);
    }

    /// `mkdir`.
    pub fn mkdir(&self, path: &[u8], mode: u32) -> KResult<()> {
        self.call(Sysno::mkdirat, [AT_FDCWD, path.as_ptr() as u64, u64::from(mode), 0, 0, 0]).map(drop)
    }

    /// `mknod`.
    pub fn mknod(&self, path: &[u8], mode: u32, dev: u64) -> KResult<()> {
        self.call(Sysno::mknodat, [AT_FDCWD, path.as_ptr() as u64, u64::from(mode), dev, 0, 0]).map(drop)
    }

    /// `unlinkat(AT_FDCWD, path, flags)`.
    pub fn unlink(&self, path: &[u8], flags: u64) -> KResult<()> {
        self.call(Sysno::unlinkat, [AT_FDCWD, path.as_ptr() as u64, flags, 0, 0, 0]).map(drop)
    }

    /// `renameat2`.
    pub fn rename(&self, from: &[u8], to: &[u8], flags: u64) -> KResult<()> {
        self.call(Sysno::renameat2, [AT_FDCWD, from.as_ptr() as u64, AT_FDCWD, to.as_ptr() as u64, flags, 0])
            .map(drop)
    }

    /// `link` (`linkat` without following).
    pub fn link(&self, from: &[u8], to: &[u8]) -> KResult<()> {
        self.call(Sysno::linkat, [AT_FDCWD, from.as_ptr() as u64, AT_FDCWD, to.as_ptr() as u64, 0, 0])
            .map(drop)
    }

    /// `symlink`.
    pub fn symlink(&self, target: &[u8], path: &[u8]) -> KResult<()> {
        self.call(Sysno::symlinkat, [target.as_ptr() as u64, AT_FDCWD, path.as_ptr() as u64, 0, 0, 0])
            .map(drop)
    }

    /// Gives `path` (not following a link) the owner and times of `st`, and its mode unless
    /// it is a link. Best effort: an unprivileged sandbox cannot give away files.
    pub fn copy_attrs(&self, path: &[u8], st: &Stat) {
        let p = path.as_ptr() as u64;
        if st.kind() != S_IFLNK {
            let _ = self.call(Sysno::fchmodat, [AT_FDCWD, p, u64::from(st.mode() & 0o7777), 0, 0, 0]);
        }
        let _ = self.call(
            Sysno::fchownat,
            [AT_FDCWD, p, u64::from(st.uid()), u64::from(st.gid()), AT_SYMLINK_NOFOLLOW, 0],
        );
        let times = st.times();
        let _ = self.call(Sysno::utimensat, [AT_FDCWD, p, times.as_ptr() as u64, AT_SYMLINK_NOFOLLOW, 0, 0]);
    }

    /// Whether directory `path` carries the opaque mark.
    pub fn is_opaque(&self, path: &[u8]) -> bool {
        let mut v = [0u8; 4];
        let r = self.call(
            Sysno::lgetxattr,
            [path.as_ptr() as u64, OPAQUE_XATTR.as_ptr() as u64, v.as_mut_ptr() as u64, v.len() as u64, 0, 0],
        );
        matches!(r, Ok(1)) && v[0] == b'y'
    }

    /// Marks directory `path` opaque.
    pub fn set_opaque(&self, path: &[u8]) -> KResult<()> {
        self.call(
            Sysno::lsetxattr,
            [path.as_ptr() as u64, OPAQUE_XATTR.as_ptr() as u64, b"y".as_ptr() as u64, 1, 0, 0],
        )
        .map(drop)
    }

    /// Every entry of directory `path` but `.` and `..`.
    pub fn list(&self, path: &[u8]) -> KResult<Vec<crate::dirs::Entry>> {
        const O_DIRECTORY: u64 = 0o200000;
        let fd = self.open(path, O_DIRECTORY | crate::abi::O_CLOEXEC, 0)?;
        let mut entries = Vec::new();
        let mut chunk = alloc::vec![0u8; 32 * 1024];
        let result = loop {
            match self
                .call(Sysno::getdents64, [fd as u64, chunk.as_mut_ptr() as u64, chunk.len() as u64, 0, 0, 0])
            {
                Ok(0) => break Ok(()),
                Ok(n) => crate::dirs::parse(&chunk[..n as usize], &mut entries),
                Err(e) => break Err(e),
            }
        };
        self.close(fd);
        result?;
        entries.retain(|e| e.name != b"." && e.name != b"..");
        Ok(entries)
    }
}
