//! What one file-system entry is, in the terms the change report uses: its type, permission
//! bits, size, symlink target and content hash; and the two marks overlayfs leaves in an upper
//! layer mounted with `userxattr`: a whiteout (a character device 0/0, "deleted") and an
//! opaque directory (xattr `user.overlay.opaque` = `y`, "hides the lower directory's
//! entries").
//!
//! Read first: the kernel's Documentation/filesystems/overlayfs.rst ("whiteouts and opaque
//! directories", "userxattr"), lstat(2), getxattr(2).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::ffi::CString;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// The xattr that marks an opaque directory in a `userxattr` upper layer.
pub const OPAQUE_XATTR: &str = "user.overlay.opaque";

/// What kind of entry a path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A device, FIFO or socket.
    Other,
}

impl EntryType {
    /// The type of what `meta` (from `symlink_metadata`) describes.
    pub fn of(meta: &Metadata) -> EntryType {
        let t = meta.file_type();
        if t.is_file() {
            EntryType::File
        } else if t.is_dir() {
            EntryType::Dir
        } else if t.is_symlink() {
            EntryType::Symlink
        } else {
            EntryType::Other
        }
    }

    /// The word used in messages and in the manifest.
    pub fn word(self) -> &'static str {
        match self {
            EntryType::File => "file",
            EntryType::Dir => "dir",
            EntryType::Symlink => "symlink",
            EntryType::Other => "other",
        }
    }
}

/// Whether `meta` is an overlayfs whiteout: a character device with device number 0/0.
pub fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether the directory `path` is marked opaque.
pub fn is_opaque(path: &Path) -> bool {
    let (Ok(c_path), Ok(name)) = (CString::new(path.as_os_str().as_bytes()), CString::new(OPAQUE_XATTR))
    else {
        return false;
    };
    let mut value = [0u8; 4];
    // SAFETY: both strings are NUL-terminated and live for the call; `value` is writable for
    // its length, which is passed.
    let n =
        unsafe { libc::lgetxattr(c_path.as_ptr(), name.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
    n == 1 && value[0] == b'y'
}

/// The permission bits (with set-id and sticky bits) of `meta`.
pub fn perm(meta: &Metadata) -> u32 {
    meta.mode() & 0o7777
}

/// Permission bits as the manifest writes them: four octal digits, e.g. `0644`.
pub fn mode_string(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// Parses what [`mode_string`] wrote.
pub fn parse_mode(text: &str) -> Option<u32> {
    u32::from_str_radix(text, 8).ok().filter(|m| *m <= 0o7777)
}

/// The size the report gives an entry: a file's length, a symlink's target length, else 0.
pub fn size(meta: &Metadata) -> u64 {
    match EntryType::of(meta) {
        EntryType::File | EntryType::Symlink => meta.len(),
        EntryType::Dir | EntryType::Other => 0,
    }
}

/// Modification time in nanoseconds since 1970.
pub fn mtime_ns(meta: &Metadata) -> i64 {
    meta.mtime().saturating_mul(1_000_000_000).saturating_add(meta.mtime_nsec())
}

/// `symlink_metadata`, with "nothing there" as `None`: not found, or a parent on the way that
/// is not a directory (a path below a file the program replaced with a directory).
pub fn lstat(path: &Path) -> io::Result<Option<Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The target of the symlink at `path`, as text: bytes that are not UTF-8 escaped as in the
/// manifest's paths ([`super::manifest::escape`]), so that two targets differ as text exactly
/// when they differ.
pub fn target(path: &Path) -> io::Result<String> {
    Ok(super::manifest::escape(fs::read_link(path)?.as_os_str().as_bytes()))
}

/// Hex SHA-256 of what identifies an entry's content: a file's bytes, a symlink's target;
/// `None` for directories and special files.
pub fn content_hash(path: &Path, meta: &Metadata) -> io::Result<Option<String>> {
    let mut hasher = Sha256::new();
    match EntryType::of(meta) {
        EntryType::File => {
            let mut file = File::open(path)?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
        }
        EntryType::Symlink => hasher.update(fs::read_link(path)?.as_os_str().as_bytes()),
        EntryType::Dir | EntryType::Other => return Ok(None),
    }
    Ok(Some(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()))
}

/// Whether two regular files have the same bytes (read side by side, stopping at the first
/// difference).
pub fn same_content(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
