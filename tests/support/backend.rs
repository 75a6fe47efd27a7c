//! Which backend serves the suite's `cloister run`s, and the one way a test says that it holds
//! only for the in-process backend.
//!
//! `CLOISTER_TEST_BACKEND=ptrace` runs the suite under the strict backend (`tests/run` does so
//! for its second pass): the harness adds `--backend ptrace` to every `cloister run` that does
//! not choose a backend itself. A test whose subject is the in-process runtime's own machinery
//! (its memory, its patched call sites) or a feature the ptrace backend documents as absent
//! starts with [`inproc_only`], whose reason says which; docs/architecture.md (Backends) lists
//! them. Everything else must agree under both backends: where the two reach the same end by
//! different ways (the programs that jump into cloister-rt's gate, which ptrace does not have),
//! the test asserts each backend's way explicitly, with [`inproc`] and [`assert_gate`].

use crate::Outcome;
use std::ffi::OsString;

/// The variable that picks the backend for a whole test run.
pub const VARIABLE: &str = "CLOISTER_TEST_BACKEND";

/// The backend the harness asks `cloister run` for, when a test does not choose one: `None`
/// for cloister's default (inproc).
pub fn chosen() -> Option<OsString> {
    std::env::var_os(VARIABLE).filter(|b| !b.is_empty())
}

/// `--backend NAME` for a test that spawns `cloister run` itself (as another user, in a
/// namespace, on a terminal) rather than through [`crate::Invocation`]; empty under the default.
pub fn backend_args() -> Vec<OsString> {
    chosen().map(|b| vec!["--backend".into(), b]).unwrap_or_default()
}

/// Whether this run's `cloister run`s use the in-process backend (the default).
pub fn inproc() -> bool {
    chosen().is_none_or(|b| b == "inproc")
}

/// True, after one line on stderr naming `why`, when this run's backend is not the in-process
/// one: the test then returns at once. `why` says what the test needs that only inproc has.
///
/// ```ignore
/// if inproc_only("jumps into cloister-rt's gate, which --backend ptrace does not map") {
///     return;
/// }
/// ```
pub fn inproc_only(why: &str) -> bool {
    if inproc() {
        return false;
    }
    let backend = chosen().unwrap_or_default();
    eprintln!("skipped under --backend {}: in-process only: {why}", backend.to_string_lossy());
    true
}

/// What a program built with `tests/programs/gate.h` prints first under this run's backend:
/// `gate=cloister-rt` under inproc, where its `via_gate` calls run from cloister-rt's trusted
/// `syscall` and only the floor stands in their way; `gate=none` under ptrace, where no cloister
/// code is in the process and the same calls are its own `syscall`s, which the tracer stops and
/// serves through the view (or the floor refuses).
pub fn expected_gate() -> &'static str {
    if inproc() {
        "cloister-rt"
    } else {
        "none"
    }
}

/// Fails unless a gate program found what this run's backend gives it ([`expected_gate`]): so
/// that an inproc run whose attempts did not really go through the gate, or a ptrace run that
/// found cloister-rt in the process, cannot pass as the test it is not.
#[track_caller]
pub fn assert_gate(out: &Outcome) {
    let want = expected_gate();
    assert_eq!(out.field("gate"), want, "the program did not find the gate this backend gives it\n{out}");
}
