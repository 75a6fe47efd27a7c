//! The change report end to end, without a sandbox: an upper tree made by hand (files,
//! symlinks, whiteouts, an opaque directory, a nested overlay, a tmpfs) over a lower tree made
//! by hand, scanned, written as a manifest, shown and applied to the lower tree.
//!
//! Whiteouts need mknod(2) of a character device (root, or CAP_MKNOD) and opaque directories a
//! file system with user xattrs; where either is refused the test says so and skips.

use super::apply;
use super::manifest::{Change, Kind, Manifest};
use super::report::{manifest, summary};
use super::scan::{count, scan};
use super::show;
use kernel_host::config::{Mount, MountKind};
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A fresh directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("cloister-changes-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(fs::canonicalize(dir).unwrap())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn write(path: &Path, text: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mkdir(path: &Path, mode: u32) {
    fs::create_dir_all(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn c(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

/// A whiteout at `path`; false when the host refuses to make one.
fn whiteout(path: &Path) -> bool {
    // SAFETY: the path is a valid C string; mknod only creates a file system node.
    unsafe { libc::mknod(c(path).as_ptr(), libc::S_IFCHR | 0o600, 0) == 0 }
}

/// Marks the directory `path` opaque; false when the file system refuses user xattrs.
fn opaque(path: &Path) -> bool {
    let name = CString::new(super::entry::OPAQUE_XATTR).unwrap();
    // SAFETY: the strings are NUL-terminated and the value is one readable byte.
    unsafe { libc::setxattr(c(path).as_ptr(), name.as_ptr(), b"y".as_ptr().cast(), 1, 0) == 0 }
}

/// A path of the scratch tree as a mount's host string.
fn text(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

/// An overlay at `guest` of `lower` under `upper`.
fn overlay(guest: &str, lower: &Path, upper: &Path) -> Mount {
    Mount { guest: guest.into(), kind: MountKind::Overlay { lower: text(lower), upper: text(upper) } }
}

/// The fixture: `T/lower` (and `T/lower2`, shown at `/mnt/n`) and the upper tree in
/// `T/state/upper`, as the kernel would leave them. `None` when whiteouts or opaque
/// directories cannot be made here.
fn fixture(t: &Path) -> Option<Vec<Mount>> {
    let (lower, lower2, upper) = (t.join("lower"), t.join("lower2"), t.join("state/upper"));
    mkdir(&lower, 0o755);
    write(&lower.join("keep.txt"), "same\n", 0o644);
    write(&lower.join("edit.txt"), "old\nline 2\n", 0o644);
    write(&lower.join("mode.sh"), "echo\n", 0o644);
    std::os::unix::fs::symlink("a", lower.join("link")).unwrap();
    write(&lower.join("gone.txt"), "bye\n", 0o600);
    write(&lower.join("gonedir/x"), "x", 0o644);
    write(&lower.join("gonedir/sub/y"), "y", 0o644);
    write(&lower.join("opaque/old1"), "1", 0o644);
    write(&lower.join("opaque/old2"), "2", 0o644);
    write(&lower.join("f2d"), "file", 0o644);
    write(&lower.join("d2f/a"), "a", 0o644);
    mkdir(&lower.join("sub"), 0o750);
    mkdir(&lower.join("tmp"), 0o1777);
    write(&lower2.join("a"), "two", 0o644);

    mkdir(&upper, 0o755);
    write(&upper.join("keep.txt"), "same\n", 0o644);
    write(&upper.join("edit.txt"), "new\nline 2\n", 0o644);
    write(&upper.join("mode.sh"), "echo\n", 0o755);
    std::os::unix::fs::symlink("b", upper.join("link")).unwrap();
    if !whiteout(&upper.join("gone.txt")) || !whiteout(&upper.join("gonedir")) {
        eprintln!("skipped: cannot make a whiteout (mknod of a character device 0/0) here");
        return None;
    }
    write(&upper.join("opaque/old1"), "1", 0o644);
    write(&upper.join("opaque/new"), "n", 0o644);
    fs::set_permissions(upper.join("opaque"), fs::Permissions::from_mode(0o755)).unwrap();
    if !opaque(&upper.join("opaque")) {
        eprintln!("skipped: this file system does not take user xattrs (opaque directories)");
        return None;
    }
    write(&upper.join("f2d/inner"), "in", 0o644);
    fs::set_permissions(upper.join("f2d"), fs::Permissions::from_mode(0o755)).unwrap();
    write(&upper.join("d2f"), "now a file", 0o644);
    write(&upper.join("sub/new.txt"), "created\n", 0o640);
    fs::set_permissions(upper.join("sub"), fs::Permissions::from_mode(0o750)).unwrap();
    // The tmpfs is not the overlay's: nothing under its mount point is reported.
    write(&upper.join("tmp/stray"), "not mine", 0o644);
    // The nested overlay's upper, inside the upper tree of `/`: `mnt/` only holds its mount point.
    write(&upper.join("mnt/n/a"), "changed", 0o644);

    Some(vec![
        overlay("/", &lower, &upper),
        overlay("/mnt/n", &lower2, &upper.join("mnt/n")),
        Mount { guest: "/tmp".into(), kind: MountKind::Tmpfs { host: text(&t.join("tmpfs")) } },
    ])
}

fn listing(changes: &[Change]) -> Vec<String> {
    changes.iter().map(|c| format!("{} {} {}", c.path, c.kind.word(), c.ty.word())).collect()
}

const EXPECTED: [&str; 17] = [
    "/d2f modified file",
    "/d2f/a deleted file",
    "/edit.txt modified file",
    "/f2d modified dir",
    "/f2d/inner created file",
    "/gone.txt deleted file",
    "/gonedir deleted dir",
    "/gonedir/sub deleted dir",
    "/gonedir/sub/y deleted file",
    "/gonedir/x deleted file",
    "/link modified symlink",
    "/mnt/n/a modified file",
    "/mode.sh modified file",
    "/opaque modified dir",
    "/opaque/new created file",
    "/opaque/old2 deleted file",
    "/sub/new.txt created file",
];

/// Scans the fixture and keeps it as `T/state` would be kept.
fn keep(t: &Path, mounts: &[Mount]) -> Vec<Change> {
    let changes = scan(mounts, true).unwrap();
    let text = serde_json::to_string_pretty(&manifest(mounts, changes.clone())).unwrap();
    fs::write(t.join("state/manifest.json"), text).unwrap();
    changes
}

#[test]
fn every_kind_of_change_is_classified() {
    let t = Scratch::new("classify");
    let Some(mounts) = fixture(&t.0) else { return };
    let changes = scan(&mounts, false).unwrap();
    assert_eq!(listing(&changes), EXPECTED);
    assert!(changes.iter().all(|c| c.host.is_none()), "no host records unless asked");
    assert_eq!(
        summary(Manifest::counts(&changes), None),
        "3 created, 7 modified, 7 deleted \u{2014} discarded"
    );
    assert_eq!(count(&mounts).unwrap(), [3, 7, 7], "counting without records says the same");
    let by_path = |p: &str| changes.iter().find(|c| c.path == p).unwrap();
    assert_eq!(by_path("/link").target.as_deref(), Some("b"));
    assert_eq!((by_path("/sub/new.txt").size, by_path("/sub/new.txt").mode.as_str()), (8, "0640"));
    assert_eq!(by_path("/gone.txt").mode, "0600", "a deletion describes the host entry");
}

#[test]
fn host_records_describe_the_lower_entries() {
    let t = Scratch::new("records");
    let Some(mounts) = fixture(&t.0) else { return };
    let changes = keep(&t.0, &mounts);
    let edit = changes.iter().find(|c| c.path == "/edit.txt").unwrap();
    let host = edit.host.as_ref().unwrap();
    assert_eq!((host.size, host.mode.as_str()), (11, "0644"));
    // printf 'old\nline 2\n' | sha256sum
    assert_eq!(
        host.sha256.as_deref(),
        Some("d061b502d64cb5296d6294cdb83a8cafe2923bbef5df63123f6443b989a6d697")
    );
    let link = changes.iter().find(|c| c.path == "/link").unwrap().host.as_ref().unwrap();
    assert_eq!((link.size, link.sha256.as_ref().map(String::len)), (1, Some(64)));
    let created = changes.iter().find(|c| c.path == "/sub/new.txt").unwrap();
    assert!(created.host.is_none());
    let loaded = Manifest::load(&t.0.join("state")).unwrap();
    assert_eq!(loaded.changes, changes);
    assert_eq!(loaded.lower_path("/mnt/n/a"), Some(t.0.join("lower2/a")));
}

#[test]
fn show_prints_a_tree_and_diffs() {
    let t = Scratch::new("show");
    let Some(mounts) = fixture(&t.0) else { return };
    keep(&t.0, &mounts);
    let text = show::render(&t.0.join("state"), true).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "/");
    assert!(
        lines.iter().any(|l| l.starts_with("  edit.txt") && l.contains("modified  file     11 B")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("  link") && l.ends_with("modified  symlink  -> b")),
        "{text}"
    );
    assert!(lines.iter().any(|l| l.starts_with("  mnt/") && l.trim() == "mnt/"), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("    n/")), "{text}");
    assert!(lines.iter().any(|l| l.contains("mode.sh") && l.ends_with("(mode 0644 -> 0755)")), "{text}");
    assert!(text.contains("3 created, 7 modified, 7 deleted\n"), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("  d2f") && l.ends_with("(was a dir)")), "{text}");
    assert!(
        text.contains("--- a/edit.txt\n+++ b/edit.txt\n@@ -1,2 +1,2 @@\n-old\n+new\n line 2\n"),
        "{text}"
    );
    assert!(text.contains("--- /dev/null\n+++ b/sub/new.txt\n@@ -0,0 +1 @@\n+created\n"), "{text}");
    assert!(text.contains("--- a/gone.txt\n+++ /dev/null\n"), "{text}");
    assert!(!text.contains("keep.txt"), "an unchanged copy-up is no change\n{text}");
}

#[test]
fn apply_makes_the_lower_tree_what_the_program_saw() {
    let t = Scratch::new("apply");
    let Some(mounts) = fixture(&t.0) else { return };
    keep(&t.0, &mounts);
    let state = t.0.join("state");
    let lower = t.0.join("lower");
    assert_eq!(apply::run(&state, true, false), 0, "dry run");
    assert!(lower.join("gone.txt").exists(), "a dry run changed the host");
    assert_eq!(apply::run(&state, false, false), 0);
    let read = |p: &str| fs::read_to_string(lower.join(p)).unwrap();
    let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(read("edit.txt"), "new\nline 2\n");
    assert_eq!(mode(&lower.join("mode.sh")), 0o755);
    assert_eq!(fs::read_link(lower.join("link")).unwrap(), Path::new("b"));
    assert!(!lower.join("gone.txt").exists() && !lower.join("gonedir").exists());
    assert!(lower.join("opaque/old1").exists() && !lower.join("opaque/old2").exists());
    assert_eq!(read("opaque/new"), "n");
    assert_eq!(read("f2d/inner"), "in");
    assert_eq!(read("d2f"), "now a file");
    assert_eq!((read("sub/new.txt"), mode(&lower.join("sub/new.txt"))), ("created\n".into(), 0o640));
    assert_eq!(fs::read_to_string(t.0.join("lower2/a")).unwrap(), "changed");
    assert_eq!(read("keep.txt"), "same\n");
    assert!(!lower.join("tmp/stray").exists(), "a tmpfs entry reached the host");
    // The host now matches the program's view: only the opaque mark is left to report.
    assert_eq!(listing(&scan(&mounts, false).unwrap()), ["/opaque modified dir"]);
}

#[test]
fn apply_refuses_what_changed_on_the_host_unless_forced() {
    let t = Scratch::new("refuse");
    let Some(mounts) = fixture(&t.0) else { return };
    keep(&t.0, &mounts);
    let (state, lower) = (t.0.join("state"), t.0.join("lower"));
    write(&lower.join("edit.txt"), "edited on the host meanwhile\n", 0o644);
    write(&lower.join("sub/new.txt"), "also here now", 0o644);
    write(&lower.join("gonedir/extra"), "new on the host", 0o644);
    let manifest = Manifest::load(&state).unwrap();
    let refused: Vec<(String, String)> = apply::check(&manifest, &state);
    let paths: Vec<&str> = refused.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/edit.txt", "/gonedir", "/sub/new.txt"], "{refused:?}");
    assert!(refused[0].1.ends_with("edit.txt changed on the host since the run"), "{refused:?}");
    assert!(refused[1].1.contains("has new entries on the host (/gonedir/extra)"), "{refused:?}");
    assert!(refused[2].1.ends_with("new.txt now exists on the host (a file)"), "{refused:?}");
    assert_eq!(apply::run(&state, false, false), 1);
    assert!(lower.join("gone.txt").exists(), "something was applied after a refusal");
    assert_eq!(apply::run(&state, false, true), 0, "--force");
    assert_eq!(fs::read_to_string(lower.join("edit.txt")).unwrap(), "new\nline 2\n");
    assert!(!lower.join("gonedir").exists());
    assert_eq!(fs::read_to_string(lower.join("sub/new.txt")).unwrap(), "created\n");
}

#[test]
fn set_id_bits_are_not_applied() {
    let t = Scratch::new("setuid");
    let (lower, upper) = (t.0.join("lower"), t.0.join("state/upper"));
    mkdir(&lower, 0o755);
    write(&upper.join("suid"), "#!/bin/sh\n", 0o4755);
    let mounts = [overlay("/", &lower, &upper)];
    let changes = keep(&t.0, &mounts);
    assert_eq!(changes[0].mode, "4755", "the manifest says what the program made");
    assert_eq!(apply::run(&t.0.join("state"), false, false), 0);
    assert_eq!(fs::metadata(lower.join("suid")).unwrap().permissions().mode() & 0o7777, 0o755);
}

/// A tree the host does not have is counted from its listings as a scan would report it:
/// every entry created, whiteouts in it and another mount's place left out.
#[test]
fn counting_a_new_tree_agrees_with_the_scan() {
    let t = Scratch::new("count");
    let (lower, upper) = (t.0.join("lower"), t.0.join("state/upper"));
    mkdir(&lower, 0o755);
    write(&upper.join("new/a/b/file"), "f", 0o644);
    write(&upper.join("new/top"), "t", 0o644);
    std::os::unix::fs::symlink("top", upper.join("new/link")).unwrap();
    mkdir(&upper.join("new/empty"), 0o700);
    mkdir(&upper.join("new/mnt/point"), 0o755);
    if !whiteout(&upper.join("new/a/gone")) {
        eprintln!("skipped: cannot make a whiteout (mknod of a character device 0/0) here");
        return;
    }
    let mounts = [
        overlay("/", &lower, &upper),
        Mount { guest: "/new/mnt/point".into(), kind: MountKind::Tmpfs { host: text(&t.0.join("tmpfs")) } },
    ];
    let changes = scan(&mounts, false).unwrap();
    assert_eq!(
        listing(&changes),
        // `/new` and `/new/mnt` hold the tmpfs's mount point: the view made them for it.
        [
            "/new/a created dir",
            "/new/a/b created dir",
            "/new/a/b/file created file",
            "/new/empty created dir",
            "/new/link created symlink",
            "/new/top created file",
        ]
    );
    assert_eq!(count(&mounts).unwrap(), Manifest::counts(&changes));
}

#[test]
fn summary_says_where_the_changes_are() {
    let change = |kind| Change {
        path: "/x".into(),
        kind,
        ty: super::entry::EntryType::File,
        size: 0,
        mode: "0644".into(),
        target: None,
        host: None,
    };
    let changes = [change(Kind::Created), change(Kind::Created), change(Kind::Deleted)];
    assert_eq!(
        summary(Manifest::counts(&changes), Some(Path::new("/c"))),
        "2 created, 0 modified, 1 deleted \u{2014} kept in /c"
    );
    assert_eq!(summary([0; 3], None), "0 created, 0 modified, 0 deleted \u{2014} discarded");
}
