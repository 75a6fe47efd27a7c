//! Guest paths as byte strings, handled lexically: splitting, joining, parents.
//!
//! A *canonical* guest path is absolute, has no `.`, `..`, empty or symlink components and no
//! trailing `/` (the root is `/`). Only the walk ([`super::walk`]) makes canonical paths,
//! because only it knows where the symlinks are.

use alloc::vec::Vec;

/// The components of `path`, without empty and `.` ones (`..` is kept: its meaning depends
/// on symlinks).
pub fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".")
}

/// `dir` (canonical) joined with one component.
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(dir.len() + 1 + name.len());
    out.extend_from_slice(dir);
    if !out.ends_with(b"/") {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

/// The parent of a canonical path (the root is its own parent).
pub fn parent(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) | None => b"/",
        Some(i) => &path[..i],
    }
}

/// The last component of a canonical path (empty for the root).
pub fn file_name(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Whether canonical `path` is `prefix` or lies below it.
pub fn is_within(path: &[u8], prefix: &[u8]) -> bool {
    prefix == b"/"
        || path == prefix
        || (path.len() > prefix.len() && path.starts_with(prefix) && path[prefix.len()] == b'/')
}

/// `root` (a host directory, without a trailing `/`; the host's root is empty) joined with a
/// guest suffix (empty or starting with `/`), NUL-terminated for a host call.
pub fn host_cpath(root: &[u8], suffix: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(root.len() + suffix.len() + 2);
    out.extend_from_slice(root);
    out.extend_from_slice(suffix);
    if out.is_empty() {
        out.push(b'/');
    }
    out.push(0);
    out
}

/// `path` without its NUL.
pub fn strip_nul(path: &[u8]) -> &[u8] {
    path.strip_suffix(&[0]).unwrap_or(path)
}

/// Collapses `.` and `..` lexically (for trees the host resolves, like `/proc`), from the root.
pub fn lexical(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in components(path) {
        if c == b".." {
            parts.pop();
        } else {
            parts.push(c);
        }
    }
    let mut out = Vec::with_capacity(path.len() + 1);
    for c in parts {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_and_parents() {
        assert_eq!(join(b"/", b"a"), b"/a");
        assert_eq!(join(b"/a", b"b"), b"/a/b");
        assert_eq!(parent(b"/a/b"), b"/a");
        assert_eq!(parent(b"/a"), b"/");
        assert_eq!(parent(b"/"), b"/");
        assert_eq!(file_name(b"/a/b"), b"b");
    }

    #[test]
    fn within_respects_component_boundaries() {
        assert!(is_within(b"/tmp/x", b"/tmp"));
        assert!(is_within(b"/tmp", b"/tmp"));
        assert!(!is_within(b"/tmpx", b"/tmp"));
        assert!(is_within(b"/anything", b"/"));
    }

    #[test]
    fn host_paths_never_double_slash() {
        assert_eq!(host_cpath(b"", b"/etc"), b"/etc\0");
        assert_eq!(host_cpath(b"", b""), b"/\0");
        assert_eq!(host_cpath(b"/s/upper", b""), b"/s/upper\0");
        assert_eq!(host_cpath(b"/s/upper", b"/a"), b"/s/upper/a\0");
    }

    #[test]
    fn lexical_clamps_at_the_root() {
        assert_eq!(lexical(b"/proc/self/../../etc"), b"/etc");
        assert_eq!(lexical(b"/../.."), b"/");
        assert_eq!(lexical(b"//a/./b/"), b"/a/b");
    }
}
