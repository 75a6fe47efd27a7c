//! Reproducible mode (`--reproducible`, `--seed`, `--epoch`, `--fast-sleep`, the built-in policy
//! `reproducible` and its keys): the same program, run twice with the same seed, prints the same
//! bytes; run with another seed, it prints different random values in the same structure.
//!
//! The programs are in `tests/programs/reproducible/`: a Python script (`snapshot.py`), a C
//! program with rdtsc, clocks, getrandom and fork (`repro.c`), a bash session (`session.sh`), a
//! clock-race checker (`monotonic.c`), timers of every kind (`timers.c`, `timers.py`), timers
//! across fork (`fork_timers.c`), timers another thread takes (`timer_elsewhere.c`), coreutils
//! `timeout`'s race between its timer and its command
//! (`timeout_race.c`) and a `make` build (`make/`). Each prints `key=value`
//! lines; a test runs it four times (the default seed twice, seed [`OTHER_SEED`] twice) and
//! compares: the same seed gives identical bytes, the other seed gives the same keys in the same
//! order, the same values for everything that is not random, and different values for what is.
//!
//! Unlike the other targets these tests have no native half: natively nothing here repeats, so
//! the reference a cloister run is checked against is another cloister run. Where a test checks
//! a fixed value (the epoch, the host name, the first pid) it is the one the docs promise
//! (`docs/reproducible.md`).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloister_tests::{
    compile_c, programs_dir, scratch_dir, temp_dir, write_file, Invocation, Mode, Outcome, PYTHON3,
};

/// The virtual clock's default start, 2000-01-01T00:00:00Z.
const DEFAULT_EPOCH: i64 = 946_684_800;

/// The seed the "other seed" runs use (the default is 0).
const OTHER_SEED: u64 = 7;

/// Names of files created in a different order in each run; the listings must not show it.
const NAMES: [&str; 8] = ["zulu", "alpha", "mike", "bravo", "yankee", "charlie", "kilo", "echo"];

// ---------------------------------------------------------------------------------------------
// Running programs in reproducible mode

/// A fixture in `tests/programs/reproducible/`.
fn fixture(name: &str) -> PathBuf {
    programs_dir().join("reproducible").join(name)
}

/// `cloister run --reproducible [--seed N] -- program`. `PYTHONHASHSEED` is removed in case a
/// developer's environment sets it: Python must take its hash seed from the sandbox.
fn repro(program: impl AsRef<std::ffi::OsStr>, seed: Option<u64>) -> Invocation {
    let invocation =
        Mode::Cloister.command(program).cloister_arg("--reproducible").env_remove("PYTHONHASHSEED");
    match seed {
        Some(seed) => invocation.seed(seed),
        None => invocation,
    }
}

/// Runs `invocation`, which must succeed, and returns its outcome.
#[track_caller]
fn ok(invocation: Invocation) -> Outcome {
    let out = invocation.output();
    out.success();
    out
}

/// Compiles `tests/programs/reproducible/<name>.c` with `gcc -O2 -g -Wall -Wextra <flags>`,
/// once per test process, and returns the executable.
fn compile(name: &str, flags: &[&str]) -> PathBuf {
    type Cache = Mutex<HashMap<String, Arc<OnceLock<PathBuf>>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = std::iter::once(name).chain(flags.iter().copied()).collect::<Vec<_>>().join(" ");
    let cell = {
        let mut cache =
            CACHE.get_or_init(Cache::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(cache.entry(key.clone()).or_default())
    };
    cell.get_or_init(|| {
        let source = fixture(&format!("{name}.c"));
        let dir = scratch_dir().join("bin");
        fs::create_dir_all(&dir).expect("cannot create the programs directory");
        let exe =
            dir.join(format!("reproducible-{}", key.replace(|c: char| !c.is_ascii_alphanumeric(), "_")));
        cloister_tests::gcc_build(&source, &exe, flags);
        exe
    })
    .clone()
}

/// Runs `make(seed, run)` for the default seed twice and [`OTHER_SEED`] twice (`run` counts
/// 0..4, for arguments that should differ between runs without changing the output).
fn four_runs(make: impl Fn(Option<u64>, usize) -> Invocation) -> [Outcome; 4] {
    [ok(make(None, 0)), ok(make(None, 1)), ok(make(Some(OTHER_SEED), 2)), ok(make(Some(OTHER_SEED), 3))]
}

/// The first line where `a` and `b` differ, for messages.
fn first_difference(a: &str, b: &str) -> String {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    (0..la.len().max(lb.len())).find(|&i| la.get(i) != lb.get(i)).map_or_else(
        || "no line differs (line endings?)".to_owned(),
        |i| format!("line {}: {:?} then {:?}", i + 1, la.get(i), lb.get(i)),
    )
}

/// Checks that two runs printed exactly the same bytes, on stdout and on stderr.
#[track_caller]
fn assert_same_bytes(what: &str, a: &Outcome, b: &Outcome) {
    assert!(
        a.stdout_bytes == b.stdout_bytes,
        "{what}: two runs printed different bytes; first difference at {}\n\n{a}\n\n{b}",
        first_difference(&a.stdout, &b.stdout)
    );
    assert!(
        a.stderr == b.stderr,
        "{what}: two runs printed different stderr; first difference at {}\n\n{a}\n\n{b}",
        first_difference(&a.stderr, &b.stderr)
    );
}

/// `key=value` lines as pairs (a line without `=` is a key with an empty value).
fn pairs(out: &Outcome) -> Vec<(&str, &str)> {
    out.stdout.lines().map(|line| line.split_once('=').unwrap_or((line, ""))).collect()
}

/// Keys whose values may or may not follow the seed: a temporary name is drawn from
/// `getrandom` after a collision, and from the clock and the stack's address before. Under one
/// seed they repeat like everything else ([`assert_same_bytes`]).
const EITHER: [&str; 2] = ["mktemp", "mktemp_dir"];

/// Checks that runs under two seeds have the same structure: the same keys in the same order,
/// different values for `random` keys, the same values for all others.
#[track_caller]
fn assert_same_structure(what: &str, a: &Outcome, b: &Outcome, random: &[&str]) {
    let (pa, pb) = (pairs(a), pairs(b));
    let (ka, kb): (Vec<&str>, Vec<&str>) =
        (pa.iter().map(|p| p.0).collect(), pb.iter().map(|p| p.0).collect());
    assert_eq!(ka, kb, "{what}: the two seeds printed different keys\n\n{a}\n\n{b}");
    for key in random {
        assert!(ka.contains(key), "{what}: no `{key}=` line\n{a}");
    }
    for ((key, va), (_, vb)) in pa.iter().zip(&pb) {
        if EITHER.contains(key) {
            continue;
        }
        if random.contains(key) {
            assert_ne!(va, vb, "{what}: `{key}` is the same under seeds 0 and {OTHER_SEED}\n\n{a}\n\n{b}");
        } else {
            assert_eq!(va, vb, "{what}: `{key}` changed with the seed (it is not random)\n\n{a}\n\n{b}");
        }
    }
}

/// The checks every program gets from [`four_runs`].
#[track_caller]
fn assert_reproducible(what: &str, runs: &[Outcome; 4], random: &[&str]) {
    assert_same_bytes(&format!("{what} (default seed)"), &runs[0], &runs[1]);
    assert_same_bytes(&format!("{what} (seed {OTHER_SEED})"), &runs[2], &runs[3]);
    assert_same_structure(what, &runs[0], &runs[2], random);
}

/// The names of [`NAMES`] in the `run`-th order (rotated and, for odd runs, reversed).
fn creation_order(run: usize) -> Vec<&'static str> {
    let mut names = NAMES.to_vec();
    names.rotate_left(run * 3 % NAMES.len());
    if run % 2 == 1 {
        names.reverse();
    }
    names
}

/// [`NAMES`] sorted, as a reproducible listing shows them.
fn sorted_names() -> Vec<&'static str> {
    let mut names = NAMES.to_vec();
    names.sort_unstable();
    names
}

/// What the program wrote on stderr, without cloister's own notes (lines starting with
/// `cloister: `, such as the one about RDRAND on hosts without CPUID faulting).
fn program_stderr(out: &Outcome) -> String {
    out.stderr
        .lines()
        .filter(|line| !line.starts_with("cloister: "))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Parses `seconds.fraction` as printed by `date +%s.%N` or Python's `repr(time.time())`.
#[track_caller]
fn seconds(text: &str) -> f64 {
    text.trim().parse().unwrap_or_else(|e| panic!("{text:?} is not a number of seconds ({e})"))
}

// ---------------------------------------------------------------------------------------------
// The programs of the issue, run twice under two seeds

/// Python: clocks, `random`, `os.urandom`, `uuid4`, pids, `tempfile.mkdtemp`, `os.listdir`,
/// the host name and `hash()` without `PYTHONHASHSEED`.
#[test]
fn python_prints_the_same_bytes() {
    let script = fixture("snapshot.py");
    let runs = four_runs(|seed, run| repro(PYTHON3, seed).arg(&script).arg(creation_order(run).join(",")));
    assert_reproducible(
        "snapshot.py",
        &runs,
        &["random", "randint", "urandom", "uuid4", "mkdtemp", "hash_str", "hash_bytes", "set_order"],
    );
    let out = &runs[0];
    assert_eq!(out.field("pythonhashseed"), "unset", "the harness must not set PYTHONHASHSEED\n{out}");
    assert!(out.field("time").starts_with("946684800."), "time.time() does not start at the epoch\n{out}");
    assert!(out.field("datetime").starts_with("2000-01-01T00:00:00"), "\n{out}");
    assert!(out.field("utc").starts_with("2000-01-01T00:00:00"), "\n{out}");
    assert!(out.field("mkdtemp").starts_with("/tmp/tmp"), "\n{out}");
    assert_eq!(out.field("listdir"), sorted_names().join(","), "os.listdir is not sorted\n{out}");
    assert_eq!(out.field("scandir"), sorted_names().join(","), "os.scandir is not sorted\n{out}");
    assert_eq!(out.field("hostname"), "cloister", "\n{out}");
    assert_eq!(out.field("cpu_count"), "1", "\n{out}");
    assert_eq!(out.field("affinity"), "[0]", "\n{out}");
    assert!(seconds(out.field("time_end")) > seconds(out.field("time")), "the clock did not advance\n{out}");
}

/// C, dynamic and static: rdtsc/rdtscp, every clock, getrandom, AT_RANDOM, pids and addresses,
/// in the parent and in a forked child, which gets its own random stream.
fn c_prints_the_same_bytes(flags: &[&str]) {
    let exe = compile("repro", flags);
    let runs = four_runs(|seed, _| repro(&exe, seed));
    assert_reproducible(
        &format!("repro.c {flags:?}"),
        &runs,
        &["getrandom", "at_random", "child_getrandom", "child_at_random"],
    );
    let out = &runs[0];
    for key in ["tsc_increasing", "child_tsc_increasing"] {
        assert_eq!(out.field(key), "1", "rdtsc went back: {key}\n{out}");
    }
    assert!(out.field("realtime").starts_with("946684800."), "\n{out}");
    assert_ne!(
        out.field("getrandom"),
        out.field("child_getrandom"),
        "a forked child repeats its parent's stream\n{out}"
    );
    assert!(
        out.int_field("after_rdtsc") > out.int_field("child_rdtsc"),
        "the parent's rdtsc after the child ended is not later than the child's\n{out}"
    );
}

#[test]
fn c_prints_the_same_bytes_dynamic() {
    c_prints_the_same_bytes(&[]);
}

#[test]
fn c_prints_the_same_bytes_static() {
    c_prints_the_same_bytes(&["-static"]);
}

/// bash: `date`, `$RANDOM`, `$SRANDOM`, `mktemp`, `ls -f`, pids, `ps`, `/dev/urandom`.
///
/// Only `$SRANDOM` and `/dev/urandom` follow the seed: bash seeds `$RANDOM` from the time and
/// its pid, and coreutils' `mktemp` makes its first name from the clock and an address, without
/// `getrandom`; all of those are fixed, so these repeat under every seed.
#[test]
fn shell_prints_the_same_bytes() {
    let script = fixture("session.sh");
    let runs = four_runs(|seed, run| repro(&script, seed).args(creation_order(run)));
    assert_reproducible("session.sh", &runs, &["srandom", "urandom"]);
    let out = &runs[0];
    assert_eq!(out.field("date"), "Sat Jan  1 00:00:00 UTC 2000", "\n{out}");
    let listing =
        |dots: &[&str]| dots.iter().chain(&sorted_names()).map(|n| format!("{n} ")).collect::<String>();
    assert_eq!(out.field("ls_f"), listing(&[".", ".."]), "ls -f is not in name order\n{out}");
    assert_eq!(out.field("ls_U"), listing(&[]), "\n{out}");
    assert_eq!(out.field("hostname"), "cloister", "\n{out}");
    assert_eq!(out.field("nproc"), "1", "\n{out}");
}

/// `ld.so` reads the time stamp counter eight times in every image, for its own statistics.
/// Once the sandbox has learned those sites, images load a copy of `ld.so` with them patched
/// (see docs/architecture.md) and read the virtual counter without a fault: it must count the
/// same. `LD_DEBUG=statistics` prints the same cycles with patched sites as under `--trace`,
/// which patches nothing, and a virtual count, not the host's; and the clock read afterwards
/// agrees to the nanosecond.
#[test]
fn ld_so_counts_the_same_cycles_with_patched_sites() {
    // The clock afterwards counts every read: patched ones must step it as faults do.
    let script = "sh -c :; sh -c :; cat /tmp/stats.*; date +%s.%N";
    let run = |trace: Option<&Path>| {
        let invocation = repro("/usr/bin/env", None).args([
            "LD_DEBUG=statistics",
            "LD_DEBUG_OUTPUT=/tmp/stats",
            "sh",
            "-c",
            script,
        ]);
        ok(match trace {
            Some(file) => invocation.trace(file),
            None => invocation,
        })
    };
    let patched = run(None);
    let trace = temp_dir("ld-stats").join("trace");
    let trapped = run(Some(&trace));
    assert_same_bytes("LD_DEBUG=statistics", &patched, &trapped);
    let totals: Vec<u64> = patched
        .stdout
        .lines()
        .filter_map(|l| l.split("total startup time in dynamic loader: ").nth(1))
        .map(|rest| rest.trim_end_matches(" cycles").parse().expect("a cycle count"))
        .collect();
    assert_eq!(totals.len(), 3, "three images print their statistics\n{patched}");
    assert!(totals.iter().all(|&c| c > 0 && c < 100_000), "not the virtual counter: {totals:?}");
}

/// The default seed is 0: `--reproducible` alone and `--reproducible --seed 0` agree.
#[test]
fn default_seed_is_zero() {
    let code = ["-c", "import os, random; print(os.urandom(16).hex(), random.random())"];
    let default = ok(repro(PYTHON3, None).args(code));
    let zero = ok(repro(PYTHON3, Some(0)).args(code));
    assert_same_bytes("--reproducible vs --reproducible --seed 0", &default, &zero);
}

// ---------------------------------------------------------------------------------------------
// Time

/// `sleep 1` with `--fast-sleep` moves the virtual clock by a second without waiting one; and
/// the clock is the sandbox's, so the next process (`date`) sees the time the sleep added.
#[test]
fn fast_sleep_does_not_wait() {
    let out = ok(repro("sh", None).cloister_arg("--fast-sleep").args([
        "-c",
        "echo before=$(date +%s.%N); sleep 1; echo after=$(date +%s.%N); sleep 100; echo later=$(date +%s.%N)",
    ]));
    let (before, after, later) =
        (seconds(out.field("before")), seconds(out.field("after")), seconds(out.field("later")));
    assert!((1.0..1.1).contains(&(after - before)), "sleep 1 moved the clock by {} s\n{out}", after - before);
    assert!((100.0..100.1).contains(&(later - after)), "sleep 100 moved it by {} s\n{out}", later - after);
    assert!(
        out.elapsed < Duration::from_millis(900),
        "101 s of --fast-sleep sleeps took {:.3} s of real time\n{out}",
        out.elapsed.as_secs_f64()
    );
}

/// Without `--fast-sleep` a sleep really waits, and moves the virtual clock by its length.
#[test]
fn sleep_waits_without_fast_sleep() {
    let out =
        ok(repro("sh", None).args(["-c", "echo before=$(date +%s.%N); sleep 1; echo after=$(date +%s.%N)"]));
    let moved = seconds(out.field("after")) - seconds(out.field("before"));
    assert!((1.0..1.1).contains(&moved), "sleep 1 moved the clock by {moved} s\n{out}");
    assert!(
        out.elapsed >= Duration::from_millis(950),
        "sleep 1 returned after {:.3} s of real time without --fast-sleep\n{out}",
        out.elapsed.as_secs_f64()
    );
}

/// One clock for the whole sandbox: a child's sleep moves the parent's clock, and a process
/// started after it reads a later time than its parent did before.
#[test]
fn time_advances_across_processes() {
    let code = "import subprocess, time\n\
                start = time.time()\n\
                subprocess.run(['sleep', '1'], check=True)\n\
                child = float(subprocess.check_output(['date', '+%s.%N']))\n\
                end = time.time()\n\
                print('start=%r' % start)\n\
                print('child=%r' % child)\n\
                print('end=%r' % end)\n";
    let out = ok(repro(PYTHON3, None).cloister_arg("--fast-sleep").args(["-c", code]));
    let (start, child, end) =
        (seconds(out.field("start")), seconds(out.field("child")), seconds(out.field("end")));
    assert!(
        child - start >= 1.0,
        "the child's date is only {} s after the parent's start\n{out}",
        child - start
    );
    assert!(end > child, "the parent's clock ({end}) is behind its child's ({child})\n{out}");
}

/// Monotonic clocks never go back: in threads and processes racing for the shared clock
/// (`monotonic.c`), and in the clock checks of the offset tests (`clocks.c`).
#[test]
fn monotonic_clocks_never_go_back() {
    let out = ok(repro(compile("monotonic", &["-pthread"]), None));
    for key in ["parent_monotonic_ok", "child_monotonic_ok", "after_child_is_later", "all_reads_counted"] {
        assert_eq!(out.field(key), "1", "{key}\n{out}");
    }
    let out = ok(repro(compile_c("clocks", &[]), None));
    for key in ["monotonic_ok", "realtime_advances", "monotonic_advances"] {
        assert_eq!(out.field(key), "1", "{key}\n{out}");
    }
    assert_eq!(out.int_field("time"), DEFAULT_EPOCH, "\n{out}");
}

/// Clock reads whose call site is patched (`clock_reads.c`): the fast entry serves a realtime
/// or monotonic read itself while no timer could fire, and the kernel every other one. Each
/// read is one step after the last, a bad `timespec` is `EFAULT` on every read, an armed timer
/// still fires at the read that reaches its expiry, and a read in a signal handler takes the
/// next step; the same bytes on every run. Under the ptrace backend every read is the
/// kernel's: the figures are the same.
#[test]
fn clock_reads_step_fault_and_fire_timers_wherever_they_are_served() {
    let exe = compile("clock_reads", &[]);
    let runs = four_runs(|seed, _| repro(&exe, seed));
    for run in &runs[1..] {
        assert_eq!(run.stdout, runs[0].stdout, "{}", first_difference(&runs[0].stdout, &run.stdout));
    }
    let out = &runs[0];
    assert_eq!(out.field("steps_uneven"), "0", "\n{out}");
    assert_eq!(out.field("span_us"), "20000", "\n{out}");
    // The realtime clock is the epoch plus the elapsed time, where the monotonic one starts
    // at 100 s; the next reads are the next steps.
    let others = format!("{} 2000 3000", (DEFAULT_EPOCH - 100) * 1_000_000_000 + 1000);
    assert_eq!(out.field("others"), others, "\n{out}");
    assert_eq!(out.field("efault"), "2000", "\n{out}");
    assert_eq!(out.field("readonly"), "2000", "\n{out}");
    assert_eq!(out.field("untouched"), "1", "\n{out}");
    assert_eq!(out.field("alarm_after_reads"), "5000", "ITIMER_REAL of 5 ms, 1 µs a read\n{out}");
    assert_eq!(out.field("alarms"), "1", "\n{out}");
    assert_eq!(out.field("then_step"), "1000", "\n{out}");
    assert_eq!(out.field("handler_read"), "1000", "\n{out}");
    assert_eq!(out.field("after"), "2000", "\n{out}");
}

/// `--epoch` moves the start of the wall clocks (not of the monotonic ones).
#[test]
fn epoch_sets_the_start() {
    const EPOCH: i64 = 1_700_000_000;
    let date = ok(repro("date", None)
        .cloister_arg("--epoch")
        .cloister_arg(EPOCH.to_string())
        .args(["-u", "+%s %F %T"]));
    assert_eq!(date.stdout, format!("{EPOCH} 2023-11-14 22:13:20\n"), "\n{date}");
    let code = "import time; print('time=%r' % time.time()); print('monotonic=%r' % time.monotonic())";
    let out =
        ok(repro(PYTHON3, None).cloister_arg("--epoch").cloister_arg(EPOCH.to_string()).args(["-c", code]));
    let time = seconds(out.field("time"));
    assert!((EPOCH as f64..EPOCH as f64 + 1.0).contains(&time), "time.time() = {time}\n{out}");
    let default = ok(repro(PYTHON3, None).args(["-c", code]));
    assert_eq!(
        out.field("monotonic"),
        default.field("monotonic"),
        "--epoch moved the monotonic clock\n{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// Timers

/// `timers.c` with `--fast-sleep`: every kind of timer, run four times (two seeds), prints the
/// same bytes, fires at the points of the virtual clock the docs promise, and takes no real time
/// for its seconds of timers: less than the 4.8 s it takes without `--fast-sleep`, by a margin
/// that allows for the ptrace backend's cost of each of its 50,000 clock reads (a stop each).
#[test]
fn c_timers_fire_on_the_virtual_clock() {
    let exe = compile("timers", &["-pthread"]);
    let runs = four_runs(|seed, _| repro(&exe, seed).cloister_arg("--fast-sleep"));
    assert_reproducible("timers.c", &runs, &[]);
    let out = &runs[0];
    // Each SIGALRM of the 10 ms interval timer arrives at the clock read that reaches it.
    for i in 0..5 {
        let at = out.int_field(&format!("itimer_hit{i}"));
        let due = (i + 1) * 10_000_000;
        assert!((due..due + 10_000).contains(&at), "itimer hit {i} at {at} ns, due at {due}\n{out}");
    }
    assert_eq!(out.field("alarm_pause"), "-1 errno=Interrupted system call hits=1", "\n{out}");
    assert_eq!(out.field("alarm_elapsed_ms"), "1000", "alarm(1) then pause()\n{out}");
    assert_eq!(out.field("sleep_result"), "-1 errno=Interrupted system call hits=1", "\n{out}");
    assert_eq!(out.field("sleep_rem"), "0.970000000", "a 1 s sleep cut at 30 ms\n{out}");
    assert_eq!(out.field("posix_hits"), "5", "a 20 ms timer in 100 ms of sleeps\n{out}");
    assert_eq!(out.field("posix_blocked_hits"), "5 then=6 overrun=4", "\n{out}");
    for i in 0..4 {
        let line = out.field(&format!("tfd_epoll{i}"));
        let want = format!("1 count=1 at={}", (i + 1) * 50_000_000 + 1_000);
        assert_eq!(line, want, "timerfd round {i} with epoll\n{out}");
    }
    assert_eq!(out.field("tfd_piled"), "3 total=4", "175 ms of a 50 ms timerfd not read\n{out}");
    assert_eq!(out.field("tfd_abs_read"), "8 count=1 wall=946684803.000001000", "\n{out}");
    assert_eq!(out.field("select_result"), "-1 errno=Interrupted system call hits=1", "\n{out}");
    assert_eq!(out.field("select_left"), "4.750000", "the virtual time left, as Linux writes it back\n{out}");
    assert_eq!(out.field("select_ready"), "1 left=2.000000", "ended at once on the virtual clock\n{out}");
    assert_eq!(out.field("select_timeout"), "0 left=0.000000", "\n{out}");
    assert_eq!(out.field("select_ebadf"), "-1 errno=Bad file descriptor left=5.000000", "\n{out}");
    assert_eq!(out.field("ppoll_ready"), "1 left=3.000000000", "\n{out}");
    // One thread waiting to take its own timers' signals: nothing else moves the clock.
    assert_eq!(out.field("sigwait_itimer"), "0 sig=14 after_ms=100", "sigwait on SIGALRM\n{out}");
    assert_eq!(out.field("sigwait_posix"), "12 value=7 after_ms=50", "sigwaitinfo on a POSIX timer\n{out}");
    assert_eq!(out.field("sigwait_child"), "17 status=3 after_ms=100", "sigwaitinfo on SIGCHLD\n{out}");
    assert_eq!(
        out.field("sigwait_timeout"),
        "-1 errno=Resource temporarily unavailable after_ms=50",
        "\n{out}"
    );
    assert_eq!(out.field("sigwait_thread"), "14 after_ms=100", "sigwait in another thread\n{out}");
    assert_eq!(out.field("sigwait_handled"), "10 value=9 hits=0 after_ms=50", "taken, not handled\n{out}");
    assert_eq!(out.field("sigwait_intr"), "-1 errno=Interrupted system call hits=1 after_ms=100", "\n{out}");
    assert_eq!(
        out.field("sigwait_other"),
        "0 value=5 after_ms=200 alarm_left=100",
        "a wait for another thread's signal does not jump to a blocked alarm's expiry\n{out}"
    );
    assert_eq!(out.field("fork_child_alarm"), "0 fork_child_tfd=8/1", "what a forked child keeps\n{out}");
    assert_eq!(out.field("fork_parent_alarm"), "100", "\n{out}");
    assert_eq!(out.field("thread_create"), "0 value=4242", "SIGEV_THREAD_ID\n{out}");
    assert_eq!(out.field("stack_sleep"), "-1 hits=1 at=20001000", "a handler on an 8 KiB stack\n{out}");
    assert_eq!(out.field("exec_left"), "1.999992", "alarm(2) across execve\n{out}");
    assert_eq!(out.field("exec_fired_after_ms"), "1999 hits=1", "\n{out}");
    let fast = if cloister_tests::inproc() { Duration::from_secs(2) } else { Duration::from_millis(4_500) };
    assert!(
        out.elapsed < fast,
        "seconds of timers took {:.3} s of real time with --fast-sleep\n{out}",
        out.elapsed.as_secs_f64()
    );
}

/// Without `--fast-sleep` the same timers wait as long on the host as the virtual clock moves,
/// and fire at the same points of it: the output is the fast run's, byte for byte.
#[test]
fn c_timers_wait_for_real_without_fast_sleep() {
    let exe = compile("timers", &["-pthread"]);
    let fast = ok(repro(&exe, None).cloister_arg("--fast-sleep"));
    let real = ok(repro(&exe, None));
    assert_same_bytes("timers.c with and without --fast-sleep", &fast, &real);
    assert!(
        real.elapsed >= Duration::from_millis(4_800),
        "5 s of timers and sleeps took {:.3} s of real time without --fast-sleep\n{real}",
        real.elapsed.as_secs_f64()
    );
}

/// Python's `signal.setitimer` with a `time.sleep` loop, `signal.alarm` with `signal.pause`, an
/// epoll wait cut by a timer, and a subprocess spawned while a timer is armed (`timers.py`).
#[test]
fn python_timers_fire_on_the_virtual_clock() {
    let script = fixture("timers.py");
    let runs = four_runs(|seed, _| repro(PYTHON3, seed).cloister_arg("--fast-sleep").arg(&script));
    assert_reproducible("timers.py", &runs, &[]);
    let out = &runs[0];
    assert_eq!(out.field("itimer_hits"), "0.010001,0.020001,0.030001,0.040001,0.050001", "\n{out}");
    assert_eq!(out.field("pause_after"), "2.000002 hits=1", "\n{out}");
    assert_eq!(out.field("epoll_events"), "[] after=10.000003 hit=0.250001", "\n{out}");
    assert_eq!(out.field("spawn_rc"), "0 out=child-ok", "a spawned child took its parent's timer\n{out}");
    assert!(out.elapsed < Duration::from_secs(3), "took {:.3} s\n{out}", out.elapsed.as_secs_f64());
}

/// coreutils `timeout` arms a POSIX timer after it forks its command. With `--fast-sleep` a
/// command that sleeps past the timeout is killed (124) and one that ends first is not (0), on
/// every run and at once; without it, `timeout 1 sleep 5` takes one real second.
#[test]
fn timeout_kills_on_the_virtual_clock() {
    let script = "timeout 1 sleep 5; echo first=$?; echo first_at=$(date +%s.%N); \
                  timeout 5 sleep 1; echo second=$?; echo second_at=$(date +%s.%N)";
    let runs = four_runs(|seed, _| repro("sh", seed).cloister_arg("--fast-sleep").args(["-c", script]));
    assert_reproducible("timeout", &runs, &[]);
    let out = &runs[0];
    assert_eq!(out.field("first"), "124", "timeout 1 sleep 5\n{out}");
    assert_eq!(out.field("second"), "0", "timeout 5 sleep 1\n{out}");
    assert!(out.elapsed < Duration::from_secs(3), "took {:.3} s\n{out}", out.elapsed.as_secs_f64());

    let real = ok(repro("sh", None).args(["-c", "timeout 1 sleep 5; echo rc=$?; echo at=$(date +%s.%N)"]));
    assert_eq!(real.field("rc"), "124", "\n{real}");
    let moved = seconds(real.field("at")) - DEFAULT_EPOCH as f64;
    assert!((1.0..1.1).contains(&moved), "the clock moved {moved} s for `timeout 1`\n{real}");
    assert!(
        (Duration::from_millis(950)..Duration::from_secs(4)).contains(&real.elapsed),
        "`timeout 1 sleep 5` took {:.3} s of real time\n{real}",
        real.elapsed.as_secs_f64()
    );
}

/// `fork_timers.c`: after fork, interval and POSIX timers stay the parent's and a timer
/// descriptor is one timer shared by parent and child (each expiration read once, by whoever
/// reads first), and the parent's own timers interrupt its `waitpid` while the child runs. The
/// lines are Linux's: the native run's, with and without `--fast-sleep`, on every run.
#[test]
fn c_timers_across_fork_follow_linux() {
    let exe = compile("fork_timers", &[]);
    let native = Mode::Native.command(&exe).output();
    native.success();
    assert_eq!(native.field("child_tfd"), "1,1", "natively\n{native}");
    assert_eq!(native.field("child_signals"), "none", "natively\n{native}");
    assert_eq!(native.field("child_itimer"), "0.000000", "natively\n{native}");
    assert_eq!(native.field("parent_waits"), "EINTR,EINTR,child", "natively\n{native}");
    assert_eq!(native.field("parent_signals"), "UA", "natively\n{native}");
    assert_eq!(native.field("parent_tfd_left"), "none", "natively\n{native}");
    let runs = four_runs(|seed, _| repro(&exe, seed).cloister_arg("--fast-sleep"));
    assert_reproducible("fork_timers.c", &runs, &[]);
    // stdout only: cloister may warn on stderr about the host.
    assert_eq!(native.stdout, runs[0].stdout, "natively, then with --fast-sleep\n{native}\n{}", runs[0]);
    let real = ok(repro(&exe, None));
    assert_eq!(native.stdout, real.stdout, "natively, then without --fast-sleep\n{native}\n{real}");
}

/// `child_timerfd.c`: a forked child fires the timer descriptor it shares with its parent at
/// its own checkpoints (the parent blocks where no timer cuts its wait), natively and with and
/// without `--fast-sleep`, under either backend (each process's kernel keeps the descriptors it
/// shares, in-process through the forked memory, under ptrace through `Kernel::forked`).
#[test]
fn a_forked_child_fires_the_timer_descriptor_it_shares() {
    let exe = compile("child_timerfd", &[]);
    let native = Mode::Native.command(&exe).output();
    native.success();
    assert_eq!(native.stdout, "child_read=1\nparent_left=none\n", "natively\n{native}");
    let fast = ok(repro(&exe, None).cloister_arg("--fast-sleep").timeout(Duration::from_secs(20)));
    assert_eq!(native.stdout, fast.stdout, "natively, then with --fast-sleep\n{fast}");
    let real = ok(repro(&exe, None).timeout(Duration::from_secs(20)));
    assert_eq!(native.stdout, real.stdout, "natively, then without --fast-sleep\n{real}");
}

/// `exec_mask.c`: a thread that blocks nothing execs while the main thread, which blocks
/// SIGUSR1 and SIGTERM, is in a sleep the virtual timer cuts into rounds. The new image's mask
/// is the exec'ing thread's, as natively (under ptrace it once took the sleeping leader's).
#[test]
fn an_exec_from_a_thread_keeps_that_threads_mask() {
    let exe = compile("exec_mask", &["-pthread"]);
    let native = Mode::Native.command(&exe).output();
    native.success();
    assert_eq!(native.stdout, "SigBlk:\t0000000000000000\n", "natively\n{native}");
    let out = ok(repro(&exe, None).timeout(Duration::from_secs(20)));
    assert_eq!(out.stdout, native.stdout, "\n{out}");
}

/// `timeout_race.c`: coreutils `timeout`'s two ways of waiting, with the parent held back (it
/// spins) until its command has slept past the timer and ended on the host. The timer still
/// comes first, as natively: 124, not the command's 0, on every run.
#[test]
fn timeout_race_ends_on_the_timer_first() {
    let exe = compile("timeout_race", &[]);
    let native = Mode::Native.command(&exe).output();
    native.success();
    let want = "nohang=124\nblocking=124\nchild_first=0\n";
    assert_eq!(native.stdout, want, "natively\n{native}");
    let runs = four_runs(|seed, _| repro(&exe, seed).cloister_arg("--fast-sleep"));
    for out in &runs {
        assert_eq!(out.stdout, want, "\n{out}");
    }
}

/// `timer_elsewhere.c`: with `--fast-sleep`, a thread waiting for something other than a
/// timer that another thread takes (glibc's `SIGEV_THREAD` helper; a handler that runs on a
/// thread that lets `SIGALRM` through) still lets the clock reach it: the program ends as it
/// does natively, not after `--timeout`.
#[test]
fn timers_another_thread_takes_still_fire() {
    let exe = compile("timer_elsewhere", &["-pthread"]);
    for (arg, want) in [("thread", "thread_timer=fired\n"), ("handler", "handler_elsewhere=10\n")] {
        let native = Mode::Native.command(&exe).arg(arg).output();
        native.success();
        assert_eq!(native.stdout, want, "natively\n{native}");
        let out = ok(repro(&exe, None)
            .cloister_arg("--fast-sleep")
            .cloister_arg("--timeout")
            .cloister_arg("20")
            .arg(arg));
        assert_eq!(out.stdout, want, "{arg}\n{out}");
    }
}

/// Kills a CPU hog when dropped.
struct Hog(std::process::Child);

impl Hog {
    /// One `yes > /dev/null` per processor: the sandbox's processes compete for every one.
    fn start() -> Vec<Hog> {
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        (0..cpus)
            .map(|_| {
                let child = Command::new("yes")
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .expect("cannot start `yes` as a CPU hog");
                Hog(child)
            })
            .collect()
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `timeout` ten times in a row with `--fast-sleep`, while every processor is busy with a CPU
/// hog: whether its command's end or its timer's expiry is seen first depends on the host's
/// scheduling, and must not change the result (124 for `timeout 1 sleep 5`, 0 for `timeout 5
/// sleep 1`) nor the clock.
#[test]
fn timeout_kills_every_time_under_load() {
    let script = "for i in 1 2 3 4 5 6 7 8 9 10; do \
                    timeout 1 sleep 5; a=$?; timeout 5 sleep 1; b=$?; \
                    printf '%s/%s ' $a $b; done; echo; echo at=$(date +%s.%N)";
    let _hogs = Hog::start();
    let runs: Vec<Outcome> =
        (0..2).map(|_| ok(repro("sh", None).cloister_arg("--fast-sleep").args(["-c", script]))).collect();
    for out in &runs {
        assert_eq!(out.lines()[0].trim(), ["124/0"; 10].join(" "), "\n{out}");
    }
    assert_same_bytes("timeout under load", &runs[0], &runs[1]);
    let race = ok(repro(compile("timeout_race", &[]), None).cloister_arg("--fast-sleep"));
    assert_eq!(race.stdout, "nohang=124\nblocking=124\nchild_first=0\n", "under load\n{race}");
}

// ---------------------------------------------------------------------------------------------
// Identity and the filesystem

/// Host name, kernel release and version, and one processor, whatever the host has.
#[test]
fn identity_is_fixed() {
    let out = ok(repro("uname", None).args(["-n", "-r", "-v"]));
    assert!(out.stdout.starts_with("cloister 6.1.0-cloister #"), "\n{out}");
    let host_version = Command::new("uname").arg("-v").output().expect("uname -v");
    assert!(
        !out.stdout.contains(String::from_utf8_lossy(&host_version.stdout).trim()),
        "the host's kernel version shows through\n{out}"
    );
    let out = ok(repro("sh", None).args(["-c", "nproc; grep -c ^processor /proc/cpuinfo; hostname"]));
    assert_eq!(out.stdout, "1\n1\ncloister\n", "\n{out}");
}

/// Directories list in name order, whatever order their files were created in: two host
/// directories with the same names created in different orders list alike, also when they
/// are too big for one `getdents64` call.
#[test]
fn directory_order_is_sorted() {
    let names: Vec<String> =
        (0..3000).map(|i| format!("entry-{:08x}", (i * 2_654_435_761_u64) % 1_000_003)).collect();
    let mut sorted = names.clone();
    sorted.sort();
    let mut listings = Vec::new();
    for order in 0..2 {
        let dir = temp_dir("listing");
        let mut created = names.clone();
        if order == 1 {
            created.reverse();
        }
        for name in &created {
            fs::write(dir.join(name), b"").expect("create a file to list");
        }
        let listing = ok(repro("sh", None).current_dir(&dir).args(["-c", "ls -f; find . -type f"]));
        let python = ok(repro(PYTHON3, None)
            .current_dir(&dir)
            .args(["-c", "import os; print('\\n'.join(os.listdir('.')))"]));
        listings.push((listing, python));
    }
    assert_same_bytes("ls -f; find", &listings[0].0, &listings[1].0);
    assert_same_bytes("os.listdir", &listings[0].1, &listings[1].1);
    let ls: Vec<&str> = listings[0].0.stdout.lines().take(sorted.len() + 2).collect();
    assert_eq!(ls[..2], [".", ".."], "ls -f does not start with . and ..");
    assert!(
        ls[2..] == sorted.iter().map(String::as_str).collect::<Vec<_>>()[..],
        "ls -f is not in name order"
    );
    let py: Vec<&str> = listings[0].1.stdout.lines().collect();
    assert!(py == sorted.iter().map(String::as_str).collect::<Vec<_>>(), "os.listdir is not in name order");
}

/// The program is pid 2 of its own pid namespace; children are numbered in creation order and
/// `ps` (which reads `/proc`) sees the same numbers and nothing of the host.
#[test]
fn pids_are_numbered_from_two() {
    let out = ok(repro("sh", None).args([
        "-c",
        "echo self=$$; sh -c 'echo child=$$'; sh -c 'echo second=$$'; ps -e -o pid=,ppid= | sed 's/^ */ps=/'",
    ]));
    assert_eq!(out.int_field("self"), 2, "\n{out}");
    assert_eq!(out.int_field("child"), 3, "\n{out}");
    assert_eq!(out.int_field("second"), 4, "\n{out}");
    let ps: Vec<(i64, i64)> = pairs(&out)
        .iter()
        .filter(|(key, _)| *key == "ps")
        .map(|(_, v)| {
            let mut it = v.split_whitespace().map(|n| n.parse::<i64>().expect("ps prints numbers"));
            (it.next().expect("a pid"), it.next().expect("a ppid"))
        })
        .collect();
    assert!(ps.contains(&(2, 1)) || ps.contains(&(2, 0)), "ps does not show the program as pid 2\n{out}");
    assert!(ps.contains(&(5, 2)), "ps does not show itself as pid 5, child of 2\n{out}");
    // The pipeline's sed is pid 6.
    assert!(ps.iter().all(|&(pid, _)| pid <= 6), "ps shows processes outside the sandbox\n{out}");
    let py = ok(repro(PYTHON3, None).args(["-c", "import os; print(os.getpid())"]));
    assert_eq!(py.stdout, "2\n", "\n{py}");
}

/// `/tmp` is a fresh, empty directory in every run, and what the program writes there does
/// not reach the host's `/tmp`.
#[test]
fn tmp_is_fresh_and_private() {
    if cloister_tests::checkout_under_tmp() {
        return;
    }
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let marker = PathBuf::from(format!("/tmp/cloister-host-marker-{}-{stamp}", std::process::id()));
    let written = format!("cloister-guest-file-{}-{stamp}", std::process::id());
    write_file(&marker, "host", 0o644);
    let script = format!("ls -A /tmp; echo --; echo guest > /tmp/{written}; ls -A /tmp");
    let runs = [ok(repro("sh", None).args(["-c", &script])), ok(repro("sh", None).args(["-c", &script]))];
    let leaked = Path::new("/tmp").join(&written).exists();
    let _ = fs::remove_file(&marker);
    let _ = fs::remove_file(Path::new("/tmp").join(&written));
    for out in &runs {
        assert_eq!(out.stdout, format!("--\n{written}\n"), "/tmp is not fresh and empty\n{out}");
    }
    assert!(!leaked, "a file the program wrote in /tmp appeared in the host's /tmp");
}

// ---------------------------------------------------------------------------------------------
// The processor

/// rdtsc and rdtscp read the virtual clock: covered byte for byte by `repro.c`; here, where
/// the host can fault cpuid, RDRAND and RDSEED are hidden, and where it cannot, cloister says
/// so on stderr (a program that uses them directly is not reproducible).
#[test]
fn rdrand_is_hidden_or_reported() {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").expect("read /proc/cpuinfo");
    let faulting =
        cpuinfo.lines().any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "cpuid_fault"));
    let has_rdrand =
        cpuinfo.lines().any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "rdrand"));
    let out = ok(repro(compile("repro", &[]), None));
    if faulting {
        assert_eq!(out.field("rdrand_visible"), "0", "cpuid shows RDRAND\n{out}");
        assert_eq!(out.field("rdseed_visible"), "0", "cpuid shows RDSEED\n{out}");
    } else if has_rdrand {
        assert!(
            out.stderr.to_ascii_lowercase().contains("rdrand"),
            "this host cannot hide RDRAND (no cpuid faulting), and cloister did not say so\n{out}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// make

/// Copies the `make` fixture into a fresh directory, with its sources dated the day before
/// the default epoch (a checkout older than the virtual clock).
fn make_tree() -> PathBuf {
    let dir = temp_dir("make");
    let day_before = UNIX_EPOCH + Duration::from_secs((DEFAULT_EPOCH - 86_400) as u64);
    for name in ["Makefile", "a.txt", "b.txt"] {
        fs::copy(fixture("make").join(name), dir.join(name)).expect("copy the make fixture");
        let file = fs::File::options().write(true).open(dir.join(name)).expect("open a copied source");
        file.set_modified(day_before).expect("date a source");
    }
    dir
}

/// Builds, builds again (nothing to do), changes `a.txt` and builds once more. The real
/// 50 ms pause keeps the edit out of the host's timestamp granularity.
const MAKE_SESSION: &str =
    "make; echo --; make; echo --; sleep 0.05; echo again >> a.txt; make; echo --; cat prog";

const MAKE_EXPECTED: &str = "tr a-z A-Z < a.txt > a.o\n\
                             tr a-z A-Z < b.txt > b.o\n\
                             cat a.o b.o > prog\n\
                             --\n\
                             make: 'prog' is up to date.\n\
                             --\n\
                             tr a-z A-Z < a.txt > a.o\n\
                             cat a.o b.o > prog\n\
                             --\n\
                             HELLO\n\
                             AGAIN\n\
                             WORLD\n";

/// A `make` build: the second run rebuilds nothing, an edit rebuilds only what depends on it,
/// and two sandbox runs print the same standard output. (Not the same stderr: at the default
/// epoch make warns of clock skew; see [`make_sees_no_clock_skew`].)
#[test]
fn make_rebuilds_only_what_changed() {
    let runs: Vec<Outcome> =
        (0..2).map(|_| ok(repro("sh", None).current_dir(make_tree()).args(["-c", MAKE_SESSION]))).collect();
    assert_eq!(runs[0].stdout, MAKE_EXPECTED, "\n{}", runs[0]);
    assert_eq!(runs[1].stdout, MAKE_EXPECTED, "\n{}", runs[1]);
}

/// With the epoch after the host's clock, every file the build writes (dated by the host) is
/// in the virtual past: make has nothing to warn about and stdout and stderr repeat exactly.
#[test]
fn make_is_silent_with_an_epoch_after_the_host_clock() {
    const YEAR_2100: &str = "4102444800";
    let runs: Vec<Outcome> = (0..2)
        .map(|_| {
            ok(repro("sh", None)
                .cloister_arg("--epoch")
                .cloister_arg(YEAR_2100)
                .current_dir(make_tree())
                .args(["-c", MAKE_SESSION]))
        })
        .collect();
    assert_eq!(runs[0].stdout, MAKE_EXPECTED, "\n{}", runs[0]);
    assert_same_bytes("make", &runs[0], &runs[1]);
    for out in &runs {
        assert_eq!(program_stderr(out), "", "\n{out}");
    }
}

/// At the default epoch the files a build writes must not look as if they came from the
/// future: make would warn of clock skew, with a number that depends on the host's clock.
#[test]
fn make_sees_no_clock_skew() {
    let runs: Vec<Outcome> =
        (0..2).map(|_| ok(repro("sh", None).current_dir(make_tree()).args(["-c", MAKE_SESSION]))).collect();
    for out in &runs {
        assert!(!out.stderr.contains("in the future"), "make saw files from the future\n{out}");
    }
    assert_eq!(program_stderr(&runs[0]), program_stderr(&runs[1]));
}

/// The files a run writes show virtual times, inode numbers and device, the same every run:
/// a listing with full times and inode numbers repeats, a `touch -d` sets what it says, and
/// everything written sits at the default epoch, not at the host's clock.
#[test]
fn own_files_show_the_same_times_and_numbers_every_run() {
    let script = "cd /tmp && mkdir d && echo a > d/a && ln -s a d/link && touch -d @1000000000 old \\
                  && sleep 0.05 && echo b >> d/a \\
                  && ls -li --full-time d old && stat -c '%n %i %d %Y %Z' d d/a old \\
                  && python3 -c 'import os; s = os.fstat(os.open(\"d/a\", os.O_RDONLY)); print(s.st_ino, s.st_mtime_ns)'";
    let runs: Vec<Outcome> = (0..2).map(|_| ok(repro("sh", None).args(["-c", script]))).collect();
    assert_same_bytes("ls -li --full-time of the run's own files", &runs[0], &runs[1]);
    let out = &runs[0];
    assert!(out.stdout.contains(" 2000-01-01 00:00:00."), "not at the epoch\n{out}");
    assert!(out.stdout.contains(" 2001-09-09 01:46:40.000000000 +0000 old"), "touch -d was not kept\n{out}");
    assert!(!out.stdout.contains(&format!(" {} ", 1970 + now_year_offset())), "a host date shows\n{out}");
}

/// The program runs as user and group 1000, `cloister`, whoever starts it: `id`, the owner of
/// the files it makes, and the password database agree.
#[test]
fn user_and_group_are_virtual() {
    let script = "id; whoami; cd /tmp && touch f && ls -ln f | cut -d' ' -f3,4 && ls -l f | cut -d' ' -f3,4 \\
                  && python3 -c 'import os, pwd, grp; print(os.getresuid(), os.getgroups(), grp.getgrgid(os.getgid()).gr_name)'";
    let out = ok(repro("sh", None).args(["-c", script]));
    assert_eq!(
        out.stdout,
        "uid=1000(cloister) gid=1000(cloister) groups=1000(cloister)\ncloister\n1000 1000\ncloister cloister\n\
         (1000, 1000, 1000) [1000] cloister\n",
        "\n{out}"
    );
}

/// `sched_getcpu` says processor 0 from every thread: glibc cannot read the real processor
/// from an rseq area, because reproducible mode refuses `rseq`.
#[test]
fn sched_getcpu_is_processor_zero() {
    let exe = compile("getcpu", &["-pthread"]);
    let out = ok(repro(&exe, None));
    assert_eq!(out.field("cpus_seen"), "1", "a thread saw another processor than 0\n{out}");
}

/// Years since 1970 of the host's clock, to spot a host timestamp in a listing.
fn now_year_offset() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 31_556_952)
}

// ---------------------------------------------------------------------------------------------
// The policy and its keys

/// `--policy reproducible` is `--policy default --reproducible` (the built-in policy has no
/// filesystem view, like `default`): the same bytes, with and without a seed.
#[test]
fn policy_reproducible_is_the_flag() {
    let exe = compile("repro", &[]);
    for seed in [None, Some(OTHER_SEED)] {
        let with_seed = |inv: Invocation| match seed {
            Some(s) => inv.seed(s),
            None => inv,
        };
        let flag = ok(repro(&exe, seed).policy("default"));
        let policy = ok(with_seed(Mode::Cloister.command(&exe).policy("reproducible")));
        assert_same_bytes(
            &format!("--policy reproducible vs --reproducible (seed {seed:?})"),
            &flag,
            &policy,
        );
    }
}

/// The policy keys `reproducible`, `time.epoch_seconds`, `time.fast_sleep`, `identity.cpus`
/// and `random.seed` do what the flags do, and `identity.cpus` sets the processor count.
#[test]
fn policy_keys_match_the_flags() {
    let path = temp_dir("policy").join("policy.json");
    write_file(
        &path,
        r#"{
  "reproducible": true,
  "time": { "epoch_seconds": 1700000000, "fast_sleep": true },
  "identity": { "cpus": 3 },
  "random": { "seed": 7 }
}"#,
        0o644,
    );
    let code = "import os, random, time\n\
                print('time=%r' % time.time())\n\
                time.sleep(5)\n\
                print('after_sleep=%r' % time.time())\n\
                print('urandom=%s' % os.urandom(16).hex())\n\
                print('random=%r' % random.random())\n";
    let policy = ok(Mode::Cloister.command(PYTHON3).policy(&path).args(["-c", code]));
    // The policy file has no filesystem section: the flags run without the default's view too.
    let flags = ok(repro(PYTHON3, Some(7))
        .policy("default")
        .cloister_arg("--epoch")
        .cloister_arg("1700000000")
        .cloister_arg("--fast-sleep")
        .args(["-c", code]));
    assert_same_bytes("policy keys vs flags", &policy, &flags);
    assert!(seconds(policy.field("time")) < 1_700_000_001.0, "\n{policy}");
    assert!(policy.elapsed < Duration::from_secs(4), "time.fast_sleep did not make sleep(5) fast\n{policy}");
    let cpus = ok(Mode::Cloister.command("sh").policy(&path).args([
        "-c",
        "nproc; grep -c ^processor /proc/cpuinfo; python3 -c 'import os; print(os.cpu_count(), len(os.sched_getaffinity(0)))'",
    ]));
    assert_eq!(cpus.stdout, "3\n3\n3 3\n", "identity.cpus 3\n{cpus}");
}

/// Files the sandbox makes in its own directories list with the inode numbers `stat` shows
/// for them (`scandir`, `ls -i`), and the same numbers on every run.
#[test]
fn listings_of_own_directories_show_the_virtual_inode_numbers() {
    let script = "import os\n\
        os.makedirs('/tmp/d')\n\
        for i in range(4):\n\
        \x20   open('/tmp/d/%d' % i, 'w').close()\n\
        listed = sorted((e.name, e.inode()) for e in os.scandir('/tmp/d'))\n\
        stated = sorted((str(i), os.stat('/tmp/d/%d' % i).st_ino) for i in range(4))\n\
        print('agree=%s' % (listed == stated))\n\
        print('dir=%s' % ([e.inode() for e in os.scandir('/tmp') if e.name == 'd'] == [os.stat('/tmp/d').st_ino]))\n\
        print('listed=%s' % listed)\n";
    let runs: Vec<_> = (0..2).map(|_| repro("python3", None).args(["-c", script]).output()).collect();
    for out in &runs {
        out.success();
        assert_eq!((out.field("agree"), out.field("dir")), ("True", "True"), "\n{out}");
    }
    assert_eq!(runs[0].stdout, runs[1].stdout, "the numbers differ between runs");
}
