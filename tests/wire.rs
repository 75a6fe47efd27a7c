//! `--net wire:PATH` and `cloister hub PATH` with real programs.
//!
//! A hub on a socket in the test's scratch directory, and sandboxes that join it: Python's
//! `http.server` in one, curl in another fetching a file and checking its bytes, a third on
//! another subnet that cannot reach it; a 100 MiB stream between two sandboxes compared by
//! sha256; what `ip` shows inside; that the program holds no TAP descriptor; and the errors:
//! no hub, no `--ip`, `--ip` without a wire, a live hub's path, a stale socket, the socket
//! removed when the hub stops.
//!
//! Every process a test starts (the hub included) is stopped by a guard when the test ends,
//! passing or not. No traffic leaves the sandboxes' wire: the addresses are the sandboxes' own,
//! in namespaces of their own.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cloister_tests::{
    backend_args, cloister, cloister_bin, temp_dir, write_file, Invocation, Mode, PYTHON3, SYSTEM_PATH,
};

/// How long a background process may take to say it is ready.
const READY: Duration = Duration::from_secs(30);

fn s(path: &Path) -> &str {
    path.to_str().expect("scratch paths are UTF-8")
}

/// A process of `cloister` running in the background, in a process group of its own, stopped
/// (SIGTERM, then SIGKILL) when dropped; its standard output comes line by line.
struct Background {
    what: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: PathBuf,
}

impl Background {
    fn start(what: &str, args: &[&str]) -> Background {
        let stderr = temp_dir("wire-bg").join("stderr");
        let mut child = Command::new(cloister_bin())
            .args(args)
            .env_clear()
            .env("PATH", SYSTEM_PATH)
            .env("HOME", std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Background { what: what.to_owned(), child, lines, stderr }
    }

    /// Waits until the process printed a line containing `text` on its standard output.
    #[track_caller]
    fn wait_for(&self, text: &str) {
        let deadline = std::time::Instant::now() + READY;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("{} did not print {text:?}; its stderr:\n{}", self.what, self.stderr_text());
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits up to 30 s for the process to end by itself, then stops it.
    fn finish(&mut self) -> std::process::ExitStatus {
        for _ in 0..600 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop()
    }

    /// Stops the process group with SIGTERM (SIGKILL after 10 s); returns the process's status.
    fn stop(&mut self) -> std::process::ExitStatus {
        let group = -(self.child.id() as i32);
        // SAFETY: signalling the process group this guard started.
        unsafe { libc::kill(group, libc::SIGTERM) };
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above.
        unsafe { libc::kill(group, libc::SIGKILL) };
        self.child.wait().unwrap()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// A hub on a fresh socket path; stopped when dropped.
struct Hub {
    path: PathBuf,
    process: Background,
}

impl Hub {
    fn start() -> Hub {
        let path = temp_dir("wire").join("hub.sock");
        let process = Background::start("cloister hub", &["hub", s(&path)]);
        // The hub says so on stderr once it listens.
        for _ in 0..1500 {
            if process.stderr_text().contains("cloister hub: listening at") {
                return Hub { path, process };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the hub did not start:\n{}", process.stderr_text());
    }

    fn mode(&self) -> String {
        format!("wire:{}", s(&self.path))
    }
}

/// A sandbox on `hub` at `ip` running `program`, in the background.
fn serve(hub: &Hub, ip: &str, program: &[&str]) -> Background {
    let mode = hub.mode();
    let backend: Vec<String> = backend_args().into_iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let mut args = vec!["run"];
    args.extend(backend.iter().map(String::as_str));
    args.extend(["--net", &mode, "--ip", ip, "--"]);
    args.extend_from_slice(program);
    Background::start(&format!("the sandbox at {ip}"), &args)
}

/// A sandbox on `hub` at `ip` running `program` with `args`, to its end.
fn run_on(hub: &Hub, ip: &str, program: &str, args: &[&str]) -> Invocation {
    Mode::Cloister
        .command(program)
        .args(args)
        .cloister_arg("--net")
        .cloister_arg(hub.mode())
        .cloister_arg("--ip")
        .cloister_arg(ip)
}

/// An HTTP server in one sandbox, curl in another on the same subnet: the file's bytes arrive.
/// A sandbox on another subnet of the same hub has no route to it.
#[test]
fn curl_fetches_from_a_server_in_another_sandbox_and_not_from_another_subnet() {
    let hub = Hub::start();
    let site = temp_dir("wire-site");
    let body: String = (0..2000).map(|i| format!("line {i} of the wire's test page\n")).collect();
    write_file(&site.join("page.txt"), &body, 0o644);
    let server = serve(
        &hub,
        "10.77.0.1/24",
        &[PYTHON3, "-u", "-m", "http.server", "8080", "--bind", "10.77.0.1", "--directory", s(&site)],
    );
    server.wait_for("Serving HTTP on 10.77.0.1 port 8080");

    let out =
        run_on(&hub, "10.77.0.2/24", "curl", &["-sS", "--max-time", "20", "http://10.77.0.1:8080/page.txt"])
            .output();
    out.success();
    assert!(
        out.stdout == body,
        "the page arrived changed: {} bytes of {}\n{out}",
        out.stdout.len(),
        body.len()
    );

    let out =
        run_on(&hub, "10.78.0.3/24", "curl", &["-sS", "--max-time", "10", "http://10.77.0.1:8080/page.txt"])
            .output();
    out.expect_code(7);
    assert!(out.stderr.contains("Couldn't connect to server"), "\n{out}");
    // The same sandbox with an address on the server's subnet reaches it: the refusal above is
    // the subnet's, not the third sandbox's.
    let out =
        run_on(&hub, "10.77.0.3/24", "curl", &["-sS", "--max-time", "20", "http://10.77.0.1:8080/page.txt"])
            .output();
    out.success();
}

/// Receives one stream on ADDRESS:9000 and prints its length and sha256.
const SINK: &str = r#"
import hashlib, socket, sys
server = socket.create_server((sys.argv[1], 9000))
print("listening", flush=True)
conn, _ = server.accept()
digest, total = hashlib.sha256(), 0
while True:
    chunk = conn.recv(1 << 20)
    if not chunk:
        break
    digest.update(chunk)
    total += len(chunk)
print(total, digest.hexdigest(), flush=True)
"#;

/// Sends MIB mebibytes of pseudo-random bytes to ADDRESS:9000 and prints their length and
/// sha256.
const SOURCE: &str = r#"
import hashlib, random, socket, sys
address, mib = sys.argv[1], int(sys.argv[2])
rng = random.Random(4)
digest, total = hashlib.sha256(), 0
with socket.create_connection((address, 9000), timeout=60) as conn:
    for _ in range(mib):
        chunk = rng.randbytes(1 << 20)
        conn.sendall(chunk)
        digest.update(chunk)
        total += len(chunk)
print(total, digest.hexdigest())
"#;

/// 100 MiB from one sandbox to another over the hub arrive whole and unchanged.
#[test]
fn a_100_mib_stream_arrives_intact() {
    let hub = Hub::start();
    let dir = temp_dir("wire-stream");
    let (sink, source) = (dir.join("sink.py"), dir.join("source.py"));
    write_file(&sink, SINK, 0o644);
    write_file(&source, SOURCE, 0o644);
    let mut receiver = serve(&hub, "10.77.1.1/24", &[PYTHON3, s(&sink), "10.77.1.1"]);
    receiver.wait_for("listening");
    let sent = run_on(&hub, "10.77.1.2/24", PYTHON3, &[s(&source), "10.77.1.1", "100"])
        .timeout(Duration::from_secs(120))
        .output();
    sent.success();
    let line = sent.stdout.trim().to_owned();
    assert!(line.starts_with(&format!("{} ", 100 << 20)), "\n{sent}");
    let got = receiver.lines.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
    eprintln!("sent: {line}; received: {got}");
    assert_eq!(
        got,
        line,
        "what arrived differs from what was sent; receiver's stderr:\n{}",
        receiver.stderr_text()
    );
    assert!(receiver.finish().success(), "{}", receiver.stderr_text());
}

/// Inside: `eth0` with the address, the MTU and the MAC derived from the address, the subnet's
/// route and no default route; the program holds no descriptor of the TAP device.
#[test]
fn the_sandbox_sees_its_interface_and_not_the_tap_descriptor() {
    let hub = Hub::start();
    let out =
        run_on(&hub, "10.77.2.9/16", "sh", &["-c", "ip -4 addr show eth0; ip link show eth0; ip -4 route"])
            .output();
    out.success();
    assert!(out.stdout.contains("inet 10.77.2.9/16"), "\n{out}");
    assert!(
        out.stdout.contains("mtu 65520") && out.stdout.contains("link/ether 02:c1:0a:4d:02:09"),
        "\n{out}"
    );
    assert!(out.stdout.contains("10.77.0.0/16 dev eth0") && !out.stdout.contains("default via"), "\n{out}");

    let list = "import os\nfor n in os.listdir('/proc/self/fd'):\n    try:\n        print(n, os.readlink(f'/proc/self/fd/{n}'))\n    except OSError:\n        pass";
    let out = run_on(&hub, "10.77.2.10/16", PYTHON3, &["-c", list]).output();
    out.success();
    assert!(!out.stdout.contains("tun") && !out.stdout.contains("socket:"), "\n{out}");
}

/// Without a hub, without --ip, with --ip but no wire: exit 125 and one line saying what to do.
#[test]
fn a_missing_hub_or_address_is_125_with_what_to_do() {
    let dir = temp_dir("wire-none");
    let nowhere = dir.join("no-hub.sock");
    let mode = format!("wire:{}", s(&nowhere));
    let out = Mode::Cloister
        .command("true")
        .cloister_arg("--net")
        .cloister_arg(&mode)
        .cloister_arg("--ip")
        .cloister_arg("10.77.3.1/24")
        .output();
    out.expect_failure_line(125, "no hub listens there");
    assert!(out.stderr.contains(&format!("start one first with `cloister hub {}`", s(&nowhere))), "\n{out}");

    let out = Mode::Cloister.command("true").cloister_arg("--net").cloister_arg(&mode).output();
    out.expect_failure_line(125, "add --ip ADDR/LEN");
    let out = Mode::Cloister
        .command("true")
        .cloister_arg("--net")
        .cloister_arg("none")
        .cloister_arg("--ip")
        .cloister_arg("10.77.3.1/24")
        .output();
    out.expect_failure_line(125, "has no interface to address");
    let out = cloister(&["run", "--net", &mode, "--ip", "10.77.3.0/24", "--", "true"]);
    out.expect_code(125);
    assert!(out.stderr.contains("network or broadcast address"), "\n{out}");

    // A policy's wire with its address.
    let policy = dir.join("wire.json");
    write_file(&policy, format!(r#"{{"network": {{"mode": "{mode}", "address": "10.77.3.1/24"}}}}"#), 0o644);
    let out = Mode::Cloister.command("true").policy(&policy).output();
    out.expect_failure_line(125, "no hub listens there");
}

/// The hub refuses a live hub's path, replaces a stale socket, refuses a file that is not a
/// socket, and removes its socket when it stops.
#[test]
fn the_hub_guards_its_path() {
    let hub = Hub::start();
    let out = cloister(&["hub", s(&hub.path)]);
    out.expect_failure_line(125, "a hub already listens at");

    let mut hub = hub;
    assert!(hub.process.stop().success(), "{}", hub.process.stderr_text());
    assert!(!hub.path.exists(), "the hub left its socket behind");

    let stale = temp_dir("wire-stale").join("hub.sock");
    drop(UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let mut process = Background::start("cloister hub", &["hub", s(&stale)]);
    for _ in 0..1500 {
        if process.stderr_text().contains("listening at") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(process.stderr_text().contains("listening at"), "{}", process.stderr_text());
    assert!(process.stop().success());

    let file = temp_dir("wire-file").join("not-a-socket");
    write_file(&file, "x", 0o644);
    let out = cloister(&["hub", s(&file)]);
    out.expect_failure_line(125, "exists and is not a socket");
}
