//! A static Go program (`tests/programs/go`), the typical untrusted download: Go's runtime makes
//! raw syscalls without libc, runs goroutines on small stacks, preempts them with SIGURG and
//! finds itself through `/proc/self/exe`. Under `--hostname`, `--time-offset` and `--seed` it
//! must see the policy everywhere — `os.Hostname` (which reads /proc/sys/kernel/hostname),
//! `syscall.Uname`, `time.Now`, `crypto/rand` (getrandom), its children — and keep working.

use std::fs;

use cloister_tests::{
    assert_clock, both_modes, go_program, is_hex, now_unix, Mode, Outcome, VIRTUAL_HOSTNAME,
};

const HOST: &str = VIRTUAL_HOSTNAME;
const OFFSET: i64 = 30 * 86_400;

/// Runs the Go program under all three options (seed `seed`), with the host clock around it.
fn run_go(mode: Mode, seed: Option<u64>) -> (Outcome, i64, i64) {
    let mut invocation = mode.command(go_program()).hostname(HOST).time_offset(OFFSET);
    if let Some(seed) = seed {
        invocation = invocation.seed(seed);
    }
    let before = now_unix();
    let out = invocation.output();
    let after = now_unix();
    out.success();
    (out, before, after)
}

fn go_program_sees_the_policy(mode: Mode) {
    let (out, before, after) = run_go(mode, Some(7));
    let host = mode.hostname(HOST);
    for key in ["hostname", "uname", "child", "uname_command"] {
        assert_eq!(out.field(key), host, "{key}\n{out}");
    }
    assert_clock("time.Now().Unix()", out.int_field("unix"), before, after, mode.offset(OFFSET));
    assert!(is_hex(out.field("rand"), 16), "\n{out}");
    for key in ["goroutines", "preemption", "sleep"] {
        assert_eq!(out.field(key), "ok", "{key}\n{out}");
    }
}

fn go_os_executable(mode: Mode) {
    let (out, _, _) = run_go(mode, None);
    let real = fs::canonicalize(go_program()).expect("canonicalize");
    assert_eq!(out.field("exe"), real.to_str().expect("UTF-8"), "\n{out}");
}

fn go_crypto_rand_seeded(mode: Mode) {
    let rand = |seed| run_go(mode, seed).0.field("rand").to_owned();
    let (first, again, other, unseeded) = (rand(Some(7)), rand(Some(7)), rand(Some(8)), rand(None));
    if mode.is_cloister() {
        assert_eq!(first, again, "crypto/rand: the same seed gave different bytes");
    } else {
        assert_ne!(first, again);
    }
    assert_ne!(first, other, "crypto/rand: seeds 7 and 8 gave the same bytes");
    assert_ne!(first, unseeded, "crypto/rand: the unseeded run repeated the seeded one");
}

/// `os/exec` from eight goroutines at once while two hundred others hold canaries on their
/// stacks: every start succeeds and no stack is written over (Go's child runs on the calling
/// goroutine's stack, in the parent's memory, until it execs).
fn go_exec_from_goroutines_keeps_their_stacks(mode: Mode) {
    let out = mode.command(go_program()).arg("spawnstress").output();
    out.success();
    assert_eq!(out.field("spawn_errors"), "0", "\n{out}");
    assert_eq!(out.field("corrupted_stacks"), "0", "\n{out}");
}

both_modes!(
    go_program_sees_the_policy,
    go_os_executable,
    go_crypto_rand_seeded,
    go_exec_from_goroutines_keeps_their_stacks
);
