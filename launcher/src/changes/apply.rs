//! `cloister changes apply DIR [--dry-run] [--force]`: make the host's files what the program
//! saw at the end of its run.
//!
//! First every change is checked against the host as it is now: a modified or deleted entry
//! must still be what the manifest recorded at the end of the run (type, and a file's bytes or
//! a symlink's target by SHA-256; a directory to delete must hold nothing the run did not
//! delete), and a created path must still be free. If anything fails the check, nothing is
//! applied (exit 1, one line per refused path) unless `--force`. Then deletions are made,
//! a directory's entries before it, and creations and modifications, parents first. Files are written beside
//! their destination and renamed over it, so a reader never sees half a file.
//!
//! Set-user-id and set-group-id bits are not applied: a program run as root in the sandbox
//! could otherwise leave a set-uid root binary for the host. Special files (devices, FIFOs,
//! sockets) are not applied either. Owners are the applying user's.

use super::entry::{self, EntryType};
use super::manifest::{Change, Kind, Manifest};
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Bits never applied to the host.
const SET_ID_BITS: u32 = 0o6000;

/// Runs `changes apply`; returns the exit status (0 applied, 1 refused or failed, 125 not a
/// changes directory).
pub fn run(dir: &Path, dry_run: bool, force: bool) -> i32 {
    let manifest = match Manifest::load(dir) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("cloister: {e}");
            return 125;
        }
    };
    let refusals = check(&manifest, dir);
    for (path, why) in &refusals {
        eprintln!("cloister: refused {path}: {why}");
    }
    if !refusals.is_empty() && !force {
        eprintln!(
            "cloister: nothing applied: {} path(s) refused; look at them, or apply anyway with --force",
            refusals.len()
        );
        return 1;
    }
    let skip: BTreeSet<&str> =
        refusals.iter().filter(|(_, why)| *why == SPECIAL).map(|(path, _)| path.as_str()).collect();
    let mut applied = 0;
    for change in order(&manifest.changes) {
        if skip.contains(change.path.as_str()) {
            continue;
        }
        let host = manifest.lower_path(&change.path).expect("checked by Manifest::load");
        let verb = action(change);
        if dry_run {
            println!("would {verb} {} {}", change.ty.word(), host.display());
            continue;
        }
        let source = manifest.upper_path(dir, &change.path);
        if let Err(e) = apply_one(change, &source, &host, force) {
            eprintln!(
                "cloister: cannot {verb} {}: {e}; {applied} change(s) applied before it",
                host.display()
            );
            return 1;
        }
        println!("{} {} {}", change.kind.word(), change.ty.word(), host.display());
        applied += 1;
    }
    0
}

/// The refusal of a special file, which is skipped even with `--force`.
const SPECIAL: &str = "a device, FIFO or socket: cloister does not apply special files";

/// `create`, `modify` or `delete`.
fn action(change: &Change) -> &'static str {
    match change.kind {
        Kind::Created => "create",
        Kind::Modified => "modify",
        Kind::Deleted => "delete",
    }
}

/// Deletions in reverse path order (a directory's entries before it), then the rest in path
/// order (a directory before its entries).
fn order(changes: &[Change]) -> Vec<&Change> {
    let mut deletions: Vec<&Change> = changes.iter().filter(|c| c.kind == Kind::Deleted).collect();
    deletions.sort_by(|a, b| b.path.split('/').cmp(a.path.split('/')));
    let mut rest: Vec<&Change> = changes.iter().filter(|c| c.kind != Kind::Deleted).collect();
    rest.sort_by(|a, b| a.path.split('/').cmp(b.path.split('/')));
    deletions.into_iter().chain(rest).collect()
}

/// Every path the host or the kept tree no longer allows to apply, with the reason.
pub fn check(manifest: &Manifest, dir: &Path) -> Vec<(String, String)> {
    let deleted: BTreeSet<&str> =
        manifest.changes.iter().filter(|c| c.kind == Kind::Deleted).map(|c| c.path.as_str()).collect();
    let mut refusals = Vec::new();
    for change in &manifest.changes {
        let host = manifest.lower_path(&change.path).expect("checked by Manifest::load");
        let source = manifest.upper_path(dir, &change.path);
        if let Err(why) = check_one(change, &host, &source, &deleted) {
            refusals.push((change.path.clone(), why));
        }
    }
    refusals
}

fn check_one(change: &Change, host: &Path, source: &Path, deleted: &BTreeSet<&str>) -> Result<(), String> {
    if change.kind != Kind::Deleted {
        if change.ty == EntryType::Other {
            return Err(SPECIAL.into());
        }
        let kept = fs::symlink_metadata(source).map_err(|_| format!("{} is missing", source.display()))?;
        if EntryType::of(&kept) != change.ty {
            return Err(format!("{} is no longer a {}", source.display(), change.ty.word()));
        }
    }
    let now = entry::lstat(host).map_err(|e| format!("cannot look at {}: {e}", host.display()))?;
    let Some(record) = &change.host else {
        return match now {
            Some(meta) => {
                Err(format!("{} now exists on the host (a {})", host.display(), EntryType::of(&meta).word()))
            }
            None => Ok(()),
        };
    };
    let Some(now) = now else {
        return Err(format!("{} no longer exists on the host", host.display()));
    };
    let ty = EntryType::of(&now);
    if ty != record.ty {
        return Err(format!(
            "{} is now a {} on the host, not a {}",
            host.display(),
            ty.word(),
            record.ty.word()
        ));
    }
    match ty {
        EntryType::File | EntryType::Symlink => {
            let hash = entry::content_hash(host, &now)
                .map_err(|e| format!("cannot read {}: {e}", host.display()))?;
            if entry::size(&now) != record.size || hash != record.sha256 {
                return Err(format!("{} changed on the host since the run", host.display()));
            }
        }
        EntryType::Dir if change.kind == Kind::Deleted => {
            let entries = fs::read_dir(host).map_err(|e| format!("cannot read {}: {e}", host.display()))?;
            for entry in entries.flatten() {
                let guest = super::scan::child(&change.path, &entry.file_name());
                if !deleted.contains(guest.as_str()) {
                    return Err(format!("{} has new entries on the host ({guest})", host.display()));
                }
            }
        }
        EntryType::Dir => {}
        EntryType::Other => {
            if entry::mode_string(entry::perm(&now)) != record.mode {
                return Err(format!("{} changed on the host since the run", host.display()));
            }
        }
    }
    Ok(())
}

/// Applies one change: `source` is the kept entry, `host` the host path.
fn apply_one(change: &Change, source: &Path, host: &Path, force: bool) -> io::Result<()> {
    if change.kind == Kind::Deleted {
        return remove(host, force);
    }
    let mode = entry::parse_mode(&change.mode).unwrap_or(0o644) & !SET_ID_BITS;
    if let Some(parent) = host.parent() {
        fs::create_dir_all(parent)?;
    }
    let existing = fs::symlink_metadata(host).ok();
    match change.ty {
        EntryType::Dir => {
            if existing.as_ref().is_some_and(|m| !m.is_dir()) {
                fs::remove_file(host)?;
            }
            if !existing.as_ref().is_some_and(|m| m.is_dir()) {
                fs::create_dir(host)?;
            }
            fs::set_permissions(host, fs::Permissions::from_mode(mode))
        }
        EntryType::File => {
            let temp = beside(host);
            // Private until it is complete and has its final mode.
            let mut file = fs::File::options().write(true).create_new(true).mode(0o600).open(&temp)?;
            if let Err(e) = io::copy(&mut fs::File::open(source)?, &mut file) {
                let _ = fs::remove_file(&temp);
                return Err(e);
            }
            file.set_permissions(fs::Permissions::from_mode(mode))?;
            if let Ok(modified) = fs::metadata(source).and_then(|m| m.modified()) {
                file.set_times(fs::FileTimes::new().set_modified(modified))?;
            }
            drop(file);
            replace(&temp, host, existing.as_ref(), force)
        }
        EntryType::Symlink => {
            let temp = beside(host);
            std::os::unix::fs::symlink(fs::read_link(source)?, &temp)?;
            replace(&temp, host, existing.as_ref(), force)
        }
        EntryType::Other => Err(io::Error::new(io::ErrorKind::Unsupported, SPECIAL)),
    }
}

/// A free name in `path`'s directory for writing its replacement.
fn beside(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = path.parent().unwrap_or(Path::new("/"));
    let pid = std::process::id();
    (0..)
        .map(|n| dir.join(format!(".{name}.cloister-apply-{pid}-{n}")))
        .find(|p| fs::symlink_metadata(p).is_err())
        .expect("some name is free")
}

/// Renames `temp` over `host`; a directory in the way (a type change, its entries already
/// deleted) is removed first.
fn replace(temp: &Path, host: &Path, existing: Option<&fs::Metadata>, force: bool) -> io::Result<()> {
    if existing.is_some_and(|m| m.is_dir()) {
        if let Err(e) = remove(host, force) {
            let _ = fs::remove_file(temp);
            return Err(e);
        }
    }
    fs::rename(temp, host).inspect_err(|_| {
        let _ = fs::remove_file(temp);
    })
}

/// Removes a host entry (a directory only when empty, unless `force`); one already gone is
/// fine.
fn remove(host: &Path, force: bool) -> io::Result<()> {
    let meta = match fs::symlink_metadata(host) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return fs::remove_file(host);
    }
    if force {
        fs::remove_dir_all(host)
    } else {
        fs::remove_dir(host)
    }
}
