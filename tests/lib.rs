//! Support for cloister's integration tests: run real programs natively and under
//! `cloister run`, and compare.
//!
//! The test targets beside this file (`cli.rs`, `runtime.rs`, `identity.rs`, `process.rs`,
//! `golang.rs`) are written against the CLI contract of issue 2 (exit statuses, options,
//! policy keys, `--trace`) and the process model of the design: they spawn the `cloister`
//! binary of the same cargo profile, so `cargo build --workspace` must run first (`tests/run`
//! does both).
//!
//! Most behaviour tests are written once as a function of a [`Mode`] and instantiated twice
//! with [`both_modes!`]: `NAME::native` runs the programs directly and checks what the host
//! kernel says, `NAME::cloister` runs them under `cloister run` and checks what the policy says.
//! A native half that fails means the test (or the machine) is wrong, not cloister; see the
//! house style: "a test that only passes under cloister, and not natively, is testing the wrong
//! thing".
//!
//! What this crate does not do: it never installs seccomp filters, namespaces or Landlock rules
//! in the test runner's own process; everything irreversible happens in spawned programs.

mod support {
    pub mod backend;
    pub mod compile;
    pub mod elf;
    pub mod expect;
    pub mod paths;
    pub mod runner;
    pub mod tree;
}

pub use support::backend::{assert_gate, backend_args, expected_gate, inproc, inproc_only};
pub use support::compile::{compile_c, gcc_build, go_program, C_FLAG_SETS, C_PROGRAMS, RAW_C_FLAGS};
pub use support::elf;
pub use support::expect::{assert_clock, is_hex, CLOCK_TOLERANCE};
pub use support::paths::{
    cloister_bin, profile_dir, programs_dir, real_hostname, scratch_dir, temp_dir, write_file, PYTHON3,
    SYSTEM_PATH,
};
pub use support::runner::{cloister, now_unix, run, run_native, Invocation, Mode, Outcome, DEFAULT_TIMEOUT};
pub use support::tree::{copy_tree, TreeSnapshot};

/// A host name no test machine has, given to `--hostname` by the identity tests.
pub const VIRTUAL_HOSTNAME: &str = "cloister-test-host";

/// Instantiates scenario functions `fn NAME(mode: Mode)` as two tests each, `NAME::native`
/// and `NAME::cloister`.
///
/// ```ignore
/// fn uname_shows_hostname(mode: Mode) { /* ... */ }
/// both_modes!(uname_shows_hostname);
/// ```
///
/// Run only the native halves with `cargo test -p cloister-tests -- ::native`.
#[macro_export]
macro_rules! both_modes {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[test]
                fn native() {
                    super::$name($crate::Mode::Native)
                }

                #[test]
                fn cloister() {
                    super::$name($crate::Mode::Cloister)
                }
            }
        )+
    };
}

/// Whether this checkout (and so cloister's binaries and the tests' working directory) lies
/// under the host's `/tmp`: reproducible mode then keeps the host's `/tmp` instead of an empty
/// one, and tests of the empty `/tmp` have nothing to check.
pub fn checkout_under_tmp() -> bool {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let under = std::fs::canonicalize(dir).unwrap_or(dir.to_path_buf()).starts_with("/tmp");
    if under {
        eprintln!("skipped: the checkout lies under /tmp, so reproducible mode keeps the host's /tmp");
    }
    under
}
