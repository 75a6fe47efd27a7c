//! Error numbers returned to the program: part of emulating Linux, never a failure of cloister.

/// A Linux error number, returned to the program as `-errno`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// Operation not permitted.
    pub const EPERM: Errno = Errno(1);
    /// No such file or directory.
    pub const ENOENT: Errno = Errno(2);
    /// No such process.
    pub const ESRCH: Errno = Errno(3);
    /// Interrupted by a signal's handler.
    pub const EINTR: Errno = Errno(4);
    /// Try again (a resource is exhausted for now).
    pub const EAGAIN: Errno = Errno(11);
    /// Too many open files in the process.
    pub const EMFILE: Errno = Errno(24);
    /// Exec format error.
    pub const ENOEXEC: Errno = Errno(8);
    /// Bad file descriptor.
    pub const EBADF: Errno = Errno(9);
    /// Out of memory.
    pub const ENOMEM: Errno = Errno(12);
    /// Permission denied.
    pub const EACCES: Errno = Errno(13);
    /// Bad address: the program passed a pointer it cannot read or write.
    pub const EFAULT: Errno = Errno(14);
    /// Invalid argument.
    pub const EINVAL: Errno = Errno(22);
    /// Result too large.
    pub const E2BIG: Errno = Errno(7);
    /// File name too long.
    pub const ENAMETOOLONG: Errno = Errno(36);
    /// Function not implemented.
    pub const ENOSYS: Errno = Errno(38);
    /// Too many symbolic links, or `O_NOFOLLOW` on a link.
    pub const ELOOP: Errno = Errno(40);
    /// File exists.
    pub const EEXIST: Errno = Errno(17);
    /// Cross-device link: a rename the view cannot do in one step.
    pub const EXDEV: Errno = Errno(18);
    /// Not a directory.
    pub const ENOTDIR: Errno = Errno(20);
    /// Is a directory.
    pub const EISDIR: Errno = Errno(21);
    /// Device or resource busy (a mount point).
    pub const EBUSY: Errno = Errno(16);
    /// Read-only file system.
    pub const EROFS: Errno = Errno(30);
    /// Result out of range (a buffer too small).
    pub const ERANGE: Errno = Errno(34);
    /// Directory not empty.
    pub const ENOTEMPTY: Errno = Errno(39);
    /// No such attribute.
    pub const ENODATA: Errno = Errno(61);

    /// The value a system call returns for this error.
    pub const fn ret(self) -> i64 {
        -(self.0 as i64)
    }

    /// Reads a raw return value: `Some(errno)` when it encodes an error.
    pub fn from_ret(ret: i64) -> Option<Errno> {
        if (-4095..0).contains(&ret) {
            Some(Errno(-ret as i32))
        } else {
            None
        }
    }

    /// A raw host result as a value or an errno.
    pub fn check(ret: i64) -> Result<i64, Errno> {
        Errno::from_ret(ret).map_or(Ok(ret), Err)
    }

    /// The symbolic name (`"ENOENT"`), if known.
    pub fn name(self) -> Option<&'static str> {
        syscalls::Errno::new(self.0).name()
    }
}

/// The usual return type of a kernel operation: a value, or an errno for the program.
pub type KResult<T> = Result<T, Errno>;
