//! Snapshots of host directory trees, to prove that a sandboxed run left the host's files alone
//! (or, after `cloister changes apply`, that two trees ended up the same).
//!
//! A snapshot walks a tree with `std::fs` (never following symbolic links) and records, for every
//! entry below the root, its type, its permission bits (with set-id and sticky bits), and its
//! content: a hash of a file's bytes, a symbolic link's target. Times, owners, inode numbers and
//! link counts are not recorded: they are not what "the host was not changed" means, and the
//! copies that tests compare with are made at another moment.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::hash::{DefaultHasher, Hasher};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::paths::SYSTEM_PATH;

/// What a tree held at one moment: relative path → description of the entry.
#[derive(Clone, PartialEq, Eq)]
pub struct TreeSnapshot {
    root: PathBuf,
    skip: Vec<String>,
    entries: BTreeMap<PathBuf, String>,
}

impl TreeSnapshot {
    /// Records every entry below `root` (the root's own mode too, as `.`).
    pub fn take(root: &Path) -> Self {
        Self::take_except(root, &[])
    }

    /// Like [`TreeSnapshot::take`], but skips entries (and what is below them) whose file name is
    /// one of `skip`, e.g. `__pycache__` in a directory that native programs of other tests may
    /// compile into.
    pub fn take_except(root: &Path, skip: &[&str]) -> Self {
        let mut entries = BTreeMap::new();
        entries.insert(PathBuf::from("."), describe(root));
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let listing = fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
            for entry in listing {
                let entry = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
                if skip.iter().any(|name| entry.file_name() == *name) {
                    continue;
                }
                let path = entry.path();
                let rel = path.strip_prefix(root).expect("an entry lies below its root").to_path_buf();
                let description = describe(&path);
                if description.starts_with("dir ") {
                    stack.push(path);
                }
                entries.insert(rel, description);
            }
        }
        TreeSnapshot {
            root: root.to_path_buf(),
            skip: skip.iter().map(|s| (*s).to_owned()).collect(),
            entries,
        }
    }

    /// The recorded entries: relative path → `dir MODE`, `file MODE SIZE HASH`,
    /// `symlink -> TARGET`, or `KIND MODE` for anything else.
    pub fn entries(&self) -> &BTreeMap<PathBuf, String> {
        &self.entries
    }

    /// Panics, listing the differences, unless the tree is now what it was when this snapshot
    /// was taken. `context` (e.g. the run's outcome) is printed with the differences.
    #[track_caller]
    pub fn assert_unchanged(&self, context: &dyn fmt::Display) {
        let skip: Vec<&str> = self.skip.iter().map(String::as_str).collect();
        self.assert_same_as(&TreeSnapshot::take_except(&self.root, &skip), context);
    }

    /// Panics, listing the differences, unless `other` recorded the same entries (relative
    /// paths, so two copies of a tree at different places can be compared).
    #[track_caller]
    pub fn assert_same_as(&self, other: &TreeSnapshot, context: &dyn fmt::Display) {
        let diff = self.differences(other);
        assert!(
            diff.is_empty(),
            "the trees differ ({} then {}):\n{}\n{context}",
            self.root.display(),
            other.root.display(),
            diff.join("\n")
        );
    }

    /// One line per entry that differs between `self` and `other`.
    pub fn differences(&self, other: &TreeSnapshot) -> Vec<String> {
        let mut out = Vec::new();
        for (path, was) in &self.entries {
            match other.entries.get(path) {
                None => out.push(format!("  gone:    {} (was {was})", path.display())),
                Some(now) if now != was => {
                    out.push(format!("  changed: {} ({was} -> {now})", path.display()))
                }
                Some(_) => {}
            }
        }
        for (path, now) in &other.entries {
            if !self.entries.contains_key(path) {
                out.push(format!("  new:     {} ({now})", path.display()));
            }
        }
        out
    }
}

impl fmt::Debug for TreeSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}:", self.root.display())?;
        for (path, what) in &self.entries {
            writeln!(f, "  {} {what}", path.display())?;
        }
        Ok(())
    }
}

/// One entry's description (see [`TreeSnapshot::entries`]).
fn describe(path: &Path) -> String {
    let meta = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display()));
    let mode = meta.mode() & 0o7777;
    let kind = meta.file_type();
    if kind.is_dir() {
        format!("dir {mode:04o}")
    } else if kind.is_symlink() {
        let target = fs::read_link(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        format!("symlink -> {}", target.display())
    } else if kind.is_file() {
        format!("file {mode:04o} {} {:016x}", meta.len(), hash_file(path))
    } else {
        let what = if kind.is_socket() {
            "socket"
        } else if kind.is_fifo() {
            "fifo"
        } else if kind.is_char_device() {
            "chardev"
        } else {
            "blockdev"
        };
        format!("{what} {mode:04o}")
    }
}

/// A 64-bit hash of a file's bytes: enough to see a change. `DefaultHasher::new()` has fixed
/// keys, so two snapshots taken by one test process compare.
fn hash_file(path: &Path) -> u64 {
    let mut hasher = DefaultHasher::new();
    let mut file = fs::File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.write(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("cannot read {}: {e}", path.display()),
        }
    }
    hasher.finish()
}

/// Copies the tree `from` to `to` (which must not exist) with `cp -a`, natively: modes,
/// symbolic links and hard links as they are.
pub fn copy_tree(from: &Path, to: &Path) {
    let out = Command::new("cp")
        .env("PATH", SYSTEM_PATH)
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap_or_else(|e| panic!("cannot run cp: {e}"));
    assert!(
        out.status.success(),
        "cp -a {} {} failed:\n{}",
        from.display(),
        to.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
