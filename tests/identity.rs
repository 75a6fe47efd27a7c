//! The first kernel subsystem: `--hostname`, `--time-offset` and `--seed` (and their policy keys
//! `identity.hostname`, `time.offset_seconds`, `random.seed`) as seen by coreutils, Python and C
//! programs; `--trace`; and bad pointers handed to the calls cloister serves.
//!
//! Natively the same scenarios check the real host name, an unshifted clock and unrepeatable
//! randomness, so each assertion is checked against what Linux itself does.

use std::fs;
use std::path::{Path, PathBuf};

use cloister_tests::{
    assert_clock, both_modes, compile_c, is_hex, now_unix, temp_dir, write_file, Invocation, Mode, Outcome,
    PYTHON3, VIRTUAL_HOSTNAME,
};
use serde_json::Value;

const HOST: &str = VIRTUAL_HOSTNAME;

fn s(path: &Path) -> &str {
    path.to_str().expect("scratch paths are UTF-8")
}

fn policy_file(json: &str) -> PathBuf {
    let path = temp_dir("policy").join("policy.json");
    write_file(&path, json, 0o644);
    path
}

/// Runs `program args` with `--hostname HOST` and checks it printed the expected host name.
#[track_caller]
fn prints_hostname(mode: Mode, program: &str, args: &[&str]) {
    let out = mode.command(program).args(args).hostname(HOST).output();
    out.success();
    assert_eq!(out.stdout, format!("{}\n", mode.hostname(HOST)), "\n{out}");
}

// ---------------------------------------------------------------------------------------------
// --hostname

fn hostname_uname_n(mode: Mode) {
    prints_hostname(mode, "uname", &["-n"]);
}

fn hostname_command(mode: Mode) {
    prints_hostname(mode, "hostname", &[]);
}

fn hostname_proc_file(mode: Mode) {
    prints_hostname(mode, "cat", &["/proc/sys/kernel/hostname"]);
}

fn hostname_python_socket(mode: Mode) {
    prints_hostname(mode, PYTHON3, &["-c", "import socket; print(socket.gethostname())"]);
}

fn hostname_python_uname(mode: Mode) {
    prints_hostname(mode, PYTHON3, &["-c", "import os; print(os.uname().nodename)"]);
    prints_hostname(mode, PYTHON3, &["-c", "import platform; print(platform.node())"]);
}

fn hostname_c_program(mode: Mode) {
    let exe = compile_c("hello", &[]);
    let out = mode.command(&exe).hostname(HOST).output();
    out.success();
    assert_eq!(out.field("uname"), mode.hostname(HOST), "\n{out}");
    assert_eq!(out.field("gethostname"), mode.hostname(HOST), "\n{out}");
}

/// Only the node name changes: sysname, release, version and machine are the host's.
fn hostname_leaves_other_uname_fields(mode: Mode) {
    let native = Mode::Native.command("uname").args(["-s", "-r", "-v", "-m"]).output();
    native.success();
    let out = mode.command("uname").args(["-s", "-r", "-v", "-m"]).hostname(HOST).output();
    out.success();
    assert_eq!(out.stdout, native.stdout, "\n{out}");
}

fn hostname_from_policy_file(mode: Mode) {
    let policy = policy_file(r#"{ "identity": { "hostname": "policy-host" } }"#);
    for (program, args) in
        [("uname", &["-n"][..]), (PYTHON3, &["-c", "import socket; print(socket.gethostname())"][..])]
    {
        let out = mode.command(program).args(args).policy(&policy).output();
        out.success();
        assert_eq!(out.stdout, format!("{}\n", mode.hostname("policy-host")), "\n{out}");
    }
}

// ---------------------------------------------------------------------------------------------
// --time-offset

/// Runs `invocation`, returning its outcome and the host clock before and after.
fn timed(invocation: &Invocation) -> (Outcome, i64, i64) {
    let before = now_unix();
    let out = invocation.output();
    let after = now_unix();
    out.success();
    (out, before, after)
}

fn time_offset_date(mode: Mode) {
    // Three days ahead, and ten years back.
    for offset in [3 * 86_400, -10 * 365 * 86_400] {
        let (out, before, after) = timed(&mode.command("date").arg("+%s").time_offset(offset));
        let value = out.stdout.trim().parse().expect("date +%s prints a number");
        assert_clock("date +%s", value, before, after, mode.offset(offset));
    }
}

fn time_offset_python(mode: Mode) {
    const OFFSET: i64 = 86_400 + 3_600;
    let code = "import time, datetime\n\
                print('time=%d' % time.time())\n\
                print('time_ns=%d' % (time.time_ns() // 10**9))\n\
                print('datetime=%d' % datetime.datetime.now().timestamp())\n\
                last = time.monotonic()\n\
                ok = True\n\
                for _ in range(100000):\n    \
                    now = time.monotonic()\n    \
                    ok = ok and now >= last\n    \
                    last = now\n\
                print('monotonic_ok=%d' % ok)\n";
    let (out, before, after) = timed(&mode.command(PYTHON3).args(["-c", code]).time_offset(OFFSET));
    for key in ["time", "time_ns", "datetime"] {
        assert_clock(key, out.int_field(key), before, after, mode.offset(OFFSET));
    }
    assert_eq!(out.field("monotonic_ok"), "1", "\n{out}");
}

fn time_offset_c(mode: Mode, flags: &[&str]) {
    const OFFSET: i64 = -7 * 86_400;
    let exe = compile_c("clocks", flags);
    let (out, before, after) = timed(&mode.command(&exe).time_offset(OFFSET));
    for key in [
        "time",
        "gettimeofday",
        "realtime",
        "realtime_coarse",
        "realtime_syscall",
        "gettimeofday_syscall",
        "time_syscall",
    ] {
        assert_clock(key, out.int_field(key), before, after, mode.offset(OFFSET));
    }
    for check in ["monotonic_ok", "realtime_advances", "monotonic_advances"] {
        assert_eq!(out.field(check), "1", "{check}\n{out}");
    }
}

fn time_offset_c_dynamic(mode: Mode) {
    time_offset_c(mode, &[]);
}

fn time_offset_c_static(mode: Mode) {
    time_offset_c(mode, &["-static"]);
}

fn time_offset_from_policy_file(mode: Mode) {
    let policy = policy_file(r#"{ "time": { "offset_seconds": 7200 } }"#);
    let (out, before, after) = timed(&mode.command("date").arg("+%s").policy(&policy));
    let value = out.stdout.trim().parse().expect("date +%s prints a number");
    assert_clock("date +%s", value, before, after, mode.offset(7200));
}

// ---------------------------------------------------------------------------------------------
// --seed

/// Runs `run(seed)` for seeds 42, 42, 43 and none.
fn seeded_runs<T>(run: impl Fn(Option<u64>) -> T) -> [T; 4] {
    [run(Some(42)), run(Some(42)), run(Some(43)), run(None)]
}

/// Checks values from [`seeded_runs`]: under cloister the same seed repeats and another seed
/// (or none) differs; natively nothing repeats.
#[track_caller]
fn check_seeded(mode: Mode, what: &str, [first, again, other, unseeded]: [&str; 4]) {
    if mode.is_cloister() {
        assert_eq!(first, again, "{what}: the same seed gave different bytes");
    } else {
        assert_ne!(first, again, "{what}: two native runs gave the same bytes");
    }
    assert_ne!(first, other, "{what}: seeds 42 and 43 gave the same bytes");
    assert_ne!(first, unseeded, "{what}: the unseeded run repeated the seeded one");
}

/// `program args`, with `--seed` when one is given.
fn maybe_seeded(mode: Mode, program: &Path, args: &[&str], seed: Option<u64>) -> Outcome {
    let mut invocation = mode.command(program).args(args);
    if let Some(seed) = seed {
        invocation = invocation.seed(seed);
    }
    let out = invocation.output();
    out.success();
    out
}

fn seed_python_urandom(mode: Mode) {
    let code = ["-c", "import os; print(os.urandom(16).hex())"];
    let runs = seeded_runs(|seed| maybe_seeded(mode, Path::new(PYTHON3), &code, seed));
    for out in &runs {
        assert!(is_hex(out.stdout.trim_end(), 16), "\n{out}");
    }
    check_seeded(mode, "os.urandom", runs.each_ref().map(|o| o.stdout.as_str()));
}

/// coreutils' `shuf` takes its randomness from getrandom.
fn seed_coreutils_shuf(mode: Mode) {
    let args = ["-i", "1-1000000000", "-n", "4"];
    let runs = seeded_runs(|seed| maybe_seeded(mode, Path::new("shuf"), &args, seed));
    check_seeded(mode, "shuf", runs.each_ref().map(|o| o.stdout.as_str()));
}

fn seed_c(mode: Mode, flags: &[&str]) {
    let exe = compile_c("randomness", flags);
    let runs = seeded_runs(|seed| maybe_seeded(mode, &exe, &[], seed));
    for out in &runs {
        assert_eq!(out.field("calls_differ"), "1", "a stream, not a constant\n{out}");
    }
    for key in ["getrandom1", "getrandom2", "getrandom_nonblock", "getentropy", "at_random"] {
        for out in &runs {
            assert!(is_hex(out.field(key), 16), "\n{out}");
        }
        check_seeded(mode, key, runs.each_ref().map(|o| o.field(key)));
    }
}

fn seed_c_getrandom_dynamic(mode: Mode) {
    seed_c(mode, &[]);
}

fn seed_c_getrandom_static(mode: Mode) {
    seed_c(mode, &["-static"]);
}

/// `random.seed` in a policy file gives the same stream as `--seed` with the same number.
fn seed_from_policy_file(mode: Mode) {
    let policy = policy_file(r#"{ "random": { "seed": 99 } }"#);
    let urandom = |inv: Invocation| {
        let out = inv.args(["-c", "import os; print(os.urandom(16).hex())"]).output();
        out.success();
        out.stdout
    };
    let from_policy = urandom(mode.command(PYTHON3).policy(&policy));
    let from_policy_again = urandom(mode.command(PYTHON3).policy(&policy));
    let from_flag = urandom(mode.command(PYTHON3).seed(99));
    if mode.is_cloister() {
        assert_eq!(from_policy, from_policy_again);
        assert_eq!(from_policy, from_flag, "policy seed 99 and --seed 99 differ");
    } else {
        assert_ne!(from_policy, from_policy_again);
    }
}

// ---------------------------------------------------------------------------------------------
// Bad pointers and bad arguments

fn bad_pointers_are_efault(mode: Mode) {
    let exe = compile_c("badptr", &[]);
    let out = mode.command(&exe).hostname(HOST).seed(5).time_offset(3600).output();
    out.success();
    for (call, errno) in [
        ("uname_addr_1", "EFAULT"),
        ("uname_readonly", "EFAULT"),
        ("uname_into_unmapped", "EFAULT"),
        ("getrandom_addr_8", "EFAULT"),
        ("getrandom_readonly", "EFAULT"),
        ("getrandom_bad_flags", "EINVAL"),
        ("clock_gettime_addr_1", "EFAULT"),
        ("clock_gettime_bad_clock", "EINVAL"),
        ("gettimeofday_addr_1", "EFAULT"),
        ("time_addr_1", "EFAULT"),
    ] {
        assert_eq!(out.field(call), errno, "{call}\n{out}");
    }
    assert_eq!(out.field("uname"), mode.hostname(HOST), "\n{out}");
    assert_eq!(out.field("still_running"), "1", "\n{out}");
}

both_modes!(
    hostname_uname_n,
    hostname_command,
    hostname_proc_file,
    hostname_python_socket,
    hostname_python_uname,
    hostname_c_program,
    hostname_leaves_other_uname_fields,
    hostname_from_policy_file,
    time_offset_date,
    time_offset_python,
    time_offset_c_dynamic,
    time_offset_c_static,
    time_offset_from_policy_file,
    seed_python_urandom,
    seed_coreutils_shuf,
    seed_c_getrandom_dynamic,
    seed_c_getrandom_static,
    seed_from_policy_file,
    bad_pointers_are_efault,
);

// ---------------------------------------------------------------------------------------------
// --trace (cloister only)

/// Reads a `--trace` file: JSON lines, each an object with at least the keys of issue 2.
fn read_trace(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("no trace file {}: {e}", path.display()));
    let records: Vec<Value> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("trace line is not JSON ({e}): {line}"))
        })
        .collect();
    for record in &records {
        let ok = record["pid"].is_u64()
            && record["tid"].is_u64()
            && record["syscall"].is_string()
            && record["args"].is_string()
            && (record["result"].is_number() || record["result"].as_str().is_some_and(is_errno_name))
            && record["ns"].is_number();
        assert!(ok, "trace record without pid/tid/syscall/args/result/ns of the right types: {record}");
    }
    records
}

fn is_errno_name(name: &str) -> bool {
    name.len() > 1
        && name.starts_with('E')
        && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn calls<'a>(records: &'a [Value], syscall: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["syscall"] == syscall).collect()
}

#[test]
fn trace_records_redirected_calls() {
    let trace = temp_dir("trace").join("trace.json");
    let out = Mode::Cloister.command("uname").arg("-n").hostname("h").trace(&trace).output();
    out.success();
    assert_eq!(out.stdout, "h\n", "\n{out}");
    assert!(out.stderr.is_empty(), "tracing went to stderr\n{out}");
    let records = read_trace(&trace);
    let unames = calls(&records, "uname");
    assert!(unames.iter().any(|r| r["result"] == 0), "no uname record with result 0 in {}", s(&trace));
}

/// Calls that run on the host after the kernel's decision get their results too, timed waits
/// of reproducible mode (which go through their own gate) included.
#[test]
fn trace_records_results_of_host_and_timed_calls() {
    let trace = temp_dir("trace").join("trace.json");
    let out = Mode::Cloister
        .command("sh")
        .args(["-c", "sleep 0.01; cat /proc/self/comm"])
        .cloister_arg("--reproducible")
        .trace(&trace)
        .output();
    out.success();
    let records = read_trace(&trace);
    let sleeps: Vec<_> = ["nanosleep", "clock_nanosleep"].iter().flat_map(|c| calls(&records, c)).collect();
    assert!(sleeps.iter().any(|r| r["result"] == 0), "no sleep record with result 0 in {}", s(&trace));
    let opens = calls(&records, "openat");
    assert!(opens.iter().all(|r| r["result"] != "unknown"), "an openat without its result in {}", s(&trace));
}

/// A program that marks every descriptor close-on-exec does not end the trace at its exec.
#[test]
fn trace_survives_cloexec_everything() {
    let trace = temp_dir("trace").join("trace.json");
    let code = "import os, fcntl\n\
                for fd in range(3, 1024):\n    \
                    try: fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)\n    \
                    except OSError: pass\n\
                os.execv('/bin/sh', ['sh', '-c', 'uname -n'])\n";
    let out = Mode::Cloister.command(PYTHON3).args(["-c", code]).hostname("h").trace(&trace).output();
    out.success();
    assert_eq!(out.stdout, "h\n", "\n{out}");
    let records = read_trace(&trace);
    assert!(
        calls(&records, "uname").iter().any(|r| r["result"] == 0),
        "no uname after the exec in {}",
        s(&trace)
    );
}

#[test]
fn trace_records_errno_names() {
    let trace = temp_dir("trace").join("trace.json");
    let exe = compile_c("badptr", &[]);
    Mode::Cloister.command(&exe).hostname("h").seed(1).trace(&trace).output().success();
    let records = read_trace(&trace);
    for syscall in ["uname", "getrandom"] {
        assert!(
            calls(&records, syscall).iter().any(|r| r["result"] == "EFAULT"),
            "no {syscall} record with result \"EFAULT\" in {}",
            s(&trace)
        );
    }
}

#[test]
fn trace_follows_children() {
    let trace = temp_dir("trace").join("trace.json");
    let out =
        Mode::Cloister.command("sh").args(["-c", "uname -n; uname -n"]).hostname("h").trace(&trace).output();
    out.success();
    assert_eq!(out.stdout, "h\nh\n");
    let records = read_trace(&trace);
    let mut pids: Vec<u64> = calls(&records, "uname").iter().filter_map(|r| r["pid"].as_u64()).collect();
    pids.sort_unstable();
    pids.dedup();
    assert!(pids.len() >= 2, "expected uname records from two processes, got pids {pids:?} in {}", s(&trace));
}
