//! `STATE/manifest.json`: what a run changed, written at exit with `--changes DIR` and read by
//! `cloister changes show|apply DIR`.
//!
//! ```json
//! {"version": 2, "upper": "upper",
//!  "mounts": [{"guest": "/", "lower": "/"}],
//!  "changes": [{"path": "/etc/hosts", "kind": "modified", "type": "file", "size": 230,
//!               "mode": "0644", "host": {"type": "file", "size": 220, "mode": "0644",
//!               "mtime_ns": 1700000000000000000, "sha256": "..."}}]}
//! ```
//!
//! `path` is a guest path, as text: a byte of a name that is not UTF-8 is written `\xNN` and a
//! backslash `\\`, so that every name the program can make is kept and applied as it was
//! (JSON escapes each of those backslashes once more). The new content of a created or
//! modified entry is at
//! `DIR/upper/<path>`, and the host path it applies to is the `lower` of the overlay mount
//! with the longest `guest` prefix, plus the rest of the path. `host` records the host entry as
//! it was at the end of the run (for modified and deleted entries), so that `apply` can refuse
//! to overwrite what changed on the host since. `target` is a symlink's target.

use super::entry::EntryType;
use crate::view::request::covers;
use crate::view::table::{join_guest, suffix};
use serde::{Deserialize, Serialize};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The manifest's format version: 2 since paths escape bytes that are not UTF-8 (a version 1
/// manifest wrote them lossily, and a backslash as itself; it is still read, its paths as
/// they are).
pub const VERSION: u32 = 2;

/// A whole manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`VERSION`].
    pub version: u32,
    /// The upper tree, relative to the manifest's directory: always `upper`.
    pub upper: String,
    /// The overlay mounts of the run.
    pub mounts: Vec<Layer>,
    /// What changed, sorted by path (a directory before its entries).
    pub changes: Vec<Change>,
}

/// One overlay mount: where the program saw it and which host tree was underneath.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// The guest path of the mount.
    pub guest: String,
    /// The host tree (canonical).
    pub lower: String,
}

/// Whether an entry was created, modified or deleted, compared with the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// No host entry was there.
    Created = 0,
    /// The host entry's content, mode, target or type differs.
    Modified,
    /// The host entry is gone in the program's view.
    Deleted,
}

impl Kind {
    /// The word used in output and in the manifest.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Created => "created",
            Kind::Modified => "modified",
            Kind::Deleted => "deleted",
        }
    }
}

/// One changed entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// Guest path.
    pub path: String,
    /// What happened to it.
    pub kind: Kind,
    /// Its type: the new one, or for a deleted entry the host's.
    #[serde(rename = "type")]
    pub ty: EntryType,
    /// Its size (a file's length, a symlink target's length, 0 otherwise).
    pub size: u64,
    /// Its permission bits, e.g. `0644`.
    pub mode: String,
    /// A symlink's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The host entry at the end of the run (modified and deleted entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostRecord>,
}

/// A host entry as it was at the end of the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRecord {
    /// Its type.
    #[serde(rename = "type")]
    pub ty: EntryType,
    /// Its size.
    pub size: u64,
    /// Its permission bits.
    pub mode: String,
    /// Its modification time, nanoseconds since 1970.
    pub mtime_ns: i64,
    /// SHA-256 of a file's bytes or a symlink's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl Manifest {
    /// Reads and checks `DIR/manifest.json`. The error is one line saying what to do.
    pub fn load(dir: &Path) -> Result<Manifest, String> {
        let path = dir.join("manifest.json");
        let not_changes = |why: &str| {
            format!(
                "{}: not a changes directory ({why}); give the DIR of a `cloister run --changes DIR`",
                dir.display()
            )
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(not_changes("no manifest.json"))
            }
            Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
        };
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a cloister manifest: {e}", path.display()))?;
        if !(1..=VERSION).contains(&manifest.version) {
            return Err(format!(
                "{}: manifest version {}, and this cloister reads version {VERSION}; use the cloister that made it",
                path.display(),
                manifest.version
            ));
        }
        manifest.check().map_err(|why| format!("{}: {why}; the manifest is damaged", path.display()))?;
        if !dir.join(&manifest.upper).is_dir() {
            return Err(not_changes("no upper directory"));
        }
        Ok(manifest)
    }

    /// Checks what a damaged or hand-edited manifest could get wrong and `apply` would then
    /// do somewhere unexpected: the upper tree's name, and every path absolute, normalised and
    /// inside one of the mounts.
    fn check(&self) -> Result<(), String> {
        if self.upper != "upper" {
            return Err(format!("\"upper\" is {:?}, not \"upper\"", self.upper));
        }
        for layer in &self.mounts {
            if !is_normal(&layer.guest) || !is_normal(&layer.lower) {
                return Err(format!(
                    "the mount {:?} -> {:?} is not absolute and normalised",
                    layer.guest, layer.lower
                ));
            }
        }
        for change in &self.changes {
            if self.decode(&change.path).is_none() {
                return Err(format!(
                    "the path {:?} is not as cloister writes paths (`\\\\` for a backslash, `\\xNN` for a byte that is not part of UTF-8, nothing else escaped)",
                    change.path
                ));
            }
            if !is_normal(&change.path) {
                return Err(format!("the path {:?} is not absolute and normalised", change.path));
            }
            if self.lower_path(&change.path).is_none() {
                return Err(format!("the path {:?} lies in none of the mounts", change.path));
            }
            if super::entry::parse_mode(&change.mode).is_none() {
                return Err(format!("the mode {:?} of {:?} is not octal", change.mode, change.path));
            }
        }
        Ok(())
    }

    /// The host path a guest path applies to: the lower tree of the deepest mount above it.
    pub fn lower_path(&self, guest: &str) -> Option<PathBuf> {
        let layer = self
            .mounts
            .iter()
            .filter(|l| covers(&self.encode(&l.guest), guest))
            .max_by_key(|l| l.guest.len())?;
        let rest = self.decode(suffix(&self.encode(&layer.guest), guest))?;
        Some(join_guest(Path::new(&layer.lower), OsStr::from_bytes(&rest)))
    }

    /// Where the new content of a guest path is kept, under `dir`.
    pub fn upper_path(&self, dir: &Path, guest: &str) -> PathBuf {
        let rest = self.decode(guest.trim_start_matches('/')).unwrap_or_default();
        join_guest(&dir.join(&self.upper), OsStr::from_bytes(&rest))
    }

    /// A path's bytes from the manifest's text: [`unescape`]d in a manifest of this version,
    /// only as written by [`escape`] (so one path has one text, and no escape stands for a byte
    /// the check of its components must see); as they are in a version 1 manifest.
    fn decode(&self, text: &str) -> Option<Vec<u8>> {
        if self.version < 2 {
            return Some(text.as_bytes().to_vec());
        }
        unescape(text).filter(|bytes| escape(bytes) == text)
    }

    /// A mount's guest path as this manifest's paths write it.
    fn encode(&self, guest: &str) -> String {
        if self.version < 2 {
            guest.to_owned()
        } else {
            escape(guest.as_bytes())
        }
    }

    /// How many entries were created, modified and deleted (indexed by [`Kind`]).
    pub fn counts(changes: &[Change]) -> [usize; 3] {
        let count = |kind| changes.iter().filter(|c| c.kind == kind).count();
        [count(Kind::Created), count(Kind::Modified), count(Kind::Deleted)]
    }
}

/// A path's bytes as the manifest writes them: UTF-8 as it is, a backslash doubled, and any
/// byte that is not part of UTF-8 as `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if !text.contains('\\') {
            return text.to_owned();
        }
    }
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The bytes [`escape`] wrote; `None` for a backslash it could not have written. It escapes
/// only bytes that are not part of UTF-8, all of them 0x80 or above: a `\\x2f` or `\\x00` in a
/// damaged or hand-edited manifest would smuggle a `/` or a NUL past the check of the path's
/// components, and is refused.
pub fn unescape(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match rest {
            [b'\\', tail @ ..] => {
                out.push(b'\\');
                rest = tail;
            }
            [b'x', hi, lo, tail @ ..] => {
                let hex = |d: u8| char::from(d).to_digit(16);
                let byte = (hex(*hi)? * 16 + hex(*lo)?) as u8;
                if byte < 0x80 {
                    return None;
                }
                out.push(byte);
                rest = tail;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Whether `path` is absolute with no empty, `.` or `..` component (and not ending in `/`).
fn is_normal(path: &str) -> bool {
    path == "/" || (path.starts_with('/') && path[1..].split('/').all(|c| !matches!(c, "" | "." | "..")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(changes: Vec<Change>) -> Manifest {
        let mounts = vec![
            Layer { guest: "/".into(), lower: "/".into() },
            Layer { guest: "/work".into(), lower: "/home/u/src".into() },
        ];
        Manifest { version: VERSION, upper: "upper".into(), mounts, changes }
    }

    fn change(path: &str) -> Change {
        Change {
            path: path.into(),
            kind: Kind::Created,
            ty: EntryType::File,
            size: 1,
            mode: "0644".into(),
            target: None,
            host: None,
        }
    }

    #[test]
    fn paths_map_through_the_deepest_mount() {
        let m = manifest(vec![]);
        assert_eq!(m.lower_path("/etc/hosts"), Some(PathBuf::from("/etc/hosts")));
        assert_eq!(m.lower_path("/work"), Some(PathBuf::from("/home/u/src")));
        assert_eq!(m.lower_path("/work/a/b"), Some(PathBuf::from("/home/u/src/a/b")));
        assert_eq!(m.lower_path("/workshop"), Some(PathBuf::from("/workshop")));
        assert_eq!(m.upper_path(Path::new("/c"), "/work/a"), PathBuf::from("/c/upper/work/a"));
    }

    #[test]
    fn paths_that_could_escape_are_refused() {
        for bad in ["/a/../etc", "relative", "/a//b", "/a/", "/./a"] {
            let err = manifest(vec![change(bad)]).check().unwrap_err();
            assert!(err.contains("is not absolute and normalised"), "{bad}: {err}");
        }
        manifest(vec![change("/a/b")]).check().unwrap();
        let mut m = manifest(vec![]);
        m.upper = "../x".into();
        assert!(m.check().is_err());
    }

    #[test]
    fn names_that_are_not_utf8_round_trip() {
        for name in [&b"/a/caf\xe9"[..], b"/back\\slash", b"/\xff\xfe/\xc3", "/ünï".as_bytes(), b"/x"] {
            let text = escape(name);
            assert_eq!(unescape(&text).as_deref(), Some(name), "{text}");
        }
        assert_eq!(escape(b"/a/caf\xe9"), "/a/caf\\xe9");
        assert_eq!(escape(b"/a\\b"), "/a\\\\b");
        for bad in
            ["/a\\", "/a\\q", "/a\\x4", "/a\\xzz", "/a\\x2f..\\x2f..\\x2fetc", "/a\\x00", "/\\x2e\\x2e"]
        {
            assert_eq!(unescape(bad), None, "{bad}");
        }
        let m = manifest(vec![change("/work/caf\\xe9")]);
        m.check().unwrap();
        assert_eq!(m.lower_path("/work/caf\\xe9").unwrap().as_os_str().as_bytes(), b"/home/u/src/caf\xe9");
        assert_eq!(m.upper_path(Path::new("/c"), "/caf\\xe9").as_os_str().as_bytes(), b"/c/upper/caf\xe9");
        assert!(manifest(vec![change("/a\\q")]).check().is_err());
        let smuggled = manifest(vec![change("/work/a\\x2f..\\x2f..\\x2fetc")]).check().unwrap_err();
        assert!(smuggled.contains("is not as cloister writes paths"), "{smuggled}");
        // One path, one text: an escape of a character UTF-8 can say is refused too.
        assert!(manifest(vec![change("/caf\\xc3\\xa9")]).check().is_err());
        assert!(manifest(vec![change("/caf\\xE9")]).check().is_err());
        // A version 1 manifest's paths are read as they are, backslashes and all.
        let mut old = manifest(vec![change("/work/a\\b")]);
        old.version = 1;
        old.check().unwrap();
        assert_eq!(old.lower_path("/work/a\\b"), Some(PathBuf::from("/home/u/src/a\\b")));
    }

    #[test]
    fn json_round_trips_and_leaves_absent_fields_out() {
        let m = manifest(vec![change("/a")]);
        let text = serde_json::to_string(&m).unwrap();
        assert!(!text.contains("target") && !text.contains("host"), "{text}");
        assert!(text.contains(r#""kind":"created","type":"file""#), "{text}");
        assert_eq!(serde_json::from_str::<Manifest>(&text).unwrap(), m);
    }
}
