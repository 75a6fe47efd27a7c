//! Reproducible mode's pid and mount namespaces: the program is pid 2 of a pid namespace of its
//! own (pid 1 is cloister's minimal init), its children are numbered the same way on every run,
//! `ps` and `/proc` agree with those numbers, and `/tmp` is a fresh, empty tmpfs whose files
//! never reach the host's `/tmp`. Exit statuses, deaths by signal, signals between the
//! program's own processes, the supervisor's SIGTERM/SIGHUP forwarding and a terminal's Ctrl-C
//! still behave as they do natively.
//!
//! Scenarios with a native meaning (statuses and signals) run in both modes; the rest are
//! cloister-only, since natively process ids are the host's and `/tmp` is shared. Where the host
//! refuses namespaces, cloister must say so in one line and the cloister-only checks are
//! skipped (with a note on the test's output).

use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cloister_tests::{backend_args, both_modes, cloister_bin, Mode, Outcome, PYTHON3, SYSTEM_PATH};

/// What cloister prints when the host refuses the namespaces.
const UNAVAILABLE: &str =
    "cloister: reproducible mode without a pid namespace on this host: process ids are the host's";

/// Whether this host lets an ordinary tool make a pid and mount namespace with a fresh /proc
/// (util-linux `unshare`, rootless through a user namespace when not root).
fn host_allows_namespaces() -> bool {
    static ALLOWED: OnceLock<bool> = OnceLock::new();
    *ALLOWED.get_or_init(|| {
        let mut cmd = Command::new("unshare");
        // SAFETY: geteuid cannot fail and touches no memory.
        if unsafe { libc::geteuid() } != 0 {
            cmd.arg("--map-root-user");
        }
        cmd.args(["--pid", "--fork", "--mount", "--mount-proc", "true"])
            .env("PATH", SYSTEM_PATH)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// True when the namespace checks can run here; otherwise says why the test is skipped.
fn namespaces_here(test: &str) -> bool {
    let allowed = host_allows_namespaces();
    if !allowed {
        eprintln!("{test}: skipped: this host refuses pid and mount namespaces");
    }
    allowed
}

/// `cloister run --reproducible -- program args...` (ignored natively).
fn repro(mode: Mode, program: &str, args: &[&str]) -> Outcome {
    mode.command(program).args(args).cloister_arg("--reproducible").output()
}

/// How many times cloister said it did without namespaces.
fn warnings(out: &Outcome) -> usize {
    out.stderr.lines().filter(|line| *line == UNAVAILABLE).count()
}

/// Runs `sh -c script` under `--reproducible` and checks it succeeded in its namespaces.
#[track_caller]
fn sh(script: &str) -> Outcome {
    let out = repro(Mode::Cloister, "sh", &["-c", script]);
    out.success();
    assert_eq!(warnings(&out), 0, "cloister did without namespaces\n{out}");
    out
}

// ---------------------------------------------------------------------------------------------
// Availability

/// Silent where the host allows namespaces; exactly the one line where it does not.
#[test]
fn warns_only_without_namespaces() {
    let out = repro(Mode::Cloister, "true", &[]);
    out.success();
    let expected = usize::from(!host_allows_namespaces());
    assert_eq!(warnings(&out), expected, "namespaces allowed here: {}\n{out}", expected == 0);
}

// ---------------------------------------------------------------------------------------------
// Process ids

#[test]
fn shell_pid_is_two_on_every_run() {
    if !namespaces_here("shell_pid_is_two_on_every_run") {
        return;
    }
    for _ in 0..3 {
        let out = sh("echo $$");
        assert_eq!(out.stdout, "2\n", "\n{out}");
    }
}

/// `os.getpid()`, `/proc/self`, `/proc/self/stat` and `/proc/self/status` agree, and say the
/// same on two runs.
#[test]
fn python_pid_repeats_and_proc_agrees() {
    if !namespaces_here("python_pid_repeats_and_proc_agrees") {
        return;
    }
    let code = "import os\n\
                print(os.getpid())\n\
                print(os.getpid())\n\
                print(os.readlink('/proc/self'))\n\
                print(open('/proc/self/stat').read().split()[0])\n\
                print([l.split()[1] for l in open('/proc/self/status') if l.startswith('Pid:')][0])\n\
                print(os.getppid())\n";
    let runs: Vec<Outcome> = (0..2).map(|_| repro(Mode::Cloister, PYTHON3, &["-c", code])).collect();
    for out in &runs {
        out.success();
        assert_eq!(out.stdout, "2\n2\n2\n2\n2\n1\n", "\n{out}");
    }
}

/// A chain of forks: each child forks the next and waits for it; every level prints its depth,
/// pid and parent's pid. The numbers are the creation order, on every run.
#[test]
fn fork_chain_repeats() {
    if !namespaces_here("fork_chain_repeats") {
        return;
    }
    let code = "import os\n\
                depth = 0\n\
                while depth < 3:\n    \
                    pid = os.fork()\n    \
                    if pid:\n        \
                        os.waitpid(pid, 0)\n        \
                        break\n    \
                    depth += 1\n\
                print(depth, os.getpid(), os.getppid(), flush=True)\n";
    let first = repro(Mode::Cloister, PYTHON3, &["-c", code]);
    first.success();
    assert_eq!(first.stdout, "3 5 4\n2 4 3\n1 3 2\n0 2 1\n", "\n{first}");
    let again = repro(Mode::Cloister, PYTHON3, &["-c", code]);
    again.success();
    assert_eq!(again.stdout, first.stdout, "\n{again}");
}

/// Shell children (a subshell, a pipeline, `sh -c` and a background job) get the same pids on
/// two runs.
#[test]
fn shell_children_repeat() {
    if !namespaces_here("shell_children_repeat") {
        return;
    }
    let script = "echo top=$$; sh -c 'echo child=$$'; (sh -c 'echo sub=$$'); \
                  sh -c 'echo pipe=$$' | cat; sleep 0 & echo bg=$!; wait";
    let first = sh(script);
    assert_eq!(first.lines()[0], "top=2", "\n{first}");
    let again = sh(script);
    assert_eq!(again.stdout, first.stdout, "\n{again}");
}

/// `ps -e` (procps, reading /proc) lists the sandbox's processes only: init, the shell, ps.
#[test]
fn ps_lists_only_the_sandbox() {
    if !namespaces_here("ps_lists_only_the_sandbox") {
        return;
    }
    let first = sh("ps -e -o pid=,ppid=");
    let rows: Vec<(i64, i64)> = first
        .lines()
        .iter()
        .map(|line| {
            let mut cols = line.split_whitespace().map(|c| c.parse::<i64>().expect("a pid"));
            (cols.next().expect("a pid"), cols.next().expect("a ppid"))
        })
        .collect();
    assert_eq!(rows, [(1, 0), (2, 1), (3, 2)], "\n{first}");
    let again = sh("ps -e -o pid=,ppid=");
    assert_eq!(again.stdout, first.stdout, "\n{again}");
}

/// Processes orphaned inside the sandbox are reaped by its init: no zombie is left behind.
#[test]
fn orphans_are_reaped() {
    if !namespaces_here("orphans_are_reaped") {
        return;
    }
    let out = sh("(sleep 0.1 &); sleep 1; ps -e -o pid=,stat=");
    assert!(
        !out.lines().iter().any(|line| line.split_whitespace().nth(1).is_some_and(|s| s.starts_with('Z'))),
        "a zombie is left\n{out}"
    );
}

/// When the program ends, the sandbox ends: a background job does not keep `cloister run`
/// waiting.
#[test]
fn sandbox_ends_with_the_program() {
    let out = repro(Mode::Cloister, "sh", &["-c", "sleep 600 & echo started"]);
    out.success();
    assert_eq!(out.stdout, "started\n", "\n{out}");
    assert!(out.elapsed < Duration::from_secs(30), "cloister waited for the background job\n{out}");
}

// ---------------------------------------------------------------------------------------------
// /tmp

/// `/tmp` is empty (a file on the host's /tmp is not there), mode 1777, writable, and what is
/// written there stays in the sandbox.
#[test]
fn tmp_is_fresh_and_private() {
    if !namespaces_here("tmp_is_fresh_and_private") || cloister_tests::checkout_under_tmp() {
        return;
    }
    let tag = format!("cloister-namespaces-test-{}", std::process::id());
    let host_marker = Path::new("/tmp").join(format!("{tag}-host"));
    std::fs::write(&host_marker, "host\n").expect("cannot write a marker in the host's /tmp");
    let inside = format!("/tmp/{tag}-sandbox");
    let script = format!("ls -A /tmp; echo end; stat -c %a /tmp; echo hi > {inside} && cat {inside}");
    let runs: Vec<Outcome> = (0..2).map(|_| repro(Mode::Cloister, "sh", &["-c", &script])).collect();
    let leaked = Path::new(&inside).exists();
    let _ = std::fs::remove_file(&host_marker);
    let _ = std::fs::remove_file(&inside);
    for out in &runs {
        out.success();
        // The second run does not see the first one's file either.
        assert_eq!(out.stdout, "end\n1777\nhi\n", "\n{out}");
    }
    assert!(!leaked, "{inside} appeared on the host");
}

// ---------------------------------------------------------------------------------------------
// Exit statuses and signals between the program's processes

fn exit_statuses(mode: Mode) {
    for (script, code) in [
        ("exit 0", 0),
        ("exit 7", 7),
        ("exit 255", 255),
        ("kill -TERM $$", 143),
        ("kill -KILL $$", 137),
        ("kill -INT $$", 130),
        ("kill -HUP $$", 129),
    ] {
        let out = repro(mode, "sh", &["-c", script]);
        out.expect_code(code);
        let expected = usize::from(mode.is_cloister() && !host_allows_namespaces());
        assert_eq!(warnings(&out), expected, "\n{out}");
    }
}

fn python_death_by_signal(mode: Mode) {
    let out = repro(mode, PYTHON3, &["-c", "import os, signal; os.kill(os.getpid(), signal.SIGUSR1)"]);
    out.expect_code(128 + libc::SIGUSR1);
    let out = repro(mode, PYTHON3, &["-c", "import os; os.abort()"]);
    out.expect_code(128 + libc::SIGABRT);
}

/// `kill -TERM PID` of a child the shell started: the child dies of it, the shell goes on.
fn kill_child_by_pid(mode: Mode) {
    let out = repro(mode, "sh", &["-c", "sleep 600 & p=$!; kill -TERM $p; wait $p; echo status=$?"]);
    out.success();
    assert_eq!(out.int_field("status"), 143, "\n{out}");
}

/// A child signals its parent by pid (`$PPID` in the child is the shell's `$$`).
fn kill_parent_by_pid(mode: Mode) {
    let out =
        repro(mode, "sh", &["-c", "trap 'echo got-usr1; exit 3' USR1; sh -c 'kill -USR1 $PPID'; sleep 600"]);
    out.expect_code(3);
    assert_eq!(out.stdout, "got-usr1\n", "\n{out}");
}

both_modes!(exit_statuses, python_death_by_signal, kill_child_by_pid, kill_parent_by_pid);

// ---------------------------------------------------------------------------------------------
// Signals from outside: the supervisor's forwarding, and a terminal's Ctrl-C

/// Starts `sh -c script` in `mode` in a process group of its own, and waits until it printed
/// `ready`.
fn start_ready(mode: Mode, script: &str) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut cmd = match mode {
        Mode::Native => Command::new("sh"),
        Mode::Cloister => {
            let mut cmd = Command::new(cloister_bin());
            cmd.arg("run").args(backend_args()).args(["--reproducible", "--", "sh"]);
            cmd
        }
    };
    cmd.args(["-c", script])
        .env("PATH", SYSTEM_PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0);
    let mut child = cmd.spawn().expect("cannot start cloister");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("cannot read the program's output");
    assert_eq!(line, "ready\n", "the program did not start");
    // The supervisor installs its forwarding right after the program's exec; give it a moment.
    std::thread::sleep(Duration::from_millis(300));
    (child, stdout)
}

/// Waits (at most a minute) for `child`; returns its shell-style status and the rest of its
/// output.
fn finish(mut child: Child, mut stdout: BufReader<std::process::ChildStdout>) -> (i32, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("cannot wait for the child") {
            break status;
        }
        if Instant::now() > deadline {
            // SAFETY: kill(2) has no memory effects; the group is the one we created.
            unsafe { libc::kill(-group_of(&child), libc::SIGKILL) };
            let _ = child.wait();
            panic!("the program outlived its signal");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Natively a shell that died leaves its `sleep` holding the pipe: end the group first.
    // SAFETY: kill(2) has no memory effects; the group is the one we created.
    unsafe { libc::kill(-group_of(&child), libc::SIGKILL) };
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
    let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    (code, rest)
}

/// Sends `sig` to `child` alone (to `cloister run` itself, under cloister).
fn signal_pid(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory effects; the pid is our unreaped child's.
    unsafe { libc::kill(group_of(child), sig) };
}

/// SIGTERM to `cloister run` reaches the program, which dies of it (143).
fn sigterm_to_supervisor_kills_program(mode: Mode) {
    let (child, out) = start_ready(mode, "echo ready; sleep 600");
    signal_pid(&child, libc::SIGTERM);
    let (code, _) = finish(child, out);
    assert_eq!(code, 143);
}

/// SIGTERM and SIGHUP to `cloister run` reach the program's own handler.
fn forwarded_signals_reach_handlers(mode: Mode) {
    for (sig, name) in [(libc::SIGTERM, "TERM"), (libc::SIGHUP, "HUP")] {
        let script =
            format!("trap 'echo got-{name}; exit 5' {name}; echo ready; while :; do sleep 0.05; done");
        let (child, out) = start_ready(mode, &script);
        signal_pid(&child, sig);
        let (code, rest) = finish(child, out);
        assert_eq!((code, rest.as_str()), (5, format!("got-{name}\n").as_str()));
    }
}

/// Ctrl-C: SIGINT to the whole foreground process group reaches the program (130), and the
/// supervisor and init do not die of it first.
fn sigint_to_process_group(mode: Mode) {
    let (child, out) =
        start_ready(mode, "trap 'echo got-INT; exit 9' INT; echo ready; while :; do sleep 0.05; done");
    // SAFETY: kill(2) has no memory effects; the group is the one we created for the child.
    unsafe { libc::kill(-group_of(&child), libc::SIGINT) };
    let (code, rest) = finish(child, out);
    assert_eq!((code, rest.as_str()), (9, "got-INT\n"));

    let (child, out) = start_ready(mode, "echo ready; sleep 600");
    // SAFETY: as above.
    unsafe { libc::kill(-group_of(&child), libc::SIGINT) };
    let (code, _) = finish(child, out);
    assert_eq!(code, 130);
}

/// The process group `start_ready` made for `child` (led by it).
fn group_of(child: &Child) -> i32 {
    i32::try_from(child.id()).expect("pid out of range")
}

both_modes!(sigterm_to_supervisor_kills_program, forwarded_signals_reach_handlers, sigint_to_process_group);

// ---------------------------------------------------------------------------------------------
// Rootless

/// Not root: the namespaces come with a user namespace that maps only the caller's own ids.
/// Run as `nobody` from root (skipped when the tests do not run as root: every other test then
/// covers this path).
#[test]
fn rootless_user_namespace() {
    const NOBODY: [&str; 3] = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    // SAFETY: geteuid cannot fail and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    if !root || Mode::Native.command("setpriv").args(NOBODY).arg("true").output().code() != 0 {
        eprintln!("rootless_user_namespace: skipped: needs root and setpriv to become nobody");
        return;
    }
    let rt = cloister_bin().with_file_name("cloister-rt");
    let reachable = format!("test -x '{}' && test -r '{}'", cloister_bin().display(), rt.display());
    if Mode::Native.command("setpriv").args(NOBODY).args(["sh", "-c", &reachable]).output().code() != 0 {
        eprintln!("rootless_user_namespace: skipped: nobody cannot reach this checkout's binaries");
        return;
    }
    let out = Mode::Native
        .command("setpriv")
        .args(NOBODY)
        .arg(cloister_bin())
        .arg("run")
        .args(backend_args())
        .args(["--reproducible", "--", "sh", "-c", "echo $$; id -u; id -g; ls -A /tmp; echo end"])
        .current_dir("/")
        .output();
    out.success();
    if warnings(&out) == 1 {
        eprintln!("rootless_user_namespace: this host refuses user namespaces to nobody");
        // Reproducible mode's ids are the virtual user's, whoever runs it.
        assert_eq!(out.lines()[1..], ["1000", "1000", "end"], "\n{out}");
        return;
    }
    assert_eq!(warnings(&out), 0, "\n{out}");
    if cloister_tests::checkout_under_tmp() {
        // The runtime lies under /tmp, so the sandbox keeps the host's /tmp.
        assert_eq!(out.stdout.lines().take(3).collect::<Vec<_>>(), ["2", "1000", "1000"], "\n{out}");
        return;
    }
    assert_eq!(out.stdout, "2\n1000\n1000\nend\n", "\n{out}");
}

/// A sandbox with a view has System V IPC and a host name of its own: a shared memory segment
/// made inside is not the host's, and a host name set inside (as root) stays inside.
#[test]
fn ipc_and_host_name_stay_inside() {
    if !namespaces_here("ipc_and_host_name_stay_inside") {
        return;
    }
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let segments = || {
        std::fs::read_to_string("/proc/sysvipc/shm")
            .unwrap()
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .count()
    };
    let before = segments();
    let script = "ipcmk -M 4096 >/dev/null && echo segments=$(($(wc -l < /proc/sysvipc/shm) - 1)); \
                  hostname cloister-inside 2>/dev/null; echo name=$(cat /proc/sys/kernel/hostname)";
    let out = Mode::Cloister.command("sh").args(["-c", script]).output();
    out.success();
    assert_eq!(out.field("segments"), "1", "the sandbox sees the host's segments\n{out}");
    assert_eq!(segments(), before, "a segment made inside is on the host\n{out}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_name,
        "the host's name changed"
    );
}
