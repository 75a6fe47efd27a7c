//! The floor's limits and ends: resource limits from the policy and `--limit` (a fork bomb, a
//! memory hog, a busy loop, a large file, many descriptors), `--timeout` (exit 124, the whole
//! sandbox killed), no sandboxed process outliving `cloister run` (ended normally, by the
//! timeout, or with its supervisor killed), the descriptors the program starts with, and the
//! terminal (TIOCSTI refused, no controlling terminal when standard input is not one).
//!
//! Leftover processes are found by a unique last argument (`sleep 1000.NNN`) in
//! `/proc/PID/cmdline`, polled with generous deadlines; nothing here depends on how fast the
//! machine is, only on the sandbox ending.

use cloister_tests::{backend_args, cloister_bin, compile_c, temp_dir, Mode, Outcome, PYTHON3, SYSTEM_PATH};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A policy file in a fresh directory.
fn policy_file(label: &str, json: &str) -> PathBuf {
    let file = temp_dir(label).join("policy.json");
    std::fs::write(&file, json).unwrap();
    file
}

/// Pids of the processes whose last argument is `token` and which run `sleep` (so not the
/// `cloister run` whose script names the token).
fn sleepers(token: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).filter(|a| !a.is_empty()).collect();
        if args.last() == Some(&token.as_bytes()) && args.iter().any(|a| a.ends_with(b"sleep")) {
            found.push(pid);
        }
    }
    found
}

/// Waits up to `limit` for `pred`; returns whether it held.
fn poll(limit: Duration, mut pred: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if pred() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    pred()
}

/// Asserts that no `sleep TOKEN` is left (after a grace period for the kernel to finish killing),
/// killing any it finds so that one failure does not leak processes.
#[track_caller]
fn assert_none_left(tokens: &[&str], context: &dyn std::fmt::Display) {
    let gone = poll(Duration::from_secs(10), || tokens.iter().all(|t| sleepers(t).is_empty()));
    let left: Vec<(&str, Vec<u32>)> = tokens.iter().map(|t| (*t, sleepers(t))).collect();
    for (_, pids) in &left {
        for &pid in pids {
            // SAFETY: kill takes integers; these are the test's own leftovers.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
    assert!(gone, "sandboxed processes outlived the run: {left:?}\n{context}");
}

/// Whether the tests run as root and `setpriv` can make `nobody` run this checkout's binaries.
fn nobody_can_run_cloister() -> bool {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return false;
    }
    let reachable = format!("test -x '{}'", cloister_bin().display());
    Mode::Native.command("setpriv").args(NOBODY).args(["sh", "-c", &reachable]).output().code() == 0
}

const NOBODY: [&str; 3] = ["--reuid=65534", "--regid=65534", "--clear-groups"];

// ---------------------------------------------------------------------------------------------
// Resource limits

/// Runs the fork bomb under a `processes` limit from a policy file; returns how many forks
/// it made, after checking that it stopped on EAGAIN and left nothing behind.
fn fork_bomb(processes: u32, token: &str, as_nobody: bool) -> (i64, Outcome) {
    let exe = compile_c("forkbomb", &[]);
    let policy = policy_file("bomb", &format!(r#"{{"limits": {{"processes": {processes}}}}}"#));
    let out = if as_nobody {
        let dir = temp_dir("bomb-nobody");
        let copy = dir.join("forkbomb");
        std::fs::copy(&exe, &copy).unwrap();
        for p in [&dir, &copy, &policy, policy.parent().unwrap()] {
            std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        }
        Mode::Native
            .command("setpriv")
            .args(NOBODY)
            .arg(cloister_bin())
            .arg("run")
            .args(backend_args())
            .arg("--policy")
            .arg(&policy)
            .arg("--")
            .arg(&copy)
            .arg(token)
            .env("HOME", &dir)
            .current_dir("/")
            .output()
    } else {
        Mode::Cloister.command(&exe).arg(token).policy(&policy).output()
    };
    out.success();
    assert_eq!(out.field("error"), "EAGAIN", "the bomb did not stop on the limit\n{out}");
    let forks = out.int_field("forks");
    assert!(forks < i64::from(processes), "more forks than the limit allows\n{out}");
    // Its children wait forever; the sandbox's end must have killed them (argv is "forkbomb
    // TOKEN", which `sleepers` would not match: look for the token alone).
    let left = || -> Vec<i32> {
        let mut pids = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse().ok()) else { continue };
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let bomb = cmdline.windows(8).any(|w| w == b"forkbomb");
            if bomb && cmdline.split(|&b| b == 0).any(|a| a == token.as_bytes()) {
                pids.push(pid);
            }
        }
        pids
    };
    let gone = poll(Duration::from_secs(10), || left().is_empty());
    let survivors = left();
    for &pid in &survivors {
        // SAFETY: kill takes integers; these are the test's own leftovers.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert!(gone, "{} bomb processes outlived the run\n{out}", survivors.len());
    (forks, out)
}

#[test]
fn a_fork_bomb_stops_at_the_processes_limit() {
    let (forks, out) = fork_bomb(24, "424201", false);
    if out.stderr.contains("the processes limit does not hold here") {
        eprintln!("a_fork_bomb_stops_...: root without a pids cgroup: only the unprivileged case holds");
        return;
    }
    assert!(out.elapsed < Duration::from_secs(30), "the bomb was slow to stop\n{out}");
    // The control: a higher limit lets the same bomb make more, so the limit is what stopped it.
    let (more, _) = fork_bomb(48, "424202", false);
    assert!(more > forks && more >= 24, "{forks} then {more}");
}

#[test]
fn an_unprivileged_fork_bomb_stops_at_the_processes_limit() {
    if !nobody_can_run_cloister() {
        eprintln!(
            "an_unprivileged_fork_bomb_...: skipped: needs root, setpriv, and binaries nobody can reach"
        );
        return;
    }
    let (forks, out) = fork_bomb(24, "424203", true);
    assert!(!out.stderr.contains("does not hold"), "\n{out}");
    assert!(forks >= 1, "\n{out}");
}

/// Allocates up to 384 MiB in 16 MiB pieces; says how far it got.
const HOG: &str = "
x = []
try:
    while len(x) < 24:
        x.append(bytearray(16 << 20))
    print('reached')
except MemoryError:
    print('MemoryError at', len(x) * 16, 'MiB')
    raise SystemExit(3)
";

#[test]
fn a_memory_hog_gets_memory_error() {
    Mode::Native.command(PYTHON3).args(["-c", HOG]).output().success();
    let out = Mode::Cloister
        .command(PYTHON3)
        .args(["-c", HOG])
        .cloister_arg("--limit")
        .cloister_arg("memory_bytes=128M")
        .output();
    out.expect_code(3);
    assert!(out.stdout.starts_with("MemoryError at"), "\n{out}");
    // The same run lifts the limit with `unlimited` (untrusted sets none; this checks the word).
    Mode::Cloister
        .command(PYTHON3)
        .args(["-c", HOG])
        .cloister_arg("--limit")
        .cloister_arg("memory_bytes=128M")
        .cloister_arg("--limit")
        .cloister_arg("memory_bytes=unlimited")
        .output()
        .success();
}

#[test]
fn a_busy_loop_is_stopped_by_cpu_seconds() {
    let out = Mode::Cloister
        .command(PYTHON3)
        .args(["-c", "while True: pass"])
        .cloister_arg("--limit")
        .cloister_arg("cpu_seconds=1")
        .output();
    out.expect_code(128 + libc::SIGXCPU);
}

#[test]
fn a_large_file_is_stopped_by_file_size_bytes() {
    let out = Mode::Cloister
        .command("sh")
        .args(["-c", "head -c 2097152 /dev/zero > /tmp/big; echo status=$?; wc -c < /tmp/big"])
        .cloister_arg("--limit")
        .cloister_arg("file_size_bytes=1M")
        .output();
    out.success();
    assert_eq!(out.int_field("status"), 128 + i64::from(libc::SIGXFSZ), "\n{out}");
    assert_eq!(out.lines()[1], "1048576", "\n{out}");
}

#[test]
fn open_files_caps_descriptors_and_the_runtime_still_works() {
    let script = "
import os
fds = []
try:
    while True:
        fds.append(os.open('/dev/null', os.O_RDONLY))
except OSError as e:
    print('opened', len(fds), e.errno == 24)
for fd in fds:
    os.close(fd)
import subprocess
print(subprocess.run(['sh', '-c', 'echo child'], capture_output=True, text=True).stdout.strip())
";
    let out = Mode::Cloister
        .command(PYTHON3)
        .args(["-c", script])
        .cloister_arg("--limit")
        .cloister_arg("open_files=32")
        .output();
    out.success();
    let words: Vec<&str> = out.lines()[0].split(' ').collect();
    let opened: u32 = words[1].parse().unwrap();
    assert!(words[2] == "True" && opened < 32 && opened > 10, "\n{out}");
    assert_eq!(out.lines()[1], "child", "\n{out}");
}

#[test]
fn bad_limit_flags_fail_with_one_line() {
    let out = Mode::Cloister.command("true").cloister_arg("--limit").cloister_arg("memory=1G").output();
    out.expect_failure_line(125, "--limit memory=1G");
    assert!(out.stderr.contains("the limits are processes, memory_bytes"), "\n{out}");
    let policy = policy_file("bad-limit", r#"{"limits": {"processes": 0}}"#);
    Mode::Cloister.command("true").policy(&policy).output().expect_failure_line(125, "$.limits.processes");
    let out = Mode::Cloister.command("true").cloister_arg("--timeout").cloister_arg("soon").output();
    out.expect_code(125);
    assert!(out.stderr.contains("give a number of seconds"), "\n{out}");
}

// ---------------------------------------------------------------------------------------------
// The wall clock, and nothing outliving the run

/// Detaches `sleep 1000.TOKEN1` three ways (setsid, a double fork, nohup) and then runs
/// `last` in the foreground.
fn detaching_script(tokens: &[&str; 3], last: &str) -> String {
    format!(
        "setsid sleep {} >/dev/null 2>&1 & (sleep {} >/dev/null 2>&1 &); nohup sleep {} >/dev/null 2>&1 & {last}",
        tokens[0], tokens[1], tokens[2]
    )
}

#[test]
fn timeout_kills_the_whole_sandbox_and_exits_124() {
    for (policy, n) in [("untrusted", 0), ("default", 1), ("reproducible", 2)] {
        let tokens = [&*format!("1000.30{n}1"), &*format!("1000.30{n}2"), &*format!("1000.30{n}3")];
        let tokens = [tokens[0], tokens[1], tokens[2]];
        let out = Mode::Cloister
            .command("sh")
            .args(["-c", &detaching_script(&tokens, "exec sleep 1000.3999")])
            .policy(policy)
            .cloister_arg("--timeout")
            .cloister_arg("1.5")
            .output();
        out.expect_code(124);
        let ran_out: Vec<&str> = out.stderr.lines().filter(|l| l.contains("the time ran out")).collect();
        assert_eq!(ran_out.len(), 1, "\n{out}");
        assert!(out.elapsed < Duration::from_secs(30), "\n{out}");
        assert_none_left(&tokens, &out);
    }
    assert_none_left(&["1000.3999"], &"the foreground sleep");
    // The policy's key, and a program that ends in time keeps its own status.
    let policy = policy_file("wall", r#"{"limits": {"wall_seconds": 1}}"#);
    Mode::Cloister.command("sleep").arg("30").policy(&policy).output().expect_code(124);
    Mode::Cloister.command("sh").args(["-c", "exit 7"]).policy(&policy).output().expect_code(7);
}

#[test]
fn detached_processes_end_with_the_run() {
    for (policy, n) in [("untrusted", 0), ("default", 1), ("reproducible", 2)] {
        let tokens = [&*format!("1000.10{n}1"), &*format!("1000.10{n}2"), &*format!("1000.10{n}3")];
        let tokens = [tokens[0], tokens[1], tokens[2]];
        let out = Mode::Cloister
            .command("sh")
            .args(["-c", &detaching_script(&tokens, "sleep 0.2; exit 5")])
            .policy(policy)
            .output();
        out.expect_code(5);
        assert_none_left(&tokens, &out);
    }
}

#[test]
fn detached_processes_end_with_a_killed_supervisor() {
    for (policy, n) in [("untrusted", 0), ("default", 1), ("reproducible", 2)] {
        let tokens = [&*format!("1000.20{n}1"), &*format!("1000.20{n}2"), &*format!("1000.20{n}3")];
        let tokens = [tokens[0], tokens[1], tokens[2]];
        let log = temp_dir("killed-supervisor").join("stderr");
        let mut child = Command::new(cloister_bin())
            .arg("run")
            .args(backend_args())
            .args(["--policy", policy, "--", "sh", "-c"])
            .arg(detaching_script(&tokens, &format!("sleep 1000.20{n}4")))
            .env("PATH", SYSTEM_PATH)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let started = poll(Duration::from_secs(30), || tokens.iter().all(|t| !sleepers(t).is_empty()));
        child.kill().unwrap(); // SIGKILL: no chance to clean up
        child.wait().unwrap();
        let context = format!("{policy}: stderr: {}", std::fs::read_to_string(&log).unwrap_or_default());
        assert!(started, "the detached sleeps never started\n{context}");
        assert_none_left(&[tokens[0], tokens[1], tokens[2], &format!("1000.20{n}4")], &context);
    }
}

// ---------------------------------------------------------------------------------------------
// Descriptors

/// `ls /proc/self/fd` by a process started with descriptors 0, 1, 2 and, with `extra`, 5.
fn descriptors(mode: Mode, extra: bool) -> Vec<String> {
    let mut cmd = match mode {
        Mode::Native => Command::new("ls"),
        Mode::Cloister => {
            let mut cmd = Command::new(cloister_bin());
            cmd.arg("run").args(backend_args()).args(["--", "ls"]);
            cmd
        }
    };
    cmd.arg("/proc/self/fd")
        .env_clear()
        .env("PATH", SYSTEM_PATH)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    // SAFETY: between fork and exec the closure makes only async-signal-safe calls.
    unsafe {
        cmd.pre_exec(move || {
            libc::syscall(libc::SYS_close_range, 3, libc::c_uint::MAX, 0);
            if extra {
                libc::dup2(0, 5);
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{mode:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}

#[test]
fn the_program_gets_the_callers_descriptors_and_no_others() {
    for extra in [false, true] {
        let native = descriptors(Mode::Native, extra);
        // ls's own directory descriptor is 3 in both.
        let expected: &[&str] = if extra { &["0", "1", "2", "3", "5"] } else { &["0", "1", "2", "3"] };
        assert_eq!(native, expected);
        assert_eq!(descriptors(Mode::Cloister, extra), expected);
    }
}

// ---------------------------------------------------------------------------------------------
// The terminal

/// Runs `command` with a pseudo-terminal as its controlling terminal; standard input is the
/// terminal when `stdin_tty`, else /dev/null. Returns what it printed on standard output.
fn on_a_terminal(command: &[&Path], args: &[&str], stdin_tty: bool) -> String {
    let driver = r#"
import os, pty, subprocess, sys, fcntl, termios
stdin_tty = sys.argv[1] == "1"
m, s = pty.openpty()
def ctty():
    os.setsid()
    fcntl.ioctl(s, termios.TIOCSCTTY, 0)
stdin = s if stdin_tty else subprocess.DEVNULL
r = subprocess.run(sys.argv[2:], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=ctty)
os.close(s)
sys.stdout.write(r.stdout.decode())
sys.stdout.write("status=%d\n" % r.returncode)
sys.stderr.write(r.stderr.decode())
"#;
    let out = Command::new(PYTHON3)
        .args(["-c", driver, if stdin_tty { "1" } else { "0" }])
        .args(command)
        .args(args)
        .env("PATH", SYSTEM_PATH)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    text + &String::from_utf8_lossy(&out.stderr)
}

fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in\n{text}"))
}

#[test]
fn tiocsti_and_tioclinux_are_refused_on_a_terminal() {
    let exe = compile_c("tiocsti", &[]);
    let native = on_a_terminal(&[&exe], &[], true);
    assert_eq!(field(&native, "isatty"), "1", "{native}");
    // Natively TIOCSTI works unless the host turned it off (dev.tty.legacy_tiocsti=0: EIO).
    let cloister = cloister_bin();
    for policy in ["untrusted", "default"] {
        let out =
            on_a_terminal(&[&cloister], &["run", "--policy", policy, "--", exe.to_str().unwrap()], true);
        assert_eq!(field(&out, "isatty"), "1", "{out}");
        assert_eq!((field(&out, "tiocsti"), field(&out, "tioclinux")), ("EPERM", "EPERM"), "{policy}\n{out}");
    }
}

#[test]
fn no_controlling_terminal_unless_stdin_is_one() {
    let script = "if (exec 3</dev/tty) 2>/dev/null; then echo tty=yes; else echo tty=no; fi";
    let sh = Path::new("/bin/sh");
    let native = on_a_terminal(&[sh], &["-c", script], false);
    assert_eq!(field(&native, "tty"), "yes", "the control: the terminal is reachable\n{native}");
    let cloister = cloister_bin();
    let args = ["run", "--", "sh", "-c", script];
    let out = on_a_terminal(&[&cloister], &args, false);
    assert_eq!(field(&out, "tty"), "no", "stdin is not a terminal: no session with one\n{out}");
    // An interactive program (stdin on the terminal) keeps it.
    let out = on_a_terminal(&[&cloister], &args, true);
    assert_eq!(field(&out, "tty"), "yes", "{out}");
}

#[test]
fn doctor_names_the_subreaper_and_the_processes_limit() {
    let out = cloister_tests::cloister(&["doctor"]);
    out.success();
    let line = |name: &str| {
        out.lines()
            .into_iter()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line\n{out}"))
    };
    assert!(line("subreaper")["subreaper".len()..].trim_start().starts_with("yes"), "\n{out}");
    let processes = line("processes limit")["processes limit".len()..].trim_start();
    assert!(processes.starts_with("yes (") || processes.starts_with("no"), "\n{out}");
}

/// A sandbox with a view has a pid namespace of its own: the program is pid 2 under the
/// keeper, sees only the sandbox's processes, and as root its `processes` limit is the
/// namespace's `pid_max` (no cgroup to join), which holds a fork bomb to between the limit and
/// 300 more; the host's `pid_max` is untouched.
#[test]
fn a_view_sandbox_has_its_own_pids_and_caps_roots_with_pid_max() {
    let host_pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap();
    let out = Mode::Cloister
        .command("sh")
        .args(["-c", "echo pid=$$; echo seen=$(ls /proc | grep -c '^[0-9]'); echo pid_max=$(cat /proc/sys/kernel/pid_max)"])
        .cloister_arg("--limit")
        .cloister_arg("processes=1000")
        .output();
    out.success();
    assert_eq!(out.field("pid"), "2", "\n{out}");
    assert!(out.int_field("seen") < 10, "the program sees processes outside its sandbox\n{out}");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut v = release.split(|c: char| !c.is_ascii_digit()).map(|p| p.parse::<u32>().unwrap_or(0));
    // SAFETY: getuid cannot fail.
    let root = unsafe { libc::getuid() } == 0;
    if !root || (v.next().unwrap_or(0), v.next().unwrap_or(0)) < (6, 14) {
        eprintln!("a_view_sandbox_...: not root on Linux 6.14+: pid_max is not how processes is held here");
        return;
    }
    assert_eq!(out.field("pid_max"), "1301", "\n{out}");
    let exe = compile_c("forkbomb", &[]);
    let bomb = Mode::Cloister
        .command(&exe)
        .arg("5000")
        .cloister_arg("--limit")
        .cloister_arg("processes=1000")
        .output();
    bomb.success();
    assert_eq!(bomb.field("error"), "EAGAIN", "the bomb did not stop on the limit\n{bomb}");
    let forks = bomb.int_field("forks");
    assert!((990..1300).contains(&forks), "forks outside the limit's range\n{bomb}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap(),
        host_pid_max,
        "the host's pid_max changed"
    );
}
