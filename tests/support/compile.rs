//! Building the test programs: C sources in `tests/programs/*.c` with gcc, and the Go program
//! in `tests/programs/go/` with Debian's `golang-go`. Each build happens once per test process
//! (concurrent tests asking for the same program wait for one build) into the process's scratch
//! directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use super::paths::{profile_dir, programs_dir, scratch_dir, SYSTEM_PATH};

/// The ways a C program can be linked that cloister must run, by name: dynamic PIE (gcc's
/// default on Debian), `-static`, `-static-pie` and dynamic non-PIE.
pub const C_FLAG_SETS: &[(&str, &[&str])] =
    &[("dynamic", &[]), ("static", &["-static"]), ("static-pie", &["-static-pie"]), ("no-pie", &["-no-pie"])];

/// Flags for `rawsys.c`, which brings its own `_start` and makes raw `syscall` instructions.
pub const RAW_C_FLAGS: &[&str] =
    &["-nostdlib", "-static", "-ffreestanding", "-fno-stack-protector", "-fno-builtin"];

/// Every C test program with the flags it needs beyond a link mode from [`C_FLAG_SETS`].
pub const C_PROGRAMS: &[(&str, &[&str])] = &[
    ("badptr", &[]),
    ("clocks", &[]),
    ("execthread", &["-pthread"]),
    ("forks", &[]),
    ("forkbomb", &[]),
    ("tiocsti", &[]),
    ("gate_escape", &[]),
    ("gate_meta", &[]),
    ("gate_floor", &[]),
    ("no_ns", &[]),
    ("patched", &["-pthread"]),
    ("net_escape", &[]),
    ("hello", &[]),
    ("cpu", &[]),
    ("regs", &[]),
    ("execfail", &[]),
    ("execstacks", &[]),
    ("fexecve", &[]),
    ("smallstack", &[]),
    ("randomness", &[]),
    ("rawsys", RAW_C_FLAGS),
    ("segv", &[]),
    ("selfexe", &[]),
    ("sent_faults", &["-pthread"]),
    ("signals", &[]),
    ("stress", &["-pthread"]),
    ("threads", &["-pthread"]),
    ("unhook", &["-pthread"]),
];

type Cache = Mutex<HashMap<String, Arc<OnceLock<PathBuf>>>>;

/// Compiles `tests/programs/<name>.c` with `gcc -O2 -g -Wall <flags>` (flags such as
/// `-static`, `-static-pie`, `-pthread`, `-nostdlib`) and returns the executable's path.
/// Panics with gcc's messages if it fails.
pub fn compile_c(name: &str, flags: &[&str]) -> PathBuf {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = std::iter::once(name).chain(flags.iter().copied()).collect::<Vec<_>>().join(" ");
    let cell = {
        let mut cache =
            CACHE.get_or_init(Cache::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(cache.entry(key).or_default())
    };
    cell.get_or_init(|| gcc(name, flags)).clone()
}

fn gcc(name: &str, flags: &[&str]) -> PathBuf {
    let source = programs_dir().join(format!("{name}.c"));
    assert!(source.is_file(), "no test program {}", source.display());
    let suffix: String = flags
        .iter()
        .map(|f| f.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect::<String>())
        .collect::<Vec<_>>()
        .join("");
    let dir = scratch_dir().join("bin");
    std::fs::create_dir_all(&dir).expect("cannot create the programs directory");
    let exe = dir.join(if suffix.is_empty() { name.to_owned() } else { format!("{name}{suffix}") });
    gcc_build(&source, &exe, flags);
    exe
}

/// Runs `gcc -O2 -g -Wall -Wextra -o EXE SOURCE FLAGS`; panics with gcc's messages if it fails.
pub fn gcc_build(source: &std::path::Path, exe: &std::path::Path, flags: &[&str]) {
    let out = Command::new("gcc")
        .env("PATH", SYSTEM_PATH)
        .args(["-O2", "-g", "-Wall", "-Wextra", "-o"])
        .arg(exe)
        .arg(source)
        .args(flags)
        .output()
        .unwrap_or_else(|e| panic!("cannot run gcc ({e}): install gcc and libc6-dev"));
    assert!(
        out.status.success(),
        "gcc failed to build {} with {flags:?}:\n{}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds the Go program (`tests/programs/go`) once per process with `go build`, statically
/// (`CGO_ENABLED=0`, as untrusted Go downloads usually are), and returns its path. The build
/// cache lives under the target directory.
pub fn go_program() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let source = programs_dir().join("go");
        let exe = scratch_dir().join("bin").join("goprog");
        let target = profile_dir();
        let target = target.parent().unwrap_or(&target);
        let out = Command::new("go")
            .current_dir(&source)
            .env("PATH", format!("/usr/lib/go/bin:{SYSTEM_PATH}"))
            .env("HOME", std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .env("GOFLAGS", "-mod=mod")
            .env("CGO_ENABLED", "0")
            .env("GOCACHE", target.join("go-build-cache"))
            .env("GOPATH", target.join("go-path"))
            .env("GOPROXY", "off")
            .env("GOTOOLCHAIN", "local")
            .env("GOTELEMETRY", "off")
            .args(["build", "-o"])
            .arg(&exe)
            .arg(".")
            .output()
            .unwrap_or_else(|e| panic!("cannot run go ({e}): install golang-go"));
        assert!(
            out.status.success(),
            "go build failed in {}:\n{}",
            source.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(Path::new(&exe).is_file(), "go build made no {}", exe.display());
        exe
    })
    .clone()
}
