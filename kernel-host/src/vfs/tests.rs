//! The view against real directories: a lower tree and an upper layer in a directory of the
//! test's own, with the host's calls made for real.

extern crate std;

use super::host::Hc;
use super::{Place, Vfs};
use crate::config::{Mount, MountKind};
use crate::errno::Errno;
use crate::shared::Shared;
use crate::testing::RealHost;
use alloc::string::String;
use alloc::vec::Vec;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

/// A lower tree, an empty upper layer, and a view of them at `/` with `/tmp` private.
struct Fixture {
    dir: PathBuf,
    vfs: Vfs,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(std::format!("cloister-vfs-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for d in ["lower/etc/app", "lower/usr/lib", "lower/home/u/secret", "upper", "tmp"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        fs::write(dir.join("lower/etc/app/conf"), "lower conf\n").unwrap();
        fs::write(dir.join("lower/etc/passwd"), "root\n").unwrap();
        fs::write(dir.join("lower/home/u/secret/key"), "k").unwrap();
        symlink("usr/lib", dir.join("lower/lib")).unwrap();
        symlink("/etc/app", dir.join("lower/usr/lib/app-link")).unwrap();
        symlink("loop2", dir.join("lower/loop1")).unwrap();
        symlink("loop1", dir.join("lower/loop2")).unwrap();
        let p = |s: &str| String::from(dir.join(s).to_str().unwrap());
        let mounts = [
            Mount { guest: "/".into(), kind: MountKind::Overlay { lower: p("lower"), upper: p("upper") } },
            Mount { guest: "/tmp".into(), kind: MountKind::Tmpfs { host: p("tmp") } },
            Mount { guest: "/home/u/secret".into(), kind: MountKind::Hidden { host: p("tmp") } },
        ];
        let vfs = Vfs::new(crate::vfs::mount::MountTable::new(&mounts), Shared::private()).unwrap();
        Fixture { dir, vfs }
    }

    fn h(&self) -> Hc<'static> {
        Hc(&RealHost)
    }

    fn walk(&self, path: &str) -> Result<super::Node, Errno> {
        self.vfs.walk(self.h(), b"/", path.as_bytes())
    }

    fn host(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn names(&self, path: &str) -> Vec<String> {
        let node = self.walk(path).unwrap();
        let list = self.vfs.listing(self.h(), &node).unwrap();
        list.into_iter().map(|e| String::from_utf8(e.name).unwrap()).collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn symlinks_resolve_inside_the_view() {
    let f = Fixture::new("links");
    // `/lib` is a relative link, `app-link` an absolute one: both stay in the lower tree.
    let n = f.walk("/lib/app-link/conf").unwrap();
    assert_eq!(n.guest, b"/etc/app/conf");
    assert_eq!(n.place, Place::Lower);
    assert_eq!(f.walk("/../../../etc/passwd").unwrap().guest, b"/etc/passwd");
    assert_eq!(f.walk("/usr/lib/../../etc/passwd").unwrap().guest, b"/etc/passwd");
    assert_eq!(f.walk("/loop1").err(), Some(Errno::ELOOP));
    assert_eq!(f.walk("/etc/passwd/x").err(), Some(Errno::ENOTDIR));
    assert_eq!(f.walk("/nope/x").err(), Some(Errno::ENOENT));
    assert_eq!(f.walk("/nope").unwrap().place, Place::Missing);
}

#[test]
fn a_private_tree_inside_a_kernel_tree_is_reached() {
    let dir = std::env::temp_dir().join(std::format!("cloister-vfs-shm-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("seg"), "x").unwrap();
    let mounts = [
        Mount {
            guest: "/".into(),
            kind: MountKind::Overlay { lower: "/".into(), upper: "/nonexistent-upper".into() },
        },
        Mount { guest: "/dev".into(), kind: MountKind::ReadWrite { host: "/dev".into() } },
        Mount {
            guest: "/dev/shm".into(),
            kind: MountKind::Tmpfs { host: String::from(dir.to_str().unwrap()) },
        },
    ];
    let vfs = Vfs::new(crate::vfs::mount::MountTable::new(&mounts), Shared::private()).unwrap();
    let node = vfs.walk(Hc(&RealHost), b"/", b"/dev/shm/seg").unwrap();
    assert_eq!(node.place, Place::Direct);
    assert_eq!(vfs.walk(Hc(&RealHost), b"/", b"/dev/null").unwrap().place, Place::Passthrough);
    assert_eq!(vfs.walk(Hc(&RealHost), b"/", b"/dev/../dev/shm/seg").unwrap().place, Place::Direct);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn hidden_and_private_mounts_shadow_the_lower_tree() {
    let f = Fixture::new("mounts");
    assert_eq!(f.walk("/home/u/secret/key").unwrap().place, Place::Missing);
    fs::write(f.host("tmp/scratch"), "x").unwrap();
    assert_eq!(f.walk("/tmp/scratch").unwrap().place, Place::Direct);
    assert!(f.names("/").contains(&String::from("tmp")));
}

#[test]
fn copy_up_keeps_the_lower_file_and_whiteouts_hide_it() {
    let f = Fixture::new("copyup");
    let h = f.h();
    let conf = f.walk("/etc/app/conf").unwrap();
    let up = f.vfs.copy_up(h, &conf, true).unwrap();
    assert_eq!(fs::read_to_string(f.host("upper/etc/app/conf")).unwrap(), "lower conf\n");
    assert_eq!(super::path::strip_nul(&up), f.host("upper/etc/app/conf").to_str().unwrap().as_bytes());
    fs::write(f.host("upper/etc/app/conf"), "changed\n").unwrap();
    assert_eq!(fs::read_to_string(f.host("lower/etc/app/conf")).unwrap(), "lower conf\n");
    assert_eq!(f.walk("/etc/app/conf").unwrap().place, Place::Upper);

    let node = f.walk("/etc/passwd").unwrap();
    f.vfs.remove(h, &node).unwrap();
    assert_eq!(f.walk("/etc/passwd").unwrap().place, Place::Missing);
    assert!(f.host("lower/etc/passwd").exists());
    let names = f.names("/etc");
    assert_eq!(names, ["app"]);
}

#[test]
fn a_directory_made_over_a_deleted_one_is_opaque() {
    let f = Fixture::new("opaque");
    let h = f.h();
    let conf = f.walk("/etc/app/conf").unwrap();
    f.vfs.remove(h, &conf).unwrap();
    let app = f.walk("/etc/app").unwrap();
    assert!(f.vfs.listing(h, &app).unwrap().is_empty());
    f.vfs.remove(h, &app).unwrap();
    let again = f.walk("/etc/app").unwrap();
    assert!(again.whiteout);
    assert!(f.vfs.prepare_create(h, &again).unwrap());
    h.mkdir(&again.host, 0o755).unwrap();
    f.vfs.make_opaque(h, &again.host).unwrap();
    assert_eq!(f.walk("/etc/app/conf").unwrap().place, Place::Missing);
    assert!(f.names("/etc/app").is_empty());
}

#[test]
fn renaming_a_lower_file_moves_it_up_and_leaves_a_whiteout() {
    let f = Fixture::new("rename");
    let h = f.h();
    let from = f.walk("/etc/app/conf").unwrap();
    let to = f.vfs.walk_with(h, b"/", b"/etc/conf.moved", false).unwrap();
    f.vfs.rename(h, &from, &to, 0).unwrap();
    assert_eq!(f.walk("/etc/app/conf").unwrap().place, Place::Missing);
    assert_eq!(f.walk("/etc/conf.moved").unwrap().place, Place::Upper);
    assert_eq!(fs::read_to_string(f.host("upper/etc/conf.moved")).unwrap(), "lower conf\n");
    // A directory with lower contents moves whole; the lower one stays as it was.
    fs::write(f.host("lower/etc/app/other"), "o\n").unwrap();
    let dir = f.walk("/etc/app").unwrap();
    let other = f.vfs.walk_with(h, b"/", b"/etc/app2", false).unwrap();
    f.vfs.rename(h, &dir, &other, 0).unwrap();
    assert_eq!(f.walk("/etc/app").unwrap().place, Place::Missing);
    assert_eq!(f.names("/etc/app2"), ["other"]);
    assert_eq!(fs::read_to_string(f.host("upper/etc/app2/other")).unwrap(), "o\n");
    assert!(f.host("lower/etc/app/other").exists());
    let inside = f.vfs.walk_with(h, b"/", b"/etc/app2/sub", false).unwrap();
    let moved = f.walk("/etc/app2").unwrap();
    assert_eq!(f.vfs.rename(h, &moved, &inside, 0).err(), Some(Errno::EINVAL));
}

#[test]
fn host_paths_map_back_to_guest_paths() {
    let f = Fixture::new("reverse");
    let lower = f.host("lower/etc/passwd");
    assert_eq!(f.vfs.guest_of_host(lower.to_str().unwrap().as_bytes()).as_deref(), Some(&b"/etc/passwd"[..]));
    let upper = f.host("upper/etc");
    assert_eq!(f.vfs.guest_of_host(upper.to_str().unwrap().as_bytes()).as_deref(), Some(&b"/etc"[..]));
}

#[test]
fn copy_up_keeps_holes_and_attributes() {
    use std::os::unix::fs::MetadataExt;
    let f = Fixture::new("sparse");
    let file = fs::File::create(f.host("lower/etc/sparse")).unwrap();
    file.set_len(64 << 20).unwrap();
    std::os::unix::fs::FileExt::write_at(&file, b"middle", 32 << 20).unwrap();
    drop(file);
    let name = std::ffi::CString::new(f.host("lower/etc/sparse").to_str().unwrap()).unwrap();
    // SAFETY: valid C strings and a 4-byte value.
    let set = unsafe { libc_setxattr(name.as_ptr(), c"user.colour".as_ptr(), b"blue".as_ptr(), 4, 0) };
    let node = f.walk("/etc/sparse").unwrap();
    f.vfs.copy_up(f.h(), &node, true).unwrap();
    let up = fs::metadata(f.host("upper/etc/sparse")).unwrap();
    assert_eq!(up.len(), 64 << 20);
    assert!(up.blocks() * 512 < 1 << 20, "the copy is not sparse: {} blocks", up.blocks());
    let bytes = fs::read(f.host("upper/etc/sparse")).unwrap();
    assert_eq!(&bytes[32 << 20..(32 << 20) + 6], b"middle");
    if set == 0 {
        let mut v = [0u8; 8];
        let up_name = std::ffi::CString::new(f.host("upper/etc/sparse").to_str().unwrap()).unwrap();
        // SAFETY: valid C strings and an 8-byte buffer.
        let n = unsafe { libc_getxattr(up_name.as_ptr(), c"user.colour".as_ptr(), v.as_mut_ptr(), 8) };
        assert_eq!(&v[..n.max(0) as usize], b"blue");
    }
}

unsafe extern "C" {
    #[link_name = "setxattr"]
    fn libc_setxattr(
        path: *const core::ffi::c_char,
        name: *const core::ffi::c_char,
        value: *const u8,
        size: usize,
        flags: i32,
    ) -> i32;
    #[link_name = "getxattr"]
    fn libc_getxattr(
        path: *const core::ffi::c_char,
        name: *const core::ffi::c_char,
        value: *mut u8,
        size: usize,
    ) -> isize;
}

#[test]
fn an_exchanged_directory_hides_the_lower_one_it_replaces() {
    let f = Fixture::new("exchange");
    let h = f.h();
    fs::create_dir_all(f.host("upper/newdir")).unwrap();
    fs::write(f.host("upper/newdir/n"), "n").unwrap();
    let low = f.walk("/etc/app").unwrap();
    let new = f.walk("/newdir").unwrap();
    f.vfs.rename(h, &new, &low, super::overlay::RENAME_EXCHANGE).unwrap();
    assert_eq!(f.names("/etc/app"), ["n"]);
    assert_eq!(f.names("/newdir"), ["conf"]);
}
