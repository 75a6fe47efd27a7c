//! The `limits` section: how much of the host one sandbox may use ([`Limits`]).
//!
//! Every key is optional; absent, the sandbox keeps what the launcher itself was given. The
//! launcher turns the keys into `setrlimit(2)` values set in the sandbox before the program
//! starts (soft and hard limit equal, so the program cannot raise them again), except
//! `wall_seconds`, which the supervisor enforces by killing the whole sandbox. What each key
//! means, and what it does not cover, is in docs/limits.md; the short version:
//!
//! - `processes` is `RLIMIT_NPROC`: the kernel counts the processes of the sandbox's user, and
//!   in the sandbox's own user namespace (rootless) only the sandbox's; root is never held by it
//!   (the launcher uses a pids cgroup instead where it can);
//! - `memory_bytes` is `RLIMIT_DATA`: each process's private writable memory (heap, anonymous
//!   mappings), not its address space, which Go, Java and sanitizers reserve by the terabyte;
//! - `cpu_seconds` (`RLIMIT_CPU`), `file_size_bytes` (`RLIMIT_FSIZE`) and `open_files`
//!   (`RLIMIT_NOFILE`) hold per process as well;
//! - `overlay_bytes` is a total for the sandbox: the size of the tmpfs that holds its private
//!   layer (the overlay's upper tree and its private `/tmp`) in its mount namespace, instead of
//!   the host's disk.
//!
//! Read first: setrlimit(2), and for processes user_namespaces(7).

use serde::{Deserialize, Serialize};

/// The fewest descriptors a sandbox may be limited to: the standard streams, a dynamic
/// loader's and libc's few, and room for the runtime's reserved descriptors (which it moves to
/// 1022 and 1023 before the limit applies).
pub const MIN_OPEN_FILES: u64 = 16;

/// The smallest memory limit: below a few MiB no dynamic program gets as far as `main`, and
/// the failure would look like a broken program rather than a limit.
pub const MIN_MEMORY_BYTES: u64 = 16 << 20;

/// The smallest private layer: room for the directories and stand-ins the launcher lays out
/// before the program starts, and for a few small files.
pub const MIN_OVERLAY_BYTES: u64 = 1 << 20;

/// The longest wall-clock limit: a year, in seconds (longer is no limit).
pub const MAX_WALL_SECONDS: u64 = 366 * 24 * 3600;

/// The `limits` section of a policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Free text: why the limits are as they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Most processes (and threads) the sandbox's user may have (`RLIMIT_NPROC`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes: Option<u64>,
    /// Most private writable memory per process, in bytes (`RLIMIT_DATA`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Most CPU time per process, in seconds (`RLIMIT_CPU`): `SIGXCPU` at the limit, `SIGKILL`
    /// one second later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<u64>,
    /// Largest file a process may write, in bytes (`RLIMIT_FSIZE`): `SIGXFSZ` beyond it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_size_bytes: Option<u64>,
    /// Most open descriptors per process (`RLIMIT_NOFILE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_files: Option<u64>,
    /// Most wall-clock time for the whole sandbox, in seconds: then every process of it is
    /// killed and `cloister run` exits 124 (`--timeout`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wall_seconds: Option<u64>,
    /// Most bytes the sandbox's private layer (the overlay's upper tree, its private `/tmp` and
    /// `/dev/shm`) may hold in total: it lives on a tmpfs of this size, in memory, instead of on
    /// the host's disk; a write beyond it fails with `ENOSPC`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlay_bytes: Option<u64>,
}

impl Limits {
    /// Whether nothing but perhaps a comment is set.
    pub fn is_empty(&self) -> bool {
        self.keys().iter().all(|(_, v)| v.is_none()) && self.comment.is_none()
    }

    /// Every key with its value, in the schema's order.
    pub fn keys(&self) -> [(&'static str, Option<u64>); 7] {
        [
            ("processes", self.processes),
            ("memory_bytes", self.memory_bytes),
            ("cpu_seconds", self.cpu_seconds),
            ("file_size_bytes", self.file_size_bytes),
            ("open_files", self.open_files),
            ("wall_seconds", self.wall_seconds),
            ("overlay_bytes", self.overlay_bytes),
        ]
    }

    /// The value of the key `name` (one of [`Limits::NAMES`]) to set or clear; `None` for an
    /// unknown name.
    pub fn slot(&mut self, name: &str) -> Option<&mut Option<u64>> {
        Some(match name {
            "processes" => &mut self.processes,
            "memory_bytes" => &mut self.memory_bytes,
            "cpu_seconds" => &mut self.cpu_seconds,
            "file_size_bytes" => &mut self.file_size_bytes,
            "open_files" => &mut self.open_files,
            "wall_seconds" => &mut self.wall_seconds,
            "overlay_bytes" => &mut self.overlay_bytes,
            _ => return None,
        })
    }

    /// The keys' names, as a policy and `--limit NAME=VALUE` write them.
    pub const NAMES: [&'static str; 7] = [
        "processes",
        "memory_bytes",
        "cpu_seconds",
        "file_size_bytes",
        "open_files",
        "wall_seconds",
        "overlay_bytes",
    ];
}

/// What is wrong with `value` for the key `name`, and how to fix it; `Ok` when nothing is.
/// Shared by the policy's validation and `--limit`.
pub fn check_limit(name: &str, value: u64) -> Result<(), (String, String)> {
    let (least, most) = match name {
        "open_files" => (MIN_OPEN_FILES, u64::from(u32::MAX)),
        "memory_bytes" => (MIN_MEMORY_BYTES, u64::MAX),
        "wall_seconds" => (1, MAX_WALL_SECONDS),
        "overlay_bytes" => (MIN_OVERLAY_BYTES, u64::MAX),
        _ => (1, u64::MAX),
    };
    if value < least {
        let message = format!("{name} {value} is below {least}, which no program can run in");
        let fix = format!("write at least {least}, or leave the key out for no limit");
        return Err((message, fix));
    }
    if value > most {
        let message = format!("{name} {value} is more than {most}");
        return Err((message, format!("write at most {most}, or leave the key out for no limit")));
    }
    Ok(())
}
