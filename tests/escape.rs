//! The escape suite (issue 6): each test runs one small C program from `tests/escape/` under
//! `cloister run` with the default (`untrusted`) policy and the default backend, the program
//! tries one way out, and the test checks from outside that it failed: the secret's bytes are not
//! in the output, the host file is unchanged, the host's listener got nothing, the host process
//! lives on. Each test's name and comment say what stops it.
//!
//! The programs try every way twice: with their own `syscall` instruction (the redirect filter
//! traps it and the in-process kernel answers, which tests the view) and through cloister-rt's
//! gate (the `syscall` the filter trusts, `tests/programs/gate.h`, which skips the in-process
//! kernel and tests the floor alone). Where a control shows that the test can fail, it runs the
//! same program without the floor (`--policy default` or `--net host`).
//!
//! Under `--backend ptrace` (`tests/run`'s second pass) there is no gate and nothing in the
//! process is trusted: the programs say `gate=none` ([`assert_gate`] checks which they found)
//! and make their `gate` attempts with their own `syscall` too, the strongest bypass there is.
//! The tracer stops each one and the view serves it, so each must get exactly what the same
//! `direct` attempt got ([`assert_gate_is_direct`]); the checks from outside are the same under
//! both backends.
//!
//! Ways out covered elsewhere, not repeated here: the seccomp floor's list (io_uring, bpf,
//! perf, keyctl, userfaultfd, kexec, modules, reboot, swapon, acct, the clock, mount, umount,
//! setns, personality, ptrace and process_vm_writev of a host process, kill of a host process,
//! packet and raw sockets) in `tests/floor.rs`; creating a host file and reading a hidden one
//! through the gate in `tests/floor.rs` and `tests/mountns.rs`; a host file's mode, owner,
//! times and xattrs and a hidden unix socket in `tests/mountns.rs`; AF_INET, AF_INET6,
//! AF_PACKET, raw and vsock sockets in `tests/network.rs`; TIOCSTI, the fork bomb and memory hog
//! under explicit limits, and processes outliving the run in `tests/limits.rs`.
//!
//! A test marked `#[ignore = "escape: ..."]` is a way out that works today (a finding, listed
//! in docs/threat-model.md); `cargo test --test escape -- --ignored` shows it failing. The
//! table of every attempt, its test and what stops it is in docs/threat-model.md.
//!
//! Never run these programs natively: as root they would do what they try.

use cloister_tests::{
    assert_gate, backend_args, cloister_bin, compile_c, gcc_build, inproc, programs_dir, scratch_dir,
    temp_dir, Mode, Outcome,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The fake secret every hidden file holds: the tests look for it in the programs' output.
const SECRET: &str = "CLOISTER-FAKE-SECRET-7f3a91";

/// What a refused attempt may say: the view's or the stand-in's "not there", Landlock's and the
/// kernel's permission checks, the read-only mount, a missing process, a refused family.
const REFUSED: &[&str] = &["ENOENT", "EACCES", "EPERM", "EROFS", "ESRCH", "EXDEV", "EAFNOSUPPORT"];

/// `cloister-rt` beside the `cloister` the tests run.
fn runtime() -> PathBuf {
    cloister_bin().with_file_name("cloister-rt")
}

fn s(path: &Path) -> &str {
    path.to_str().expect("scratch paths are UTF-8")
}

/// Builds `tests/escape/NAME.c` (with `gate.h` from `tests/programs`) once per test process.
fn escape_program(name: &str) -> PathBuf {
    type Cache = Mutex<HashMap<String, Arc<OnceLock<PathBuf>>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cell = {
        let mut cache = CACHE.get_or_init(Cache::default).lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(cache.entry(name.to_owned()).or_default())
    };
    cell.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("escape").join(format!("{name}.c"));
        let dir = scratch_dir().join("bin");
        fs::create_dir_all(&dir).unwrap();
        let exe = dir.join(format!("escape-{name}"));
        let include = format!("-I{}", programs_dir().display());
        gcc_build(&source, &exe, &[&include, "-pthread"]);
        exe
    })
    .clone()
}

/// A home whose `.ssh` (hidden by `untrusted`) holds a key with [`SECRET`] in it.
struct Home {
    dir: PathBuf,
    key: PathBuf,
}

impl Home {
    fn new(label: &str) -> Home {
        let dir = temp_dir(label).join("h");
        fs::create_dir_all(dir.join(".ssh")).unwrap();
        let key = dir.join(".ssh/id_ed25519");
        fs::write(&key, format!("{SECRET}\n")).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        Home { dir, key }
    }
}

/// Fails when the secret's bytes are anywhere in what the program printed.
#[track_caller]
fn assert_not_leaked(out: &Outcome) {
    assert!(!out.stdout.contains(SECRET), "the hidden file's bytes reached the program\n{out}");
    assert!(!out.stdout.contains("7f3a91"), "part of the hidden file's bytes reached the program\n{out}");
}

/// Every `KEY=VALUE` line of the output whose key `matches`.
fn fields(out: &Outcome, matches: impl Fn(&str) -> bool) -> Vec<(&str, &str)> {
    out.stdout.lines().filter_map(|l| l.split_once('=')).filter(|(k, _)| matches(k)).collect()
}

/// Asserts that `key` says one of `allowed`.
#[track_caller]
fn assert_one_of(out: &Outcome, key: &str, allowed: &[&str], stopped_by: &str) {
    let got = out.field(key);
    assert!(allowed.contains(&got), "{key}={got}: not refused; {stopped_by} should stop it\n{out}");
}

/// Under ptrace, where the programs have no gate: every `KEY_gate` attempt but those `skip`
/// names got what `KEY_direct` got. The two are the same raw call then, which the tracer stops
/// and serves through the view, so a difference would be a call that found a way around it.
#[track_caller]
fn assert_gate_is_direct(out: &Outcome, skip: impl Fn(&str) -> bool) {
    let gate = fields(out, |k| k.ends_with("_gate") && !skip(k));
    assert!(!gate.is_empty(), "no gate attempt in the output\n{out}");
    for (key, value) in gate {
        let direct = out.field(&format!("{}_direct", key.strip_suffix("_gate").unwrap()));
        assert_eq!(value, direct, "{key}: the raw call got what the view does not give\n{out}");
    }
}

/// The sha256 of a file's bytes, its mode and its modification time: what "unchanged" means.
fn fingerprint(path: &Path) -> (String, u32, i64) {
    let meta = fs::metadata(path).unwrap();
    let digest = Sha256::digest(fs::read(path).unwrap());
    (format!("{digest:x}"), meta.mode(), meta.mtime())
}

/// Whether the tests run as root.
fn root() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

// ---------------------------------------------------------------------------------------------
// Files

/// A hidden file, by every path that might lead to it: directly, `/proc/self/root`,
/// `/proc/1/root`, `/proc/PPID/root`, chains of `..`, `/proc/self/cwd/..`, a descriptor of `/`,
/// symlinks made on the host (absolute and relative), a symlink and a hard link the program
/// makes, and a symlink swapped between a harmless file and the secret by a second thread while
/// the first opens it, 50,000 times each way. Stopped by the view (trapped calls) and, past it,
/// by the mount namespace's empty stand-in over `~/.ssh` (Landlock's read rules where there is
/// no mount namespace); a hard link across the stand-in's mount is `EXDEV`. Under ptrace the
/// gate way's raw calls are stopped by the tracer and served by the view like the direct ones
/// (they get the same answers), and there is no state directory in the process to write into
/// (no shared page is mapped), so they make their links and race in the view's `/tmp`, 20,000
/// times each way: every open and swap is a tracer stop there, and 50,000 took 30 to over 60 s
/// on the shared 2-core dev VM (hence the longer timeout too).
#[test]
fn a_hidden_file_stays_hidden_by_every_path() {
    let home = Home::new("hidden-paths");
    let link_abs = home.dir.join("link-abs");
    let link_rel = home.dir.join("link-rel");
    std::os::unix::fs::symlink(&home.key, &link_abs).unwrap();
    std::os::unix::fs::symlink(".ssh/id_ed25519", &link_rel).unwrap();
    let exe = escape_program("hidden_paths");
    let iterations = if inproc() { "50000" } else { "20000" };
    let out = Mode::Cloister
        .command(&exe)
        .args([s(&runtime()), s(&home.key), s(&link_abs), s(&link_rel), iterations])
        .env("HOME", &home.dir)
        .timeout(Duration::from_secs(180))
        .output();
    out.success();
    assert_not_leaked(&out);
    assert_gate(&out);
    let state = if inproc() { "found" } else { "none" };
    assert_eq!(out.field("state"), state, "the state directory's shared page, mapped or not\n{out}");
    if !inproc() {
        assert_gate_is_direct(&out, |k| k.starts_with("race"));
    }
    let attempts = fields(&out, |k| !k.starts_with("race") && k != "state" && k != "gate");
    assert_eq!(attempts.len(), 22, "an attempt is missing\n{out}");
    for (key, value) in attempts {
        // An empty read is a stand-in file's: nothing of the secret.
        let errno = value.rsplit(':').next().unwrap_or(value);
        assert!(
            REFUSED.contains(&errno) || value == "read:0:",
            "{key}={value}: the hidden file was reached (stopped by the view, the stand-in, Landlock)\n{out}"
        );
    }
    for way in ["direct", "gate"] {
        let race = out.field(&format!("race_{way}"));
        assert!(
            race.contains(" other:0"),
            "race_{way}: something else than the harmless file was read\n{out}"
        );
        assert!(!race.contains(" harmless:0 "), "race_{way}: the race never opened the harmless file\n{out}");
    }
}

/// The control: without the view and its floor (`--policy default`) the same program reads
/// the key directly, through `/proc/self/root`, `..` and the symlinks, so the test above can
/// fail (under ptrace the gate way's raw calls too, served by the tracer through a view that
/// hides nothing).
#[test]
fn without_the_floor_the_hidden_file_is_read() {
    let home = Home::new("hidden-paths-default");
    let link_abs = home.dir.join("link-abs");
    std::os::unix::fs::symlink(&home.key, &link_abs).unwrap();
    let exe = escape_program("hidden_paths");
    let out = Mode::Cloister
        .command(&exe)
        .args([s(&runtime()), s(&home.key), s(&link_abs), s(&link_abs), "100"])
        .env("HOME", &home.dir)
        .policy("default")
        .output();
    out.success();
    assert_gate(&out);
    for key in ["plain_gate", "proc_self_root_gate", "dotdot_gate", "link_abs_gate", "plain_direct"] {
        assert!(out.field(key).contains(SECRET), "{key}\n{out}");
    }
}

/// A host file the view shows read-only: written, truncated, appended to, through
/// `/proc/self/root`, replaced by a rename, unlinked, written through a shared mapping, and the
/// host's sysctls and sysfs knobs opened for writing. Through the view every change lands in the
/// private overlay; past it (inproc's gate) the mount namespace's read-only host tree (`EROFS`)
/// and Landlock (`EACCES`: writes only to the state directory and `rw` mounts, never `/proc`)
/// stop it. Under ptrace the gate way's raw calls are served by the view too, which puts their
/// changes in the overlay as it does the direct ones'. Each way works on a file of its own; both
/// are checked byte for byte from outside.
#[test]
fn a_read_only_host_file_is_unchanged() {
    let dir = temp_dir("host-write");
    let files = [dir.join("precious.txt"), dir.join("precious-gate.txt")];
    for file in &files {
        fs::write(file, "precious host data\n").unwrap();
        fs::set_permissions(file, fs::Permissions::from_mode(0o644)).unwrap();
    }
    let before = files.each_ref().map(|f| fingerprint(f));
    let out = Mode::Cloister
        .command(escape_program("host_write"))
        .args([s(&runtime()), s(&files[0]), s(&files[1])])
        .output();
    out.success();
    assert_gate(&out);
    assert_eq!(files.each_ref().map(|f| fingerprint(f)), before, "a host file changed\n{out}");
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 2, "something reached the host directory\n{out}");
    let gate = fields(&out, |k| k.ends_with("_gate"));
    assert_eq!(gate.len(), 10, "an attempt is missing\n{out}");
    if inproc() {
        for (key, value) in gate {
            assert!(
                ["EROFS", "EACCES", "EPERM", "EXDEV"].contains(&value),
                "{key}={value}: not refused (stopped by the read-only mount, Landlock)\n{out}"
            );
        }
    } else {
        // The view's answers: the changes made in the overlay (which the check above shows never
        // reached the host).
        assert_eq!(out.field("open_rdwr_gate"), "done", "the view did not serve the raw write\n{out}");
        assert_gate_is_direct(&out, |_| false);
    }
    for knob in ["sysctl_direct", "sysfs_direct"] {
        assert_one_of(&out, knob, &["EROFS", "EACCES"], "the read-only /sys, Landlock on /proc");
    }
}

// ---------------------------------------------------------------------------------------------
// The network

/// A host daemon's abstract unix socket (`@NAME`: no file guards it, so neither the view nor
/// Landlock's path rules do): a stream connection and a datagram. Stopped by the network
/// namespace of `--net none` (abstract names belong to a network namespace), and under it by
/// Landlock's abstract unix socket scope, which holds even with `--net host`; the same under
/// both backends, the gate way's raw calls under ptrace getting the direct ones' answers. The
/// control, `--policy default` (no floor), reaches it.
#[test]
fn a_host_daemons_abstract_socket_is_out_of_reach() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram, UnixListener};
    let name = format!("cloister-escape-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = UnixListener::bind_addr(&addr).unwrap();
    listener.set_nonblocking(true).unwrap();
    let datagrams = UnixDatagram::bind_addr(&addr).unwrap();
    datagrams.set_nonblocking(true).unwrap();
    let exe = escape_program("abstract_unix");
    let run = |options: &[&str]| {
        let out = Mode::Cloister.command(&exe).args([s(&runtime()), &name]);
        let out = options.iter().fold(out, |cmd, o| cmd.cloister_arg(o)).output();
        out.success();
        assert_gate(&out);
        if !inproc() {
            assert_gate_is_direct(&out, |_| false);
        }
        out
    };
    let keys = ["stream_direct", "stream_gate", "dgram_direct", "dgram_gate"];
    let nothing_arrived = |out: &Outcome| {
        assert!(listener.accept().is_err(), "the host's listener got a connection\n{out}");
        let mut buf = [0u8; 64];
        assert!(datagrams.recv(&mut buf).is_err(), "the host's socket got a datagram\n{out}");
    };
    let none = run(&[]);
    for key in keys {
        assert_one_of(&none, key, &["ECONNREFUSED", "EPERM", "EAFNOSUPPORT"], "the network namespace");
    }
    nothing_arrived(&none);
    // The second layer: with the host's network given back, Landlock's scope still refuses.
    let host = run(&["--net", "host"]);
    for key in keys {
        assert_one_of(&host, key, &["EPERM"], "Landlock's abstract unix socket scope");
    }
    nothing_arrived(&host);

    let control = run(&["--policy", "default"]);
    assert_eq!(control.field("stream_gate"), "done", "\n{control}");
    assert!(listener.accept().is_ok(), "no floor, yet no connection: the test tests nothing\n{control}");
}

/// rtnetlink and sock_diag, which answer for the network namespace they are asked in: the
/// interfaces the sandbox lists and the listening TCP ports it sees are its own (`lo`, none),
/// not the host's (a listener the test started on 127.0.0.1). Stopped by the network namespace
/// of `--net none`, under ptrace for the gate way's raw calls too (they get the direct ones'
/// answers); the control, `--net host`, sees both.
#[test]
fn netlink_answers_for_the_sandboxs_own_network_only() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let exe = escape_program("netlink");
    let run = |net: &str| {
        let out =
            Mode::Cloister.command(&exe).arg(runtime()).cloister_arg("--net").cloister_arg(net).output();
        out.success();
        assert_gate(&out);
        out
    };
    let none = run("none");
    if !inproc() {
        assert_gate_is_direct(&none, |_| false);
    }
    if none.stderr.contains("no network namespace") {
        // The fallback floor refuses netlink sockets altogether.
        for key in ["links_direct", "links_gate"] {
            assert_one_of(&none, key, &["EAFNOSUPPORT", "EPERM"], "the fallback network floor");
        }
        return;
    }
    for way in ["direct", "gate"] {
        assert_eq!(none.field(&format!("links_{way}")), "lo", "the host's interfaces are listed\n{none}");
        let ports = none.field(&format!("listening_{way}"));
        assert!(!ports.split(',').any(|p| p == port), "the host's listener is listed\n{none}");
    }
    let host = run("host");
    assert_ne!(
        host.field("links_gate"),
        "lo",
        "--net host lists no host interface: the test tests nothing\n{host}"
    );
    assert!(host.field("listening_gate").split(',').any(|p| p == port), "\n{host}");
}

// ---------------------------------------------------------------------------------------------
// The runtime

/// Taking the runtime's place: the program makes a page of cloister-rt's code writable and
/// writes its own `syscall; ret` there, maps fresh code over another of the runtime's pages,
/// then overwrites all of the runtime's data. From that code, which the redirect filter trusts
/// (the host itself answers: `*_trusted=yes`), it reads a hidden file, creates a host file,
/// opens a packet socket, mounts, and unshares a user and mount namespace to mount there. The
/// seccomp floor (mount), the network namespace (packet), the mount namespace's stand-ins and
/// read-only tree and Landlock stop every one; a trapped call into the wrecked runtime dies.
/// (Jumping into the runtime's gate without changing it is `tests/floor.rs`.) Under ptrace no
/// cloister-rt is mapped in the process, so there is nothing to overwrite (the test checks
/// that); the program plants the same code in a fresh page of its own and makes the same
/// attempts from there, which the tracer stops: the view hides the file and puts the write in
/// the overlay, the floor refuses the rest.
#[test]
fn overwriting_the_runtime_gains_nothing_over_the_floor() {
    let home = Home::new("rt-overwrite");
    let target = temp_dir("rt-overwrite-host").join("written");
    let out = Mode::Cloister
        .command(escape_program("rt_overwrite"))
        .args([s(&runtime()), s(&home.key), s(&target)])
        .env("HOME", &home.dir)
        .output();
    out.success();
    assert_not_leaked(&out);
    assert!(!target.exists(), "a host file was created\n{out}");
    assert_gate(&out);
    if !inproc() {
        assert_eq!(out.field("text"), "none", "cloister-rt's code is mapped under ptrace\n{out}");
        assert_eq!(out.field("fresh"), "done", "no fresh page to plant code in\n{out}");
        assert_eq!(out.field("fresh_trusted"), "no", "\n{out}");
        assert_one_of(&out, "fresh_read", &["ENOENT"], "the view");
        assert_one_of(&out, "fresh_write", &["done"], "the view's overlay");
        assert_one_of(&out, "fresh_packet", &["EAFNOSUPPORT", "EPERM"], "--net none");
        assert_one_of(&out, "fresh_mount", &["EPERM"], "the seccomp floor");
        assert_one_of(&out, "fresh_unshare_mount", &["EPERM"], "the seccomp floor");
        return;
    }
    for step in ["patched", "remapped", "clobbered"] {
        assert_eq!(
            out.field(&format!("{step}_trusted")),
            "yes",
            "{step}: the planted code was trapped\n{out}"
        );
        assert_one_of(&out, &format!("{step}_read"), &["ENOENT", "EACCES"], "the stand-in, Landlock");
        assert_one_of(&out, &format!("{step}_write"), &["EROFS", "EACCES"], "the read-only tree, Landlock");
        assert_one_of(&out, &format!("{step}_packet"), &["EAFNOSUPPORT", "EPERM"], "--net none");
        assert_one_of(&out, &format!("{step}_mount"), &["EPERM"], "the seccomp floor");
        assert_one_of(&out, &format!("{step}_unshare_mount"), &["EPERM"], "the seccomp floor");
    }
    let trapped = out.field("trapped_after_clobber");
    assert!(trapped.starts_with("signal:") || trapped.starts_with("exit:"), "\n{out}");
}

// ---------------------------------------------------------------------------------------------
// Processes

/// Pid, nice value and open-files limit of a host process, read from outside.
fn host_process_state(pid: u32) -> (i32, String) {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let nice: i32 = stat[stat.rfind(')').unwrap() + 2..].split(' ').nth(16).unwrap().parse().unwrap();
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let files = limits.lines().find(|l| l.starts_with("Max open files")).unwrap().to_owned();
    (nice, files)
}

/// Processes outside: the supervisor (`cloister run` itself) and its process group killed, a
/// host process killed by `tgkill` and by pidfd, a descriptor stolen with `pidfd_getfd`, its
/// memory read with `process_vm_readv` and `/proc/PID/mem`, its environment read, its priority
/// and limits changed. Stopped by the pid namespace (`ESRCH`, `ENOENT`: they have no pid in
/// it), and where there is none by Landlock's signal and ptrace scopes; the same under both
/// backends (under ptrace the tracer passes the raw calls on to the host, which has the same
/// floor). Both processes must live on, and the host process keep its nice value and limits,
/// checked from outside.
#[test]
fn processes_outside_the_sandbox_are_out_of_reach() {
    let mut host = Command::new("sleep").arg("300").spawn().unwrap();
    let before = host_process_state(host.id());
    let dir = temp_dir("host-processes");
    let mut supervisor = Command::new(cloister_bin())
        .arg("run")
        .args(backend_args())
        .arg("--")
        .arg(escape_program("host_processes"))
        .arg(runtime())
        .env_clear()
        .env("PATH", cloister_tests::SYSTEM_PATH)
        .env("HOME", &dir)
        .stdin(Stdio::piped())
        .stdout(fs::File::create(dir.join("stdout")).unwrap())
        .stderr(fs::File::create(dir.join("stderr")).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let line = format!("{} {}\n", supervisor.id(), host.id());
    supervisor.stdin.take().unwrap().write_all(line.as_bytes()).unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = supervisor.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = supervisor.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let alive = host.try_wait().unwrap().is_none();
    let after = if alive { Some(host_process_state(host.id())) } else { None };
    let _ = host.kill();
    let _ = host.wait();
    let stdout = fs::read_to_string(dir.join("stdout")).unwrap();
    let stderr = fs::read_to_string(dir.join("stderr")).unwrap();
    let context = format!("--- stdout ---\n{stdout}--- stderr ---\n{stderr}");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "the supervisor did not end normally\n{context}");
    assert!(stdout.contains("end=1"), "the program did not get to its end\n{context}");
    assert!(alive, "the host process died\n{context}");
    assert_eq!(after, Some(before), "the host process's nice value or limits changed\n{context}");
    let gate = cloister_tests::expected_gate();
    assert!(stdout.starts_with(&format!("gate={gate}\n")), "not the gate this backend gives\n{context}");
    let attempts: Vec<(&str, &str)> = stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| !["end", "gate"].contains(k))
        .collect();
    assert_eq!(attempts.len(), 18, "an attempt is missing\n{context}");
    for (key, value) in attempts {
        assert!(
            ["ESRCH", "ENOENT", "EPERM", "EACCES"].contains(&value),
            "{key}={value}: not refused (stopped by the pid namespace, Landlock's scopes)\n{context}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Namespaces, chroot, handles

/// `name_to_handle_at(2)` of `path` on the host: the handle's type and bytes in hex.
fn file_handle(path: &Path) -> (i32, String) {
    #[repr(C)]
    struct Handle {
        bytes: u32,
        kind: i32,
        data: [u8; 128],
    }
    let mut handle = Handle { bytes: 128, kind: 0, data: [0; 128] };
    let mut mount_id: libc::c_int = 0;
    let c = std::ffi::CString::new(s(path)).unwrap();
    // SAFETY: a valid C string, a handle buffer whose size field says how much it holds, and an
    // int for the mount id.
    let r = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            libc::AT_FDCWD,
            c.as_ptr(),
            &mut handle as *mut Handle,
            &mut mount_id as *mut libc::c_int,
            0,
        )
    };
    assert_eq!(r, 0, "name_to_handle_at {}: {}", path.display(), std::io::Error::last_os_error());
    let hex = handle.data[..handle.bytes as usize].iter().map(|b| format!("{b:02x}")).collect();
    (handle.kind, hex)
}

/// Getting out from under the stand-in that hides `~/.ssh`: a new user and mount namespace
/// (or a mount namespace alone, root's right) and `umount2` of the stand-in; the classic chroot
/// breakout (chroot into a subdirectory, `..` from the old working directory, chroot there);
/// `open_by_handle_at` with the key's handle from the host (the "shocker" escape); `open_tree`
/// of `/` without its submounts. Stopped by the seccomp floor (`umount2`, `open_by_handle_at`,
/// `open_tree`: `EPERM`, in every namespace the program makes) and, for the chroot, by the mount
/// namespace: its way out leads to the sandbox's own root, where the stand-in and the read-only
/// tree still are. Under ptrace the gate way's raw calls get the direct ones' answers (the
/// tracer serves them through the view, which puts the file written after the chroot in the
/// overlay, not on the host).
#[test]
fn namespaces_chroot_and_handles_do_not_uncover_a_hidden_file() {
    let home = Home::new("ns-tricks");
    let (kind, hex) = file_handle(&home.key);
    let target = temp_dir("ns-tricks-host").join("written");
    let out = Mode::Cloister
        .command(escape_program("ns_tricks"))
        .args([s(&runtime()), s(&home.key), s(&target), &kind.to_string(), &hex])
        .env("HOME", &home.dir)
        .output();
    out.success();
    assert_not_leaked(&out);
    assert!(!target.exists(), "a host file was created\n{out}");
    assert_gate(&out);
    for way in ["direct", "gate"] {
        for key in ["userns_umount", "mountns_umount", "handle", "open_tree"] {
            assert_one_of(&out, &format!("{key}_{way}"), &["EPERM"], "the seccomp floor");
        }
        for key in ["userns_read", "mountns_read", "chroot_read"] {
            assert_one_of(&out, &format!("{key}_{way}"), &["ENOENT", "EACCES"], "the stand-in");
        }
    }
    if inproc() {
        assert_one_of(&out, "chroot_write_gate", &["EROFS", "EACCES"], "the read-only tree, Landlock");
    } else {
        assert_gate_is_direct(&out, |_| false);
    }
}

/// A setuid-root program (a copy of a small probe, owned by root, mode 4755) run by an
/// unprivileged user: natively it becomes root and reads a file only root may read (the
/// control); under cloister it keeps the caller's ids. Stopped by `no_new_privs` (the kernel
/// ignores setuid bits and file capabilities across exec) and by cloister-rt loading the
/// program itself. Needs root to make the setuid copy.
#[test]
fn a_setuid_program_gains_no_privilege() {
    if !root() {
        eprintln!("a_setuid_program_gains_no_privilege: skipped: making a setuid-root copy needs root");
        return;
    }
    let dir = temp_dir("setuid");
    let probe = dir.join("suid_probe");
    fs::copy(escape_program("suid_probe"), &probe).unwrap();
    let secret = dir.join("root-only");
    fs::write(&secret, format!("{SECRET}\n")).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let c = std::ffi::CString::new(s(&probe)).unwrap();
    // SAFETY: a valid C string; root changes the owner of a file it made.
    assert_eq!(unsafe { libc::chown(c.as_ptr(), 0, 0) }, 0);
    fs::set_permissions(&probe, fs::Permissions::from_mode(0o4755)).unwrap();
    let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    let reachable = Mode::Native.command("setpriv").args(nobody).args(["test", "-x", s(&probe)]).output();
    if reachable.code() != 0
        || Mode::Native
            .command("setpriv")
            .args(nobody)
            .args(["test", "-x", s(&cloister_bin())])
            .output()
            .code()
            != 0
    {
        eprintln!("a_setuid_program_gains_no_privilege: skipped: nobody cannot reach the checkout");
        return;
    }
    let native =
        Mode::Native.command("setpriv").args(nobody).arg(&probe).arg(&secret).current_dir("/").output();
    native.success();
    assert_eq!(
        native.field("euid"),
        "0",
        "the setuid copy gives no root natively: the test tests nothing\n{native}"
    );

    let out = Mode::Native
        .command("setpriv")
        .args(nobody)
        .arg(cloister_bin())
        .arg("run")
        .args(backend_args())
        .arg("--")
        .arg(&probe)
        .arg(&secret)
        .env("HOME", &dir)
        .current_dir("/")
        .output();
    out.success();
    assert_not_leaked(&out);
    assert_eq!((out.field("ruid"), out.field("euid")), ("65534", "65534"), "the program gained root\n{out}");
    assert_one_of(&out, "read", &["EACCES", "ENOENT"], "no_new_privs");
    // EINVAL where the sandbox's user namespace maps no uid 0 at all.
    assert_one_of(&out, "setuid", &["EPERM", "EINVAL"], "no_new_privs");
}

// ---------------------------------------------------------------------------------------------
// Resources

/// Starts `true` on the host every 200 ms until `done` is set; returns the longest one took. A host that
/// stays responsive answers each in a few milliseconds; the bound the tests put on it is wide
/// (tens of seconds), since it is about the host not hanging, not about speed.
fn responsiveness(done: Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<Duration> {
    std::thread::spawn(move || {
        let mut worst = Duration::ZERO;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            let start = Instant::now();
            let ok = Command::new("true").status().is_ok_and(|s| s.success());
            worst = worst.max(if ok { start.elapsed() } else { Duration::MAX });
            std::thread::sleep(Duration::from_millis(200));
        }
        worst
    })
}

/// A fork bomb under the `untrusted` policy as it is (no `--limit`): it stops at the policy's
/// `processes` (4096; for root the pid namespace's `pid_max` or a pids cgroup) with `EAGAIN`,
/// the host keeps starting processes meanwhile, and nothing of the bomb is left after the run.
/// Stopped by the `limits` section and the pid namespace.
#[test]
fn a_fork_bomb_under_untrusted_stops_and_the_host_stays_responsive() {
    let exe = compile_c("forkbomb", &[]);
    let token = "100001";
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = responsiveness(Arc::clone(&done));
    let out = Mode::Cloister.command(&exe).arg(token).timeout(Duration::from_secs(180)).output();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let worst = probe.join().unwrap();
    if out.stderr.contains("the processes limit does not hold here") {
        eprintln!("a_fork_bomb_under_untrusted_...: skipped: root without a pids cgroup or pid_max");
        return;
    }
    out.success();
    assert_eq!(out.field("error"), "EAGAIN", "the bomb did not stop on the limit\n{out}");
    assert!(out.int_field("forks") < 4096 + 301, "more processes than the limit\n{out}");
    assert!(worst < Duration::from_secs(30), "the host could not start a process for {worst:?}\n{out}");
    let left = || {
        fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
                cmdline.windows(8).any(|w| w == b"forkbomb")
                    && cmdline.split(|&b| b == 0).any(|a| a == token.as_bytes())
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while left() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(left(), 0, "bomb processes outlived the run\n{out}");
}

/// Forks four children that each allocate up to 1 GiB; prints how far each got.
const MULTI_HOG: &str = "
import os
pids = []
for i in range(4):
    pid = os.fork()
    if pid == 0:
        x = []
        try:
            while len(x) < 64:
                x.append(bytearray(16 << 20))
            os._exit(0)
        except MemoryError:
            os._exit(min(len(x), 63) + 1)
    pids.append(pid)
for pid in pids:
    print('stopped_at=%d' % (os.waitpid(pid, 0)[1] >> 8))
";

/// A memory hog that forks to multiply what it may take: each of four processes stops at
/// `memory_bytes` (`RLIMIT_DATA`, per process), the host stays responsive. What it shows, and
/// what it does not: the limit holds per process, so the sandbox's total is `memory_bytes` times
/// its processes; `untrusted` sets no memory limit at all (docs/limits.md), so this needs
/// `--limit`. (One process against the limit is `tests/limits.rs`.)
#[test]
fn a_forking_memory_hog_stops_at_memory_bytes_in_every_process() {
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = responsiveness(Arc::clone(&done));
    let out = Mode::Cloister
        .command(cloister_tests::PYTHON3)
        .args(["-c", MULTI_HOG])
        .cloister_arg("--limit")
        .cloister_arg("memory_bytes=192M")
        .output();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let worst = probe.join().unwrap();
    out.success();
    let stops: Vec<&str> = fields(&out, |k| k == "stopped_at").into_iter().map(|(_, v)| v).collect();
    assert_eq!(stops.len(), 4, "\n{out}");
    for stop in stops {
        // Exit status n+1 after n pieces of 16 MiB: stopped below 192 MiB, and not at once.
        let pieces: u32 = stop.parse().unwrap();
        assert!((2..=12).contains(&pieces), "a child did not stop at the limit ({stop})\n{out}");
    }
    assert!(worst < Duration::from_secs(30), "the host could not start a process for {worst:?}\n{out}");
}

/// Bytes of regular files under `dir`, as the host's disk holds them (a directory that vanishes
/// meanwhile counts as empty).
fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => bytes_under(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.blocks() * 512),
            _ => 0,
        })
        .sum()
}

/// Fills the private `/tmp` and then the overlay (a directory of the host's that the view shows)
/// with 32 MiB each, says how far each got, and stays a second for the test to look at the disk.
const FILL: &str = "head -c 33554432 /dev/zero > /tmp/fill; echo tmp_status=$?; echo tmp_bytes=$(wc -c < /tmp/fill); \
     head -c 33554432 /dev/zero > \"$1/fill\"; echo overlay_status=$?; echo overlay_bytes=$(wc -c < \"$1/fill\"); sleep 1";

/// Runs [`FILL`] (with `gate` false) or `disk_fill` under `untrusted` with `options`, its state
/// directory in a fresh `TMPDIR`; returns the outcome and the most the host's disk held there
/// during the run.
fn fill_the_disk(label: &str, gate: bool, options: &[&str]) -> (Outcome, u64) {
    let tmpdir = temp_dir(label);
    let host_dir = temp_dir(&format!("{label}-visible"));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (done, tmpdir) = (Arc::clone(&done), tmpdir.clone());
        std::thread::spawn(move || {
            let mut most = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                most = most.max(bytes_under(&tmpdir));
                std::thread::sleep(Duration::from_millis(20));
            }
            most
        })
    };
    let cmd = if gate {
        Mode::Cloister.command(escape_program("disk_fill")).args([s(&runtime()), "33554432"])
    } else {
        Mode::Cloister.command("sh").args(["-c", FILL, "fill", s(&host_dir)])
    };
    let cmd = cmd.env("TMPDIR", &tmpdir);
    let out = options.iter().fold(cmd, |cmd, o| cmd.cloister_arg(o)).output();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let most = watcher.join().unwrap();
    assert!(!host_dir.join("fill").exists(), "the overlay's file reached the host\n{out}");
    (out, most)
}

/// The limit whose tests fill the disk.
const OVERLAY_LIMIT: i64 = 8 << 20;

/// Filling the disk: `head -c` of 32 MiB into the private `/tmp` and into the overlay under
/// `--limit overlay_bytes=8M`. Both stop with `ENOSPC` ("No space left on device") at the
/// limit together, and the host's disk (where the state directory lies) gets nothing: the private
/// layer is a tmpfs of that size in the sandbox's mount namespace. The control, without the
/// limit, puts the 64 MiB on the host's disk.
#[test]
fn filling_the_disk_stops_at_overlay_bytes() {
    const LIMIT: i64 = OVERLAY_LIMIT;
    let (out, most) = fill_the_disk("fill-limited", false, &["--limit", "overlay_bytes=8M"]);
    out.success();
    if out.stderr.contains("overlay_bytes does not hold here") {
        eprintln!("filling_the_disk_...: skipped: no mount namespace on this host\n{out}");
        return;
    }
    assert_ne!(out.int_field("tmp_status"), 0, "\n{out}");
    assert_ne!(out.int_field("overlay_status"), 0, "\n{out}");
    assert!(out.stderr.contains("No space left on device"), "\n{out}");
    let total = out.int_field("tmp_bytes") + out.int_field("overlay_bytes");
    assert!(total <= LIMIT, "{total} bytes went past the {LIMIT}-byte limit\n{out}");
    assert!(most < 1 << 20, "the host's disk held {most} bytes of the sandbox's\n{out}");

    let (control, most) = fill_the_disk("fill-unlimited", false, &[]);
    control.success();
    assert_eq!(control.int_field("overlay_bytes"), 32 << 20, "\n{control}");
    assert!(most >= 32 << 20, "without the limit the host's disk got only {most} bytes\n{control}");
}

/// The same past the view: `disk_fill` writes 32 MiB through the runtime's gate straight into
/// the state directory's upper tree (where Landlock lets the sandbox write), after 32 MiB into
/// its `/tmp` the ordinary way. Under `--limit overlay_bytes=8M` each stops with `ENOSPC` at the
/// limit, since the host kernel enforces the tmpfs's size whoever writes, and the host's disk
/// gets nothing; the control, without the limit, puts the gate's 32 MiB on the host's disk.
/// Under ptrace, with no gate, the second writer is a raw `write` into `/tmp` that the tracer
/// lets through to the same tmpfs: the limit holds it the same way.
#[test]
fn filling_the_disk_through_the_gate_stops_at_overlay_bytes() {
    let (out, most) = fill_the_disk("fill-gate", true, &["--limit", "overlay_bytes=8M"]);
    out.success();
    assert_gate(&out);
    if out.stderr.contains("overlay_bytes does not hold here") {
        eprintln!("filling_the_disk_through_the_gate_...: skipped: no mount namespace on this host\n{out}");
        return;
    }
    for way in ["direct", "gate"] {
        assert_eq!(out.field(&format!("{way}_stop")), "ENOSPC", "{way}\n{out}");
        let bytes = out.int_field(&format!("{way}_bytes"));
        assert!(bytes <= OVERLAY_LIMIT && bytes > 1 << 20, "{way}: {bytes} bytes\n{out}");
    }
    assert!(most < 1 << 20, "the host's disk held {most} bytes of the sandbox's\n{out}");

    let (control, most) = fill_the_disk("fill-gate-unlimited", true, &[]);
    control.success();
    assert_gate(&control);
    assert_eq!(control.field("gate_stop"), "most", "\n{control}");
    assert!(most >= 32 << 20, "without the limit the host's disk got only {most} bytes\n{control}");
}

// ---------------------------------------------------------------------------------------------
// Findings

/// A host block device whose backing image lies in a hidden directory (`~/.ssh/disk.img`, on a
/// loop device the test attaches): the sandbox must not read the hidden bytes through the
/// device. A sandbox run as root would (the owner's permission bits are enough, and `/dev` is
/// shown as it is): stopped by the mount namespace, which binds an empty file over every block
/// device under `/dev` (`launcher/src/view/mounts.rs`). Needs root (a loop device).
#[test]
fn a_block_device_does_not_show_a_hidden_files_bytes() {
    if !root() {
        eprintln!("a_block_device_...: skipped: attaching a loop device needs root");
        return;
    }
    let home = Home::new("block-device");
    let image = home.dir.join(".ssh/disk.img");
    let mut bytes = vec![0u8; 1 << 16];
    bytes[..SECRET.len()].copy_from_slice(SECRET.as_bytes());
    fs::write(&image, bytes).unwrap();
    let attach =
        Command::new("losetup").args(["--find", "--show", "--read-only"]).arg(&image).output().unwrap();
    if !attach.status.success() {
        eprintln!("a_block_device_...: skipped: losetup: {}", String::from_utf8_lossy(&attach.stderr));
        return;
    }
    let device = String::from_utf8(attach.stdout).unwrap().trim().to_owned();
    let out = Mode::Cloister
        .command(escape_program("block_device"))
        .args([s(&runtime()), &device])
        .env("HOME", &home.dir)
        .output();
    let _ = Command::new("losetup").args(["--detach", &device]).status();
    out.success();
    assert_gate(&out);
    assert_not_leaked(&out);
}
