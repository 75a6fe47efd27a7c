//! A pids cgroup for the `processes` limit where `RLIMIT_NPROC` does not hold: for root.
//!
//! The kernel never applies `RLIMIT_NPROC` to the host's root user (nor to anyone with
//! `CAP_SYS_RESOURCE` or `CAP_SYS_ADMIN` in the host's user namespace), so a fork bomb run by
//! root would go through. A pids cgroup counts the processes in it, whoever owns them, and
//! refuses `fork` with `EAGAIN` at `pids.max`. The launcher makes one, `cloister-PID`, beside
//! its own cgroup in the pids hierarchy (cgroup v1's `pids` controller, or cgroup v2 where the
//! pids controller is already enabled for children of the launcher's cgroup: enabling it
//! would need moving the launcher out of its cgroup first), and the sandbox's first process
//! moves itself in before it starts anything. After the run the directory is removed; one left
//! by a supervisor that was killed is removed by the next run that makes one.
//!
//! This is best effort and only for root: anyone else gets `RLIMIT_NPROC`, which in the
//! sandbox's user namespace counts the sandbox's own processes. Where no cgroup can be made,
//! the launcher says once on stderr that `processes` does not hold.
//!
//! Read first: cgroups(7), the kernel's Documentation/admin-guide/cgroup-v1/pids.rst and
//! cgroup-v2.rst ("PID").

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The line printed when `processes` cannot be held for root.
pub const NOT_HELD: &str = "cloister: the processes limit does not hold here: the kernel does not apply RLIMIT_NPROC to root, and no pids cgroup could be made";

/// The sandbox's pids cgroup: its directory, and its `cgroup.procs` opened for the child.
#[derive(Debug)]
pub struct PidsCgroup {
    dir: PathBuf,
    procs: OwnedFd,
}

impl PidsCgroup {
    /// Makes `cloister-PID` with `pids.max` set to `max`; `Err` says why not.
    pub fn create(max: u64) -> Result<PidsCgroup, String> {
        let parent = pids_parent().ok_or("no pids cgroup hierarchy the launcher may use")?;
        remove_stale(&parent);
        let dir = parent.join(format!("cloister-{}", std::process::id()));
        fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let made = (|| {
            fs::write(dir.join("pids.max"), max.to_string())
                .map_err(|e| format!("cannot write {}/pids.max: {e}", dir.display()))?;
            let procs = fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(dir.join("cgroup.procs"))
                .map_err(|e| format!("cannot open {}/cgroup.procs: {e}", dir.display()))?;
            Ok(OwnedFd::from(procs))
        })();
        match made {
            Ok(procs) => Ok(PidsCgroup { dir, procs }),
            Err(e) => {
                let _ = fs::remove_dir(&dir);
                Err(e)
            }
        }
    }

    /// The descriptor of `cgroup.procs`, for [`join`] in the child.
    pub fn procs_fd(&self) -> i32 {
        self.procs.as_raw_fd()
    }

    /// Removes the cgroup once the sandbox's processes are gone (a dying process leaves its
    /// cgroup a moment after it can be reaped, so this tries for up to a second).
    pub fn remove(self) {
        // The kernel lets the last tasks go a moment after they were reaped: poll finely, for
        // at most a second (a cgroup left behind is removed by the next run's sweep).
        for _ in 0..2000 {
            match fs::remove_dir(&self.dir) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(std::time::Duration::from_micros(500))
                }
                _ => return,
            }
        }
    }
}

/// Moves the calling process into the cgroup whose `cgroup.procs` is open as `procs_fd`.
///
/// # Safety
/// Async-signal-safe: one `write` of a constant.
pub unsafe fn join(procs_fd: i32) -> bool {
    // SAFETY: writing a 1-byte constant to a descriptor the caller owns; "0" means the writer.
    unsafe { libc::write(procs_fd, b"0".as_ptr().cast(), 1) == 1 }
}

/// Where `cloister-PID` goes: beside the launcher's own pids cgroup.
fn pids_parent() -> Option<PathBuf> {
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "pids") {
            let dir = Path::new("/sys/fs/cgroup/pids").join(rel);
            if dir.join("cgroup.procs").exists() {
                return Some(dir);
            }
        }
        if controllers.is_empty() {
            let dir = Path::new("/sys/fs/cgroup").join(rel);
            let enabled = fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
            if enabled.split_whitespace().any(|c| c == "pids") {
                return Some(dir);
            }
        }
    }
    None
}

/// Removes `cloister-PID` directories of supervisors that are gone (killed before they could
/// remove theirs); one still in use is busy and stays.
fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("cloister-")) else { continue };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir(entry.path());
        }
    }
}
