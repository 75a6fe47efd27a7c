//! `--net none` and `--net host` with real programs.
//!
//! Under `none` (the untrusted policy's mode) a sandbox has its own loopback: a Python asyncio
//! server and client inside one sandbox talk over 127.0.0.1 and ::1 as they do natively, and
//! `ip` sees `lo` alone. Nothing reaches the host's network: a server this test starts on the
//! host's 127.0.0.1 (a free port, closed when the test ends) gets no connection from Python, nor
//! from a C program that makes raw `syscall`s of its own and through the runtime's gate, which
//! cannot open packet, raw or vsock sockets either. Under `host` the same programs reach that
//! server, which is what makes the `none` checks mean something.
//!
//! Also: a host that refuses network namespaces gets one line and the fallback floor (no IP
//! sockets, Landlock's TCP lockout on a handed-in socket), an unprivileged user gets the
//! namespace through a user namespace, reproducible mode's pid namespace composes with it, the
//! unknown and malformed modes are exit 125, and `cloister doctor` agrees with what a run
//! does.
//!
//! No traffic goes anywhere but the host's loopback or the sandboxes' own.

use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cloister_tests::{
    assert_gate, backend_args, both_modes, cloister, cloister_bin, compile_c, temp_dir, write_file, Mode,
    Outcome, PYTHON3, SYSTEM_PATH,
};

/// How cloister's line begins when the host refuses the sandbox a network namespace.
const NO_NETWORK_NAMESPACE: &str = "cloister: no network namespace on this host";

fn runtime() -> PathBuf {
    cloister_bin().with_file_name("cloister-rt")
}

fn s(path: &Path) -> &str {
    path.to_str().expect("scratch paths are UTF-8")
}

/// How many times cloister said it went without a network namespace.
fn refusals(out: &Outcome) -> usize {
    out.stderr.lines().filter(|l| l.starts_with(NO_NETWORK_NAMESPACE)).count()
}

/// Whether this host gives `--net none` its namespace (a run says nothing about it).
fn namespace_here(test: &str) -> bool {
    static HERE: OnceLock<bool> = OnceLock::new();
    let here = *HERE.get_or_init(|| {
        let out = Mode::Cloister.command("true").cloister_arg("--net").cloister_arg("none").output();
        out.success();
        refusals(&out) == 0
    });
    if !here {
        eprintln!("{test}: skipped: this host refuses network namespaces (see the fallback test)");
    }
    here
}

/// Whether the host's own loopback has ::1, so that the native half can use it too.
fn host_has_ipv6_loopback() -> bool {
    std::fs::read_to_string("/proc/net/if_inet6")
        .is_ok_and(|t| t.lines().any(|l| l.starts_with("00000000000000000000000000000001")))
}

/// A server on the host's 127.0.0.1, on a free port, that accepts nothing by itself: the
/// kernel completes connections into its backlog, and [`HostServer::connections`] takes them.
/// Closed when dropped.
struct HostServer {
    listener: TcpListener,
}

impl HostServer {
    fn start() -> HostServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot listen on the host's 127.0.0.1");
        listener.set_nonblocking(true).unwrap();
        HostServer { listener }
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }

    /// How many connections arrived since the last call.
    fn connections(&self) -> usize {
        std::iter::from_fn(|| self.listener.accept().ok()).count()
    }
}

/// An asyncio server and client in one process, for each address given: prints
/// `ADDRESS pong ping` for each.
const ASYNCIO_PING: &str = r#"
import asyncio, sys
async def ping(host):
    async def serve(reader, writer):
        line = await reader.readline()
        writer.write(b"pong " + line)
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(serve, host, 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"ping\n")
    await writer.drain()
    print(host, (await reader.readline()).decode().strip())
    writer.close()
    server.close()
    await server.wait_closed()
for host in sys.argv[1:]:
    asyncio.run(ping(host))
"#;

/// Connects to the host's 127.0.0.1:PORT with Python's socket module: prints `connected`, or
/// the exception's name and errno.
const CONNECT: &str = r#"
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10).close()
    print("connected")
except OSError as e:
    print(type(e).__name__, e.errno)
"#;

/// The loopback addresses the asyncio test uses here.
fn loopback_addresses() -> Vec<&'static str> {
    let mut addresses = vec!["127.0.0.1"];
    if host_has_ipv6_loopback() {
        addresses.push("::1");
    } else {
        eprintln!("note: the host's loopback has no ::1, so only 127.0.0.1 is tried");
    }
    addresses
}

// ---------------------------------------------------------------------------------------------
// The sandbox's own loopback

/// A server and a client inside one sandbox talk over 127.0.0.1 and ::1 under `--net none`,
/// as they do natively.
fn asyncio_inside_one_sandbox(mode: Mode) {
    if mode.is_cloister() && !namespace_here("asyncio_inside_one_sandbox") {
        return;
    }
    let addresses = loopback_addresses();
    let out = mode
        .command(PYTHON3)
        .args(["-c", ASYNCIO_PING])
        .args(&addresses)
        .cloister_arg("--net")
        .cloister_arg("none")
        .output();
    out.success();
    let expected: Vec<String> = addresses.iter().map(|a| format!("{a} pong ping")).collect();
    assert_eq!(out.lines(), expected, "\n{out}");
}

/// The same under the default policy (untrusted, whose mode is `none`), with plain sockets
/// and a forked client this time.
fn sockets_inside_the_default_sandbox(mode: Mode) {
    if mode.is_cloister() && !namespace_here("sockets_inside_the_default_sandbox") {
        return;
    }
    let script = r#"
import os, socket, sys
for host in sys.argv[1:]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = socket.socket(family)
    server.bind((host, 0))
    server.listen()
    port = server.getsockname()[1]
    if os.fork() == 0:
        client = socket.create_connection((host, port))
        client.sendall(b"hello from the child")
        os._exit(0)
    conn, _ = server.accept()
    print(host, conn.recv(100).decode())
    os.wait()
"#;
    let addresses = loopback_addresses();
    let out = mode.command(PYTHON3).args(["-c", script]).args(&addresses).output();
    out.success();
    let expected: Vec<String> = addresses.iter().map(|a| format!("{a} hello from the child")).collect();
    assert_eq!(out.lines(), expected, "\n{out}");
}

both_modes!(asyncio_inside_one_sandbox, sockets_inside_the_default_sandbox);

/// `ip` (iproute2) sees the sandbox's `lo` alone, up, with 127.0.0.1; `--net host` sees more.
#[test]
fn ip_shows_only_the_loopback() {
    if !Path::new("/usr/sbin/ip").exists() && !Path::new("/bin/ip").exists() {
        eprintln!("ip_shows_only_the_loopback: skipped: no `ip` (install iproute2)");
        return;
    }
    if !namespace_here("ip_shows_only_the_loopback") {
        return;
    }
    let links = |net: &str| {
        let out = Mode::Cloister
            .command("ip")
            .args(["-o", "link", "show"])
            .cloister_arg("--net")
            .cloister_arg(net)
            .output();
        out.success();
        out.lines()
            .iter()
            .map(|l| l.split(':').nth(1).unwrap_or_default().trim().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(links("none"), ["lo"]);
    let native = Mode::Native.command("ip").args(["-o", "link", "show"]).output();
    native.success();
    assert_eq!(links("host").len(), native.lines().len(), "host mode shows the host's links\n{native}");

    let addr = Mode::Cloister.command("ip").args(["-o", "addr", "show", "up"]).output();
    addr.success();
    assert!(addr.stdout.contains("lo    inet 127.0.0.1/8"), "\n{addr}");
    assert!(addr.lines().iter().all(|l| l.split_whitespace().nth(1) == Some("lo")), "\n{addr}");
}

// ---------------------------------------------------------------------------------------------
// The host's network, out of reach

/// A server on the host's loopback: refused under `--net none` and under the default policy
/// (untrusted), reached under `--net host`, and `--net` overrides the policy both ways.
#[test]
fn the_hosts_loopback_is_out_of_reach_under_none_and_reached_under_host() {
    let server = HostServer::start();
    let port = server.port().to_string();
    let connect = |extra: &[&str]| {
        let mut cmd = Mode::Cloister.command(PYTHON3).args(["-c", CONNECT, &port]);
        for arg in extra {
            cmd = cmd.cloister_arg(arg);
        }
        let out = cmd.output();
        out.success();
        out
    };
    for extra in [&["--net", "none"][..], &[], &["--policy", "default", "--net", "none"]] {
        let out = connect(extra);
        // With its own namespace: nothing listens on the sandbox's loopback. Without one: no IP
        // socket at all.
        let refused = ["ConnectionRefusedError 111", "OSError 97"];
        assert!(refused.contains(&out.stdout.trim()), "{extra:?}\n{out}");
        assert_eq!(server.connections(), 0, "{extra:?} reached the host's server\n{out}");
    }
    for extra in [&["--net", "host"][..], &["--policy", "default"]] {
        let out = connect(extra);
        assert_eq!(out.stdout, "connected\n", "{extra:?}\n{out}");
        assert_eq!(server.connections(), 1, "{extra:?}\n{out}");
    }
    // The policy's own key, in a file.
    let policy = temp_dir("net-policy").join("none.json");
    write_file(&policy, r#"{"network": {"comment": "no network", "mode": "none"}}"#, 0o644);
    let out = connect(&["--policy", s(&policy)]);
    assert_ne!(out.stdout, "connected\n", "\n{out}");
    assert_eq!(server.connections(), 0, "\n{out}");
    let out = connect(&["--policy", s(&policy), "--net", "host"]);
    assert_eq!(out.stdout, "connected\n", "\n{out}");
    assert_eq!(server.connections(), 1, "\n{out}");
}

/// The C program's raw `syscall`s and the runtime's gate: under `--net none` no IP connection
/// reaches the host's server and no packet, raw or vsock socket opens; netlink opens, on the
/// sandbox's own namespace. Under `--net host` the same program connects, both ways. Under
/// ptrace there is no gate and both ways are the program's own `syscall`s, which the tracer
/// stops: the network namespace and the family allow-list answer them the same.
#[test]
fn raw_syscalls_do_not_reach_the_host_under_none() {
    let server = HostServer::start();
    let exe = compile_c("net_escape", &[]);
    let port = server.port().to_string();
    let run = |net: &str| {
        let out = Mode::Cloister
            .command(&exe)
            .args([s(&runtime()), &port])
            .cloister_arg("--net")
            .cloister_arg(net)
            .output();
        out.success();
        assert_gate(&out);
        out
    };
    let none = run("none");
    let in_namespace = refusals(&none) == 0;
    for how in ["direct", "gate"] {
        for family in ["inet", "inet6"] {
            let outcome = none.field(&format!("{family}_{how}"));
            let expected = if in_namespace { "ECONNREFUSED" } else { "EAFNOSUPPORT" };
            assert_eq!(outcome, expected, "{family} {how}\n{none}");
        }
        assert_eq!(none.field(&format!("packet_{how}")), "EAFNOSUPPORT", "\n{none}");
        assert_eq!(none.field(&format!("vsock_{how}")), "EAFNOSUPPORT", "\n{none}");
        let raw = if in_namespace { "EPERM" } else { "EAFNOSUPPORT" };
        assert_eq!(none.field(&format!("raw_{how}")), raw, "\n{none}");
        let netlink = if in_namespace { "opened" } else { "EAFNOSUPPORT" };
        assert_eq!(none.field(&format!("netlink_{how}")), netlink, "\n{none}");
    }
    assert_eq!(server.connections(), 0, "the sandbox reached the host's server\n{none}");

    let host = run("host");
    for key in ["inet_direct", "inet6_direct", "inet_gate", "inet6_gate"] {
        assert_eq!(host.field(key), "connected", "{key}\n{host}");
    }
    assert_eq!(server.connections(), 4, "\n{host}");
}

// ---------------------------------------------------------------------------------------------
// Composition, users, hosts without the namespace

/// Reproducible mode's pid namespace and `--net none` together: pid 2, and the loopback works.
#[test]
fn reproducible_mode_composes_with_the_network_namespace() {
    if !namespace_here("reproducible_mode_composes_with_the_network_namespace") {
        return;
    }
    let out = Mode::Cloister
        .command("sh")
        .args(["-c", &format!("echo pid=$$; exec {PYTHON3} -c '{ASYNCIO_PING}' 127.0.0.1")])
        .cloister_arg("--reproducible")
        .cloister_arg("--net")
        .cloister_arg("none")
        .output();
    out.success();
    assert_eq!(out.lines(), ["pid=2", "127.0.0.1 pong ping"], "\n{out}");
}

/// `no_ns net` refuses clone and unshare with CLONE_NEWNET, as a container without the right
/// would: one line says so, and the fallback floor leaves no IP, packet or netlink socket (so no
/// loopback), unix sockets work, and a TCP socket handed to the sandbox cannot connect
/// (Landlock, where the host's ABI has TCP rules). The pid namespace stays.
#[test]
fn a_host_without_network_namespaces_gets_one_line_and_the_fallback_floor() {
    let wrapper = compile_c("no_ns", &[]);
    let server = HostServer::start();
    let port = server.port().to_string();
    let exe = compile_c("net_escape", &[]);
    let out = Mode::Native
        .command(&wrapper)
        .args(["net", s(&cloister_bin()), "run"])
        .args(backend_args())
        .args(["--net", "none", "--", s(&exe), s(&runtime()), &port])
        .output();
    out.success();
    assert_eq!(refusals(&out), 1, "\n{out}");
    for key in ["inet", "inet6", "packet", "raw", "vsock", "netlink"] {
        for how in ["direct", "gate"] {
            assert_eq!(out.field(&format!("{key}_{how}")), "EAFNOSUPPORT", "{key} {how}\n{out}");
        }
    }

    let unix = "import socket; a, b = socket.socketpair(); a.send(b'unix'); print(b.recv(4).decode())";
    let loopback = "import socket\ntry:\n    socket.socket().bind(('127.0.0.1', 0)); print('bound')\n\
                    except OSError as e:\n    print(type(e).__name__, e.errno)";
    let script = format!("echo pid=$$; {PYTHON3} -c \"{unix}\"; {PYTHON3} -c \"{loopback}\"");
    let repro = Mode::Native
        .command(&wrapper)
        .args(["net", s(&cloister_bin()), "run"])
        .args(backend_args())
        .args(["--reproducible", "--net", "none", "--", "sh", "-c", &script])
        .output();
    repro.success();
    assert_eq!(refusals(&repro), 1, "\n{repro}");
    assert_eq!(repro.lines(), ["pid=2", "unix", "OSError 97"], "no loopback, unix sockets work\n{repro}");

    // A TCP socket made outside and handed in (descriptor 3) cannot connect out.
    let handed = unconnected_tcp_socket();
    let inherit = format!("exec 3<&{}; exec \"$@\"", handed.as_raw_fd());
    let try_handed = "import socket, sys\n\
                      s = socket.socket(fileno=3)\n\
                      try:\n    s.connect(('127.0.0.1', int(sys.argv[1]))); print('connected')\n\
                      except OSError as e:\n    print(type(e).__name__, e.errno)";
    let out = Mode::Native
        .command("sh")
        .args(["-c", &inherit, "sh", s(&wrapper), "net", s(&cloister_bin()), "run"])
        .args(backend_args())
        .args(["--policy", "default"])
        .args(["--net", "none", "--", PYTHON3, "-c", try_handed, &port])
        .output();
    out.success();
    assert_eq!(refusals(&out), 1, "\n{out}");
    if out.stderr.contains("Landlock refuses TCP bind and connect") {
        assert_eq!(out.stdout, "PermissionError 13\n", "\n{out}");
        assert_eq!(server.connections(), 0, "\n{out}");
    } else {
        eprintln!("note: this host's Landlock has no TCP rules; a handed-in socket is not confined");
    }
}

/// An unconnected IPv4 TCP socket the test can hand to a child: inheritable, not close-on-exec.
fn unconnected_tcp_socket() -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: socket returns a fresh descriptor (checked) that nothing else owns.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "cannot make a socket: {}", std::io::Error::last_os_error());
        std::os::fd::OwnedFd::from_raw_fd(fd)
    }
}

/// An unprivileged user gets the namespace through a user namespace: the loopback works inside
/// and the host's server is out of reach.
#[test]
fn an_unprivileged_user_gets_its_own_loopback() {
    // SAFETY: geteuid cannot fail and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    let setpriv = Path::new("/usr/bin/setpriv");
    if !root || !setpriv.exists() {
        eprintln!(
            "an_unprivileged_user_gets_its_own_loopback: skipped: needs root (to become nobody) and setpriv"
        );
        return;
    }
    let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    let reachable = format!("test -x '{}' && test -r '{}'", s(&cloister_bin()), s(&runtime()));
    if Mode::Native.command(setpriv).args(nobody).args(["sh", "-c", &reachable]).output().code() != 0 {
        eprintln!("an_unprivileged_user_gets_its_own_loopback: skipped: nobody cannot reach this checkout's binaries");
        return;
    }
    let server = HostServer::start();
    let port = server.port().to_string();
    let home = temp_dir("net-nobody");
    std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap();
    let as_nobody = |script: &str, args: &[&str]| {
        let out = Mode::Native
            .command(setpriv)
            .args(nobody)
            .args([s(&cloister_bin()), "run"])
            .args(backend_args())
            .args(["--net", "none", "--", PYTHON3, "-c", script])
            .args(args)
            .env("HOME", &home)
            .env("PATH", SYSTEM_PATH)
            .current_dir(&home)
            .output();
        out.success();
        out
    };
    let ping = as_nobody(ASYNCIO_PING, &["127.0.0.1"]);
    if refusals(&ping) != 0 {
        eprintln!(
            "an_unprivileged_user_gets_its_own_loopback: skipped: no user namespace for nobody here\n{ping}"
        );
        return;
    }
    assert_eq!(ping.stdout, "127.0.0.1 pong ping\n", "\n{ping}");
    let connect = as_nobody(CONNECT, &[&port]);
    assert_eq!(connect.stdout, "ConnectionRefusedError 111\n", "\n{connect}");
    assert_eq!(server.connections(), 0, "\n{connect}");
}

// ---------------------------------------------------------------------------------------------
// The command line and the doctor

/// Unknown modes and malformed ones are exit 125 with what to write instead, from the flag and
/// from a policy file; `--help` says that `host` is no isolation.
#[test]
fn unknown_and_malformed_modes_are_125() {
    // nat is built: tests/nat.rs; tap:IFNAME: tests/tap.rs.
    for mode in ["tap:", "tap:a/b"] {
        let out = cloister(&["run", "--net", mode, "--", "true"]);
        out.expect_code(125);
        assert!(out.stderr.contains("names no TAP device Linux could have"), "{mode}\n{out}");
        assert!(out.stderr.contains(r#"write "none""#), "{mode}\n{out}");
    }
    let out = cloister(&["run", "--net", "bridge", "--", "true"]);
    out.expect_code(125);
    assert!(out.stderr.contains(r#"there is no network mode "bridge""#), "\n{out}");

    let policy = temp_dir("net-policy").join("tap.json");
    write_file(&policy, r#"{"network": {"mode": "tap:"}}"#, 0o644);
    let out = Mode::Cloister.command("true").policy(&policy).output();
    out.expect_failure_line(125, "at $.network.mode: the network mode \"tap:\"");
    let check = cloister(&["policy", "check", s(&policy)]);
    assert_ne!(check.code(), 0, "\n{check}");

    let help = cloister(&["run", "--help"]);
    help.success();
    let text = help.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("--net <MODE>"), "\n{help}");
    assert!(text.contains("`host`: the host's network as it is, with NO isolation"), "\n{help}");
}

/// `policy show` says which network a built-in policy gives.
#[test]
fn policy_show_names_the_network() {
    for (name, mode) in [("untrusted", "none"), ("default", "host"), ("reproducible", "host")] {
        let out = cloister(&["policy", "show", name]);
        out.success();
        let value: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(value["network"]["mode"], mode, "{name}\n{out}");
    }
}

/// What the doctor says and what a run does agree, here and on a host that refuses the
/// namespace.
#[test]
fn doctor_reports_the_network_namespace() {
    let says_yes = |out: &Outcome| {
        out.success();
        let line = out
            .lines()
            .into_iter()
            .find(|l| l.starts_with("net namespace"))
            .unwrap_or_else(|| panic!("no net namespace line\n{out}"))
            .to_owned();
        line["net namespace".len()..].trim_start().starts_with("yes")
    };
    let run = Mode::Cloister.command("true").cloister_arg("--net").cloister_arg("none").output();
    run.success();
    assert_eq!(says_yes(&cloister(&["doctor"])), refusals(&run) == 0, "\n{run}");
    let wrapper = compile_c("no_ns", &[]);
    let refused = Mode::Native.command(&wrapper).args(["net", s(&cloister_bin()), "doctor"]).output();
    assert!(!says_yes(&refused), "\n{refused}");
}

/// Under `none`, `/sys/class/net` and `/sys/devices/virtual/net` list the sandbox's own
/// interfaces (its loopback), not the host's, and cannot be written.
#[test]
fn sysfs_shows_the_sandboxs_own_interfaces() {
    let script = "echo class=$(ls /sys/class/net); echo virtual=$(ls /sys/devices/virtual/net); \
                  (echo 1500 > /sys/class/net/lo/mtu) 2>/dev/null && echo written || echo refused";
    let out = Mode::Cloister.command("sh").args(["-c", script]).output();
    out.success();
    if out.stderr.contains("no network namespace") {
        eprintln!("sysfs_shows_...: skipped: this host refuses network namespaces");
        return;
    }
    assert_eq!((out.field("class"), out.field("virtual")), ("lo", "lo"), "\n{out}");
    assert!(out.stdout.ends_with("refused\n"), "\n{out}");
}
