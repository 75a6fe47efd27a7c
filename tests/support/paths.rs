//! Where things are: the binaries under test, the test programs' sources, and scratch
//! directories for compiled programs, scripts and trace files.
//!
//! Scratch space lives under the cargo target directory (`target/cloister-tests/p<PID>/`), one
//! directory per test process. Directories of processes that no longer exist are removed the
//! next time a test process starts; the last run's directory stays for inspection.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::{env, fs};

/// The `PATH` every test program gets, natively and under cloister: the system directories
/// only, so that `python3`, `sh` and coreutils are Debian's and not a shim (pyenv, asdf) that a
/// developer's shell puts first.
pub const SYSTEM_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Debian's Python, named explicitly (a pyenv shim is itself a script that re-executes).
pub const PYTHON3: &str = "/usr/bin/python3";

/// The cargo profile directory the running test binary was built into (`target/<profile>`):
/// the test executable is `target/<profile>/deps/<name>-<hash>`.
pub fn profile_dir() -> PathBuf {
    let exe = env::current_exe().expect("cannot locate the running test executable");
    let deps = exe.parent().expect("the test executable has no parent directory");
    match deps.file_name() {
        Some(name) if name == "deps" => {
            deps.parent().expect("target/<profile>/deps has no parent").to_path_buf()
        }
        _ => deps.to_path_buf(),
    }
}

/// The `cloister` executable under test: `$CLOISTER_BIN` if set, else `cloister` in the same
/// profile directory as the running test (`cargo build --workspace` puts it there; the
/// launcher finds `cloister-rt` beside itself). Panics with what to do when it is missing.
pub fn cloister_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = match env::var_os("CLOISTER_BIN") {
            Some(path) => PathBuf::from(path),
            None => profile_dir().join("cloister"),
        };
        assert!(
            bin.is_file(),
            "the cloister binary is not at {}: build it first with `cargo build --workspace` \
             (with --release for `cargo test --release`; `tests/run` does both), or point \
             CLOISTER_BIN at it",
            bin.display()
        );
        bin
    })
    .clone()
}

/// The directory of the test programs' sources (`tests/programs`).
pub fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("programs")
}

/// The target directory's scratch area shared by all test processes (`target/cloister-tests`).
fn scratch_root() -> PathBuf {
    let profile = profile_dir();
    profile.parent().unwrap_or(&profile).join("cloister-tests")
}

/// This test process's scratch directory, created on first use (stale ones of dead processes
/// are removed then).
pub fn scratch_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = scratch_root();
        remove_stale(&root);
        let dir = root.join(format!("p{}", std::process::id()));
        // A directory left by an earlier process with the same pid is stale too.
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create scratch directory {}: {e}", dir.display()));
        dir
    })
    .clone()
}

/// Removes `root/p<PID>` directories whose process no longer exists.
fn remove_stale(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix('p')) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// A fresh, empty directory inside [`scratch_dir`] whose name starts with `label`.
pub fn temp_dir(label: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = scratch_dir().join(format!("{label}-{n}"));
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// The host's real host name (what a native `uname -n` prints).
pub fn real_hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("cannot read /proc/sys/kernel/hostname")
        .trim_end()
        .to_owned()
}

/// Writes `bytes` to `path` with permission bits `mode` (e.g. `0o755`).
pub fn write_file(path: &Path, bytes: impl AsRef<[u8]>, mode: u32) {
    fs::write(path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
}
