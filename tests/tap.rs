//! `--net tap:IFNAME`: a sandbox attached to an existing TAP device, with real programs.
//!
//! Nothing here touches the host's network: each test makes a network namespace of its own
//! (`unshare -n`, or `unshare -rn` when not root), and in it a TAP device `tapx` at 10.77.0.1/24,
//! a Python `http.server` on that address, and cloister's sandboxes at 10.77.0.2 and 10.77.0.3.
//! From the namespace, an ICMP echo reaches a sandbox and a TCP client reads what a server in the
//! sandbox says; from the sandbox, curl fetches a file from the namespace's server. The
//! sandbox's `eth0` takes the device's MTU. The errors (no such device, not a TAP device, no
//! `--ip`, not allowed to attach) are exit 125 with what to do.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cloister_tests::{backend_args, cloister_bin, temp_dir, write_file, Mode, Outcome};

/// One ICMP echo request to argv[1] every 0.2 s from a raw socket (the test's own namespace, as
/// its root), until a reply comes (prints `pong from ADDRESS`) or 10 s pass.
const PING: &str = r#"
import socket, struct, sys, time
def checksum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
sock.settimeout(0.2)
body = struct.pack("!BBHHH", 8, 0, 0, 0x4242, 1) + b"cloister"
request = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
deadline = time.time() + 10
while time.time() < deadline:
    sock.sendto(request, (sys.argv[1], 0))
    try:
        while True:
            data, peer = sock.recvfrom(2048)
            icmp = data[(data[0] & 15) * 4:]
            if icmp[0] == 0 and icmp[4:6] == b"\x42\x42":
                print("pong from", peer[0])
                sys.exit(0)
    except socket.timeout:
        pass
print("no pong")
"#;

/// Connects to argv[1]:argv[2] until it can (10 s at most), and prints the line it is sent.
const FETCH: &str = r#"
import socket, sys, time
for _ in range(100):
    try:
        with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as c:
            print("got:", c.makefile().readline().strip())
            break
    except OSError:
        time.sleep(0.1)
else:
    print("never connected")
"#;

/// Inside the sandbox: serves one line to one client on argv[1]:7000.
const SERVE_ONE: &str = r#"
import socket, sys
server = socket.create_server((sys.argv[1], 7000))
conn, peer = server.accept()
conn.sendall(b"hello from the sandbox to %s\n" % peer[0].encode())
conn.close()
"#;

/// The namespace's set-up, then the scenario; `$CL` is cloister, `$DIR` a scratch directory.
const SCENARIO: &str = r#"
set -u
ip link set lo up
ip tuntap add tapx mode tap || { echo "no tuntap"; exit 0; }
ip addr add 10.77.0.1/24 dev tapx
ip link set tapx mtu 9000 up
echo "greetings over a TAP device" > "$DIR/site/greeting"
python3 -m http.server --bind 10.77.0.1 8080 --directory "$DIR/site" >/dev/null 2>&1 &
web=$!
"$CL" run $BACKEND --net tap:tapx --ip 10.77.0.2/24 -- python3 "$DIR/serve_one.py" 10.77.0.2 2>"$DIR/server.err" &
sandbox=$!
python3 "$DIR/ping.py" 10.77.0.2
python3 "$DIR/fetch.py" 10.77.0.2 7000
wait $sandbox
echo "server sandbox: $? $(cat "$DIR/server.err")"
"$CL" run $BACKEND --net tap:tapx --ip 10.77.0.3/24 -- sh -c \
    'ip -o -4 addr show eth0; ip -o link show eth0; curl -sS -m 10 http://10.77.0.1:8080/greeting'
echo "client sandbox: $?"
kill $web
"#;

/// The errors, in the same kind of namespace.
const ERRORS: &str = r#"
set -u
ip link set lo up
ip tuntap add tapx mode tap || { echo "no tuntap"; exit 0; }
for mode in tap:nosuch tap:lo; do
    "$CL" run $BACKEND --net $mode --ip 10.77.0.2/24 -- true
    echo "$mode: $?"
done
"$CL" run $BACKEND --net tap:tapx -- true
echo "no ip: $?"
# As nobody, where nobody may run this build at all (not from a checkout under /root).
as_nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null \
    && as_nobody test -r "$(dirname "$CL")/cloister-rt" && as_nobody test -x "$CL"; then
    as_nobody "$CL" run $BACKEND --policy default --net tap:tapx --ip 10.77.0.2/24 -- true
    echo "nobody: $?"
else
    echo "nobody: skipped"
fi
"#;

/// Runs `script` as root of a network namespace of its own (and a user namespace when not
/// root), with `$CL` and `$DIR` set; `None` when this host cannot make one.
fn in_a_namespace(script: &str, dir: &Path) -> Option<Outcome> {
    if !Path::new("/dev/net/tun").exists() {
        eprintln!("skipped: no /dev/net/tun on this host");
        return None;
    }
    // SAFETY: geteuid cannot fail.
    let flags = if unsafe { libc::geteuid() } == 0 { "-n" } else { "-rn" };
    let probe = Mode::Native.command("unshare").args([flags, "true"]).output();
    if probe.code() != 0 {
        eprintln!("skipped: cannot make a network namespace here (unshare {flags}):\n{probe}");
        return None;
    }
    let out = Mode::Native
        .command("unshare")
        .args([flags, "sh", "-c", script])
        .env("CL", cloister_bin())
        // `--backend NAME` of a differential run (tests/run), split by the script's shell.
        .env("BACKEND", backend_args().join(std::ffi::OsStr::new(" ")))
        .env("DIR", dir)
        .timeout(Duration::from_secs(120))
        .output();
    if out.stdout.contains("no tuntap") {
        eprintln!("skipped: cannot make a TAP device in a namespace here\n{out}");
        return None;
    }
    Some(out)
}

fn scratch() -> PathBuf {
    let dir = temp_dir("tap");
    std::fs::create_dir_all(dir.join("site")).unwrap();
    for (name, text) in [("ping.py", PING), ("fetch.py", FETCH), ("serve_one.py", SERVE_ONE)] {
        write_file(&dir.join(name), text, 0o644);
    }
    dir
}

/// A sandbox on the namespace's TAP device answers an ICMP echo and serves a TCP client there;
/// another fetches a file from the namespace's web server with curl, its `eth0` at its address
/// with the device's MTU.
#[test]
fn a_sandbox_on_a_tap_device_talks_to_its_namespace_both_ways() {
    let dir = scratch();
    let Some(out) = in_a_namespace(SCENARIO, &dir) else { return };
    let text = &out.stdout;
    assert!(text.contains("pong from 10.77.0.2\n"), "the sandbox answered no ICMP echo\n{out}");
    assert!(text.contains("got: hello from the sandbox to 10.77.0.1\n"), "\n{out}");
    assert!(text.contains("server sandbox: 0 \n"), "\n{out}");
    assert!(text.contains("inet 10.77.0.3/24"), "\n{out}");
    assert!(text.contains("mtu 9000"), "eth0 should take tapx's MTU\n{out}");
    assert!(text.contains("\ngreetings over a TAP device\nclient sandbox: 0\n"), "\n{out}");
}

/// No such device, a device that is not a TAP device, no `--ip`, and a user who may not attach:
/// each is exit 125 with one line saying what to do.
#[test]
fn tap_errors_say_what_to_do() {
    let dir = scratch();
    let Some(out) = in_a_namespace(ERRORS, &dir) else { return };
    let (text, errors) = (&out.stdout, &out.stderr);
    for (line, says) in [
        ("tap:nosuch: 125", "cloister: --net tap:nosuch: this network namespace has no interface nosuch; make one first with `ip tuntap add nosuch mode tap`"),
        ("tap:lo: 125", "cloister: --net tap:lo: lo is not a TAP device"),
        ("no ip: 125", "cloister: --net tap:tapx needs the sandbox's address on the device's network: add --ip ADDR/LEN"),
    ] {
        assert!(text.contains(line), "{line}\n{out}");
        assert!(errors.contains(says), "{says}\n{out}");
    }
    if !text.contains("nobody: skipped") {
        assert!(text.contains("nobody: 125"), "\n{out}");
        assert!(errors.contains("cloister: --net tap:tapx: you may not attach to it"), "\n{out}");
    }
}
