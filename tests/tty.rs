//! `cloister run --tty` (policy: `"tty": true`): the program gets a pseudo-terminal of its own,
//! relayed to the user's terminal.
//!
//! Each test plays the user's terminal with a pty of its own: a Python driver ([`DRIVER`]) opens
//! it, gives it a window size, starts the command as the leader of a new session with the pty as
//! its controlling terminal and streams, types into it when the command has printed a marker,
//! and reports what appeared on it, the exit status, and the pty's modes before, during and
//! after the run. The same scenarios run natively as the control where the host answers the
//! same question (a terminal, its size, a line read, an exit status, Ctrl-C).
//!
//! What is checked: the program's terminal is a pty (`tty`, `test -t`) that is not the user's;
//! `stty size` and `SIGWINCH` follow the user's window; typed lines reach `read`, Ctrl-C
//! reaches the program, the exit status passes through; the user's terminal is raw during the
//! run and has its modes back afterwards (also after a timeout, Ctrl-C and a failed start);
//! redirected streams stay as they are; no terminal at all is one line and exit 125; `TIOCSTI`
//! reaches neither terminal; without `--tty` and with standard input redirected the program has
//! no controlling terminal.

use cloister_tests::{cloister_bin, compile_c, temp_dir, PYTHON3, SYSTEM_PATH};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The user's terminal. Argument: a JSON object with `cmd` (the argv), `rows`/`cols`, `stdin`
/// (`"tty"`, `"null"` or text to pipe), `stdout` (`"tty"` or `"pipe"`), `steps` (`[marker,
/// action]`: once the output holds `marker`, after the previous step's, send `{"send": text}` or
/// `{"resize": [rows, cols]}` or `{"kill": signal}` to the command itself) and `timeout`
/// (seconds). Prints a JSON object: `out` (what the
/// pty showed), `piped` (standard output when piped), `status` (the exit status; 128+N for a
/// signal; -1 when killed at the timeout), `outer` (the pty's name), `raw_at_marker` (whether
/// canonical mode and echo were off when the first marker showed), `restored` (the modes after
/// the run equal those before), `pending` (input left unread on the pty after the run).
const DRIVER: &str = r#"
import fcntl, json, os, pty, select, signal, struct, subprocess, sys, termios, time
cfg = json.loads(sys.argv[1])
m, s = pty.openpty()
def winsize(rows, cols):
    fcntl.ioctl(m, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
winsize(cfg["rows"], cfg["cols"])
before = termios.tcgetattr(s)
def ctty():
    os.setsid()
    fcntl.ioctl(s, termios.TIOCSCTTY, 0)
stdin = cfg.get("stdin", "tty")
if stdin == "tty":
    stdin_arg = s
elif stdin == "null":
    stdin_arg = subprocess.DEVNULL
else:
    stdin_arg = subprocess.PIPE
stdout_arg = s if cfg.get("stdout", "tty") == "tty" else subprocess.PIPE
p = subprocess.Popen(cfg["cmd"], stdin=stdin_arg, stdout=stdout_arg, stderr=s, preexec_fn=ctty)
if stdin not in ("tty", "null"):
    p.stdin.write(stdin.encode())
    p.stdin.close()
piped = []
if stdout_arg is subprocess.PIPE:
    import threading
    t = threading.Thread(target=lambda: piped.append(p.stdout.read()))
    t.start()
out = b""
steps = list(cfg.get("steps", []))
searched = 0
raw_at_marker = None
deadline = time.time() + cfg.get("timeout", 30)
status = None
while True:
    r, _, _ = select.select([m], [], [], 0.05)
    if r:
        try:
            out += os.read(m, 65536)
        except OSError:
            pass
    while steps:
        at = out.find(steps[0][0].encode(), searched)
        if at < 0:
            break
        if raw_at_marker is None:
            lflag = termios.tcgetattr(s)[3]
            raw_at_marker = (lflag & (termios.ICANON | termios.ECHO)) == 0
        searched = at + len(steps[0][0])
        action = steps.pop(0)[1]
        if "send" in action:
            os.write(m, action["send"].encode())
        if "resize" in action:
            winsize(*action["resize"])
        if "kill" in action:
            os.kill(p.pid, action["kill"])
    if status is None and p.poll() is not None:
        status = p.returncode if p.returncode >= 0 else 128 - p.returncode
        drain_until = time.time() + 0.3
    if status is not None and not r and time.time() > drain_until:
        break
    if time.time() > deadline:
        p.kill()
        p.wait()
        status = -1
        break
if stdout_arg is subprocess.PIPE:
    t.join()
# A guard process may give the modes back a moment after the command died.
for _ in range(100):
    if termios.tcgetattr(s) == before:
        break
    time.sleep(0.02)
after = termios.tcgetattr(s)
quiet = termios.tcgetattr(s)
quiet[3] &= ~termios.ICANON
quiet[6][termios.VMIN] = 0
quiet[6][termios.VTIME] = 0
termios.tcsetattr(s, termios.TCSANOW, quiet)
try:
    pending = os.read(s, 4096)
except OSError:
    pending = b""
print(json.dumps({
    "out": out.decode("utf-8", "replace"),
    "piped": piped[0].decode("utf-8", "replace") if piped else None,
    "status": status,
    "outer": os.ttyname(s),
    "raw_at_marker": raw_at_marker,
    "restored": before == after,
    "pending": pending.decode("utf-8", "replace"),
}))
"#;

/// What the driver saw.
struct Seen(Value);

impl Seen {
    fn out(&self) -> &str {
        self.0["out"].as_str().unwrap()
    }
    /// The output's lines, without the terminal's carriage returns.
    fn lines(&self) -> Vec<String> {
        self.out().split('\n').map(|l| l.trim_end_matches('\r').to_string()).collect()
    }
    /// The value of the first output line `key=value`.
    fn field(&self, key: &str) -> String {
        self.lines()
            .iter()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('=').map(str::to_string))
            .unwrap_or_else(|| panic!("no {key}= in\n{self}"))
    }
    fn status(&self) -> i64 {
        self.0["status"].as_i64().unwrap()
    }
    fn outer(&self) -> &str {
        self.0["outer"].as_str().unwrap()
    }
    fn restored(&self) -> bool {
        self.0["restored"].as_bool().unwrap()
    }
    fn raw_at_marker(&self) -> Option<bool> {
        self.0["raw_at_marker"].as_bool()
    }
    fn pending(&self) -> &str {
        self.0["pending"].as_str().unwrap()
    }
    fn piped(&self) -> Option<&str> {
        self.0["piped"].as_str()
    }
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", serde_json::to_string_pretty(&self.0).unwrap())
    }
}

/// Runs `cmd` on a fresh terminal of `rows` x `cols`; `extra` adds or overrides the driver's
/// settings (`stdin`, `stdout`, `steps`, `timeout`).
fn on_terminal(cmd: &[&str], extra: Value) -> Seen {
    let mut cfg = json!({"cmd": cmd, "rows": 37, "cols": 101, "timeout": 30});
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    let out = Command::new(PYTHON3)
        .args(["-c", DRIVER, &cfg.to_string()])
        .env_clear()
        .env("PATH", SYSTEM_PATH)
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .env("LC_ALL", "C")
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the driver failed\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = Seen(serde_json::from_slice(&out.stdout).expect("the driver prints JSON"));
    assert_ne!(seen.status(), -1, "the run did not end within its timeout\n{seen}");
    seen
}

/// `cloister run [options] -- program...` as an argv for the driver.
fn under_cloister(options: &[&str], program: &[&str]) -> Vec<String> {
    let mut argv = vec![cloister_bin().to_str().unwrap().to_string(), "run".to_string()];
    argv.extend(options.iter().map(|s| s.to_string()));
    argv.push("--".to_string());
    argv.extend(program.iter().map(|s| s.to_string()));
    argv
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A policy file in a fresh directory.
fn policy_file(json: &str) -> PathBuf {
    let file = temp_dir("tty-policy").join("policy.json");
    std::fs::write(&file, json).unwrap();
    file
}

/// What the program says about its terminal.
const ABOUT_THE_TERMINAL: &str = "echo name=$(tty); \
    if test -t 0 && test -t 1 && test -t 2; then echo streams=tty; else echo streams=other; fi; \
    echo size=$(stty size); \
    if (exec 3</dev/tty) 2>/dev/null; then echo ctty=yes; else echo ctty=no; fi";

#[test]
fn the_program_gets_a_pty_of_its_own() {
    let native = on_terminal(&["sh", "-c", ABOUT_THE_TERMINAL], json!({}));
    assert_eq!(
        native.field("name"),
        native.outer(),
        "the control: the program's terminal is the driver's\n{native}"
    );
    assert_eq!(
        (native.field("streams"), native.field("size"), native.field("ctty")),
        ("tty".into(), "37 101".into(), "yes".into()),
        "{native}"
    );
    let variants: [&[&str]; 4] = [
        &["--tty"],
        &["--tty", "--policy", "default"],
        &["--tty", "--backend", "ptrace"],
        &["--tty", "--reproducible"],
    ];
    for options in variants {
        let seen = on_terminal(&strs(&under_cloister(options, &["sh", "-c", ABOUT_THE_TERMINAL])), json!({}));
        let name = seen.field("name");
        assert!(name.starts_with("/dev/pts/"), "{options:?}: not a pty\n{seen}");
        assert_ne!(name, seen.outer(), "{options:?}: the user's own terminal\n{seen}");
        assert_eq!(
            (seen.field("streams"), seen.field("size"), seen.field("ctty")),
            ("tty".into(), "37 101".into(), "yes".into()),
            "{options:?}\n{seen}"
        );
        assert_eq!(seen.status(), 0, "{options:?}\n{seen}");
        assert!(seen.restored(), "{options:?}: the terminal's modes were not restored\n{seen}");
    }
}

#[test]
fn the_policy_key_gives_a_pty_too() {
    let policy = policy_file(r#"{"comment": "an interactive program", "tty": true}"#);
    let argv = under_cloister(&["--policy", policy.to_str().unwrap()], &["sh", "-c", ABOUT_THE_TERMINAL]);
    let seen = on_terminal(&strs(&argv), json!({}));
    assert!(seen.field("name").starts_with("/dev/pts/"), "{seen}");
    assert_ne!(seen.field("name"), seen.outer(), "{seen}");
    // Without it (the same policy without the key), the program shares the user's terminal.
    let plain = policy_file(r#"{"comment": "the same without tty"}"#);
    let argv = under_cloister(&["--policy", plain.to_str().unwrap()], &["sh", "-c", ABOUT_THE_TERMINAL]);
    let seen = on_terminal(&strs(&argv), json!({}));
    assert_eq!(seen.field("name"), seen.outer(), "{seen}");
}

/// A line typed on the user's terminal reaches `read`, and the exit status passes through.
#[test]
fn a_typed_line_reaches_read_and_the_status_passes_through() {
    let script = r#"echo ready; read line; echo "got=[$line]"; exit 7"#;
    let steps = json!({"steps": [["ready", {"send": "hello world\r"}]]});
    let native = on_terminal(&["sh", "-c", script], steps.clone());
    assert_eq!((native.field("got"), native.status()), ("[hello world]".into(), 7), "the control\n{native}");
    let seen = on_terminal(&strs(&under_cloister(&["--tty"], &["sh", "-c", script])), steps);
    assert_eq!(seen.field("got"), "[hello world]", "{seen}");
    assert_eq!(seen.status(), 7, "{seen}");
    assert_eq!(seen.raw_at_marker(), Some(true), "the user's terminal was not raw while relaying\n{seen}");
    assert!(seen.restored(), "{seen}");
}

/// Everything the program wrote before it ended reaches the user's terminal, in order.
#[test]
fn the_last_output_arrives_whole() {
    let program = ["sh", "-c", "seq 1 100000; exit 3"];
    let seen = on_terminal(&strs(&under_cloister(&["--tty"], &program)), json!({}));
    let numbers: Vec<String> = seen.lines().into_iter().filter(|l| !l.is_empty()).collect();
    let expected: Vec<String> = (1..=100_000).map(|n| n.to_string()).collect();
    assert!(numbers == expected, "{} lines, the last {:?}", numbers.len(), numbers.last());
    assert_eq!(seen.status(), 3);
}

/// An interactive program: Python's REPL evaluates what is typed at its prompt.
#[test]
fn pythons_repl_runs_interactively() {
    let steps = json!({"steps": [[">>> ", {"send": "print(6 * 7)\r"}], ["42", {"send": "exit()\r"}]]});
    let seen = on_terminal(&strs(&under_cloister(&["--tty"], &[PYTHON3, "-q"])), steps);
    assert!(seen.lines().iter().any(|l| l == "42"), "{seen}");
    assert_eq!(seen.status(), 0, "{seen}");
    assert!(seen.restored(), "{seen}");
}

/// Ctrl-C typed on the (raw) user's terminal is a byte for the pty, whose line discipline
/// interrupts the program; the status says so, and the modes come back.
#[test]
fn ctrl_c_interrupts_the_program() {
    let program = ["sh", "-c", "echo ready; exec sleep 30"];
    let steps = json!({"steps": [["ready", {"send": "\u{3}"}]]});
    let native = on_terminal(&program, steps.clone());
    assert_eq!(native.status(), 130, "the control\n{native}");
    let seen = on_terminal(&strs(&under_cloister(&["--tty"], &program)), steps);
    assert_eq!(seen.status(), 130, "{seen}");
    assert!(seen.restored(), "{seen}");
}

/// Ctrl-Z: a program without a shell leads the pty's session, so its process group is orphaned
/// and the stop is discarded (the run cannot hang stopped, as under `ssh -t`); a shell in the
/// sandbox has job control over its own jobs.
#[test]
fn ctrl_z_is_the_programs_or_its_shells() {
    let program = ["sh", "-c", "echo ready; sleep 1; echo survived"];
    let steps = json!({"steps": [["ready", {"send": "\u{1a}"}]]});
    let native = on_terminal(&program, steps.clone());
    assert!(native.out().contains("survived"), "the control\n{native}");
    let seen = on_terminal(&strs(&under_cloister(&["--tty"], &program)), steps);
    assert!(seen.out().contains("survived"), "{seen}");
    assert_eq!(seen.status(), 0, "{seen}");

    let shell = ["env", "PS1=P> ", "bash", "--norc", "--noprofile", "-i"];
    let steps = json!({"steps": [
        // The quotes keep the echo of the typed line from matching the marker.
        ["P> ", {"send": "sh -c 'echo st\"\"arted; exec sleep 30'\r"}],
        ["started", {"send": "\u{1a}"}],
        // A second exit leaves with the stopped job, which bash then hangs up.
        ["Stopped", {"send": "exit 4\r"}],
        ["There are stopped jobs", {"send": "exit 4\r"}],
    ]});
    let native = on_terminal(&shell, steps.clone());
    assert_eq!(native.status(), 4, "the control\n{native}");
    let seen = on_terminal(&strs(&under_cloister(&["--tty"], &shell)), steps);
    assert_eq!(seen.status(), 4, "{seen}");
    assert!(!seen.out().contains("no job control"), "{seen}");
    assert!(seen.restored(), "{seen}");
}

/// The window size follows the user's terminal: at the start, and on SIGWINCH.
#[test]
fn a_resize_reaches_the_program() {
    // The handler only takes note: printing from it could interrupt a print.
    let code = "import os, signal, sys, time\n\
                got = []\n\
                signal.signal(signal.SIGWINCH, lambda *_: got.append(1))\n\
                size = os.get_terminal_size(0)\n\
                print('start=%d %d' % (size.lines, size.columns), flush=True)\n\
                deadline = time.time() + 30\n\
                while not got and time.time() < deadline:\n\
                \x20   time.sleep(0.02)\n\
                size = os.get_terminal_size(0)\n\
                print('resized=%d %d' % (size.lines, size.columns), flush=True)\n\
                sys.exit(3 if got else 1)\n";
    let steps = json!({"steps": [["start=", {"resize": [50, 132]}]]});
    let native = on_terminal(&[PYTHON3, "-c", code], steps.clone());
    assert_eq!(
        (native.field("start"), native.field("resized")),
        ("37 101".into(), "50 132".into()),
        "{native}"
    );
    let seen = on_terminal(&strs(&under_cloister(&["--tty"], &[PYTHON3, "-c", code])), steps);
    assert_eq!((seen.field("start"), seen.field("resized")), ("37 101".into(), "50 132".into()), "{seen}");
    assert_eq!(seen.status(), 3, "{seen}");
}

/// The user's terminal gets its modes back however the run ends: a timeout (exit 124), a
/// program that is not found (127, before any relay), a program that changes its own
/// terminal's modes and dies of a signal, and `cloister run` itself killed with `SIGKILL`.
#[test]
fn the_terminal_is_restored_however_the_run_ends() {
    let seen = on_terminal(
        &strs(&under_cloister(&["--tty", "--timeout", "1"], &["sh", "-c", "echo ready; sleep 30"])),
        json!({"steps": [["ready", {"send": ""}]]}),
    );
    assert_eq!(seen.status(), 124, "{seen}");
    assert_eq!(seen.raw_at_marker(), Some(true), "{seen}");
    assert!(seen.restored(), "after the timeout\n{seen}");
    assert!(seen.lines().iter().any(|l| l.starts_with("cloister: the time ran out")), "{seen}");

    let seen = on_terminal(&strs(&under_cloister(&["--tty"], &["no-such-program-here"])), json!({}));
    assert_eq!(seen.status(), 127, "{seen}");
    assert!(seen.restored(), "after a failed start\n{seen}");

    // The program's own `stty raw -echo` stays on its pty; killing itself leaves no trace on ours.
    let script = "stty raw -echo; echo ready; kill -9 $$";
    let seen = on_terminal(
        &strs(&under_cloister(&["--tty"], &["sh", "-c", script])),
        json!({"steps": [["ready", {"send": ""}]]}),
    );
    assert_eq!(seen.status(), 137, "{seen}");
    assert!(seen.restored(), "after the program's own stty\n{seen}");

    // `cloister run` itself killed: no destructor runs, and its guard gives the modes back.
    let seen = on_terminal(
        &strs(&under_cloister(&["--tty"], &["sh", "-c", "echo ready; sleep 30"])),
        json!({"steps": [["ready", {"kill": 9}]]}),
    );
    assert_eq!(seen.status(), 137, "{seen}");
    assert_eq!(seen.raw_at_marker(), Some(true), "{seen}");
    assert!(seen.restored(), "after cloister itself was killed\n{seen}");
}

/// Streams that are not the user's terminal reach the program as they are; the pty is still
/// its controlling terminal (`/dev/tty`).
#[test]
fn redirected_streams_stay_as_they_are() {
    let script = r#"read line; echo "line=[$line]"; test -t 0 || echo stdin=pipe; test -t 1 && echo stdout=tty;
        if (exec 3</dev/tty) 2>/dev/null; then echo ctty=yes; fi"#;
    let seen = on_terminal(
        &strs(&under_cloister(&["--tty"], &["sh", "-c", script])),
        json!({"stdin": "from a pipe\n"}),
    );
    assert_eq!(
        (seen.field("line"), seen.field("stdin"), seen.field("stdout"), seen.field("ctty")),
        ("[from a pipe]".into(), "pipe".into(), "tty".into(), "yes".into()),
        "{seen}"
    );
    assert_eq!(seen.status(), 0, "{seen}");

    let script = "echo to-stdout; test -t 1 || echo stdout=pipe >&2; test -t 2 && echo stderr=tty >&2";
    let seen =
        on_terminal(&strs(&under_cloister(&["--tty"], &["sh", "-c", script])), json!({"stdout": "pipe"}));
    // Written straight to the pipe: no carriage return from a terminal's output processing.
    assert_eq!(seen.piped(), Some("to-stdout\n"), "{seen}");
    assert_eq!((seen.field("stdout"), seen.field("stderr")), ("pipe".into(), "tty".into()), "{seen}");
    assert!(!seen.out().contains("to-stdout"), "{seen}");
    assert!(seen.restored(), "{seen}");
}

/// With no terminal on any standard stream there is nothing to relay: one line, exit 125, by
/// the flag or by the policy key.
#[test]
fn without_any_terminal_tty_is_one_line_and_125() {
    let policy = policy_file(r#"{"tty": true}"#);
    let cases = [
        (vec!["run", "--tty", "--", "true"], "--tty: none of standard input, output and error is a terminal"),
        (vec!["run", "--policy", policy.to_str().unwrap(), "--", "true"], "the tty key of policy "),
    ];
    for (args, expected) in cases {
        let out = Command::new(cloister_bin())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line\n{stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// TIOCSTI on the program's terminal is refused by the floor, and nothing reaches the user's
/// terminal's input; natively, the same program pushes its byte into the terminal.
#[test]
fn tiocsti_reaches_neither_terminal() {
    let exe = compile_c("tiocsti", &[]);
    let exe = exe.to_str().unwrap();
    let native = on_terminal(&[exe], json!({}));
    // The pushed byte is echoed before the first line natively.
    assert!(native.out().contains("isatty=1"), "{native}");
    if native.field("tiocsti") == "ok" {
        assert_eq!(native.pending(), "x", "the control: the byte is in the terminal's input\n{native}");
    }
    for options in [&["--tty"][..], &["--tty", "--policy", "default"]] {
        let seen = on_terminal(&strs(&under_cloister(options, &[exe])), json!({}));
        assert_eq!((seen.field("isatty"), seen.field("tiocsti")), ("1".into(), "EPERM".into()), "{seen}");
        assert_eq!(seen.pending(), "", "{options:?}: input reached the user's terminal\n{seen}");
    }
}

/// Without `--tty`, a program whose standard input is not a terminal has no controlling
/// terminal at all, while `--tty` gives it the pty as one.
#[test]
fn without_tty_and_a_redirected_stdin_there_is_no_controlling_terminal() {
    let script =
        "echo name=$(tty); if (exec 3</dev/tty) 2>/dev/null; then echo ctty=yes; else echo ctty=no; fi";
    let native = on_terminal(&["sh", "-c", script], json!({"stdin": "null"}));
    assert_eq!(native.field("ctty"), "yes", "the control: the terminal is reachable\n{native}");
    let seen = on_terminal(&strs(&under_cloister(&[], &["sh", "-c", script])), json!({"stdin": "null"}));
    assert_eq!((seen.field("name"), seen.field("ctty")), ("not a tty".into(), "no".into()), "{seen}");
    let seen =
        on_terminal(&strs(&under_cloister(&["--tty"], &["sh", "-c", script])), json!({"stdin": "null"}));
    assert_eq!((seen.field("name"), seen.field("ctty")), ("not a tty".into(), "yes".into()), "{seen}");
}
