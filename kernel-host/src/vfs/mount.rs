//! The view's mount table: which layers serve a guest path.

use super::path::is_within;
use crate::config::{Mount, MountKind};
use alloc::string::String;
use alloc::vec::Vec;

/// The kernel's own filesystems: where the view shows the host's tree unchanged, the host
/// resolves paths in them itself (their magic links, `/proc/self` among them, mean something
/// only to the host) and writes reach them directly (a device is not copied up).
const KERNEL_TREES: [&[u8]; 3] = [b"/proc", b"/sys", b"/dev"];

/// How a mount's paths reach the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layers {
    /// One host tree; `writable` unless read-only or hidden.
    Direct {
        /// Host directory (or file), no trailing `/`; the host's root is empty.
        root: Vec<u8>,
        /// Whether the program may change it.
        writable: bool,
        /// Whether it is the sandbox's own (a private tmpfs), not a host tree.
        private: bool,
    },
    /// A private upper layer over a read-only lower tree.
    Overlay {
        /// The lower tree's host directory.
        lower: Vec<u8>,
        /// The upper layer's host directory.
        upper: Vec<u8>,
    },
    /// A kernel filesystem the host resolves: the guest path is the host path.
    Passthrough,
}

/// One mount, in the kernel's form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VMount {
    /// Canonical guest path.
    pub guest: Vec<u8>,
    /// Its layers.
    pub layers: Layers,
}

impl VMount {
    /// The host directories this mount shows: the ones a host path is mapped back from.
    fn host_roots(&self) -> impl Iterator<Item = &[u8]> {
        let (a, b): (Option<&[u8]>, Option<&[u8]>) = match &self.layers {
            Layers::Direct { root, .. } => (Some(root), None),
            Layers::Overlay { lower, upper } => (Some(upper), Some(lower)),
            Layers::Passthrough => (Some(&self.guest), None),
        };
        a.into_iter().chain(b)
    }
}

/// The mount table, longest guest path first so that the first match is the right one.
#[derive(Clone, Debug, Default)]
pub struct MountTable {
    mounts: Vec<VMount>,
}

/// A host directory as the layers keep it: no trailing `/`. Takes the string over: every exec
/// builds the table, and copying each path again would cost it pages.
fn host_root(path: String) -> Vec<u8> {
    let mut root = path.into_bytes();
    while root.last() == Some(&b'/') {
        root.pop();
    }
    root
}

/// A guest path in canonical form, taken over when it is in that form already (the launcher
/// writes them so).
fn canonical(guest: String) -> Vec<u8> {
    let bytes = guest.as_bytes();
    let plain = bytes == b"/"
        || (bytes.first() == Some(&b'/')
            && bytes.last() != Some(&b'/')
            && bytes[1..].split(|&b| b == b'/').all(|c| !c.is_empty() && c != b"." && c != b".."));
    if plain {
        guest.into_bytes()
    } else {
        super::path::lexical(bytes)
    }
}

impl MountTable {
    /// The table for a configuration's mounts; empty when there is no view.
    pub fn new(config: &[Mount]) -> Self {
        Self::from_mounts(config.to_vec())
    }

    /// [`MountTable::new`], taking the configuration's mounts over.
    pub fn from_mounts(config: Vec<Mount>) -> Self {
        let mut mounts: Vec<VMount> = config
            .into_iter()
            .map(|m| VMount {
                guest: canonical(m.guest),
                layers: match m.kind {
                    MountKind::ReadOnly { host } | MountKind::Hidden { host } => {
                        Layers::Direct { root: host_root(host), writable: false, private: false }
                    }
                    MountKind::ReadWrite { host } => {
                        Layers::Direct { root: host_root(host), writable: true, private: false }
                    }
                    MountKind::Tmpfs { host } => {
                        Layers::Direct { root: host_root(host), writable: true, private: true }
                    }
                    MountKind::Overlay { lower, upper } => {
                        Layers::Overlay { lower: host_root(lower), upper: host_root(upper) }
                    }
                },
            })
            .collect();
        let mut table = MountTable { mounts: Vec::new() };
        table.set(core::mem::take(&mut mounts));
        if !table.mounts.is_empty() {
            for tree in KERNEL_TREES {
                let identical = match table.find(tree) {
                    Some((m, suffix)) => match &m.layers {
                        Layers::Direct { root, .. } => [root.as_slice(), suffix].concat() == tree,
                        Layers::Overlay { lower, .. } => [lower.as_slice(), suffix].concat() == tree,
                        Layers::Passthrough => false,
                    },
                    None => false,
                };
                if !identical {
                    continue;
                }
                // A mount of the tree itself (`rw /proc`) that shows the host's is the same thing.
                match table.mounts.iter_mut().find(|m| m.guest == tree) {
                    Some(m) if matches!(m.layers, Layers::Direct { private: false, .. }) => {
                        m.layers = Layers::Passthrough;
                    }
                    Some(_) => {}
                    None => mounts.push(VMount { guest: tree.to_vec(), layers: Layers::Passthrough }),
                }
            }
            let mut all = core::mem::take(&mut table.mounts);
            all.extend(mounts);
            table.set(all);
        }
        table
    }

    fn set(&mut self, mut mounts: Vec<VMount>) {
        // Longest guest path first, and equal lengths in the configuration's order: a stable
        // insertion sort. The library's stable sort keeps 4 KiB of scratch on the stack for a
        // table this size, a page that every exec's runtime would fault in for nothing.
        for i in 1..mounts.len() {
            let mut j = i;
            while j > 0 && mounts[j - 1].guest.len() < mounts[j].guest.len() {
                mounts.swap(j - 1, j);
                j -= 1;
            }
        }
        self.mounts = mounts;
    }

    /// Whether there is a view at all.
    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty()
    }

    /// The mount serving canonical guest path `guest`, and the rest of the path below it
    /// (empty, or starting with `/`).
    pub fn find<'p>(&self, guest: &'p [u8]) -> Option<(&VMount, &'p [u8])> {
        self.index_of(guest).map(|(i, s)| (&self.mounts[i], s))
    }

    /// Like [`MountTable::find`], with the mount's index.
    pub fn index_of<'p>(&self, guest: &'p [u8]) -> Option<(usize, &'p [u8])> {
        let i = self.mounts.iter().position(|m| is_within(guest, &m.guest))?;
        let m = &self.mounts[i];
        let suffix = if m.guest == b"/" { guest } else { &guest[m.guest.len()..] };
        Some((i, if suffix == b"/" { &[] } else { suffix }))
    }

    /// The host directories that belong to the sandbox: overlays' upper layers, then private
    /// trees. The upper layers come first because they always exist, where a private tree may
    /// not yet (a hidden path missing at the start): a caller that looks for one that exists
    /// finds it at once.
    pub fn private_roots(&self) -> impl Iterator<Item = &[u8]> {
        let uppers = self.mounts.iter().filter_map(|m| match &m.layers {
            Layers::Overlay { upper, .. } => Some(upper.as_slice()),
            _ => None,
        });
        let trees = self.mounts.iter().filter_map(|m| match &m.layers {
            Layers::Direct { root, private: true, .. } => Some(root.as_slice()),
            _ => None,
        });
        uppers.chain(trees)
    }

    /// Every mount, longest guest path first.
    pub fn iter(&self) -> impl Iterator<Item = &VMount> {
        self.mounts.iter()
    }

    /// The mount at `index`.
    pub fn get(&self, index: usize) -> &VMount {
        &self.mounts[index]
    }

    /// The names of mounts directly inside canonical directory `dir`: a listing of `dir`
    /// shows them even where the tree underneath has no such entry.
    pub fn children_of(&self, dir: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
        let dir = dir.to_vec();
        self.mounts
            .iter()
            .filter(move |m| m.guest != b"/" && super::path::parent(&m.guest) == dir.as_slice())
            .map(|m| super::path::file_name(&m.guest))
    }

    /// The guest path of a host path (canonical, as the host's `/proc/self/fd` shows it), if
    /// the view shows that file: the mount whose host directory matches most of the path,
    /// provided no other mount covers the resulting guest path.
    pub fn guest_of_host(&self, host: &[u8]) -> Option<Vec<u8>> {
        // What `/proc/self/fd` says of a pipe or a socket (`pipe:[7]`) is no path.
        if host.first() != Some(&b'/') {
            return None;
        }
        let mut best: Option<(usize, Vec<u8>)> = None;
        for m in &self.mounts {
            for root in m.host_roots() {
                let rest = if root.is_empty() {
                    host
                } else if is_within(host, root) {
                    &host[root.len()..]
                } else {
                    continue;
                };
                if best.as_ref().is_some_and(|(len, _)| *len > root.len()) {
                    continue;
                }
                let mut guest = if m.guest == b"/" { Vec::new() } else { m.guest.clone() };
                guest.extend_from_slice(rest);
                if guest.is_empty() {
                    guest.push(b'/');
                }
                if self.find(&guest).is_some_and(|(owner, _)| owner.guest == m.guest) {
                    best = Some((root.len(), guest));
                }
            }
        }
        best.map(|(_, g)| g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn mount(guest: &str, kind: MountKind) -> Mount {
        Mount { guest: String::from(guest), kind }
    }

    fn table() -> MountTable {
        MountTable::new(&[
            mount("/", MountKind::Overlay { lower: "/".into(), upper: "/s/upper".into() }),
            mount("/tmp", MountKind::Tmpfs { host: "/s/tmp/0".into() }),
            mount("/work", MountKind::ReadWrite { host: "/home/u/proj".into() }),
        ])
    }

    #[test]
    fn longest_guest_prefix_wins() {
        let t = table();
        let (m, rest) = t.find(b"/tmp/a").unwrap();
        assert_eq!((m.guest.as_slice(), rest), (&b"/tmp"[..], &b"/a"[..]));
        let (m, rest) = t.find(b"/tmpfile").unwrap();
        assert_eq!((m.guest.as_slice(), rest), (&b"/"[..], &b"/tmpfile"[..]));
        assert_eq!(t.find(b"/tmp").unwrap().1, b"");
        assert_eq!(t.find(b"/").unwrap().1, b"");
    }

    #[test]
    fn guest_paths_are_made_canonical_and_host_roots_lose_trailing_slashes() {
        let t = MountTable::new(&[
            mount("/", MountKind::ReadOnly { host: "/".into() }),
            mount("//a/./b/../c/", MountKind::ReadOnly { host: "/srv/c//".into() }),
            mount("/d/..x", MountKind::Tmpfs { host: "/s/t".into() }),
        ]);
        let (m, rest) = t.find(b"/a/c/f").unwrap();
        assert_eq!((m.guest.as_slice(), rest), (&b"/a/c"[..], &b"/f"[..]));
        assert!(matches!(&m.layers, Layers::Direct { root, .. } if root == b"/srv/c"));
        assert_eq!(t.find(b"/d/..x/y").unwrap().0.guest, b"/d/..x");
        assert!(matches!(&t.find(b"/etc").unwrap().0.layers, Layers::Direct { root, .. } if root.is_empty()));
    }

    #[test]
    fn kernel_trees_pass_through_when_shown_unchanged() {
        let t = table();
        assert_eq!(t.find(b"/proc/self/fd").unwrap().0.layers, Layers::Passthrough);
        assert_eq!(t.find(b"/dev/null").unwrap().0.layers, Layers::Passthrough);
        let shown = MountTable::new(&[
            mount("/", MountKind::Overlay { lower: "/".into(), upper: "/s/upper".into() }),
            mount("/proc", MountKind::ReadWrite { host: "/proc".into() }),
            mount("/dev/shm", MountKind::Tmpfs { host: "/s/tmp/1".into() }),
        ]);
        assert_eq!(shown.find(b"/proc/self/fd/3").unwrap().0.layers, Layers::Passthrough);
        assert!(matches!(shown.find(b"/dev/shm/x").unwrap().0.layers, Layers::Direct { private: true, .. }));
        let moved = MountTable::new(&[mount("/", MountKind::ReadOnly { host: "/srv/root".into() })]);
        assert!(matches!(moved.find(b"/proc/1").unwrap().0.layers, Layers::Direct { .. }));
    }

    #[test]
    fn host_paths_map_back_through_the_most_specific_layer() {
        let t = table();
        assert_eq!(t.guest_of_host(b"/s/upper/etc/x").as_deref(), Some(&b"/etc/x"[..]));
        assert_eq!(t.guest_of_host(b"/s/upper").as_deref(), Some(&b"/"[..]));
        assert_eq!(t.guest_of_host(b"/etc/passwd").as_deref(), Some(&b"/etc/passwd"[..]));
        assert_eq!(t.guest_of_host(b"/s/tmp/0/f").as_deref(), Some(&b"/tmp/f"[..]));
        assert_eq!(t.guest_of_host(b"/home/u/proj/src").as_deref(), Some(&b"/work/src"[..]));
        // The host's /tmp is not what the program sees at /tmp.
        assert_eq!(t.guest_of_host(b"/tmp/secret"), None);
        assert_eq!(t.guest_of_host(b"pipe:[7]"), None);
    }

    #[test]
    fn mounts_appear_in_their_parent_listing() {
        let t = table();
        let mut names: Vec<&[u8]> = t.children_of(b"/").collect();
        names.sort();
        assert_eq!(names, [&b"dev"[..], b"proc", b"sys", b"tmp", b"work"]);
    }
}
