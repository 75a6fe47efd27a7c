//! The sandbox's private state directory (STATE): the overlay's upper tree, the tmpfs
//! directories and the empty stand-ins for hidden paths.
//!
//! Layout (the kernel writes `upper/`; the launcher reads it at exit):
//! - `upper/`: one upper tree for every overlay mount, keyed by guest path (the overlay at
//!   guest `G` has `upper + G` as its upper layer);
//! - `tmp/N/`: one directory per tmpfs mount, always thrown away;
//! - `hidden/N`: what the Nth hidden path shows, an empty directory (mode 0555) or file (mode
//!   0444) of its own, so that a descriptor or working directory in it maps back to the one
//!   guest path it stands for;
//! - `index/DEV-INO`: the upper copy of a lower file with several names (hard links), linked
//!   here so that its other names, copied up later, become links of the same copy (the
//!   runtime makes `index/` with its first entry);
//! - `sys/`: an empty directory where the sandbox's network namespace stages a fresh sysfs;
//! - `shared`: the page every process of the sandbox maps (the overlay's generation counter,
//!   the virtual clock), so that no descriptor has to be reserved for it;
//! - `manifest.json`: written at exit when the changes are kept.
//!
//! STATE is either `--changes DIR` (created if missing, else it must be an empty directory;
//! kept after the run) or a fresh `$TMPDIR/cloister-XXXXXX` made by mkdtemp(3) with mode 0700
//! (removed after the run). Until [`State::keep`] is called, dropping a [`State`] removes what
//! it made, so a run that fails before the program starts leaves nothing behind.

use crate::failure::Failure;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// The process's umask, once [`record_umask`] read it; until then every bit, so that every
/// mode is set again after a file is made.
static UMASK: AtomicU32 = AtomicU32::new(0o7777);

/// Reads the process's umask for [`set_mode`]. `umask(2)` cannot read it without setting it,
/// so this sets it back at once, and must run before any other thread makes files.
pub fn record_umask() {
    // SAFETY: umask only changes the process's file mode creation mask, set back at once.
    let old = unsafe {
        let old = libc::umask(0);
        libc::umask(old);
        old
    };
    UMASK.store(old, Ordering::Relaxed);
}

/// Gives `path`, just made with `mode`, that mode if the umask took bits away. (On this
/// project's VMs a `chmod` in `/tmp` costs 20–45 µs, and a start makes a dozen files.)
fn set_mode(path: &Path, mode: u32) -> Result<(), Failure> {
    if mode & UMASK.load(Ordering::Relaxed) == 0 {
        return Ok(());
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| setup(path, "cannot set the mode of", &e))
}

/// Creates the directory `path` with the mode `mode`.
fn create_dir(path: &Path, mode: u32) -> Result<(), Failure> {
    fs::DirBuilder::new().mode(mode).create(path).map_err(|e| setup(path, "cannot create", &e))?;
    set_mode(path, mode)
}

/// Creates the file `path` with `bytes` in it and the mode `mode`.
fn create_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Failure> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| setup(path, "cannot create", &e))?;
    set_mode(path, mode)
}

/// The state directory of one run.
#[derive(Debug)]
pub struct State {
    dir: PathBuf,
    /// Given with `--changes`: kept after the run.
    kept: bool,
    /// Whether this run created `dir` (and so removes it when nothing is kept).
    created: bool,
    /// Set once the run is over and the directory was dealt with.
    done: bool,
}

impl State {
    /// Makes the state directory: `changes` if given, else a fresh one under `$TMPDIR`.
    pub fn create(changes: Option<&Path>) -> Result<State, Failure> {
        let (dir, kept, created) = match changes {
            Some(dir) => {
                let created = prepare_changes_dir(dir)?;
                (dir.to_path_buf(), true, created)
            }
            None => (make_temp_dir()?, false, true),
        };
        // The kernel joins guest paths onto these: they must not go through symlinks.
        let dir = fs::canonicalize(&dir).map_err(|e| setup(&dir, "cannot resolve", &e))?;
        let state = State { dir, kept, created, done: false };
        for (sub, mode) in [("upper", 0o755), ("tmp", 0o700), ("hidden", 0o755), ("sys", 0o755)] {
            create_dir(&state.dir.join(sub), mode)?;
        }
        let mut page = vec![0u8; kernel_host::shared::Shared::SIZE];
        page[..8].copy_from_slice(&kernel_host::shared::Shared::MAGIC.to_ne_bytes());
        create_file(&state.shared(), &page, 0o600)?;
        Ok(state)
    }

    /// The directory itself (canonical).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the changes are kept after the run (`--changes DIR`).
    pub fn is_kept(&self) -> bool {
        self.kept
    }

    /// The root of the overlays' upper tree.
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    /// The directory of the `n`th tmpfs mount (not created).
    pub fn tmp(&self, n: usize) -> PathBuf {
        self.dir.join("tmp").join(n.to_string())
    }

    /// Where the sandbox's network namespace stages its own sysfs (see
    /// [`crate::view::mounts::MountPlan::own_sysfs_net`]).
    pub fn sys_stage(&self) -> PathBuf {
        self.dir.join("sys")
    }

    /// Makes the stand-in of the `n`th hidden path: an empty directory (mode 0555) when `dir`,
    /// else an empty file (mode 0444).
    pub fn stand_in(&self, n: usize, dir: bool) -> Result<PathBuf, Failure> {
        let path = self.dir.join("hidden").join(n.to_string());
        if dir {
            create_dir(&path, 0o555)?;
        } else {
            create_file(&path, b"", 0o444)?;
        }
        Ok(path)
    }

    /// The private place of a hidden path that is missing at the start: a path in the state
    /// directory that only the program's own `mkdir` or `open` there makes.
    pub fn absent_stand_in(&self, n: usize) -> PathBuf {
        self.dir.join("hidden").join(format!("{n}-absent"))
    }

    /// Makes the stand-in every block device under `/dev` shows in the sandbox's mount
    /// namespace: an empty file (mode 0444), `hidden/block`.
    pub fn block_stand_in(&self) -> Result<PathBuf, Failure> {
        let path = self.dir.join("hidden").join("block");
        create_file(&path, b"", 0o444)?;
        Ok(path)
    }

    /// The sandbox's shared page.
    pub fn shared(&self) -> PathBuf {
        self.dir.join("shared")
    }

    /// Writes the view's mount table, packed, after the shared page: every runtime of the
    /// sandbox reads it there ([`kernel_host::config::Config::mount_table`]). Returns its
    /// length, for the configuration to name.
    pub fn write_mount_table(&self, table: &kernel_host::vfs::mount::MountTable) -> Result<usize, Failure> {
        use std::os::unix::fs::FileExt;
        let path = self.shared();
        let packed = table.packed();
        if packed.len() > kernel_host::vfs::mount::MAX_PACKED {
            return Err(Failure::Setup(format!(
                "the filesystem view has too many mounts: its table takes {} KiB, at most {} KiB \
                 (hide or bind fewer paths)",
                packed.len() / 1024,
                kernel_host::vfs::mount::MAX_PACKED / 1024
            )));
        }
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.write_all_at(packed, kernel_host::shared::Shared::SIZE as u64))
            .map_err(|e| setup(&path, "cannot write the mount table to", &e))?;
        Ok(packed.len())
    }

    /// Where the manifest goes.
    pub fn manifest(&self) -> PathBuf {
        self.dir.join("manifest.json")
    }

    /// After the run: removes the directory, or, when it is kept, everything in it but the
    /// upper tree and the manifest. Returns the first error, naming the path.
    ///
    /// With `later` (a large tree: tens of thousands of files take a second or more to
    /// unlink), the directory is renamed aside (`NAME.discarded`) and removed by a detached
    /// process of its own, so that `cloister run` returns the program's status without waiting
    /// for the disk; it is removed here and now when that process cannot be started.
    pub fn finish(mut self, later: bool) -> Result<(), String> {
        self.done = true;
        if self.kept {
            remove_private_parts(&self.dir)
        } else if later && discard_later(&self.dir).is_ok() {
            Ok(())
        } else {
            remove_all(&self.dir)
        }
    }
}

/// The suffix a state directory being removed in the background has.
const DISCARDED: &str = ".discarded";

/// Renames `dir` aside and starts `cloister __discard` on it, detached (its own session, no
/// standard streams): it outlives this process.
fn discard_later(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let mut aside = dir.as_os_str().to_owned();
    aside.push(DISCARDED);
    let aside = PathBuf::from(aside);
    fs::rename(dir, &aside)?;
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg("__discard")
        .arg(&aside)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: setsid is async-signal-safe, and the closure touches nothing else: the remover
    // leaves the terminal's session, so that a ^C after `cloister run` returned cannot stop it.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    match cmd.spawn() {
        Ok(_child) => Ok(()),
        Err(e) => {
            // Back where it was, for the removal in place.
            let _ = fs::rename(&aside, dir);
            Err(e)
        }
    }
}

/// `cloister __discard DIR`: removes a state directory that [`State::finish`] renamed aside,
/// at low priority. Refuses anything else: it is a command anyone can type.
pub fn discard_command(dir: &Path) -> i32 {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !(name.starts_with("cloister-") && name.ends_with(DISCARDED)) {
        eprintln!("cloister __discard: {}: not a discarded state directory", dir.display());
        return 2;
    }
    // SAFETY: setpriority only changes this process's scheduling priority.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
    match remove_all(dir) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("cloister __discard: {e}");
            1
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // The run never got as far as the program: leave the directory as it was found.
        let _ = if self.created {
            remove_all(&self.dir)
        } else {
            fs::read_dir(&self.dir)
                .map(|entries| entries.flatten().try_for_each(|e| remove_all(&e.path())))
                .unwrap_or(Ok(()))
        };
    }
}

/// Checks or creates `--changes DIR`; returns whether it was created.
fn prepare_changes_dir(dir: &Path) -> Result<bool, Failure> {
    let shown = dir.display();
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            let mut entries = fs::read_dir(dir).map_err(|e| setup(dir, "cannot read", &e))?;
            if entries.next().is_some() {
                return Err(Failure::Setup(format!(
                    "--changes {shown}: the directory is not empty; give a new or empty directory"
                )));
            }
            Ok(false)
        }
        Ok(_) => Err(Failure::Setup(format!(
            "--changes {shown}: this is not a directory; give a new or empty directory"
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent).map_err(|e| setup(parent, "cannot create", &e))?;
            }
            // Copies of the user's files will be in it: private, like the temporary one.
            fs::DirBuilder::new().mode(0o700).create(dir).map_err(|e| setup(dir, "cannot create", &e))?;
            Ok(true)
        }
        Err(e) => Err(setup(dir, "cannot look at", &e)),
    }
}

/// `$TMPDIR/cloister-XXXXXX`, mode 0700, made by mkdtemp(3) so that no other user can have
/// made it first.
fn make_temp_dir() -> Result<PathBuf, Failure> {
    let base = std::env::var_os("TMPDIR").filter(|t| t.as_bytes().starts_with(b"/")).unwrap_or("/tmp".into());
    let template = Path::new(&base).join("cloister-XXXXXX");
    let fail = |e: std::io::Error| setup(&template, "cannot create the sandbox's state directory", &e);
    let c = CString::new(template.as_os_str().as_bytes())
        .map_err(|_| fail(std::io::Error::from(std::io::ErrorKind::InvalidInput)))?;
    let mut bytes = c.into_bytes_with_nul();
    // SAFETY: `bytes` is a writable, NUL-terminated template ending in XXXXXX, which mkdtemp
    // fills in place.
    let made = unsafe { libc::mkdtemp(bytes.as_mut_ptr().cast()) };
    if made.is_null() {
        return Err(fail(std::io::Error::last_os_error()));
    }
    bytes.pop();
    Ok(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

/// Removes `path` whatever it is; a path already gone is fine.
fn remove_all(path: &Path) -> Result<(), String> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path).or_else(|e| {
            if e.kind() != std::io::ErrorKind::PermissionDenied {
                return Err(e);
            }
            // A directory without write or search rights (the program can leave one in its
            // tmpfs or upper tree, and `empty/` is one): open them up and try again.
            make_writable(path);
            fs::remove_dir_all(path)
        }),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(|e| format!("cannot remove {}: {e}", path.display()))
}

/// Gives the owner write and search rights on every directory under `dir`.
fn make_writable(dir: &Path) {
    let Ok(meta) = fs::symlink_metadata(dir) else { return };
    if !meta.is_dir() {
        return;
    }
    let mode = meta.permissions().mode();
    if mode & 0o700 != 0o700 {
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o700));
    }
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        make_writable(&entry.path());
    }
}

/// Keeps `upper/` and `manifest.json`; removes the rest of a kept state directory.
fn remove_private_parts(dir: &Path) -> Result<(), String> {
    // The network's files (`--net nat`'s resolv.conf, a sandbox's own hosts) are the sandbox's too.
    for name in ["tmp", "hidden", "index", "sys", "shared", "resolv.conf", "hosts"] {
        remove_all(&dir.join(name))?;
    }
    // The runtime's patched copies of the program interpreter (docs/architecture.md, step 7).
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        if entry.file_name().as_encoded_bytes().starts_with(kernel_host::learned::COPY_PREFIX.as_bytes()) {
            remove_all(&entry.path())?;
        }
    }
    Ok(())
}

fn setup(path: &Path, what: &str, e: &std::io::Error) -> Failure {
    Failure::Setup(format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cloister-state-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn changes_dir_is_created_laid_out_kept_and_trimmed() {
        let dir = scratch("kept");
        let state = State::create(Some(&dir)).unwrap();
        assert!(state.is_kept());
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        let (d, f) = (state.stand_in(0, true).unwrap(), state.stand_in(1, false).unwrap());
        assert_eq!(fs::metadata(d).unwrap().permissions().mode() & 0o777, 0o555);
        assert_eq!(fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o444);
        assert!(f.is_file());
        assert!(state.upper().is_dir());
        fs::create_dir(state.tmp(0)).unwrap();
        fs::write(state.manifest(), "{}").unwrap();
        // A patched copy of the interpreter the runtime left, and one half written.
        fs::write(dir.join("ld-00112233aabbccdd"), "copy").unwrap();
        fs::write(dir.join("ld-00112233aabbccdd.7"), "half").unwrap();
        state.finish(false).unwrap();
        let mut left: Vec<String> =
            fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(left, ["manifest.json", "upper"]);
    }

    #[test]
    fn a_changes_dir_that_is_not_empty_is_refused() {
        let dir = scratch("full");
        fs::create_dir_all(dir.join("x")).unwrap();
        let err = State::create(Some(&dir)).unwrap_err().to_string();
        fs::remove_dir_all(&dir).unwrap();
        assert!(err.ends_with("the directory is not empty; give a new or empty directory"), "{err}");
    }

    #[test]
    fn an_abandoned_state_leaves_nothing_and_an_existing_dir_empty() {
        let dir = scratch("given");
        fs::create_dir(&dir).unwrap();
        drop(State::create(Some(&dir)).unwrap());
        let left = fs::read_dir(&dir).unwrap().count();
        fs::remove_dir(&dir).unwrap();
        assert_eq!(left, 0);

        let temp = State::create(None).unwrap();
        let path = temp.dir().to_path_buf();
        assert!(path.file_name().unwrap().to_str().unwrap().starts_with("cloister-"));
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o700);
        // A read-only directory the program left behind does not stop the clean-up.
        fs::create_dir(temp.upper().join("ro")).unwrap();
        fs::set_permissions(temp.upper().join("ro"), fs::Permissions::from_mode(0o500)).unwrap();
        temp.finish(false).unwrap();
        assert!(!path.exists());
    }
}
