//! Real network programs inside one sandbox, on its own loopback (`--net none`), each run
//! natively too as the reference: 1,000 concurrent connections that all echo and all close, a
//! forking server (accept in the parent, serve in children) with several clients at once, TCP
//! and UDP over ::1, `nc` as client and server, iperf3 over TCP and UDP, a 1 GiB stream compared
//! by sha256, and `getaddrinfo` with `AI_ADDRCONFIG` (also behind the NAT, where the sandbox has
//! an `eth0`).
//!
//! The asyncio server and client, and `ip` inside, are in tests/network.rs; `ip addr` and `ip
//! route` behind the NAT in tests/nat.rs. Every server here is started by the program under test
//! on 127.0.0.1 or ::1 of wherever it runs (the host's loopback natively, the sandbox's own under
//! cloister), and ends with it.

use std::net::TcpListener;
use std::time::Duration;

use cloister_tests::{both_modes, Invocation, Mode, PYTHON3};

/// `PROGRAM` under `--net none` (natively: as it is).
fn none(mode: Mode, program: &str) -> Invocation {
    mode.command(program).cloister_arg("--net").cloister_arg("none").timeout(Duration::from_secs(120))
}

/// Whether the host's own loopback has ::1, which the native halves of the IPv6 test need.
fn host_has_ipv6_loopback() -> bool {
    std::fs::read_to_string("/proc/net/if_inet6")
        .is_ok_and(|t| t.lines().any(|l| l.starts_with("00000000000000000000000000000001")))
}

/// A TCP port free on the host's loopback now, for programs that need one on their command line
/// (`nc`, iperf3). Inside a sandbox any port is free; natively this one very likely still is.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Panics, naming the package, unless `program` is on the system's path.
fn need(program: &str, package: &str) {
    let found = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .any(|dir| std::path::Path::new(dir).join(program).exists());
    assert!(found, "no {program}: apt-get install {package} (.ci/run installs it)");
}

/// An asyncio echo server and N clients in one process: all N connect at once (the listen
/// backlog holds them), each sends its number and reads it back, then all close; the server
/// counts the connections that ended cleanly (EOF after the echo). Needs 2N+ descriptors, so the
/// soft `RLIMIT_NOFILE` is raised to the hard one's bound first.
const MANY_CONNECTIONS: &str = r#"
import asyncio, resource, sys
n = int(sys.argv[1])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = 2 * n + 64
if soft < want:
    if hard != resource.RLIM_INFINITY and hard < want:
        sys.exit("RLIMIT_NOFILE's hard limit %d is below the %d descriptors needed" % (hard, want))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
closed = 0
async def serve(reader, writer):
    global closed
    while data := await reader.read(4096):
        writer.write(data)
        await writer.drain()
    closed += 1
    writer.close()
async def client(port, i):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return reader, writer
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=n)
    port = server.sockets[0].getsockname()[1]
    conns = await asyncio.gather(*(client(port, i) for i in range(n)))
    print("open", len(conns))
    for i, (_, w) in enumerate(conns):
        w.write(b"%d\n" % i)
    echoed = sum([await r.readline() == b"%d\n" % i for i, (r, _) in enumerate(conns)])
    print("echoed", echoed)
    for _, w in conns:
        w.close()
    await asyncio.gather(*(w.wait_closed() for _, w in conns))
    for _ in range(200):
        if closed == n:
            break
        await asyncio.sleep(0.05)
    print("closed", closed)
    server.close()
    await server.wait_closed()
asyncio.run(main())
"#;

/// 1,000 TCP connections open at once inside one sandbox, each echoes, all close cleanly.
fn a_thousand_concurrent_connections(mode: Mode) {
    let out = none(mode, PYTHON3).args(["-c", MANY_CONNECTIONS, "1000"]).output();
    out.success();
    assert_eq!(out.lines(), ["open 1000", "echoed 1000", "closed 1000"], "\n{out}");
}

/// A forking server: the parent accepts and forks a child per connection, which serves it
/// (answering with its own pid) and exits; the parent reaps them. The clients run at once, as
/// threads of a process of their own, and check that every answer came from a different
/// process than the server's parent.
const FORKING_SERVER: &str = r#"
import os, socket, sys, threading
n = int(sys.argv[1])
server = socket.create_server(("127.0.0.1", 0), backlog=n)
port = server.getsockname()[1]
parent = os.getpid()
clients = os.fork()
if clients == 0:
    server.close()
    answers = [None] * n
    def ask(i):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
            c.sendall(b"client %d\n" % i)
            answers[i] = c.makefile().readline().split()
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(n)]
    for t in threads: t.start()
    for t in threads: t.join()
    right = sum(a is not None and a[2:] == ["client", str(i)] for i, a in enumerate(answers))
    pids = {a[1] for a in answers if a}
    print("answers", right, "servers", len(pids), "parent_served", str(parent) in pids, flush=True)
    os._exit(0)
served = []
for _ in range(n):
    conn, _ = server.accept()
    child = os.fork()
    if child == 0:
        server.close()
        line = conn.makefile("rb").readline()
        conn.sendall(b"served %d " % os.getpid() + line)
        conn.close()
        os._exit(0)
    conn.close()
    served.append(child)
reaped = sum(os.waitpid(pid, 0)[1] == 0 for pid in served)
os.waitpid(clients, 0)
print("accepted", len(served), "reaped", reaped)
"#;

/// A forking server with eight clients at once, inside one sandbox.
fn a_forking_server_serves_each_client_in_a_child(mode: Mode) {
    let out = none(mode, PYTHON3).args(["-c", FORKING_SERVER, "8"]).output();
    out.success();
    assert_eq!(out.lines(), ["answers 8 servers 8 parent_served False", "accepted 8 reaped 8"], "\n{out}");
}

/// TCP and UDP over ::1: a listener bound to ::1 (IPV6_V6ONLY set, so 127.0.0.1 cannot reach it)
/// is reached from ::1, and a UDP datagram goes there and back.
const IPV6_LOOPBACK: &str = r#"
import socket
tcp = socket.socket(socket.AF_INET6)
tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
tcp.bind(("::1", 0))
tcp.listen()
port = tcp.getsockname()[1]
client = socket.create_connection(("::1", port))
conn, peer = tcp.accept()
client.sendall(b"over six")
print("tcp", conn.recv(100).decode(), "from", peer[0], "v6only", tcp.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
try:
    socket.create_connection(("127.0.0.1", port), timeout=5)
    print("v4 reached a v6-only listener")
except ConnectionRefusedError:
    print("v4 refused")
udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
udp.bind(("::1", 0))
sender = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
sender.sendto(b"datagram", udp.getsockname())
data, peer = udp.recvfrom(100)
udp.sendto(data.upper(), peer)
print("udp", sender.recv(100).decode(), "from", peer[0])
"#;

/// IPv6 on the loopback inside one sandbox.
fn ipv6_loopback_inside_one_sandbox(mode: Mode) {
    if !mode.is_cloister() && !host_has_ipv6_loopback() {
        eprintln!("ipv6_loopback_inside_one_sandbox::native: skipped: the host's loopback has no ::1");
        return;
    }
    let out = none(mode, PYTHON3).args(["-c", IPV6_LOOPBACK]).output();
    out.success();
    assert_eq!(
        out.lines(),
        ["tcp over six from ::1 v6only 1", "v4 refused", "udp DATAGRAM from ::1"],
        "\n{out}"
    );
}

/// `nc -l` as the server and `nc -N` as the client, over TCP and then UDP (`-u`), inside one
/// sandbox; the client retries until the server listens.
fn nc_client_and_server_inside_one_sandbox(mode: Mode) {
    need("nc", "netcat-openbsd");
    let port = free_port();
    let script = format!(
        r#"set -e
nc -l 127.0.0.1 {port} > tcp.out &
for i in $(seq 100); do echo "hello over tcp" | nc -N 127.0.0.1 {port} 2>/dev/null && break; sleep 0.1; done
wait
echo "tcp: $(cat tcp.out)"
nc -u -l 127.0.0.1 {port} > udp.out &
sleep 0.3
echo "hello over udp" | nc -u -w 1 127.0.0.1 {port}
sleep 0.3
kill $! 2>/dev/null || true
echo "udp: $(cat udp.out)""#
    );
    let dir = cloister_tests::temp_dir("nc");
    let out = none(mode, "sh").args(["-c", &script]).current_dir(&dir).output();
    out.success();
    assert_eq!(out.lines(), ["tcp: hello over tcp", "udp: hello over udp"], "\n{out}");
}

/// iperf3's server and client inside one sandbox, over TCP and then UDP (`-u`, 50 Mbit/s): each
/// run moves bytes and the UDP one reports its datagrams.
fn iperf3_tcp_and_udp_inside_one_sandbox(mode: Mode) {
    need("iperf3", "iperf3");
    // A client that cannot connect yet (the server is not listening) says so in its JSON but
    // may exit 0. iperf3 can wait forever for a UDP test's last datagrams when a loaded machine
    // drops them, and a one-off server whose test failed half-way may never take another: each
    // attempt
    // gets a server of its own on a port of its own, which gives up after 5 s without data,
    // and `timeout` bounds both ends.
    for (what, extra) in [("tcp", ""), ("udp", "-u -b 50M")] {
        let ports: Vec<String> = (0..3).map(|_| free_port().to_string()).collect();
        let script = format!(
            "for p in {ports}; do
               timeout 30 iperf3 -s -1 -B 127.0.0.1 -p $p --rcv-timeout 5000 >/dev/null 2>&1 & server=$!
               ok=
               for i in $(seq 50); do
                 timeout 15 iperf3 -c 127.0.0.1 -p $p -t 1 {extra} -J > run.json 2>/dev/null
                 grep -q '\"error\"' run.json || {{ ok=1; break; }}
                 sleep 0.1
               done
               kill $server 2>/dev/null; wait $server
               [ -n \"$ok\" ] && break
             done
             cat run.json",
            ports = ports.join(" ")
        );
        let dir = cloister_tests::temp_dir("iperf3-inside");
        let out = none(mode, "sh").args(["-c", &script]).current_dir(&dir).output();
        out.success();
        let report: serde_json::Value =
            serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{what}: iperf3 -J: {e}\n{out}"));
        let end = &report["end"];
        let bytes = if what == "udp" { &end["sum"]["bytes"] } else { &end["sum_received"]["bytes"] };
        assert!(bytes.as_u64().unwrap_or(0) > 0, "{what}: iperf3 moved nothing\n{out}");
        if what == "udp" {
            assert!(end["sum"]["packets"].as_u64().unwrap_or(0) > 0, "udp: no datagrams\n{out}");
        }
    }
}

/// Sends argv[1] MiB over 127.0.0.1 from a forked child to the parent; both hash what they saw
/// (sha256), and the parent prints the count and whether the digests match. Each MiB begins with
/// its number, so a lost, repeated or reordered block changes the digest.
const GIBIBYTE: &str = r#"
import hashlib, os, socket, struct, sys
mib = int(sys.argv[1])
server = socket.create_server(("127.0.0.1", 0))
port = server.getsockname()[1]
r, w = os.pipe()
if os.fork() == 0:
    server.close()
    block = bytearray(os.urandom(1 << 20))
    digest = hashlib.sha256()
    with socket.create_connection(("127.0.0.1", port)) as c:
        for i in range(mib):
            block[:8] = struct.pack(">Q", i)
            c.sendall(block)
            digest.update(block)
    os.write(w, digest.hexdigest().encode())
    os._exit(0)
os.close(w)
conn, _ = server.accept()
digest, total = hashlib.sha256(), 0
buf = bytearray(1 << 20)
while n := conn.recv_into(buf):
    digest.update(memoryview(buf)[:n])
    total += n
sent = os.read(r, 64).decode()
os.wait()
print("bytes", total, "match", sent == digest.hexdigest())
"#;

/// 1 GiB over the loopback inside one sandbox arrives intact.
fn a_gibibyte_arrives_intact_over_loopback(mode: Mode) {
    let out = none(mode, PYTHON3).args(["-c", GIBIBYTE, "1024"]).output();
    out.success();
    assert_eq!(out.lines(), ["bytes 1073741824 match True"], "\n{out}");
}

/// `getaddrinfo("localhost", 80, AI_ADDRCONFIG)`, then a connection to a server on the first
/// IPv4 answer. glibc's `AI_ADDRCONFIG` asks netlink which families have a non-loopback address:
/// under `none` none has, so it filters nothing; behind the NAT `eth0` has IPv4.
const ADDRCONFIG: &str = r#"
import socket
answers = socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG)
v4 = sorted({a[4][0] for a in answers if a[0] == socket.AF_INET})
print("v4", *v4)
server = socket.create_server((v4[0], 0))
socket.create_connection((v4[0], server.getsockname()[1])).sendall(b"found")
print("connected", server.accept()[0].recv(10).decode())
"#;

/// `getaddrinfo` with `AI_ADDRCONFIG` finds localhost inside `--net none`.
fn getaddrinfo_with_ai_addrconfig_under_none(mode: Mode) {
    let out = none(mode, PYTHON3).args(["-c", ADDRCONFIG]).output();
    out.success();
    assert_eq!(out.lines(), ["v4 127.0.0.1", "connected found"], "\n{out}");
}

both_modes!(
    a_thousand_concurrent_connections,
    a_forking_server_serves_each_client_in_a_child,
    ipv6_loopback_inside_one_sandbox,
    nc_client_and_server_inside_one_sandbox,
    iperf3_tcp_and_udp_inside_one_sandbox,
    a_gibibyte_arrives_intact_over_loopback,
    getaddrinfo_with_ai_addrconfig_under_none,
);

/// The same behind the NAT (no destination allowed: the lookup and the connection stay in the
/// sandbox), where the sandbox has IPv4 on `eth0` and glibc keeps IPv4 answers.
#[test]
fn getaddrinfo_with_ai_addrconfig_behind_the_nat() {
    let out = Mode::Cloister
        .command(PYTHON3)
        .args(["-c", ADDRCONFIG])
        .cloister_arg("--net")
        .cloister_arg("nat")
        .timeout(Duration::from_secs(60))
        .output();
    out.success();
    assert_eq!(out.lines(), ["v4 127.0.0.1", "connected found"], "\n{out}");
}
