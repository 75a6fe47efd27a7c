//! `--net nat` with real programs: the sandbox reaches the host's loopback through the gateway
//! 10.0.2.2 only where `--allow` (or the policy's `network.allow`) says.
//!
//! Every server a test starts runs natively on the host's 127.0.0.1, on a port the kernel
//! picks, and is stopped by a guard when the test ends, passing or not: Python's `http.server`,
//! a sink that hashes what it receives, a UDP echo server. curl and Python in the sandbox reach
//! them through the gateway, or are refused (at once, not after a timeout); iperf3 runs over TCP
//! and UDP both ways against a native iperf3 server; the gateway's DNS
//! answers allowed names from `/etc/hosts` and refuses the others. No traffic goes anywhere but
//! the loopback: refused names and addresses are refused by the gateway itself.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cloister_tests::{cloister, temp_dir, write_file, Invocation, Mode, PYTHON3, SYSTEM_PATH};
use sha2::{Digest, Sha256};

/// How long a refused connection may take: a RST or an ICMP error, not a timeout.
const QUICK: Duration = Duration::from_secs(5);

fn s(path: &Path) -> &str {
    path.to_str().expect("scratch paths are UTF-8")
}

/// A Python program running natively on the host, stopped when dropped; its first line of
/// output is the port it listens on.
struct HostServer {
    child: Child,
    port: u16,
}

impl HostServer {
    fn start(script: &str, args: &[&str]) -> HostServer {
        let path = temp_dir("nat-server").join("server.py");
        write_file(&path, script, 0o644);
        let mut child = Command::new(PYTHON3)
            .arg("-u")
            .arg(&path)
            .args(args)
            .env("PATH", SYSTEM_PATH)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the server printed {line:?}"));
        HostServer { child, port }
    }

    /// Python's `http.server` serving `dir` on 127.0.0.1.
    fn http(dir: &Path) -> HostServer {
        HostServer::start(HTTP_SERVER, &[s(dir)])
    }
}

impl Drop for HostServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `http.server` on 127.0.0.1 and a port the kernel picks; prints the port.
const HTTP_SERVER: &str = r#"
import functools, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
handler.log_message = lambda *a: None
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// Receives one TCP stream on 127.0.0.1 and writes its length and sha256 to the file argv[1].
const SINK: &str = r#"
import hashlib, socket, sys
server = socket.create_server(("127.0.0.1", 0))
print(server.getsockname()[1], flush=True)
conn, _ = server.accept()
digest, total = hashlib.sha256(), 0
while True:
    chunk = conn.recv(1 << 20)
    if not chunk:
        break
    digest.update(chunk)
    total += len(chunk)
conn.sendall(b"%d %s\n" % (total, digest.hexdigest().encode()))
conn.close()
"#;

/// Sends argv[3] MiB of pseudo-random bytes to argv[1]:argv[2], half-closes, and prints its own
/// count and sha256, then the sink's.
const SOURCE: &str = r#"
import hashlib, random, socket, sys
rng = random.Random(4)
digest, total = hashlib.sha256(), 0
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60) as conn:
    for _ in range(int(sys.argv[3])):
        chunk = rng.randbytes(1 << 20)
        conn.sendall(chunk)
        digest.update(chunk)
        total += len(chunk)
    conn.shutdown(socket.SHUT_WR)
    print(total, digest.hexdigest())
    print(conn.makefile().readline().strip())
"#;

/// Echoes UDP datagrams upper-cased on 127.0.0.1.
const UDP_ECHO: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
while True:
    data, peer = s.recvfrom(65535)
    s.sendto(data.upper(), peer)
"#;

/// Sends "ping ADDRESS" to argv[1]:argv[2] over UDP and prints the answer, or the error.
const UDP_PING: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
s.connect((sys.argv[1], int(sys.argv[2])))
for i in range(3):
    s.send(b"ping %d" % i)
    try:
        print(s.recv(65535).decode())
    except OSError as e:
        print("error", e.errno)
"#;

/// Asks the gateway's DNS (10.0.2.3) for argv[1]'s A (or argv[2]'s type) records; prints the
/// response code and the addresses.
const DNS_QUERY: &str = r#"
import socket, struct, sys
qtype = int(sys.argv[2]) if len(sys.argv) > 2 else 1
query = struct.pack(">HHHHHH", 0x4321, 0x0100, 1, 0, 0, 0)
for label in sys.argv[1].split("."):
    query += bytes([len(label)]) + label.encode()
query += b"\0" + struct.pack(">HH", qtype, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
s.sendto(query, ("10.0.2.3", 53))
reply, _ = s.recvfrom(4096)
assert reply[:2] == query[:2]
count, at, addrs = struct.unpack(">H", reply[6:8])[0], len(query), []
for _ in range(count):
    rtype, _, _, length = struct.unpack(">HHIH", reply[at + 2:at + 12])
    at += 12
    if rtype == 1:
        addrs.append(socket.inet_ntoa(reply[at:at + 4]))
    at += length
print("rcode", reply[3] & 15, *addrs)
"#;

/// `PROGRAM ARGS` in a `--net nat` sandbox with `allow` entries.
fn nat(allow: &[String], program: &str, args: &[&str]) -> Invocation {
    let mut run = Mode::Cloister.command(program).args(args).cloister_arg("--net").cloister_arg("nat");
    for entry in allow {
        run = run.cloister_arg("--allow").cloister_arg(entry);
    }
    run
}

/// A page on the host's loopback with its bytes, and a Python script file in `dir`.
fn site() -> (PathBuf, String) {
    let dir = temp_dir("nat-site");
    let body: String = (0..2000).map(|i| format!("line {i} of the nat's test page\n")).collect();
    write_file(&dir.join("page.txt"), &body, 0o644);
    (dir, body)
}

fn script(name: &str, text: &str) -> PathBuf {
    let path = temp_dir("nat-script").join(name);
    write_file(&path, text, 0o644);
    path
}

/// curl through the gateway fetches the page from the host's 127.0.0.1 when the port is
/// allowed; without the entry, or with another port's, the connection is refused at once, and
/// the refusal is in the trace.
#[test]
fn curl_reaches_the_hosts_loopback_only_where_allowed() {
    let (dir, body) = site();
    let server = HostServer::http(&dir);
    let url = format!("http://10.0.2.2:{}/page.txt", server.port);
    let curl = ["-sS", "--max-time", "20", url.as_str()];

    let out = nat(&[format!("10.0.2.2:{}", server.port)], "curl", &curl).output();
    out.success();
    assert!(
        out.stdout == body,
        "the page arrived changed: {} bytes of {}\n{out}",
        out.stdout.len(),
        body.len()
    );
    // 127.0.0.1 in an entry names the host's loopback too.
    nat(&[format!("127.0.0.1:{}", server.port)], "curl", &curl).output().success();

    let trace = temp_dir("nat-trace").join("trace.jsonl");
    for allow in [vec![], vec![format!("10.0.2.2:{}", server.port + 1)], vec![format!("*:{}", server.port)]] {
        let out = nat(&allow, "curl", &curl).trace(&trace).output();
        out.expect_code(7);
        assert!(out.stderr.contains("Couldn't connect to server"), "{allow:?}\n{out}");
        assert!(out.elapsed < QUICK, "refused slowly ({:?}) with {allow:?}", out.elapsed);
    }
    let events = std::fs::read_to_string(&trace).unwrap();
    let destination = format!(r#""destination":"10.0.2.2:{}""#, server.port);
    assert!(
        events.lines().any(|l| l.contains(r#""event":"refused""#) && l.contains(&destination)),
        "no refusal event for {destination} in the trace:\n{}",
        events.lines().filter(|l| l.contains("cloister::net")).collect::<Vec<_>>().join("\n")
    );
}

/// The policy's `network.allow` lets the sandbox out as `--allow` does.
#[test]
fn the_policys_allow_list_lets_the_sandbox_out() {
    let (dir, body) = site();
    let server = HostServer::http(&dir);
    let policy = temp_dir("nat-policy").join("nat.json");
    let text = format!(
        r#"{{"filesystem": {{"overlay": ["/"], "tmpfs": ["/tmp"]}}, "network": {{"mode": "nat", "allow": ["10.0.2.2:{}"]}}}}"#,
        server.port
    );
    write_file(&policy, &text, 0o644);
    let url = format!("http://10.0.2.2:{}/page.txt", server.port);
    let out = Mode::Cloister.command("curl").args(["-sS", "--max-time", "20", &url]).policy(&policy).output();
    out.success();
    assert!(out.stdout == body, "\n{out}");
}

/// 128 MiB from the host's loopback to the sandbox (curl from http.server) arrive unchanged.
#[test]
fn a_128_mib_download_arrives_intact() {
    let dir = temp_dir("nat-big");
    let mut file = std::fs::File::create(dir.join("big.bin")).unwrap();
    let mut digest = Sha256::new();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..128 {
        for word in chunk.chunks_mut(8) {
            // xorshift64: bytes no compressor or cache can shortcut.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        digest.update(&chunk);
        file.write_all(&chunk).unwrap();
    }
    drop(file);
    let expected = format!("{:x}", digest.finalize());
    let server = HostServer::http(&dir);
    let url = format!("http://10.0.2.2:{}/big.bin", server.port);
    let out =
        nat(&[format!("10.0.2.2:{}", server.port)], "sh", &["-c", &format!("curl -sS {url} | sha256sum")])
            .timeout(Duration::from_secs(120))
            .output();
    out.success();
    assert_eq!(out.stdout.split_whitespace().next(), Some(expected.as_str()), "\n{out}");
}

/// 100 MiB from the sandbox to a sink on the host's loopback arrive whole, and the half-close
/// lets the sink answer on the same connection.
#[test]
fn a_100_mib_upload_arrives_intact_and_half_closes() {
    let sink = HostServer::start(SINK, &[]);
    let source = script("source.py", SOURCE);
    let port = sink.port.to_string();
    let out = nat(&[format!("10.0.2.2:{port}")], PYTHON3, &[s(&source), "10.0.2.2", &port, "100"])
        .timeout(Duration::from_secs(120))
        .output();
    out.success();
    let lines = out.lines();
    assert_eq!(lines.len(), 2, "\n{out}");
    assert!(lines[0].starts_with(&format!("{} ", 100 << 20)), "\n{out}");
    assert_eq!(lines[0], lines[1], "the sink received other bytes than were sent\n{out}");
}

/// The gateway's DNS answers a name on the allow-list from the host's /etc/hosts (localhost, as
/// the gateway's address), which then leads to the host's loopback; it refuses other names
/// with NXDOMAIN, and a name entry lets nothing through before the name was looked up.
#[test]
fn dns_answers_allowed_names_only() {
    let (dir, body) = site();
    let server = HostServer::http(&dir);
    let query = script("dns.py", DNS_QUERY);
    let url = format!("http://10.0.2.2:{}/page.txt", server.port);
    let allow = [format!("localhost:{}", server.port)];
    let program = format!(
        "curl -sS --max-time 20 {url} >/dev/null 2>&1 && echo before: reached || echo before: refused; \
         {PYTHON3} {q} localhost; {PYTHON3} {q} localhost 28; {PYTHON3} {q} nowhere.example; \
         {PYTHON3} {q} LocalHost; curl -sS --max-time 20 {url}",
        q = s(&query)
    );
    let out = nat(&allow, "sh", &["-c", &program]).output();
    out.success();
    let lines = out.lines();
    assert_eq!(
        lines[..5],
        ["before: refused", "rcode 0 10.0.2.2", "rcode 0", "rcode 3", "rcode 0 10.0.2.2"],
        "\n{out}"
    );
    assert!(out.stdout.ends_with(&body), "\n{out}");
}

/// UDP datagrams reach an echo server on the host's loopback and come back; to a port the
/// allow-list does not name, the sandbox's socket gets ICMP port unreachable (ECONNREFUSED).
#[test]
fn udp_echoes_through_the_gateway_and_refused_ports_are_unreachable() {
    let echo = HostServer::start(UDP_ECHO, &[]);
    let ping = script("ping.py", UDP_PING);
    let port = echo.port.to_string();
    let out = nat(&[format!("10.0.2.2:{port}")], PYTHON3, &[s(&ping), "10.0.2.2", &port]).output();
    out.success();
    assert_eq!(out.lines(), ["PING 0", "PING 1", "PING 2"], "\n{out}");

    let other = (echo.port + 1).to_string();
    let out = nat(&[format!("10.0.2.2:{port}")], PYTHON3, &[s(&ping), "10.0.2.2", &other]).output();
    out.success();
    assert!(out.lines().contains(&"error 111"), "no ECONNREFUSED\n{out}");
    assert!(out.elapsed < Duration::from_secs(10), "refused slowly: {:?}", out.elapsed);
}

/// iperf3 in the sandbox against an iperf3 server on the host's loopback, TCP and UDP, each
/// way: every run completes and moves data (how fast is for bench/net to say).
#[test]
fn iperf3_runs_through_the_gateway_over_tcp_and_udp() {
    for (what, extra) in [
        ("tcp", &[][..]),
        ("tcp -R", &["-R"][..]),
        ("udp", &["-u", "-b", "50M"][..]),
        ("udp -R", &["-u", "-b", "50M", "-R"][..]),
    ] {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let mut server = Command::new("iperf3")
            // The receiving end gives up after 5 s without data: iperf3 can otherwise wait
            // forever for a UDP test's last datagrams when a loaded machine drops them.
            .args(["-s", "-1", "-B", "127.0.0.1", "-p", &port.to_string(), "--rcv-timeout", "5000"])
            .env("PATH", SYSTEM_PATH)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("iperf3 (apt-get install iperf3; .ci/run installs it)");
        let mut args = vec!["-c", "10.0.2.2", "-p", "", "-t", "1", "-J"];
        let port_text = port.to_string();
        args[3] = &port_text;
        args.extend_from_slice(extra);
        // iperf3 takes a client's receive timeout only when the client receives.
        if extra.contains(&"-R") {
            args.extend_from_slice(&["--rcv-timeout", "5000"]);
        }
        let mut out = None;
        // The server may take a moment to listen.
        for _ in 0..50 {
            let run =
                nat(&[format!("10.0.2.2:{port}")], "iperf3", &args).timeout(Duration::from_secs(60)).output();
            // A client that could not connect yet may exit 0 with the error in its JSON.
            if run.code() == 0 && !run.stdout.contains("\"error\"") {
                out = Some(run);
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = server.kill();
        let _ = server.wait();
        let out = out.unwrap_or_else(|| panic!("iperf3 {what} never completed"));
        let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("iperf3 -J prints JSON");
        let end = &report["end"];
        let bytes =
            if what.starts_with("tcp") { &end["sum_received"]["bytes"] } else { &end["sum"]["bytes"] };
        assert!(bytes.as_u64().unwrap_or(0) > 0, "iperf3 {what} moved nothing\n{out}");
    }
}

/// Inside: eth0 at 10.0.2.15/24 with the default route through 10.0.2.2, and (with a view)
/// an /etc/resolv.conf that names the gateway's DNS, so that the program's own resolver asks it:
/// a name off the allow-list is "not found" at once (NXDOMAIN), never a timeout.
#[test]
fn the_sandbox_has_eth0_behind_the_gateway_and_its_dns() {
    let lookup = r#"import socket
try:
    socket.getaddrinfo("nowhere.example", 80)
except socket.gaierror as e:
    print("gaierror", e.errno == socket.EAI_NONAME)"#;
    let program = format!(
        "ip -4 addr show eth0; ip route; cat /etc/resolv.conf; echo hosts=$(getent hosts $(hostname)); \
         {PYTHON3} -c '{lookup}'"
    );
    let out = nat(&[], "sh", &["-c", &program]).output();
    out.success();
    assert!(out.stdout.contains("inet 10.0.2.15/24"), "\n{out}");
    assert!(out.stdout.contains("default via 10.0.2.2 dev eth0"), "\n{out}");
    assert!(out.stdout.contains("mtu 65520"), "\n{out}");
    assert!(out.stdout.contains("\nnameserver 10.0.2.3\n"), "\n{out}");
    // The sandbox's own /etc/hosts names it at its own address.
    assert!(out.stdout.contains("\nhosts=10.0.2.15 "), "\n{out}");
    assert!(out.stdout.ends_with("gaierror True\n"), "\n{out}");
    assert!(out.elapsed < QUICK, "the lookup took {:?}", out.elapsed);
}

/// `--allow` needs `--net nat`, and a bad entry says what to write; both exit 125.
#[test]
fn allow_errors_say_what_to_fix() {
    cloister(&["run", "--net", "none", "--allow", "10.0.2.2:80", "--", "true"]).expect_failure_line(
        125,
        "--allow 10.0.2.2:80: the network mode none lets nothing out to allow; add --net nat, or leave --allow out",
    );
    // clap's words around ours, as for every flag's value.
    let out = cloister(&["run", "--net", "nat", "--allow", "10.0.2.2", "--", "true"]);
    out.expect_code(125);
    assert!(
        out.stderr.contains(r#"the allow-list entry "10.0.2.2" has no port (:PORT); write HOST:PORT"#),
        "\n{out}"
    );
}
