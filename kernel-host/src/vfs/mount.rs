//! The view's mount table: which layers serve a guest path.

use super::path::is_within;
use crate::config::{Mount, MountKind};
use alloc::borrow::Cow;
use alloc::vec::Vec;

/// The kernel's own filesystems: where the view shows the host's tree unchanged, the host
/// resolves paths in them itself (their magic links, `/proc/self` among them, mean something
/// only to the host) and writes reach them directly (a device is not copied up).
const KERNEL_TREES: [&[u8]; 3] = [b"/proc", b"/sys", b"/dev"];

/// How a mount's paths reach the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layers<'a> {
    /// One host tree; `writable` unless read-only or hidden.
    Direct {
        /// Host directory (or file), no trailing `/`; the host's root is empty.
        root: &'a [u8],
        /// Whether the program may change it.
        writable: bool,
        /// Whether it is the sandbox's own (a private tmpfs), not a host tree.
        private: bool,
    },
    /// A private upper layer over a read-only lower tree.
    Overlay {
        /// The lower tree's host directory.
        lower: &'a [u8],
        /// The upper layer's host directory.
        upper: &'a [u8],
    },
    /// A kernel filesystem the host resolves: the guest path is the host path.
    Passthrough,
}

/// One mount, read from the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VMount<'a> {
    /// Canonical guest path.
    pub guest: &'a [u8],
    /// Its layers.
    pub layers: Layers<'a>,
}

impl<'a> VMount<'a> {
    /// The host directories this mount shows: the ones a host path is mapped back from.
    fn host_roots(self) -> impl Iterator<Item = &'a [u8]> {
        let (a, b): (Option<&[u8]>, Option<&[u8]>) = match self.layers {
            Layers::Direct { root, .. } => (Some(root), None),
            Layers::Overlay { lower, upper } => (Some(upper), Some(lower)),
            Layers::Passthrough => (Some(self.guest), None),
        };
        a.into_iter().chain(b)
    }
}

/// The mount table, longest guest path first so that the first match is the right one.
///
/// It is kept packed in one block of bytes ([`MountTable::packed`]): the launcher writes the
/// block into the sandbox's shared memory once, and every image's runtime reads its mounts
/// where they lie ([`MountTable::from_packed`]) instead of decoding a table of dozens of
/// mounts from its configuration and copying it into its own heap at every exec.
///
/// The block is a count, then one record per mount, then the bytes of the paths:
///
/// ```text
/// u32 count
/// count × { u32 guest_at, u32 guest_len, u32 kind, u32 a_at, u32 a_len, u32 b_at, u32 b_len }
/// path bytes
/// ```
///
/// all little-endian; `kind` is [`PASSTHROUGH`], [`OVERLAY`] (`a` lower, `b` upper) or
/// [`DIRECT`] with [`WRITABLE`] and [`PRIVATE`] (`a` the root).
#[derive(Clone, Debug, Default)]
pub struct MountTable {
    packed: Cow<'static, [u8]>,
    count: usize,
}

/// Most bytes a packed table may have (thousands of mounts): the launcher refuses a view
/// whose table is larger, and a runtime a configuration that names one.
pub const MAX_PACKED: usize = 512 * 1024;

/// `kind` of a packed [`Layers::Passthrough`].
const PASSTHROUGH: u32 = 0;
/// `kind` of a packed [`Layers::Direct`]; [`WRITABLE`] and [`PRIVATE`] are its flags.
const DIRECT: u32 = 1;
/// `kind` of a packed [`Layers::Overlay`].
const OVERLAY: u32 = 2;
/// Flag of [`DIRECT`]: the program may change the tree.
const WRITABLE: u32 = 1 << 8;
/// Flag of [`DIRECT`]: the tree is the sandbox's own.
const PRIVATE: u32 = 1 << 9;
/// Bytes of one packed record: seven words.
const RECORD: usize = 7 * 4;

/// A mount while the table is built, owning its paths.
struct Entry {
    guest: Vec<u8>,
    kind: u32,
    a: Vec<u8>,
    b: Vec<u8>,
}

/// A host directory as the layers keep it: no trailing `/`.
fn host_root(path: &str) -> Vec<u8> {
    let mut root = path.as_bytes().to_vec();
    while root.last() == Some(&b'/') {
        root.pop();
    }
    root
}

/// A guest path in canonical form.
fn canonical(guest: &str) -> Vec<u8> {
    let bytes = guest.as_bytes();
    let plain = bytes == b"/"
        || (bytes.first() == Some(&b'/')
            && bytes.last() != Some(&b'/')
            && bytes[1..].split(|&b| b == b'/').all(|c| !c.is_empty() && c != b"." && c != b".."));
    if plain {
        bytes.to_vec()
    } else {
        super::path::lexical(bytes)
    }
}

fn entry_of(m: &Mount) -> Entry {
    let (kind, a, b) = match &m.kind {
        MountKind::ReadOnly { host } | MountKind::Hidden { host } => (DIRECT, host_root(host), Vec::new()),
        MountKind::ReadWrite { host } => (DIRECT | WRITABLE, host_root(host), Vec::new()),
        MountKind::Tmpfs { host } => (DIRECT | WRITABLE | PRIVATE, host_root(host), Vec::new()),
        MountKind::Overlay { lower, upper } => (OVERLAY, host_root(lower), host_root(upper)),
    };
    Entry { guest: canonical(&m.guest), kind, a, b }
}

/// Longest guest path first, and equal lengths in the configuration's order: a stable sort.
/// (The library's keeps scratch on the stack; it runs in the launcher, the ptrace supervisor
/// and a runtime whose configuration carries its mounts, never in an exec'd image's start-up.)
fn sort(entries: &mut [Entry]) {
    entries.sort_by_key(|e| core::cmp::Reverse(e.guest.len()));
}

/// The kernel trees the table shows as the host has them: each becomes a passthrough mount
/// (a mount of the tree itself, `rw /proc`, is the same thing), so that the host resolves its
/// magic links.
fn add_passthroughs(entries: &mut Vec<Entry>) {
    let mut added = Vec::new();
    for tree in KERNEL_TREES {
        let Some(m) = entries.iter().find(|m| is_within(tree, &m.guest)) else { continue };
        let suffix = if m.guest == b"/" { tree } else { &tree[m.guest.len()..] };
        let identical = match m.kind & 0xff {
            DIRECT | OVERLAY => [m.a.as_slice(), suffix].concat() == tree,
            _ => false,
        };
        if !identical {
            continue;
        }
        match entries.iter_mut().find(|m| m.guest == tree) {
            Some(m) if m.kind & 0xff == DIRECT && m.kind & PRIVATE == 0 => {
                *m = Entry { guest: tree.to_vec(), kind: PASSTHROUGH, a: Vec::new(), b: Vec::new() };
            }
            Some(_) => {}
            None => {
                added.push(Entry { guest: tree.to_vec(), kind: PASSTHROUGH, a: Vec::new(), b: Vec::new() })
            }
        }
    }
    entries.extend(added);
    sort(entries);
}

fn push_word(out: &mut Vec<u8>, word: usize) {
    // The launcher refuses paths that long; a table's offsets stay far below 4 GiB.
    out.extend_from_slice(&(word as u32).to_le_bytes());
}

impl MountTable {
    /// The table for a configuration's mounts; empty when there is no view.
    pub fn new(config: &[Mount]) -> Self {
        let mut entries: Vec<Entry> = config.iter().map(entry_of).collect();
        sort(&mut entries);
        if !entries.is_empty() {
            add_passthroughs(&mut entries);
        }
        let mut packed = Vec::new();
        push_word(&mut packed, entries.len());
        let mut at = 4 + entries.len() * RECORD;
        for e in &entries {
            for (part, kind) in [(&e.guest, None), (&e.a, Some(e.kind)), (&e.b, None)] {
                if let Some(kind) = kind {
                    push_word(&mut packed, kind as usize);
                }
                push_word(&mut packed, at);
                push_word(&mut packed, part.len());
                at += part.len();
            }
        }
        for e in &entries {
            packed.extend_from_slice(&e.guest);
            packed.extend_from_slice(&e.a);
            packed.extend_from_slice(&e.b);
        }
        MountTable { packed: Cow::Owned(packed), count: entries.len() }
    }

    /// The table [`MountTable::packed`] wrote, used where it lies; `None` if those bytes are
    /// not a table (a count or a record that points past them, a guest path that is not
    /// absolute, a kind this version does not know).
    pub fn from_packed(packed: &'static [u8]) -> Option<Self> {
        let table = MountTable { packed: Cow::Borrowed(packed), count: 0 };
        let count = table.word(0)? as usize;
        if count.checked_mul(RECORD)?.checked_add(4)? > packed.len() {
            return None;
        }
        for i in 0..count {
            let at = 4 + i * RECORD;
            let kind = table.word(at + 8)?;
            let known = matches!(kind, PASSTHROUGH | OVERLAY)
                || (kind & 0xff == DIRECT && kind & !(0xff | WRITABLE | PRIVATE) == 0);
            let guest = table.span(at)?;
            if !known
                || guest.first() != Some(&b'/')
                || table.span(at + 12).is_none()
                || table.span(at + 20).is_none()
            {
                return None;
            }
        }
        Some(MountTable { count, ..table })
    }

    /// The block of bytes the table is kept in, for the launcher to write where every
    /// runtime of the sandbox finds it.
    pub fn packed(&self) -> &[u8] {
        &self.packed
    }

    fn word(&self, at: usize) -> Option<u32> {
        let bytes = self.packed.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn span(&self, at: usize) -> Option<&[u8]> {
        let start = self.word(at)? as usize;
        let len = self.word(at + 4)? as usize;
        self.packed.get(start..start.checked_add(len)?)
    }

    /// Whether there is a view at all.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The mount serving canonical guest path `guest`, and the rest of the path below it
    /// (empty, or starting with `/`).
    pub fn find<'p>(&self, guest: &'p [u8]) -> Option<(VMount<'_>, &'p [u8])> {
        self.index_of(guest).map(|(i, s)| (self.get(i), s))
    }

    /// Like [`MountTable::find`], with the mount's index.
    pub fn index_of<'p>(&self, guest: &'p [u8]) -> Option<(usize, &'p [u8])> {
        // An empty guest path (a record that no longer reads: see `get`) is within every path:
        // it serves none.
        let (i, m) = (0..self.count)
            .map(|i| (i, self.guest(i)))
            .find(|&(_, m)| !m.is_empty() && is_within(guest, m))?;
        let suffix = if m == b"/" { guest } else { &guest[m.len()..] };
        Some((i, if suffix == b"/" { &[] } else { suffix }))
    }

    fn guest(&self, index: usize) -> &[u8] {
        self.span(4 + index * RECORD).unwrap_or_default()
    }

    /// The host directories that belong to the sandbox: overlays' upper layers, then private
    /// trees. The upper layers come first because they always exist, where a private tree may
    /// not yet (a hidden path missing at the start): a caller that looks for one that exists
    /// finds it at once.
    pub fn private_roots(&self) -> impl Iterator<Item = &[u8]> {
        let uppers = self.iter().filter_map(|m| match m.layers {
            Layers::Overlay { upper, .. } => Some(upper),
            _ => None,
        });
        let trees = self.iter().filter_map(|m| match m.layers {
            Layers::Direct { root, private: true, .. } => Some(root),
            _ => None,
        });
        uppers.chain(trees)
    }

    /// Every mount, longest guest path first.
    pub fn iter(&self) -> impl Iterator<Item = VMount<'_>> {
        (0..self.count).map(|i| self.get(i))
    }

    /// The mount at `index`. The table was checked when it was read; should the shared
    /// memory it lies in have been overwritten since, a part that points elsewhere reads as
    /// empty rather than out of bounds.
    pub fn get(&self, index: usize) -> VMount<'_> {
        let at = 4 + index * RECORD;
        let part = |at| self.span(at).unwrap_or_default();
        let kind = self.word(at + 8).unwrap_or(PASSTHROUGH);
        let layers = match kind & 0xff {
            DIRECT => Layers::Direct {
                root: part(at + 12),
                writable: kind & WRITABLE != 0,
                private: kind & PRIVATE != 0,
            },
            OVERLAY => Layers::Overlay { lower: part(at + 12), upper: part(at + 20) },
            _ => Layers::Passthrough,
        };
        VMount { guest: part(at), layers }
    }

    /// The names of mounts directly inside canonical directory `dir`: a listing of `dir`
    /// shows them even where the tree underneath has no such entry.
    pub fn children_of<'t>(&'t self, dir: &'t [u8]) -> impl Iterator<Item = &'t [u8]> + 't {
        (0..self.count)
            .map(|i| self.guest(i))
            .filter(move |g| !g.is_empty() && *g != b"/" && super::path::parent(g) == dir)
            .map(super::path::file_name)
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
        for m in self.iter() {
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
                let mut guest = if m.guest == b"/" { Vec::new() } else { m.guest.to_vec() };
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
        assert_eq!((m.guest, rest), (&b"/tmp"[..], &b"/a"[..]));
        let (m, rest) = t.find(b"/tmpfile").unwrap();
        assert_eq!((m.guest, rest), (&b"/"[..], &b"/tmpfile"[..]));
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
        assert_eq!((m.guest, rest), (&b"/a/c"[..], &b"/f"[..]));
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

    /// A table read back from its packed bytes, where the runtime finds it.
    fn reread(t: &MountTable) -> MountTable {
        let bytes: &'static [u8] = alloc::boxed::Box::leak(t.packed().to_vec().into_boxed_slice());
        MountTable::from_packed(bytes).unwrap()
    }

    #[test]
    fn a_packed_table_reads_back_the_same() {
        let t = table();
        let back = reread(&t);
        assert_eq!(back.iter().collect::<Vec<_>>(), t.iter().collect::<Vec<_>>());
        assert_eq!(back.iter().count(), 6);
        let (m, rest) = back.find(b"/work/src/a.c").unwrap();
        assert_eq!((m.guest, rest), (&b"/work"[..], &b"/src/a.c"[..]));
        assert_eq!(m.layers, Layers::Direct { root: b"/home/u/proj", writable: true, private: false });
        assert_eq!(back.find(b"/etc").unwrap().0.layers, Layers::Overlay { lower: b"", upper: b"/s/upper" });
        assert_eq!(back.private_roots().collect::<Vec<_>>(), [&b"/s/upper"[..], b"/s/tmp/0"]);
        assert!(reread(&MountTable::new(&[])).is_empty());
    }

    #[test]
    fn bytes_that_are_not_a_table_are_refused() {
        let good = table().packed().to_vec();
        let leak = |b: Vec<u8>| -> &'static [u8] { alloc::boxed::Box::leak(b.into_boxed_slice()) };
        let with = |at: usize, word: u32| {
            let mut b = good.clone();
            b[at..at + 4].copy_from_slice(&word.to_le_bytes());
            leak(b)
        };
        assert!(MountTable::from_packed(leak(good.clone())).is_some());
        assert!(MountTable::from_packed(leak(Vec::new())).is_none(), "no count");
        assert!(MountTable::from_packed(with(0, 1000)).is_none(), "more records than bytes");
        assert!(MountTable::from_packed(with(0, u32::MAX)).is_none(), "a count that overflows");
        assert!(MountTable::from_packed(with(4, good.len() as u32)).is_none(), "a guest past the end");
        assert!(MountTable::from_packed(with(8, u32::MAX)).is_none(), "a guest that overflows");
        assert!(MountTable::from_packed(with(12, 7)).is_none(), "an unknown kind");
        assert!(MountTable::from_packed(with(12, DIRECT | 1 << 12)).is_none(), "an unknown flag");
        assert!(MountTable::from_packed(with(24, 1 << 20)).is_none(), "a layer past the end");
        let first_guest = u32::from_le_bytes(good[4..8].try_into().unwrap()) as usize;
        let mut relative = good.clone();
        relative[first_guest] = b'x';
        assert!(MountTable::from_packed(leak(relative)).is_none(), "a relative guest path");
        assert!(MountTable::from_packed(leak(good[..good.len() - 1].to_vec())).is_none(), "cut short");
    }

    #[test]
    fn a_table_overwritten_after_it_was_read_stays_in_bounds() {
        let mut bytes = table().packed().to_vec();
        let t = MountTable::from_packed(alloc::boxed::Box::leak(bytes.clone().into_boxed_slice())).unwrap();
        // What another process's stray writes would do to the shared copy: every word now
        // points far past the table.
        for b in bytes.iter_mut().skip(4) {
            *b = 0xff;
        }
        let scribbled = MountTable { packed: Cow::Owned(bytes), count: t.count };
        // No read outside the table, no panic, and no mount that serves every path.
        for m in scribbled.iter() {
            assert!(m.guest.is_empty() && m.layers == Layers::Passthrough);
        }
        assert_eq!(scribbled.find(b"/etc/passwd"), None);
        assert_eq!(scribbled.guest_of_host(b"/etc/passwd"), None);
        assert_eq!(scribbled.private_roots().count(), 0);
        assert_eq!(scribbled.children_of(b"/").count(), 0);
    }
}
