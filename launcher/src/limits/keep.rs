//! `--changes DIR` with `overlay_bytes`: the private layer lived in a tmpfs of the sandbox's
//! mount namespace (see [`super::disk`]); after the run its upper tree is copied into DIR, so
//! that the report, the manifest and `cloister changes show/apply` find it where they always
//! do. The copy is bounded by the limit: the tmpfs held at most `overlay_bytes`.
//!
//! The copy keeps what the change report and `changes apply` read: file contents (holes stay
//! holes, so a sparse file costs the disk what it cost the tmpfs), directories, symbolic links,
//! whiteouts (character devices 0/0), FIFOs, hard links within the tree, modes, owners,
//! access and modification times, and `user.*` extended attributes (the opaque-directory
//! marker among them). Sockets are skipped: a bound socket's name means nothing after the run.
//!
//! Read first: lseek(2) (`SEEK_DATA`, `SEEK_HOLE`), copy_file_range(2), xattr(7).

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Copies the tree `from` (the tmpfs's upper tree) into `to`, which holds at most the same
/// directories (the layout the launcher made before the run).
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let mut links = HashMap::new();
    copy_dir_contents(from, to, &mut links)?;
    finish_entry(from, to, &fs::symlink_metadata(from)?)
}

fn copy_dir_contents(
    from: &Path,
    to: &Path,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = fs::symlink_metadata(&src)?;
        let kind = meta.file_type();
        if !kind.is_dir() && meta.nlink() > 1 {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                fs::hard_link(first, &dst)?;
                continue;
            }
            links.insert((meta.dev(), meta.ino()), dst.clone());
        }
        if kind.is_dir() {
            // The launcher laid out the overlays' directories in DIR before the run, as in the
            // tmpfs: those are merged into.
            match fs::DirBuilder::new().mode(0o700).create(&dst) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dst.is_dir() => {}
                other => other?,
            }
            copy_dir_contents(&src, &dst, links)?;
        } else if kind.is_file() {
            copy_file(&src, &dst)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
        } else if kind.is_char_device() || kind.is_fifo() {
            // Whiteouts (0/0) and FIFOs; the program can make no other device.
            mknod(&dst, meta.mode(), meta.rdev())?;
        } else {
            continue;
        }
        finish_entry(&src, &dst, &meta)?;
    }
    Ok(())
}

/// Copies a regular file's bytes, extent by extent: the holes between them stay holes.
fn copy_file(from: &Path, to: &Path) -> io::Result<()> {
    let src = File::open(from)?;
    let dst = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(to)?;
    let len = src.metadata()?.len();
    let mut at: i64 = 0;
    while (at as u64) < len {
        // SAFETY: lseek on a descriptor this function owns; no memory is touched.
        let data = unsafe { libc::lseek(src.as_raw_fd(), at, libc::SEEK_DATA) };
        if data < 0 {
            // ENXIO: only a hole is left.
            break;
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(src.as_raw_fd(), data, libc::SEEK_HOLE) };
        let end = if hole < 0 { len as i64 } else { hole };
        copy_range(&src, &dst, data as u64, end as u64)?;
        at = end;
    }
    dst.set_len(len)
}

/// Copies bytes `[start, end)` of `src` to the same place in `dst`: in the kernel where it
/// can (`copy_file_range`, which refuses some pairs of filesystems, tmpfs to ext4 among them),
/// through a buffer otherwise.
fn copy_range(src: &File, dst: &File, start: u64, end: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let (mut off_in, mut off_out) = (start as i64, start as i64);
    while (off_in as u64) < end {
        // SAFETY: both descriptors are open and the offsets are this function's own.
        let n = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                &mut off_in,
                dst.as_raw_fd(),
                &mut off_out,
                (end - off_in as u64) as usize,
                0,
            )
        };
        match n {
            0 => return Ok(()),
            n if n > 0 => continue,
            _ => {}
        }
        let e = io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::EXDEV | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)) {
            return Err(e);
        }
        let mut buf = vec![0u8; 256 * 1024];
        let mut at = off_in as u64;
        while at < end {
            let want = buf.len().min((end - at) as usize);
            let got = src.read_at(&mut buf[..want], at)?;
            if got == 0 {
                break;
            }
            dst.write_all_at(&buf[..got], at)?;
            at += got as u64;
        }
        return Ok(());
    }
    Ok(())
}

fn cstring(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn mknod(path: &Path, mode: u32, rdev: u64) -> io::Result<()> {
    let c = cstring(path)?;
    // SAFETY: a NUL-terminated path; mknod reads only it.
    if unsafe { libc::mknod(c.as_ptr(), mode, rdev) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Gives `to` the extended attributes, owner, mode and times of `from` (`meta`), in that
/// order: a read-only mode last but one, so that nothing before it is refused, and the times
/// last, which every other change would move.
fn finish_entry(from: &Path, to: &Path, meta: &fs::Metadata) -> io::Result<()> {
    let (src, dst) = (cstring(from)?, cstring(to)?);
    copy_xattrs(&src, &dst)?;
    // SAFETY: NUL-terminated paths; these calls read only them.
    unsafe {
        // Only root can give files away; anyone else's copies stay theirs, as the tmpfs's were.
        libc::lchown(dst.as_ptr(), meta.uid(), meta.gid());
        if !meta.file_type().is_symlink() && libc::chmod(dst.as_ptr(), meta.mode() & 0o7777) != 0 {
            return Err(io::Error::last_os_error());
        }
        let times = [
            libc::timespec { tv_sec: meta.atime(), tv_nsec: meta.atime_nsec() },
            libc::timespec { tv_sec: meta.mtime(), tv_nsec: meta.mtime_nsec() },
        ];
        if libc::utimensat(libc::AT_FDCWD, dst.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Copies the `user.*` extended attributes (the only ones a sandboxed program can set).
fn copy_xattrs(src: &CString, dst: &CString) -> io::Result<()> {
    let mut names = vec![0u8; 4096];
    // SAFETY: `names` is writable for its length, which is passed.
    let n = unsafe { libc::llistxattr(src.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return Ok(());
    }
    for name in names[..n as usize].split(|&b| b == 0).filter(|n| n.starts_with(b"user.")) {
        let Ok(cname) = CString::new(name) else { continue };
        let mut value = vec![0u8; 64 * 1024];
        // SAFETY: NUL-terminated strings, and `value` is writable for its length.
        let len =
            unsafe { libc::lgetxattr(src.as_ptr(), cname.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
        if len < 0 {
            continue;
        }
        // SAFETY: as above; `value` holds `len` bytes.
        if unsafe { libc::lsetxattr(dst.as_ptr(), cname.as_ptr(), value.as_ptr().cast(), len as usize, 0) }
            != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_tree_is_copied_with_holes_links_whiteouts_and_modes() {
        let base = std::env::temp_dir().join(format!("cloister-keep-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let (from, to) = (base.join("from"), base.join("to"));
        fs::create_dir_all(from.join("d/e")).unwrap();
        fs::create_dir(&to).unwrap();
        fs::write(from.join("d/a"), b"hello").unwrap();
        fs::hard_link(from.join("d/a"), from.join("d/e/b")).unwrap();
        std::os::unix::fs::symlink("../a", from.join("d/e/link")).unwrap();
        let sparse = File::create(from.join("sparse")).unwrap();
        sparse.set_len(64 << 20).unwrap();
        std::os::unix::fs::FileExt::write_at(&sparse, b"tail", (64 << 20) - 4).unwrap();
        fs::set_permissions(from.join("d/a"), fs::Permissions::from_mode(0o444)).unwrap();
        fs::set_permissions(from.join("d/e"), fs::Permissions::from_mode(0o500)).unwrap();
        let whiteout = mknod(&from.join("gone"), libc::S_IFCHR | 0o600, 0).is_ok();

        copy_tree(&from, &to).unwrap();

        assert_eq!(fs::read(to.join("d/e/b")).unwrap(), b"hello");
        let (a, b) = (fs::metadata(to.join("d/a")).unwrap(), fs::metadata(to.join("d/e/b")).unwrap());
        assert_eq!((a.ino(), a.mode() & 0o777), (b.ino(), 0o444));
        assert_eq!(fs::metadata(to.join("d/e")).unwrap().mode() & 0o777, 0o500);
        assert_eq!(fs::read_link(to.join("d/e/link")).unwrap(), Path::new("../a"));
        let s = fs::metadata(to.join("sparse")).unwrap();
        assert_eq!(s.len(), 64 << 20);
        assert!(s.blocks() * 512 < 1 << 20, "the hole was filled: {} blocks", s.blocks());
        if whiteout {
            let w = fs::symlink_metadata(to.join("gone")).unwrap();
            assert!(w.file_type().is_char_device() && w.rdev() == 0);
        }
        fs::set_permissions(to.join("d/e"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(from.join("d/e"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::remove_dir_all(&base).unwrap();
    }
}
