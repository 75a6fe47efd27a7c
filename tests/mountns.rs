//! The mount namespace under the filesystem view: what stops a program that skips the view
//! where Landlock does not. `gate_meta` jumps into the runtime's own `syscall` (which the
//! redirect filter lets through) to change a host file's mode, owner, times and extended
//! attributes, make a directory on the host, `stat` a hidden file, connect to a hidden unix
//! socket and reach the supervisor's root through `/proc/PPID/root`. Under the default
//! (`untrusted`) policy every one must fail and the host file must be as it was, checked from
//! outside; under `--policy default` (no view, no floor) the same program succeeds, so these
//! tests test the floor. Then what must keep working in the read-only namespace: device
//! writes, terminals, POSIX shared memory, the overlay and its report, `rw` mounts (from their
//! own working directory too), reproducible mode, and an unprivileged user (in a user
//! namespace).
//!
//! Cloister-only: natively there is no runtime to jump into and no view. Where the host
//! refuses mount namespaces, cloister says so in one line and these tests are skipped with a
//! note on their output.
//!
//! Under `--backend ptrace` there is no runtime in the process and so no gate: `gate_meta` says
//! `gate=none` ([`assert_gate`]) and makes the same calls with its own `syscall`, which the
//! tracer stops and the view serves. The changes then land in the private overlay (`done`),
//! the hidden key is not there (`ENOENT`), and the host file, checked from outside, is unchanged
//! all the same.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use cloister_tests::{
    assert_gate, backend_args, cloister, cloister_bin, compile_c, inproc, temp_dir, Mode, Outcome, PYTHON3,
    SYSTEM_PATH,
};

/// How cloister's line begins when the host refuses the sandbox a mount namespace.
const NO_MOUNT_NAMESPACE: &str = "cloister: no mount namespace on this host";

/// The secret the hidden file holds (its size must not show through the gate).
const SECRET: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\n";

/// Failures a refused change may report: the read-only mount, Landlock, or the kernel's
/// permission checks.
const REFUSED: [&str; 3] = ["EROFS", "EACCES", "EPERM"];

/// `cloister-rt` beside the `cloister` the tests run.
fn runtime() -> PathBuf {
    cloister_bin().with_file_name("cloister-rt")
}

fn s(path: &Path) -> &str {
    path.to_str().expect("scratch paths are UTF-8")
}

/// True (and a note on the test's output) when cloister ran without a mount namespace.
fn skipped(out: &Outcome, test: &str) -> bool {
    let refused = out.stderr.contains(NO_MOUNT_NAMESPACE);
    if refused {
        eprintln!("{test}: skipped: this host refuses the sandbox a mount namespace\n{out}");
    }
    refused
}

/// What `gate_meta` works on: a host file to change, a host directory to make a directory in,
/// and a home whose `.ssh` (hidden by the untrusted policy) holds a key and a listening agent
/// socket.
struct Scene {
    dir: PathBuf,
    file: PathBuf,
    home: PathBuf,
    key: PathBuf,
    socket: PathBuf,
    listener: UnixListener,
}

impl Scene {
    fn new(label: &str) -> Scene {
        let root = temp_dir(label);
        let dir = root.join("host");
        // Short names: the socket's path must fit in a sockaddr_un (108 bytes), from a checkout
        // anywhere.
        let home = root.join("h");
        fs::create_dir_all(&dir).unwrap();
        fs::create_dir_all(home.join(".ssh")).unwrap();
        let file = dir.join("file");
        fs::write(&file, "data\n").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_836_800);
        fs::File::options().write(true).open(&file).unwrap().set_modified(old).unwrap();
        let key = home.join(".ssh/id_ed25519");
        fs::write(&key, SECRET).unwrap();
        let socket = home.join(".ssh/s");
        let listener = UnixListener::bind(&socket).unwrap();
        listener.set_nonblocking(true).unwrap();
        Scene { dir, file, home, key, socket, listener }
    }

    /// Mode, owner, group, modification time and the `user.cloister` attribute of the host
    /// file, as the host sees it.
    fn file_state(&self) -> (u32, u32, u32, i64, bool) {
        let meta = fs::metadata(&self.file).unwrap();
        (meta.mode() & 0o7777, meta.uid(), meta.gid(), meta.mtime(), has_xattr(&self.file, "user.cloister"))
    }

    /// `gate_meta RUNTIME FILE KEY DIR SOCKET UID GID` under `cloister run [options]`.
    fn gate_meta(&self, options: &[&str]) -> Outcome {
        self.gate_meta_with(runtime(), options)
    }

    fn gate_meta_with(&self, rt: PathBuf, options: &[&str]) -> Outcome {
        let exe = compile_c("gate_meta", &[]);
        let (uid, gid) = chown_target();
        let mut cmd = Mode::Cloister.command(&exe);
        for option in options {
            cmd = cmd.cloister_arg(option);
        }
        cmd.args([s(&rt), s(&self.file), s(&self.key), s(&self.dir), s(&self.socket)])
            .args([uid.to_string(), gid.to_string()])
            .env("HOME", &self.home)
            .output()
    }

    /// Whether a connection reached the agent socket.
    fn agent_was_reached(&self) -> bool {
        self.listener.accept().is_ok()
    }
}

/// The owner and group `gate_meta` asks for: another user's when the tests run as root (so
/// that a change would show), else the caller's own (which only root could change).
fn chown_target() -> (u32, u32) {
    // SAFETY: geteuid and getegid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if uid == 0 {
        (12345, 12345)
    } else {
        (uid, gid)
    }
}

fn has_xattr(path: &Path, name: &str) -> bool {
    let path = std::ffi::CString::new(s(path)).unwrap();
    let name = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid C strings; a null buffer of size 0 asks for the value's size only.
    unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) >= 0 }
}

/// Asserts that every change `gate_meta` tried was refused (inproc: by the floor, past the view)
/// or made in the private overlay (ptrace: by the view, which serves the raw calls there), and
/// that the hidden key and socket stayed out of reach. The callers check the host file.
#[track_caller]
fn assert_refused(out: &Outcome, scene: &Scene) {
    for change in ["chmod", "chown", "utime", "setxattr", "mkdir", "proc_root_chmod", "proc_entry_chmod"] {
        let got = out.field(change);
        // The kernel's own entries: refused by the read-only /proc (inproc) or by the view,
        // which takes no change in the kernel's trees (ptrace).
        if inproc() || change == "proc_entry_chmod" {
            assert!(REFUSED.contains(&got), "{change} through the gate was not refused ({got})\n{out}");
        } else if change != "proc_root_chmod" {
            assert_eq!(got, "done", "{change}: not the view's overlay answering the raw call\n{out}");
        }
    }
    let size = out.field("hidden_size");
    assert_ne!(size, SECRET.len().to_string(), "stat through the gate shows the hidden key's size\n{out}");
    let hidden: &[&str] = if inproc() { &["0", "ENOENT", "EACCES"] } else { &["ENOENT"] };
    assert!(hidden.contains(&size), "unexpected hidden_size={size}\n{out}");
    assert_ne!(out.field("connect"), "done", "the hidden agent socket was reached\n{out}");
    assert!(!scene.agent_was_reached(), "the hidden agent socket accepted a connection\n{out}");
    assert!(!scene.dir.join("gate-meta-dir").exists(), "a directory reached the host\n{out}");
}

#[test]
fn jumping_into_the_runtime_changes_no_host_file_and_reaches_no_hidden_one() {
    let scene = Scene::new("gate-meta");
    let before = scene.file_state();
    let out = scene.gate_meta(&[]);
    out.success();
    assert_gate(&out);
    if skipped(&out, "jumping_into_the_runtime_changes_no_host_file_and_reaches_no_hidden_one") {
        return;
    }
    assert_refused(&out, &scene);
    // The mount namespace answers before Landlock, which does not confine these at all.
    for change in ["chmod", "chown", "utime", "setxattr"] {
        if inproc() {
            assert_eq!(out.field(change), "EROFS", "{change}\n{out}");
        }
    }
    assert_eq!(scene.file_state(), before, "the host file changed\n{out}");
}

#[test]
fn without_a_view_the_same_jump_changes_the_host_file() {
    // The control: no view, no floor; the same program changes the file and sees the key, so
    // the tests above test the floor and not the program.
    let scene = Scene::new("gate-meta-default");
    let before = scene.file_state();
    let out = scene.gate_meta(&["--policy", "default"]);
    out.success();
    assert_gate(&out);
    for change in ["chmod", "utime", "setxattr", "mkdir", "connect"] {
        assert_eq!(out.field(change), "done", "{change}\n{out}");
    }
    assert_eq!(out.field("hidden_size"), SECRET.len().to_string(), "\n{out}");
    assert!(scene.agent_was_reached(), "\n{out}");
    let after = scene.file_state();
    assert_ne!(after, before, "\n{out}");
    assert_eq!((after.0, after.3), (0o600, 0), "\n{out}");
}

#[test]
fn a_hidden_socket_is_an_empty_file_even_through_the_gate() {
    // A socket hidden by itself (like /run/docker.sock), not by its directory: a stand-in file
    // lies over it, and a connection is refused instead of reaching the listener.
    let scene = Scene::new("gate-meta-socket");
    let socket = scene.home.join("daemon.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    listener.set_nonblocking(true).unwrap();
    let exe = compile_c("gate_meta", &[]);
    let out = Mode::Cloister
        .command(&exe)
        .cloister_arg("--hide")
        .cloister_arg(&socket)
        .args([s(&runtime()), s(&scene.file), s(&socket), s(&scene.dir), s(&socket), "0", "0"])
        .env("HOME", &scene.home)
        .output();
    out.success();
    assert_gate(&out);
    if skipped(&out, "a_hidden_socket_is_an_empty_file_even_through_the_gate") {
        return;
    }
    assert_eq!(out.field("connect"), "ECONNREFUSED", "\n{out}");
    assert_eq!(out.field("hidden_size"), "0", "the stand-in is an empty file\n{out}");
    assert!(listener.accept().is_err(), "the hidden socket accepted a connection\n{out}");
}

#[test]
fn reproducible_mode_composes_with_the_mount_namespace() {
    // Pid namespace (a fresh /proc, the program is pid 2) and the view's read-only mounts
    // together; /proc/1/root is then init's, inside the sandbox.
    let scene = Scene::new("gate-meta-repro");
    let before = scene.file_state();
    let out = scene.gate_meta(&["--reproducible"]);
    out.success();
    assert_gate(&out);
    if skipped(&out, "reproducible_mode_composes_with_the_mount_namespace") {
        return;
    }
    assert_refused(&out, &scene);
    assert_eq!(scene.file_state(), before, "the host file changed\n{out}");
    let pid = Mode::Cloister.command("sh").args(["-c", "echo $$"]).cloister_arg("--reproducible").output();
    pid.success();
    assert_eq!(pid.stdout, "2\n", "not pid 2 of a pid namespace\n{pid}");
}

#[test]
fn devices_and_redirected_streams_stay_writable() {
    // /dev keeps its read-write mount; a read-only one would not stop device writes anyway,
    // but /dev/stdout reopens the file the runner gave as standard output, on the host's mount.
    let out = Mode::Cloister
        .command("sh")
        .args(["-c", "echo x > /dev/null && echo null-ok; echo to-stdout >> /dev/stdout; echo to-stderr >> /dev/stderr"])
        .output();
    out.success();
    assert_eq!(out.lines(), ["null-ok", "to-stdout"], "\n{out}");
    assert!(out.stderr.contains("to-stderr"), "\n{out}");
}

#[test]
fn a_terminal_can_be_opened() {
    let Some(script) = ["/usr/bin/script", "/bin/script"].into_iter().find(|p| Path::new(p).exists()) else {
        eprintln!("a_terminal_can_be_opened: skipped: util-linux's script is not installed");
        return;
    };
    let out = Mode::Cloister.command(script).args(["-qc", "tty; echo in-pty", "/dev/null"]).output();
    out.success();
    assert!(out.stdout.contains("/dev/pts/"), "no terminal from /dev/ptmx\n{out}");
    assert!(out.stdout.contains("in-pty"), "\n{out}");
}

#[test]
fn posix_shared_memory_works() {
    // multiprocessing.shared_memory: shm_open in /dev/shm (the view's private tmpfs in the
    // state directory), ftruncate, mmap, a second mapping by name, unlink.
    let code = "from multiprocessing import shared_memory as s\n\
                m = s.SharedMemory(create=True, size=4096)\n\
                m.buf[:5] = b'hello'\n\
                n = s.SharedMemory(m.name)\n\
                print(bytes(n.buf[:5]).decode())\n\
                n.close(); m.close(); m.unlink()\n";
    let out = Mode::Cloister.command(PYTHON3).args(["-c", code]).output();
    out.success();
    assert_eq!(out.stdout, "hello\n", "\n{out}");
}

#[test]
fn the_overlay_takes_writes_and_reports_them() {
    // The state directory is bound writable again inside the read-only namespace: the overlay's
    // upper layer takes the write, the report counts it, and --changes keeps it.
    let root = temp_dir("mountns-overlay");
    let host = root.join("tree");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("old.txt"), "old\n").unwrap();
    let kept = root.join("kept");
    let script = format!("echo new > {0}/new.txt && echo more >> {0}/old.txt && cat {0}/old.txt", s(&host));
    let out = Mode::Cloister
        .command("sh")
        .args(["-c", &script])
        .cloister_arg("--changes")
        .cloister_arg(&kept)
        .output();
    out.success();
    assert_eq!(out.stdout, "old\nmore\n", "\n{out}");
    assert!(out.stderr.contains("1 created, 1 modified, 0 deleted"), "no summary line\n{out}");
    assert!(!host.join("new.txt").exists(), "the write reached the host\n{out}");
    assert_eq!(fs::read_to_string(host.join("old.txt")).unwrap(), "old\n", "\n{out}");
    let upper = kept.join("upper").join(host.strip_prefix("/").unwrap());
    assert_eq!(fs::read_to_string(upper.join("new.txt")).unwrap(), "new\n", "\n{out}");
}

#[test]
fn an_rw_mount_is_writable_even_from_its_own_working_directory() {
    // The program starts in the rw mount. Its working directory must be the writable bind,
    // not the read-only copy of the mount below it: a relative write through the gate (no view
    // to resolve it) lands on the host.
    let dir = temp_dir("mountns-rw");
    fs::write(dir.join("readme"), "r").unwrap();
    let exe = compile_c("gate_escape", &[]);
    let out = Mode::Cloister
        .command(&exe)
        .cloister_arg("--rw")
        .cloister_arg(&dir)
        .current_dir(&dir)
        .args([s(&runtime()), "written-by-gate", "readme"])
        .output();
    out.success();
    assert_gate(&out);
    assert_eq!(out.field("write"), "opened", "\n{out}");
    assert!(dir.join("written-by-gate").exists(), "\n{out}");
    let via_view = Mode::Cloister
        .command("sh")
        .args(["-c", "echo x > through-view && chmod 600 through-view"])
        .cloister_arg("--rw")
        .cloister_arg(&dir)
        .current_dir(&dir)
        .output();
    via_view.success();
    let meta = fs::metadata(dir.join("through-view")).unwrap_or_else(|e| panic!("{e}\n{via_view}"));
    assert_eq!(meta.mode() & 0o777, 0o600, "\n{via_view}");
}

#[test]
fn an_unprivileged_user_gets_a_user_namespace_with_the_same_floor() {
    // SAFETY: geteuid cannot fail and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    let setpriv = Path::new("/usr/bin/setpriv");
    if !root || !setpriv.exists() {
        eprintln!("an_unprivileged_user_...: skipped: needs root (to become nobody) and setpriv");
        return;
    }
    const NOBODY: u32 = 65534;
    let scene = Scene::new("gate-meta-nobody");
    for path in [&scene.dir, &scene.file, &scene.home, &scene.home.join(".ssh"), &scene.key, &scene.socket] {
        std::os::unix::fs::lchown(path, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let before = scene.file_state();
    let exe = compile_c("gate_meta", &[]);
    // A checkout under a private home (/root is 0700) is out of nobody's reach.
    let reachable =
        format!("test -x '{}' && test -x '{}' && test -r '{}'", s(&cloister_bin()), s(&exe), s(&runtime()));
    let probe =
        Mode::Native.command(setpriv).args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c"]);
    if probe.arg(&reachable).output().code() != 0 {
        eprintln!("an_unprivileged_user_...: skipped: nobody cannot reach this checkout's binaries");
        return;
    }
    let out = Mode::Native
        .command(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", s(&cloister_bin()), "run"])
        .args(backend_args())
        .arg("--")
        .args([s(&exe), s(&runtime()), s(&scene.file), s(&scene.key), s(&scene.dir), s(&scene.socket)])
        .args(["65534", "65534"])
        .env("HOME", &scene.home)
        .env("PATH", SYSTEM_PATH)
        .current_dir(&scene.home)
        .output();
    out.success();
    assert_gate(&out);
    if skipped(&out, "an_unprivileged_user_gets_a_user_namespace_with_the_same_floor") {
        return;
    }
    assert_refused(&out, &scene);
    for change in ["chmod", "chown", "utime", "setxattr"] {
        if inproc() {
            assert_eq!(out.field(change), "EROFS", "{change}\n{out}");
        }
    }
    assert_eq!(scene.file_state(), before, "the host file changed\n{out}");
    // The view still works for the user: a write lands in the overlay.
    let view = Mode::Native
        .command(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", s(&cloister_bin()), "run"])
        .args(backend_args())
        .args(["--", "sh", "-c", &format!("echo x > {}/new && cat {0}/new && id -u", s(&scene.dir))])
        .env("HOME", &scene.home)
        .current_dir(&scene.home)
        .output();
    view.success();
    assert_eq!(view.lines(), ["x", "65534"], "\n{view}");
    assert!(!scene.dir.join("new").exists(), "\n{view}");
}

#[test]
fn a_host_without_mount_namespaces_gets_one_line_and_landlock_alone() {
    // `no_ns mnt` refuses clone and unshare with CLONE_NEWNS, as a container without
    // CAP_SYS_ADMIN would: cloister says so once, and the view runs on Landlock alone, which
    // refuses the new directory but not the chmod (what the namespace is for). Under ptrace the
    // raw calls cannot skip the view, which makes both in the overlay: the host is unchanged.
    let wrapper = compile_c("no_ns", &[]);
    let scene = Scene::new("gate-meta-no-ns");
    let exe = compile_c("gate_meta", &[]);
    let (uid, gid) = chown_target();
    let before = scene.file_state();
    let out = Mode::Native
        .command(&wrapper)
        .args(["mnt", s(&cloister_bin()), "run"])
        .args(backend_args())
        .args(["--", s(&exe), s(&runtime()), s(&scene.file), s(&scene.key)])
        .args([s(&scene.dir), s(&scene.socket), &uid.to_string(), &gid.to_string()])
        .env("HOME", &scene.home)
        .output();
    out.success();
    assert_gate(&out);
    let said = |what: &str| out.stderr.lines().filter(|l| l.starts_with(what)).count();
    assert_eq!(said(NO_MOUNT_NAMESPACE), 1, "\n{out}");
    if inproc() {
        assert_eq!(out.field("mkdir"), "EACCES", "Landlock still refuses it\n{out}");
    } else {
        assert_eq!(out.field("mkdir"), "done", "not the view's overlay answering\n{out}");
        assert_eq!(scene.file_state(), before, "the raw chmod got past the view\n{out}");
    }
    assert!(!scene.dir.join("gate-meta-dir").exists(), "a directory reached the host\n{out}");
    assert_eq!(out.field("chmod"), "done", "\n{out}");

    // Reproducible mode asks for a pid namespace as well: one line for each.
    let repro = Mode::Native
        .command(&wrapper)
        .args(["mnt", s(&cloister_bin()), "run", "--reproducible", "--", "sh", "-c", "echo ran"])
        .output();
    repro.success();
    assert_eq!(repro.stdout, "ran\n", "\n{repro}");
    let said = |what: &str| repro.stderr.lines().filter(|l| l.starts_with(what)).count();
    assert_eq!(said(NO_MOUNT_NAMESPACE), 1, "\n{repro}");
    assert_eq!(said("cloister: reproducible mode without a pid namespace"), 1, "\n{repro}");
}

#[test]
fn doctor_reports_the_mount_namespace() {
    let out = cloister(&["doctor"]);
    out.success();
    let line = out
        .lines()
        .into_iter()
        .find(|l| l.starts_with("mount namespace"))
        .unwrap_or_else(|| panic!("no mount namespace line\n{out}"))
        .to_owned();
    let run = Mode::Cloister.command("true").output();
    run.success();
    let refused = run.stderr.contains(NO_MOUNT_NAMESPACE);
    // What the doctor says and what a run does agree.
    let says_yes = line["mount namespace".len()..].trim_start().starts_with("yes");
    assert_eq!(says_yes, !refused, "{line}\n{run}");
    if says_yes {
        assert!(line.contains("read-only"), "{line}");
    }
}
