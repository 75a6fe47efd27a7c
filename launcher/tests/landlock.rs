//! The Landlock floor on the real kernel: each test prepares a floor in the test process, forks
//! a child that enforces it and then tries raw system calls (open, truncate, mkdir, link,
//! execve, ioctl, kill, connect, bind), and checks each errno against what the floor must
//! give. The child sends its results through a pipe; the restriction dies with it.
//!
//! The child makes only raw calls on data prepared before the fork (the harness runs tests on
//! several threads). These tests need a host with Landlock (ABI 6 or newer for the scopes).

use cloister::landlock::{
    abi, prepare, restrict_self, FloorOptions, FloorStatus, FsFloor, NetFloor, PreparedFloor,
};
use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// What one probe does.
enum Op {
    /// open O_RDONLY and read a byte.
    Read,
    /// open O_WRONLY, without writing (harmless on host files when the floor fails).
    OpenWrite,
    /// open O_WRONLY | O_TRUNC.
    OpenTrunc,
    /// open O_CREAT | O_EXCL and write a byte.
    Create,
    /// open O_DIRECTORY and read entries.
    List,
    /// truncate(2) to 0.
    Truncate,
    Mkdir,
    Unlink,
    /// link(2) to the second path.
    Link,
    /// rename(2) to the second path.
    Rename,
    /// fork + execve; 0 when the program ran and exited 0.
    Exec,
    /// write(2) on a descriptor opened before the fork.
    WriteFd(RawFd),
    /// ftruncate(2) on a descriptor opened before the fork.
    TruncateFd(RawFd),
    /// open with these flags, then this ioctl with an int argument.
    Ioctl(libc::c_int, libc::c_ulong),
    /// kill(pid, 0).
    Kill(libc::pid_t),
    /// connect an AF_UNIX stream socket to this address.
    ConnectUnix(libc::sockaddr_un, libc::socklen_t),
    /// connect to 127.0.0.1 on this TCP port.
    ConnectTcp(u16),
    /// bind to 127.0.0.1 on this TCP port.
    BindTcp(u16),
}

/// What a probe must end with.
#[derive(Clone, Copy)]
enum Expect {
    Ok,
    /// One of these errnos.
    Errno(&'static [i32]),
    /// Anything but a refusal by the floor (EACCES, EPERM).
    NotDenied,
}

const DENIED: Expect = Expect::Errno(&[libc::EACCES]);
/// Landlock refuses a link or rename that would move a file across its rules with EXDEV (or
/// EACCES when the plain rights already forbid it).
const DENIED_MOVE: Expect = Expect::Errno(&[libc::EXDEV, libc::EACCES]);
const DENIED_SCOPE: Expect = Expect::Errno(&[libc::EPERM]);

struct Probe {
    what: String,
    op: Op,
    path: CString,
    to: CString,
    expect: Expect,
}

fn cstr(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

fn probe(op: Op, path: impl AsRef<Path>, expect: Expect) -> Probe {
    let path = path.as_ref();
    let what = format!("{} {}", op_name(&op), path.display());
    Probe { what, op, path: cstr(path), to: CString::default(), expect }
}

fn probe_to(op: Op, path: impl AsRef<Path>, to: impl AsRef<Path>, expect: Expect) -> Probe {
    let mut p = probe(op, path, expect);
    p.what = format!("{} -> {}", p.what, to.as_ref().display());
    p.to = cstr(to.as_ref());
    p
}

fn op_name(op: &Op) -> String {
    match op {
        Op::Read => "read".into(),
        Op::OpenWrite => "open O_WRONLY".into(),
        Op::OpenTrunc => "open O_WRONLY|O_TRUNC".into(),
        Op::Create => "create".into(),
        Op::List => "list".into(),
        Op::Truncate => "truncate".into(),
        Op::Mkdir => "mkdir".into(),
        Op::Unlink => "unlink".into(),
        Op::Link => "link".into(),
        Op::Rename => "rename".into(),
        Op::Exec => "execve".into(),
        Op::WriteFd(fd) => format!("write on inherited fd {fd} of"),
        Op::TruncateFd(fd) => format!("ftruncate on inherited fd {fd} of"),
        Op::Ioctl(_, req) => format!("ioctl {req:#x} on"),
        Op::Kill(pid) => format!("kill({pid}, 0)"),
        Op::ConnectUnix(..) => "connect to abstract unix socket".into(),
        Op::ConnectTcp(port) => format!("connect to TCP port {port}"),
        Op::BindTcp(port) => format!("bind TCP port {port}"),
    }
}

fn errno() -> i32 {
    // SAFETY: reading this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Runs one probe in the child; 0 on success, else the errno (or 1000 + the exit status of a
/// program that ran but failed).
///
/// # Safety
/// Raw calls only, on the probe's prepared data.
unsafe fn run_probe(p: &Probe) -> i32 {
    let path = p.path.as_ptr();
    let check = |r: libc::c_long| if r < 0 { errno() } else { 0 };
    let mut byte = [b'x'];
    let buf = byte.as_mut_ptr();
    // SAFETY: raw calls on C strings, stack buffers and structures prepared before the fork.
    unsafe {
        let open_then = |flags: libc::c_int, then: &dyn Fn(RawFd) -> libc::c_long| -> i32 {
            let fd = libc::open(path, flags | libc::O_CLOEXEC, 0o600);
            if fd < 0 {
                return errno();
            }
            let r = check(then(fd));
            libc::close(fd);
            r
        };
        match p.op {
            Op::Read => open_then(libc::O_RDONLY, &|fd| libc::read(fd, buf.cast(), 1) as _),
            Op::OpenWrite => open_then(libc::O_WRONLY, &|_| 0),
            Op::OpenTrunc => open_then(libc::O_WRONLY | libc::O_TRUNC, &|_| 0),
            Op::Create => open_then(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, &|fd| {
                libc::write(fd, buf.cast(), 1) as _
            }),
            Op::List => open_then(libc::O_RDONLY | libc::O_DIRECTORY, &|fd| {
                let mut buf = [0u8; 1024];
                libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len())
            }),
            Op::Truncate => check(libc::truncate(path, 0).into()),
            Op::Mkdir => check(libc::mkdir(path, 0o700).into()),
            Op::Unlink => check(libc::unlink(path).into()),
            Op::Link => check(libc::link(path, p.to.as_ptr()).into()),
            Op::Rename => check(libc::rename(path, p.to.as_ptr()).into()),
            Op::Exec => {
                let argv = [path, std::ptr::null()];
                let envp = [std::ptr::null()];
                let pid = libc::fork();
                if pid == 0 {
                    libc::execve(path, argv.as_ptr(), envp.as_ptr());
                    libc::_exit(200 + errno().min(50));
                }
                let mut status = 0;
                libc::waitpid(pid, &mut status, 0);
                match libc::WEXITSTATUS(status) {
                    0 => 0,
                    code if code >= 200 => code - 200,
                    code => 1000 + code,
                }
            }
            Op::WriteFd(fd) => check(libc::write(fd, buf.cast(), 1) as _),
            Op::TruncateFd(fd) => check(libc::ftruncate(fd, 0).into()),
            Op::Ioctl(flags, req) => open_then(flags, &|fd| {
                let mut arg: libc::c_int = 0;
                libc::ioctl(fd, req, &mut arg).into()
            }),
            Op::Kill(pid) => check(libc::kill(pid, 0).into()),
            Op::ConnectUnix(addr, len) => {
                let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
                let r = check(libc::connect(fd, (&addr as *const libc::sockaddr_un).cast(), len).into());
                libc::close(fd);
                r
            }
            Op::ConnectTcp(port) | Op::BindTcp(port) => {
                let addr = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: port.to_be(),
                    sin_addr: libc::in_addr { s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be() },
                    sin_zero: [0; 8],
                };
                let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
                let sa = (&addr as *const libc::sockaddr_in).cast();
                let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
                let r = match p.op {
                    Op::BindTcp(_) => libc::bind(fd, sa, len),
                    _ => libc::connect(fd, sa, len),
                };
                libc::close(fd);
                check(r.into())
            }
        }
    }
}

/// How the child restricts itself before the probes.
enum Restrict<'a> {
    /// The launcher's way: prepared before the fork, enforced in the child.
    Prepared(&'a PreparedFloor),
    /// The one-step `restrict_self` (it allocates in the child; glibc's malloc survives fork).
    Direct(&'a FsFloor, &'a FloorOptions),
}

/// Forks a child that restricts itself and runs `probes`; panics with every probe whose result
/// is not the expected one.
fn check_in_child(restrict: Restrict, probes: &[Probe]) {
    let mut results = vec![0i32; probes.len()];
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array for pipe2 to fill.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let [rd, wr] = fds;
    // SAFETY: the child makes raw calls on data prepared above (see the module comment), and
    // ends with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: in the child; see above.
        unsafe {
            libc::close(rd);
            let restricted = match restrict {
                Restrict::Prepared(floor) => floor.enforce().is_ok(),
                Restrict::Direct(fs, options) => restrict_self(fs, options).is_ok(),
            };
            if !restricted {
                libc::_exit(3);
            }
            for (result, p) in results.iter_mut().zip(probes) {
                *result = run_probe(p);
            }
            let bytes = results.len() * 4;
            let n = libc::write(wr, results.as_ptr().cast(), bytes);
            libc::_exit(if n == bytes as isize { 0 } else { 4 });
        }
    }
    // SAFETY: closing our copy of the write end, reading into `results`, reaping our child.
    let status = unsafe {
        libc::close(wr);
        let bytes = results.len() * 4;
        let mut got = 0;
        while got < bytes {
            let n = libc::read(rd, results.as_mut_ptr().cast::<u8>().add(got).cast(), bytes - got);
            if n <= 0 {
                break;
            }
            got += n as usize;
        }
        libc::close(rd);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        status
    };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child could not restrict itself or report (status {status:#x})"
    );
    let mut wrong = String::new();
    for (p, &got) in probes.iter().zip(&results) {
        let ok = match p.expect {
            Expect::Ok => got == 0,
            Expect::Errno(set) => set.contains(&got),
            Expect::NotDenied => got != libc::EACCES && got != libc::EPERM,
        };
        if !ok {
            let got =
                if got == 0 { "success".into() } else { std::io::Error::from_raw_os_error(got).to_string() };
            let want = match p.expect {
                Expect::Ok => "success".to_string(),
                Expect::Errno(set) => format!("errno in {set:?}"),
                Expect::NotDenied => "no EACCES/EPERM".to_string(),
            };
            wrong.push_str(&format!("\n  {}: got {got}, want {want}", p.what));
        }
    }
    assert!(wrong.is_empty(), "probes with the wrong outcome:{wrong}");
}

/// A fresh directory tree under the system's temporary directory, removed when dropped.
struct TempTree(PathBuf);

impl TempTree {
    /// `files` relative to the root; a name ending in `/` is a directory.
    fn new(tag: &str, files: &[&str]) -> TempTree {
        let dir = std::env::temp_dir().join(format!("cloister-landlock-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for file in files {
            let path = dir.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            if file.ends_with('/') {
                fs::create_dir_all(&path).unwrap();
            } else {
                fs::write(&path, "content\n").unwrap();
            }
        }
        TempTree(dir.canonicalize().unwrap())
    }

    fn at(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        if fs::remove_dir_all(&self.0).is_err() {
            let _ = fs::remove_file(&self.0);
        }
    }
}

fn landlock_abi() -> i32 {
    abi().unwrap_or_else(|errno| {
        panic!("these tests need Landlock: {}", std::io::Error::from_raw_os_error(errno))
    })
}

/// A read tree with a hidden directory and a write directory inside it: the secret cannot be
/// read (not even through a link beside it), its siblings can; nothing outside `out` can be
/// written, created, truncated, removed, moved or linked; `out` can; devices and descriptors
/// opened before the restriction still work; and the prepared floor can be enforced again in
/// a second child (a launch that forks twice).
#[test]
fn hidden_directory_inside_a_read_tree() {
    landlock_abi();
    let t = TempTree::new(
        "tree",
        &["secret/key", "secret/sub/deep", "public.txt", "dir/nested.txt", "out/", "inherited.txt"],
    );
    std::os::unix::fs::symlink(t.at("secret"), t.at("link")).unwrap();
    let fs = FsFloor { read: vec![t.0.clone()], write: vec![t.at("out")], hidden: vec![t.at("secret")] };
    let floor = prepare(&fs, &FloorOptions::default()).unwrap();
    let inherited = fs::OpenOptions::new().write(true).open(t.at("inherited.txt")).unwrap();
    let fd = inherited.as_raw_fd();
    let probes = [
        probe(Op::Read, t.at("secret/key"), DENIED),
        probe(Op::Read, t.at("secret/sub/deep"), DENIED),
        probe(Op::Read, t.at("link/key"), DENIED),
        probe(Op::Read, t.at("public.txt"), Expect::Ok),
        probe(Op::Read, t.at("dir/nested.txt"), Expect::Ok),
        probe(Op::List, &t.0, Expect::Ok),
        probe(Op::List, t.at("dir"), Expect::Ok),
        probe(Op::OpenWrite, t.at("public.txt"), DENIED),
        probe(Op::OpenTrunc, t.at("public.txt"), DENIED),
        probe(Op::Truncate, t.at("public.txt"), DENIED),
        probe(Op::Create, t.at("new.txt"), DENIED),
        probe(Op::Create, t.at("dir/new.txt"), DENIED),
        probe(Op::Mkdir, t.at("newdir"), DENIED),
        probe(Op::Unlink, t.at("dir/nested.txt"), DENIED),
        probe_to(Op::Rename, t.at("public.txt"), t.at("out/public.txt"), DENIED_MOVE),
        probe_to(Op::Link, t.at("secret/key"), t.at("out/key"), DENIED_MOVE),
        probe(Op::Read, "/etc/passwd", DENIED),
        probe(Op::Create, t.at("out/made"), Expect::Ok),
        probe(Op::OpenTrunc, t.at("out/made"), Expect::Ok),
        probe(Op::Mkdir, t.at("out/d"), Expect::Ok),
        probe_to(Op::Rename, t.at("out/made"), t.at("out/d/moved"), Expect::Ok),
        probe(Op::Create, t.at("out/d/gone"), Expect::Ok),
        probe(Op::Unlink, t.at("out/d/gone"), Expect::Ok),
        probe(Op::OpenTrunc, "/dev/null", Expect::Ok),
        probe(Op::WriteFd(fd), t.at("inherited.txt"), Expect::Ok),
        probe(Op::TruncateFd(fd), t.at("inherited.txt"), Expect::Ok),
    ];
    check_in_child(Restrict::Prepared(&floor), &probes);
    assert!(t.at("out/d/moved").exists() && !t.at("out/key").exists() && t.at("secret/key").exists());
    check_in_child(Restrict::Prepared(&floor), &[probe(Op::Read, t.at("secret/key"), DENIED)]);
}

/// "/" as the read tree with a secret under the temporary directory: the host's files, /proc,
/// /sys and /dev stay readable and programs run; the secret is neither readable nor
/// executable; nothing on the host is writable but the write tree and the devices; device
/// ioctls are allowed on terminals only.
#[test]
fn root_read_tree_with_a_hidden_path() {
    landlock_abi();
    let t = TempTree::new("root", &["secret/key", "public.txt", "out/"]);
    let script = t.at("secret/run.sh");
    fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let fs = FsFloor { read: vec!["/".into()], write: vec![t.at("out")], hidden: vec![t.at("secret")] };
    let floor = prepare(&fs, &FloorOptions::default()).unwrap();
    let outside = std::env::temp_dir().join(format!("cloister-landlock-outside-{}", std::process::id()));
    // Created only if the floor fails; removed then too.
    let _cleanup = TempTree(outside.clone());
    let mut probes = vec![
        probe(Op::Read, "/etc/passwd", Expect::Ok),
        probe(Op::List, "/", Expect::Ok),
        probe(Op::List, "/etc", Expect::Ok),
        probe(Op::List, "/proc", Expect::Ok),
        probe(Op::Read, "/proc/self/status", Expect::Ok),
        probe(Op::Read, "/proc/sys/kernel/osrelease", Expect::Ok),
        probe(Op::List, "/sys", Expect::Ok),
        probe(Op::List, "/dev", Expect::Ok),
        probe(Op::Exec, "/bin/true", Expect::Ok),
        probe(Op::Read, t.at("secret/key"), DENIED),
        probe(Op::Exec, &script, DENIED),
        probe(Op::Read, t.at("public.txt"), Expect::Ok),
        probe(Op::List, std::env::temp_dir(), Expect::Ok),
        probe(Op::Create, &outside, DENIED),
        probe(Op::Mkdir, &outside, DENIED),
        probe(Op::OpenWrite, "/etc/passwd", DENIED),
        probe(Op::Create, t.at("out/file"), Expect::Ok),
        probe(Op::OpenWrite, "/dev/null", Expect::Ok),
        probe(Op::OpenTrunc, "/dev/null", Expect::Ok),
        probe(Op::OpenWrite, "/dev/zero", Expect::Ok),
        probe(Op::OpenWrite, "/dev/full", Expect::Ok),
        probe(Op::List, "/dev/pts", Expect::Ok),
        probe(Op::Ioctl(libc::O_RDWR | libc::O_NOCTTY, libc::TIOCGPTN), "/dev/ptmx", Expect::Ok),
        // RNDGETENTCNT: device ioctls need the right, which read trees do not give.
        probe(Op::Ioctl(libc::O_RDONLY, 0x8004_5200), "/dev/urandom", DENIED),
        // Without a controlling terminal this is ENXIO, but never a refusal of the floor.
        probe(Op::OpenWrite, "/dev/tty", Expect::NotDenied),
    ];
    if Path::new("/etc/hostname").exists() {
        probes.push(probe(Op::Read, "/etc/hostname", Expect::Ok));
        probes.push(probe(Op::OpenWrite, "/etc/hostname", DENIED));
    }
    check_in_child(Restrict::Prepared(&floor), &probes);
    assert!(!outside.exists(), "{} was created", outside.display());
}

/// Three hidden paths at different depths of one tree: all stay unreadable, every sibling on
/// the way stays readable.
#[test]
fn several_hidden_paths_compose() {
    landlock_abi();
    let t = TempTree::new("compose", &["a/s1/key", "a/x", "a/b/s2", "a/b/y", "c/s3/key", "c/z", "d/w"]);
    let fs = FsFloor {
        read: vec![t.0.clone()],
        hidden: vec![t.at("a/s1"), t.at("a/b/s2"), t.at("c/s3"), t.at("not/there")],
        ..Default::default()
    };
    let floor = prepare(&fs, &FloorOptions::default()).unwrap();
    let mut probes: Vec<Probe> =
        ["a/s1/key", "a/b/s2", "c/s3/key"].iter().map(|p| probe(Op::Read, t.at(p), DENIED)).collect();
    probes.extend(["a/x", "a/b/y", "c/z", "d/w"].iter().map(|p| probe(Op::Read, t.at(p), Expect::Ok)));
    check_in_child(Restrict::Prepared(&floor), &probes);
}

/// The scopes and TCP ports, on and (by default) off: signals to the test process and its
/// abstract unix socket are refused, connect only reaches the allowed port, bind nothing.
#[test]
fn scopes_and_tcp_ports() {
    if landlock_abi() < 6 {
        panic!("scopes need Landlock ABI 6");
    }
    let allowed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (allowed, other) = (allowed.local_addr().unwrap().port(), other.local_addr().unwrap().port());
    let name = format!("cloister-landlock-{}", std::process::id());
    let _listener = {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        std::os::unix::net::UnixListener::bind_addr(&addr).unwrap()
    };
    // SAFETY: a zeroed sockaddr_un is valid; the abstract name follows its leading NUL.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (slot, byte) in sun.sun_path[1..].iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + 1 + name.len()) as libc::socklen_t;
    let me = std::process::id() as libc::pid_t;
    let probes = |on: bool| {
        let (scope, port) = if on { (DENIED_SCOPE, DENIED) } else { (Expect::Ok, Expect::Ok) };
        vec![
            probe(Op::Kill(me), "", scope),
            probe(Op::ConnectUnix(sun, len), &name, scope),
            probe(Op::ConnectTcp(allowed), "", Expect::Ok),
            probe(Op::ConnectTcp(other), "", port),
            probe(Op::BindTcp(0), "", port),
        ]
    };
    let fs = FsFloor { read: vec!["/".into()], ..Default::default() };
    let on = FloorOptions {
        scope_signals: true,
        scope_abstract_unix: true,
        net: Some(NetFloor { bind_tcp: vec![], connect_tcp: vec![allowed] }),
    };
    let floor = prepare(&fs, &on).unwrap();
    assert_eq!(floor.status(), &FloorStatus::Enforced { abi: landlock_abi() });
    check_in_child(Restrict::Prepared(&floor), &probes(true));
    check_in_child(Restrict::Prepared(&prepare(&fs, &FloorOptions::default()).unwrap()), &probes(false));
}

/// `restrict_self` does what `prepare` + `enforce` do.
#[test]
fn restrict_self_in_one_step() {
    landlock_abi();
    let t = TempTree::new("direct", &["secret", "plain"]);
    let fs = FsFloor { read: vec![t.0.clone()], hidden: vec![t.at("secret")], ..Default::default() };
    let probes = [probe(Op::Read, t.at("secret"), DENIED), probe(Op::Read, t.at("plain"), Expect::Ok)];
    check_in_child(Restrict::Direct(&fs, &FloorOptions::default()), &probes);
}

/// On this host's ABI the status says what was asked for is enforced in full; paths that do
/// not exist are an error that names them.
#[test]
fn status_and_errors() {
    let abi = landlock_abi();
    let floor = prepare(&FsFloor { read: vec!["/".into()], ..Default::default() }, &FloorOptions::default());
    match floor.unwrap().status() {
        FloorStatus::Enforced { abi: enforced } if abi >= 5 => assert_eq!(*enforced, abi),
        FloorStatus::PartiallyEnforced { .. } if abi < 5 => {}
        status => panic!("ABI {abi}: {status}"),
    }
    let bad = FsFloor { write: vec!["/nonexistent/cloister-out".into()], ..Default::default() };
    let err = prepare(&bad, &FloorOptions::default()).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/cloister-out"), "{err}");
}
