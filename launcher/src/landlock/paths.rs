//! Which host path gets which rights: the floor's trees merged into one tree of path
//! components, then turned into a list of rules, with hidden paths carved out (see the
//! module overview in [`super`]).

use super::ruleset::PrepareError;
use ::landlock::{make_bitflags, Access, AccessFs, BitFlags, ABI};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

/// The Landlock ABI whose filesystem rights the floor asks for: the newest it is tested on.
pub(super) const TARGET: ABI = ABI::V7;

/// What the filesystem floor allows, in host paths.
#[derive(Clone, Debug, Default)]
pub struct FsFloor {
    /// Trees the program may read and execute (e.g. "/").
    pub read: Vec<PathBuf>,
    /// Trees the program may also write, create in and delete from (the private state dir, rw
    /// mounts).
    pub write: Vec<PathBuf>,
    /// Paths that must stay unreadable although they lie inside a `read` (or `write`) tree (the
    /// user's secrets).
    pub hidden: Vec<PathBuf>,
}

impl FsFloor {
    /// Whether this floor confines reading at all: it does when it names trees to read or paths
    /// to hide. One that names neither confines writes only, and leaves reads, listings and
    /// executions to other layers.
    pub fn confines_reads(&self) -> bool {
        !self.read.is_empty() || !self.hidden.is_empty()
    }
}

/// The character devices programs write to whatever the policy says; `/dev/pts` is where
/// `/dev/ptmx` hands out terminals.
const DEVICES: [&str; 6] = ["/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/ptmx", "/dev/pts"];

fn read_access() -> BitFlags<AccessFs> {
    AccessFs::from_read(TARGET)
}

fn write_access() -> BitFlags<AccessFs> {
    AccessFs::from_all(TARGET)
}

/// Devices are read and written, truncated by `>` redirections (`O_TRUNC`), and terminals need
/// their `ioctl`s; nothing may be created there.
const DEVICE_ACCESS: BitFlags<AccessFs> =
    make_bitflags!(AccessFs::{ReadFile | WriteFile | Truncate | IoctlDev | ReadDir});

/// One rule: `access` on `path`, and beneath it when it is a directory.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct PlannedRule {
    /// A canonical host path.
    pub path: PathBuf,
    /// The rights; the directory-only ones are dropped for a file when the rule is added.
    pub access: BitFlags<AccessFs>,
}

/// A path component in the merged tree.
#[derive(Default)]
struct Node {
    /// Rights granted from here down by a `read` or `write` tree named here.
    grant: BitFlags<AccessFs>,
    /// A `hidden` path.
    hidden: bool,
    children: BTreeMap<OsString, Node>,
}

impl Node {
    fn at(&mut self, path: &Path) -> &mut Node {
        path.components()
            .filter_map(|c| match c {
                Component::Normal(name) => Some(name),
                _ => None,
            })
            .fold(self, |node, name| node.children.entry(name.to_owned()).or_default())
    }

    fn hides_below(&self) -> bool {
        self.children.values().any(|c| c.hidden || c.hides_below())
    }
}

/// The rules for `floor`, in the order they are added (devices last).
pub(super) fn plan(floor: &FsFloor) -> Result<Vec<PlannedRule>, PrepareError> {
    let mut root = Node::default();
    for (trees, access) in [(&floor.read, read_access()), (&floor.write, write_access())] {
        for tree in trees {
            let path =
                tree.canonicalize().map_err(|source| PrepareError::Path { path: tree.clone(), source })?;
            root.at(&path).grant |= access;
        }
    }
    for hidden in &floor.hidden {
        match hidden.canonicalize() {
            Ok(path) => root.at(&path).hidden = true,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            // A path that cannot be resolved cannot be carved out: fail closed.
            Err(source) => return Err(PrepareError::Path { path: hidden.clone(), source }),
        }
    }
    let mut rules = Vec::new();
    emit(&root, Path::new("/"), BitFlags::EMPTY, false, &mut rules)?;
    // Not every host has every device (a container without a terminal has no /dev/tty).
    for device in DEVICES {
        if let Ok(path) = Path::new(device).canonicalize() {
            rules.push(PlannedRule { path, access: DEVICE_ACCESS });
        }
    }
    Ok(rules)
}

/// Emits the rules for `node` at `path`, which an ancestor grants `inherited`; `covered` when
/// an ancestor's rule already grants that beneath it.
fn emit(
    node: &Node,
    path: &Path,
    inherited: BitFlags<AccessFs>,
    covered: bool,
    out: &mut Vec<PlannedRule>,
) -> Result<(), PrepareError> {
    if node.hidden {
        // Nothing granted above reaches a hidden path; only trees named beneath it do.
        return emit_children(node, path, BitFlags::EMPTY, false, out);
    }
    let access = inherited | node.grant;
    if access.is_empty() {
        return emit_children(node, path, access, false, out);
    }
    if node.hides_below() {
        return carve(node, path, access, out);
    }
    if !covered || !inherited.contains(node.grant) {
        out.push(PlannedRule { path: path.to_owned(), access });
    }
    emit_children(node, path, access, true, out)
}

fn emit_children(
    node: &Node,
    path: &Path,
    inherited: BitFlags<AccessFs>,
    covered: bool,
    out: &mut Vec<PlannedRule>,
) -> Result<(), PrepareError> {
    node.children.iter().try_for_each(|(name, child)| emit(child, &path.join(name), inherited, covered, out))
}

/// `path` holds a hidden path somewhere beneath: instead of one rule for the whole directory,
/// a rule for each of its entries, except the ones on the way to a hidden path, which the
/// tree handles.
fn carve(
    node: &Node,
    path: &Path,
    access: BitFlags<AccessFs>,
    out: &mut Vec<PlannedRule>,
) -> Result<(), PrepareError> {
    // Listing reaches beneath too (hidden directories included), but without it `ls` fails
    // in every directory on the way to a secret, the home directory first.
    let list = access & AccessFs::ReadDir;
    if !list.is_empty() {
        out.push(PlannedRule { path: path.to_owned(), access: list });
    }
    let listing_error = |source| PrepareError::List { dir: path.to_owned(), source };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path).map_err(listing_error)? {
        let entry = entry.map_err(listing_error)?;
        let name = entry.file_name();
        if node.children.contains_key(&name) {
            continue;
        }
        match entry.file_type() {
            // A link grants nothing: what it points to is governed where it really lies.
            Ok(kind) if kind.is_symlink() => continue,
            Ok(_) => names.push(name),
            // Removed on the host meanwhile.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(source) => return Err(listing_error(source)),
        }
    }
    names.sort();
    out.extend(names.into_iter().map(|name| PlannedRule { path: path.join(name), access }));
    emit_children(node, path, access, false, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A fresh directory under the system's temporary directory, removed when dropped.
    struct TempTree(PathBuf);

    impl TempTree {
        fn new(tag: &str, files: &[&str]) -> TempTree {
            let dir = std::env::temp_dir().join(format!("cloister-plan-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            for file in files {
                let path = dir.join(file);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                if file.ends_with('/') {
                    fs::create_dir_all(&path).unwrap();
                } else {
                    fs::write(&path, file).unwrap();
                }
            }
            TempTree(dir.canonicalize().unwrap())
        }

        fn path(&self, rel: &str) -> PathBuf {
            if rel.is_empty() {
                self.0.clone()
            } else {
                self.0.join(rel)
            }
        }

        /// The plan's rules inside this tree, as (relative path, access).
        fn rules(&self, floor: &FsFloor) -> Vec<(String, BitFlags<AccessFs>)> {
            plan(floor)
                .unwrap()
                .into_iter()
                .filter_map(|r| {
                    let rel = r.path.strip_prefix(&self.0).ok()?;
                    Some((rel.to_string_lossy().into_owned(), r.access))
                })
                .collect()
        }
    }

    impl Drop for TempTree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn list() -> BitFlags<AccessFs> {
        AccessFs::ReadDir.into()
    }

    #[test]
    fn hidden_path_that_does_not_exist_needs_nothing() {
        let t = TempTree::new("missing", &["a/file", "b/"]);
        let floor =
            FsFloor { read: vec![t.path("")], hidden: vec![t.path("a/nothing")], ..Default::default() };
        assert_eq!(t.rules(&floor), vec![(String::new(), read_access())]);
    }

    #[test]
    fn hidden_paths_in_one_tree_compose() {
        let t = TempTree::new("compose", &["a/s1/key", "a/x", "a/b/s2", "a/b/y", "c/s3/", "c/z", "d/w"]);
        let floor = FsFloor {
            read: vec![t.path("")],
            hidden: vec![t.path("a/s1"), t.path("a/b/s2"), t.path("c/s3")],
            ..Default::default()
        };
        let r = read_access();
        let expected: Vec<(String, BitFlags<AccessFs>)> = [
            ("", list()),
            ("d", r),
            ("a", list()),
            ("a/x", r),
            ("a/b", list()),
            ("a/b/y", r),
            ("c", list()),
            ("c/z", r),
        ]
        .into_iter()
        .map(|(p, a)| (p.to_string(), a))
        .collect();
        assert_eq!(t.rules(&floor), expected);
    }

    #[test]
    fn links_beside_a_hidden_path_get_no_rule() {
        let t = TempTree::new("links", &["secret/key", "plain"]);
        std::os::unix::fs::symlink(t.path("secret"), t.path("link")).unwrap();
        let floor = FsFloor { read: vec![t.path("")], hidden: vec![t.path("secret")], ..Default::default() };
        assert_eq!(t.rules(&floor), vec![(String::new(), list()), ("plain".to_string(), read_access())]);
    }

    #[test]
    fn write_trees_are_carved_and_trees_named_beneath_a_hidden_path_are_kept() {
        let t = TempTree::new("nested", &["w/secret/open/file", "w/secret/other", "w/file"]);
        let floor = FsFloor {
            read: vec![t.path("w/secret/open")],
            write: vec![t.path("w")],
            hidden: vec![t.path("w/secret")],
        };
        let expected = vec![
            ("w".to_string(), list()),
            ("w/file".to_string(), write_access()),
            ("w/secret/open".to_string(), read_access()),
        ];
        assert_eq!(t.rules(&floor), expected);
    }

    #[test]
    fn a_write_tree_inside_a_read_tree_gets_its_own_rule_once() {
        let t = TempTree::new("rw", &["out/", "out/deeper/", "in"]);
        let floor = FsFloor {
            read: vec![t.path("")],
            write: vec![t.path("out"), t.path("out/deeper")],
            ..Default::default()
        };
        let expected = vec![(String::new(), read_access()), ("out".to_string(), write_access())];
        assert_eq!(t.rules(&floor), expected);
    }

    #[test]
    fn a_missing_tree_is_an_error_naming_it() {
        let floor = FsFloor { read: vec![PathBuf::from("/nonexistent/cloister")], ..Default::default() };
        match plan(&floor) {
            Err(PrepareError::Path { path, .. }) => assert_eq!(path, Path::new("/nonexistent/cloister")),
            other => panic!("{other:?}"),
        }
    }
}
