//! Lookups and path walks through the view.
//!
//! [`Vfs::lookup`] finds one canonical guest path in its mount's layers without following a
//! final symlink; [`Vfs::walk`] resolves any path component by component the way Linux does:
//! symlinks are read and followed inside the view (an absolute target starts again at the
//! guest's root), `..` is taken after the symlinks before it and never leaves the root, and
//! at most [`MAX_LINKS`] links are followed. The canonical directories a walk finds are
//! remembered until the next change to the overlay's names ([`super::DirCache`]), so most
//! lookups cost one or two host calls.

use super::host::{Hc, Stat, S_IFLNK};
use super::mount::Layers;
use super::path::{self, components, host_cpath, join};
use super::Vfs;
use crate::errno::{Errno, KResult};
use alloc::vec::Vec;

/// Symlinks followed in one walk before `ELOOP`, as Linux.
pub const MAX_LINKS: usize = 40;
/// Components looked at in one walk: a path of `PATH_MAX` bytes and 40 links of as many
/// cannot take more.
const MAX_STEPS: usize = 64 * 1024;

/// Where a name was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// In an overlay's upper layer.
    Upper,
    /// In an overlay's lower tree only.
    Lower,
    /// In a mount of one host tree.
    Direct,
    /// In a kernel filesystem the host resolves (the node carries no stat).
    Passthrough,
    /// Nowhere: the name is free. `host` is where a creation would go.
    Missing,
}

/// A name in the view.
#[derive(Clone)]
pub struct Node {
    /// Its canonical guest path (for [`Place::Passthrough`], the lexical one).
    pub guest: Vec<u8>,
    /// Index of its mount.
    pub mount: usize,
    /// Where the guest path's part below the mount starts.
    pub suffix_at: usize,
    /// Where it is.
    pub place: Place,
    /// Its host `lstat`, unless missing or passed through.
    pub stat: Option<Stat>,
    /// Its host path (NUL-terminated): where it is, or where it would be created.
    pub host: Vec<u8>,
    /// Missing because the upper layer has a whiteout there.
    pub whiteout: bool,
    /// Its directory is known (this generation) to be in the upper layer only: the lower
    /// tree has neither the directory nor this name, and the directory exists up there.
    pub in_upper_only_dir: bool,
    /// The walk that found it followed a `/proc` link (`/proc/self/cwd`, `/dev/fd/N`): where
    /// it leads depends on the process and its working directory, so it is not cached.
    pub via_proc_link: bool,
}

/// Which of an overlay's layers a directory's entries can come from, as far as the current
/// generation of the overlay's names knows: what lets a lookup skip the layer that cannot
/// have the name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layering {
    /// Either (or not an overlay).
    #[default]
    Both,
    /// The lower tree only: the upper layer has no such directory yet.
    LowerOnly,
    /// The upper layer only: the directory was made by the sandbox where the lower tree has
    /// nothing, so no lower name and no whiteout can be in it.
    UpperOnly,
}

impl Layering {
    /// What the entries of directory `node` can come from, known from how it was found.
    fn below(node: &Node) -> Layering {
        match node.place {
            Place::Lower => Layering::LowerOnly,
            Place::Upper if node.in_upper_only_dir => Layering::UpperOnly,
            _ => Layering::Both,
        }
    }
}

impl Node {
    /// The part of the guest path below the mount.
    pub fn suffix(&self) -> &[u8] {
        &self.guest[self.suffix_at..]
    }

    /// Whether the name exists.
    pub fn exists(&self) -> bool {
        self.place != Place::Missing
    }

    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        self.stat.as_ref().is_some_and(|s| s.is_dir())
    }

    /// Whether it is a symlink.
    pub fn is_symlink(&self) -> bool {
        self.stat.as_ref().is_some_and(|s| s.kind() == S_IFLNK)
    }
}

impl Vfs {
    /// Finds canonical guest path `guest` in the view, without following a final symlink.
    pub fn lookup(&self, h: Hc<'_>, guest: &[u8]) -> KResult<Node> {
        self.lookup_hinted(h, guest, Layering::Both)
    }

    /// [`Vfs::lookup`]; `parent` says which layers the parent directory is known (this
    /// generation) to be in, so that the other need not be asked.
    pub(crate) fn lookup_hinted(&self, h: Hc<'_>, guest: &[u8], parent: Layering) -> KResult<Node> {
        let (index, suffix) = self.mounts.index_of(guest).ok_or(Errno::ENOENT)?;
        let suffix_at = guest.len() - suffix.len();
        let node = |place, stat, host, whiteout| Node {
            guest: guest.to_vec(),
            mount: index,
            suffix_at,
            place,
            stat,
            host,
            whiteout,
            in_upper_only_dir: parent == Layering::UpperOnly,
            via_proc_link: false,
        };
        match &self.mounts.get(index).layers {
            Layers::Passthrough => {
                let mut host = guest.to_vec();
                host.push(0);
                Ok(node(Place::Passthrough, None, host, false))
            }
            Layers::Direct { root, .. } => {
                let host = host_cpath(root, suffix);
                match h.lstat(&host) {
                    Ok(st) => Ok(node(Place::Direct, Some(st), host, false)),
                    Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Ok(node(Place::Missing, None, host, false)),
                    Err(e) => Err(e),
                }
            }
            Layers::Overlay { lower, upper } => {
                let up = host_cpath(upper, suffix);
                let upper_stat =
                    if parent == Layering::LowerOnly { Err(Errno::ENOENT) } else { h.lstat(&up) };
                match upper_stat {
                    Ok(st) if st.is_whiteout() => Ok(node(Place::Missing, None, up, true)),
                    Ok(st) => Ok(node(Place::Upper, Some(st), up, false)),
                    Err(Errno::ENOENT) | Err(Errno::ENOTDIR) if parent == Layering::UpperOnly => {
                        Ok(node(Place::Missing, None, up, false))
                    }
                    Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => {
                        if parent == Layering::Both && self.opaque_above(h, upper, suffix) {
                            return Ok(node(Place::Missing, None, up, false));
                        }
                        let low = host_cpath(lower, suffix);
                        match h.lstat(&low) {
                            Ok(st) => match self.indexed_copy(h, (lower, upper), suffix, &st) {
                                // Another name of this file was changed: this one shows it too.
                                Some((up, copy)) => Ok(node(Place::Upper, Some(copy), up, false)),
                                None => Ok(node(Place::Lower, Some(st), low, false)),
                            },
                            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => {
                                Ok(node(Place::Missing, None, up, false))
                            }
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Whether an upper directory above `suffix` hides the lower tree. Costs nothing until
    /// the sandbox made its first opaque directory.
    pub(super) fn opaque_above(&self, h: Hc<'_>, upper: &[u8], suffix: &[u8]) -> bool {
        if self.shared.opaque_dirs.load(core::sync::atomic::Ordering::Acquire) == 0 {
            return false;
        }
        let mut end = 0;
        // (`suffix` is empty at the mount's own root: nothing above it.)
        while let Some(i) = suffix.get(end + 1..).and_then(|rest| rest.iter().position(|&b| b == b'/')) {
            end += 1 + i;
            if h.is_opaque(&host_cpath(upper, &suffix[..end])) {
                return true;
            }
        }
        false
    }

    /// Resolves `path` (absolute, or relative to canonical directory `base`). The final
    /// symlink is followed when `follow` (or when the path ends in `/`, which also demands a
    /// directory). A missing final name is a [`Place::Missing`] node, so that callers can
    /// create it; a missing directory on the way is `ENOENT`.
    pub fn walk(&self, h: Hc<'_>, base: &[u8], path: &[u8]) -> KResult<Node> {
        self.walk_with(h, base, path, true)
    }

    /// [`Vfs::walk`], with the final symlink followed or not.
    pub fn walk_with(&self, h: Hc<'_>, base: &[u8], path: &[u8], follow: bool) -> KResult<Node> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let must_dir = path.ends_with(b"/");
        let follow = follow || must_dir;
        let mut comps: Vec<&[u8]> = Vec::new();
        if path[0] != b'/' {
            comps.extend(components(base));
        }
        comps.extend(components(path));
        let Some(last) = comps.pop() else {
            return self.lookup(h, b"/");
        };
        let node = if last == b".." || comps.contains(&&b".."[..]) {
            let mut todo: Vec<Vec<u8>> = comps.iter().map(|c| c.to_vec()).collect();
            todo.push(last.to_vec());
            self.walk_from(h, Vec::from(&b"/"[..]), todo, follow, Layering::Both)?
        } else {
            let (dir, layering, dir_via_proc_link) = self.canonical_dir(h, &comps)?;
            if self.mounts.find(&dir).is_some_and(|(m, _)| m.layers == Layers::Passthrough) {
                // The kernel's trees go through the walk's own handling of them (its links
                // in `/proc` lead into the view).
                let mut todo: Vec<Vec<u8>> = components(&dir).map(|c| c.to_vec()).collect();
                todo.push(last.to_vec());
                return self.walk_from(h, Vec::from(&b"/"[..]), todo, follow, Layering::Both);
            }
            // The last name in a known directory: one lookup, unless it is a link to follow.
            let mut node = self.lookup_hinted(h, &path::join(&dir, last), layering)?;
            if node.place == Place::Passthrough || (node.is_symlink() && follow) {
                // The walk takes it from here, with the node just found as its first step.
                let mut via_proc_link = false;
                let todo = alloc::vec![last.to_vec()];
                node = self.walk_steps(h, dir, todo, follow, layering, &mut via_proc_link, Some(node))?;
                node.via_proc_link |= via_proc_link;
            }
            node.via_proc_link |= dir_via_proc_link;
            node
        };
        if must_dir && node.exists() && !node.is_dir() && node.place != Place::Passthrough {
            return Err(Errno::ENOTDIR);
        }
        Ok(node)
    }

    /// The canonical path of the directory named by `comps` (no `..` among them), from the
    /// cache or by walking it, which layers its entries can come from, and whether the walk
    /// followed a `/proc` link to it ([`Node::via_proc_link`]; such a directory is not
    /// cached).
    pub(crate) fn canonical_dir(&self, h: Hc<'_>, comps: &[&[u8]]) -> KResult<(Vec<u8>, Layering, bool)> {
        if comps.is_empty() {
            return Ok((Vec::from(&b"/"[..]), Layering::Both, false));
        }
        if let Some((dir, layering)) = self.cached_dir(comps) {
            return Ok((dir, layering, false));
        }
        let key = dir_key(comps);
        let generation = self.generation();
        let todo = comps.iter().map(|c| c.to_vec()).collect();
        let node = self.walk_from(h, Vec::from(&b"/"[..]), todo, true, Layering::Both)?;
        match node.place {
            Place::Passthrough => return Ok((node.guest, Layering::Both, node.via_proc_link)),
            _ if node.via_proc_link => return Ok((node.guest, Layering::Both, true)),
            Place::Missing => return Err(Errno::ENOENT),
            _ if !node.is_dir() => return Err(Errno::ENOTDIR),
            _ => {}
        }
        let mut layering = Layering::below(&node);
        // A directory of the upper layer that the lower tree lacks (one the program made): one
        // more lookup now spares one in every later lookup in it while the cache holds.
        if layering == Layering::Both && node.place == Place::Upper && !self.lower_has(h, &node) {
            layering = Layering::UpperOnly;
        }
        // Only if no change came meanwhile: a late entry of an old generation would take the
        // slot of a current one.
        if self.generation() == generation {
            self.shared.dirs.insert(generation, &key, &node.guest, layering);
        }
        self.dir_cache.lock().insert(generation, key, (node.guest.clone(), layering));
        Ok((node.guest, layering, false))
    }

    /// The canonical path and layering of the directory named by `comps` (no `..` among them)
    /// if this process or another of the sandbox resolved it in this generation.
    fn cached_dir(&self, comps: &[&[u8]]) -> Option<(Vec<u8>, Layering)> {
        let key = dir_key(comps);
        let generation = self.generation();
        if let Some(dir) = self.dir_cache.lock().get(generation, &key) {
            return Some(dir);
        }
        let dir = self.shared.dirs.get(generation, &key)?;
        self.dir_cache.lock().insert(generation, key, dir.clone());
        Some(dir)
    }

    /// Walks the components `todo` (in order) from canonical directory `cur`, whose entries
    /// come from the layers `layering` says.
    fn walk_from(
        &self,
        h: Hc<'_>,
        cur: Vec<u8>,
        todo: Vec<Vec<u8>>,
        follow: bool,
        layering: Layering,
    ) -> KResult<Node> {
        let mut via_proc_link = false;
        let mut node = self.walk_steps(h, cur, todo, follow, layering, &mut via_proc_link, None)?;
        node.via_proc_link |= via_proc_link;
        Ok(node)
    }

    /// [`Vfs::walk_from`]'s steps; sets `via_proc_link` when it follows a `/proc` link.
    /// `first` is the node of the first step when the caller looked it up already (a final
    /// symlink in a known directory), which spares the host a second `lstat` of it.
    #[allow(clippy::too_many_arguments)]
    fn walk_steps(
        &self,
        h: Hc<'_>,
        mut cur: Vec<u8>,
        todo: Vec<Vec<u8>>,
        follow: bool,
        mut layering: Layering,
        via_proc_link: &mut bool,
        mut first: Option<Node>,
    ) -> KResult<Node> {
        let mut stack: Vec<Vec<u8>> = todo.into_iter().rev().collect();
        let mut links = 0;
        // A walk runs in a signal handler, with every signal blocked: however the table and
        // the links are made, it must end.
        let mut steps = 0;
        while let Some(comp) = stack.pop() {
            steps += 1;
            if steps > MAX_STEPS {
                return Err(Errno::ELOOP);
            }
            if comp == b".." {
                cur = path::parent(&cur).to_vec();
                layering = Layering::Both;
                if stack.is_empty() {
                    return self.lookup(h, &cur);
                }
                continue;
            }
            let next = join(&cur, &comp);
            let node = match first.take() {
                Some(node) if node.guest == next => node,
                _ => self.lookup_hinted(h, &next, layering)?,
            };
            let last = stack.is_empty();
            match node.place {
                Place::Passthrough => {
                    let mut rest = next;
                    while let Some(c) = stack.pop() {
                        rest = join(&rest, &c);
                    }
                    // `..` after a `/proc` link is taken in the view, after the link.
                    let lexical = match proc_magic_link(&rest) {
                        Some((magic, _)) if !magic.split(|&b| b == b'/').any(|c| c == b"..") => rest.clone(),
                        _ => path::lexical(&rest),
                    };
                    // A `/proc` link to a file or directory (`root`, `cwd`, `fd/N`) names a host
                    // path: it leads where that path is in the view, never to the host's tree
                    // behind it (the host's /tmp, a hidden file, the state directory).
                    if let Some((magic, tail)) = proc_magic_link(&lexical) {
                        let is_last = tail.is_empty();
                        if !is_last || follow {
                            let mut host = magic.to_vec();
                            host.push(0);
                            let target = h.readlink(&host)?;
                            if target.first() == Some(&b'/') && !target.ends_with(b" (deleted)") {
                                links += 1;
                                if links > MAX_LINKS {
                                    return Err(Errno::ELOOP);
                                }
                                let guest = self.guest_of_host(&target).ok_or(Errno::ENOENT)?;
                                *via_proc_link = true;
                                cur = Vec::from(&b"/"[..]);
                                layering = Layering::Both;
                                stack = components(tail).rev().map(|c| c.to_vec()).collect();
                                stack.extend(components(&guest).rev().map(|c| c.to_vec()));
                                if stack.is_empty() {
                                    return self.lookup(h, &cur);
                                }
                                continue;
                            }
                            // A pipe, a socket, a deleted file: only the host can open it again.
                            if !is_last {
                                return Err(Errno::ENOTDIR);
                            }
                        }
                    }
                    let (mount, suffix) = self.mounts.find(&lexical).ok_or(Errno::ENOENT)?;
                    if mount.layers == Layers::Passthrough {
                        return self.lookup(h, &lexical);
                    }
                    // A mount inside the kernel's tree (a private `/dev/shm`), or `..` that led
                    // out of it: walk the rest from that mount's root, which is never a
                    // kernel tree again (it is the longest match).
                    cur = mount.guest.to_vec();
                    layering = Layering::Both;
                    stack = components(suffix).rev().map(|c| c.to_vec()).collect();
                    if stack.is_empty() {
                        return self.lookup(h, &cur);
                    }
                }
                Place::Missing if last => return Ok(node),
                Place::Missing => return Err(Errno::ENOENT),
                _ if node.is_symlink() && (!last || follow) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(Errno::ELOOP);
                    }
                    let target = h.readlink(&node.host)?;
                    if target.is_empty() {
                        return Err(Errno::ENOENT);
                    }
                    if target[0] == b'/' {
                        cur = Vec::from(&b"/"[..]);
                        layering = Layering::Both;
                    }
                    let mut parts: Vec<Vec<u8>> = components(&target).map(|c| c.to_vec()).collect();
                    // An absolute link into a directory some process resolved already (a
                    // library's `/lib/x86_64-linux-gnu/...`) continues from there, not from `/`.
                    if target[0] == b'/' && parts.len() > 1 && !parts.iter().any(|c| c == b"..") {
                        let dir: Vec<&[u8]> = parts[..parts.len() - 1].iter().map(|c| &c[..]).collect();
                        if let Some((canonical, l)) = self.cached_dir(&dir) {
                            cur = canonical;
                            layering = l;
                            parts.drain(..parts.len() - 1);
                        }
                    }
                    if parts.is_empty() {
                        // A link to `/` (or `.`): what it names is `cur` itself.
                        if stack.is_empty() {
                            return self.lookup(h, &cur);
                        }
                        continue;
                    }
                    stack.extend(parts.into_iter().rev());
                }
                _ if last => return Ok(node),
                _ if node.is_dir() => {
                    layering = Layering::below(&node);
                    cur = next;
                }
                _ => return Err(Errno::ENOTDIR),
            }
        }
        self.lookup(h, &cur)
    }
}

/// The caches' key for the directory named by `comps`: its lexical absolute path.
fn dir_key(comps: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(comps.iter().map(|c| c.len() + 1).sum());
    for c in comps {
        key.push(b'/');
        key.extend_from_slice(c);
    }
    key
}

/// Splits a lexical path under `/proc` at a link the kernel resolves by itself to a file
/// (`/proc/PID/root`, `cwd`, `exe`, `fd/N`, `map_files/RANGE`, and the same under
/// `task/TID/`): the link's path, and what follows it.
fn proc_magic_link(path: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = path.strip_prefix(b"/proc/")?;
    let comps: Vec<&[u8]> = rest.split(|&b| b == b'/').collect();
    let is_pid =
        |c: &[u8]| c == b"self" || c == b"thread-self" || (!c.is_empty() && c.iter().all(u8::is_ascii_digit));
    if !is_pid(comps.first()?) {
        return None;
    }
    let at = |i: usize| comps.get(i).copied();
    let end = match (at(1)?, at(2), at(3), at(4)) {
        (b"root" | b"cwd" | b"exe", ..) => 2,
        (b"fd" | b"map_files", Some(_), ..) => 3,
        (b"task", Some(tid), Some(b"root" | b"cwd" | b"exe"), _) if is_pid(tid) => 4,
        (b"task", Some(tid), Some(b"fd"), Some(_)) if is_pid(tid) => 5,
        _ => return None,
    };
    let len: usize = b"/proc".len() + comps[..end].iter().map(|c| c.len() + 1).sum::<usize>();
    Some((&path[..len], path[len..].strip_prefix(b"/").unwrap_or(&path[len..])))
}

#[cfg(test)]
mod magic_tests {
    use super::proc_magic_link;

    #[test]
    fn proc_links_to_files_are_found() {
        assert_eq!(
            proc_magic_link(b"/proc/self/root/etc/passwd"),
            Some((&b"/proc/self/root"[..], &b"etc/passwd"[..]))
        );
        assert_eq!(proc_magic_link(b"/proc/12/fd/3"), Some((&b"/proc/12/fd/3"[..], &b""[..])));
        assert_eq!(
            proc_magic_link(b"/proc/self/task/7/cwd/x"),
            Some((&b"/proc/self/task/7/cwd"[..], &b"x"[..]))
        );
        assert_eq!(proc_magic_link(b"/proc/self/status"), None);
        assert_eq!(proc_magic_link(b"/proc/self/fd"), None);
        assert_eq!(proc_magic_link(b"/proc/cpuinfo"), None);
    }
}
