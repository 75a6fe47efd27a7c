//! Changes through a descriptor (`fchmod`, `fchown`, `futimens`) and what the sandbox's own
//! files are, under the filesystem view. A descriptor can name a host file that is on a
//! writable mount even beneath the view's read-only mount namespace (one opened before the
//! namespace, such as a redirected standard stream; a `--ro` mount or an overlay's lower tree
//! inside a `--rw` mount's host path), so these calls stay redirected: a lower file's change
//! lands on its upper copy, a read-only mount's is refused, and the host file never changes.
//! These came from a review of a change that stopped redirecting them (reverted), and of one
//! that let the first process to ask decide for the whole sandbox which mount is the state
//! directory (reverted): a process in a nested mount namespace sees another.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cloister_tests::{backend_args, cloister_bin, gcc_build, temp_dir, write_file, PYTHON3};

fn s(path: &Path) -> &str {
    path.to_str().expect("scratch paths are UTF-8")
}

/// `cloister run ARGS -- python3 -c SCRIPT` in `dir` with standard input from `stdin`;
/// returns its standard output, failing the test unless it exits 0.
fn python(dir: &Path, args: &[&str], script: &str, stdin: Stdio) -> String {
    let out = Command::new(cloister_bin())
        .arg("run")
        .args(backend_args())
        .args(args)
        .args(["--", PYTHON3, "-c", script])
        .current_dir(dir)
        .stdin(stdin)
        .output()
        .expect("cannot start cloister");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A scratch directory `name` holding `sub/f` (mode 0644): the directory, `sub` and the file.
fn host_file_in_subdirectory(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = temp_dir(name);
    let sub = dir.join("sub");
    fs::create_dir_all(&sub).unwrap();
    let file = sub.join("f");
    write_file(&file, "host\n", 0o644);
    (dir, sub, file)
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// A host file given as the program's standard input: `fchmod(0)` changes an upper copy, never
/// the host's file.
#[test]
fn fchmod_of_a_redirected_standard_stream_leaves_the_host_file() {
    let dir = temp_dir("fd-stdin");
    let file = dir.join("input");
    write_file(&file, "host\n", 0o644);
    let script = "import os\n\
        try:\n\
        \x20   os.fchmod(0, 0o4777)\n\
        except OSError as e:\n\
        \x20   print(e)\n";
    python(&dir, &[], script, Stdio::from(fs::File::open(&file).unwrap()));
    assert_eq!(mode_of(&file), 0o644, "the sandbox changed the mode of a host file (its standard input)");
}

/// A `--ro` mount of a host directory inside a `--rw` mount's host path: read-only by path,
/// and must be through a descriptor too.
#[test]
fn fchmod_through_a_read_only_mount_inside_a_writable_one_is_refused() {
    let (dir, sub, file) = host_file_in_subdirectory("fd-ro-in-rw");
    let script = format!(
        "import os\n\
        fd = os.open('{}', os.O_RDONLY)\n\
        try:\n\
        \x20   os.fchmod(fd, 0o600)\n\
        \x20   print('changed')\n\
        except OSError as e:\n\
        \x20   print(e.strerror)\n",
        s(&file)
    );
    let out = python(&dir, &["--rw", s(&dir), "--ro", s(&sub)], &script, Stdio::null());
    assert_eq!(mode_of(&file), 0o644, "a --ro mount's host file changed mode\n{out}");
    assert_eq!(out, "Read-only file system\n");
}

/// An overlay whose lower tree lies inside a `--rw` mount's host path: a change through a
/// descriptor of a lower file must change the upper copy, not the host's file.
#[test]
fn fchmod_of_an_overlays_lower_file_inside_a_writable_mount_copies_up() {
    let (dir, sub, file) = host_file_in_subdirectory("fd-overlay-in-rw");
    let script = "import os\n\
        fd = os.open('/ov/f', os.O_RDONLY)\n\
        os.fchmod(fd, 0o600)\n\
        print(oct(os.stat('/ov/f').st_mode & 0o777))\n";
    let out =
        python(&dir, &["--rw", s(&dir), "--overlay", &format!("{}:/ov", s(&sub))], script, Stdio::null());
    assert_eq!(out, "0o600\n");
    assert_eq!(mode_of(&file), 0o644, "an overlay's lower file changed mode on the host");
}

/// A static program (no loader to `fstat` first) whose child, in a user and mount namespace of
/// its own, is the first to ask for the state directory's mount; then the parent copies a
/// lower file up and compares `fstat` of its descriptor with `stat` of its path.
const POISON_C: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    pid_t p = fork();
    if (p == 0) {
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) perror("unshare");
        int fd = open("made_in_child", O_WRONLY | O_CREAT | O_EXCL, 0644);
        struct stat st;
        fstat(fd, &st);
        _exit(0);
    }
    waitpid(p, 0, 0);
    int fd = open("lower", O_WRONLY | O_APPEND);
    if (fd < 0 || write(fd, "x\n", 2) != 2) { perror("lower"); return 1; }
    struct stat a, b;
    fstat(fd, &a);
    stat("lower", &b);
    puts(a.st_dev == b.st_dev && a.st_ino == b.st_ino ? "same" : "different");
    return 0;
}
"#;

/// One process in a nested mount namespace must not change, for the whole sandbox, which
/// descriptors are the sandbox's own (`fstat` of a copied-up file shows the lower identity).
#[test]
fn a_nested_mount_namespace_does_not_poison_the_state_mount() {
    let dir = temp_dir("fd-nested-namespace");
    let source = dir.join("poison.c");
    fs::write(&source, POISON_C).unwrap();
    let exe = dir.join("poison");
    gcc_build(&source, &exe, &["-static"]);
    write_file(&dir.join("lower"), "lower\n", 0o644);
    let out = Command::new(cloister_bin())
        .arg("run")
        .args(backend_args())
        .arg("--")
        .arg(&exe)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("cannot start cloister");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout, "same\n", "stderr: {}", String::from_utf8_lossy(&out.stderr));
}

/// A host file opened read-only and changed through its descriptor: the upper copy changes
/// (as overlayfs copies up), the host file does not; the sandbox's own new file changes as
/// natively.
#[test]
fn a_change_through_a_descriptor_copies_a_host_file_up() {
    let dir = temp_dir("fd-copy-up");
    write_file(&dir.join("host"), "host\n", 0o644);
    let script = "import os\n\
        fd = os.open('host', os.O_RDONLY)\n\
        os.fchmod(fd, 0o600)\n\
        print('host:', oct(os.stat('host').st_mode & 0o777))\n\
        fd = os.open('own', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)\n\
        os.fchmod(fd, 0o640)\n\
        os.fchown(fd, os.getuid(), os.getgid())\n\
        os.utime(fd, (1, 2))\n\
        st = os.stat('own')\n\
        print('own:', oct(st.st_mode & 0o777), int(st.st_mtime))\n";
    let out = python(&dir, &[], script, Stdio::null());
    assert_eq!(out, "host: 0o600\nown: 0o640 2\n");
    assert_eq!(mode_of(&dir.join("host")), 0o644, "the host file changed mode");
    assert!(!dir.join("own").exists(), "the sandbox's file reached the host");
}
