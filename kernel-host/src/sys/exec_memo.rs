//! What the last execs of each program found ([`binfmt::target`]), so that a process that runs
//! the same programs again and again (a shell's loop, `make`) does not look each one up
//! through the view and read its headers every time: eleven host calls of every exec of a
//! dynamic program here, against four.
//!
//! An entry is used only while everything its check depended on is as it was:
//! - the view's names ([`crate::vfs::Vfs::lookup_stamp`]: no rename, removal, new symlink or
//!   opaque directory, no copy-up since, by any process of the sandbox);
//! - the files themselves: the program and its interpreter still have the identity, size and
//!   `st_ctim` they had when their headers were read (a `stat` of each), so a rewrite in place
//!   (a script written over an ELF, another `PT_INTERP`, a `chmod`) is seen;
//! - the host's say on running them: each use asks the host again whether they may be
//!   executed (`faccessat`, which checks the real ids, as the check did), so a credential
//!   change is seen.
//!
//! Only ELF programs (no `#!` line) named by an absolute path are kept, and only when no
//! lookup of the exec led through a tree the view passes to the host as it is (`/proc`,
//! `/dev`) or one of `/proc`'s links ([`crate::vfs::Vfs::program_lookup`]): such a path
//! (`/proc/self/fd/N`, `/proc/self/cwd/...`, however spelled or reached through symlinks)
//! names different files over time, and is looked up every time.
//! A symlink on the way that the host retargets behind the view's back is seen by the next
//! lookup after one of the changes above.

use crate::binfmt::{Checked, Target};
use crate::task::Host;
use crate::vfs::host::Hc;
use alloc::vec::Vec;

/// Programs a process remembers: enough for the commands a build or a script runs in turn.
const ENTRIES: usize = 16;

/// The programs a process exec'd lately.
#[derive(Default)]
pub(crate) struct ExecMemo {
    entries: Vec<Entry>,
    next: usize,
}

/// A program's path, the view's stamp when it was looked up, and what was found.
pub(crate) struct Entry {
    path: Vec<u8>,
    stamp: (u64, u64),
    target: Target,
}

impl ExecMemo {
    /// What an exec of `path` found when the view's stamp was `stamp`. Check it with
    /// [`still_holds`] before use, without the memo's lock: the check makes host calls.
    #[inline(never)]
    pub(crate) fn get(&self, path: &[u8], stamp: (u64, u64)) -> Option<Target> {
        self.entries.iter().find(|e| e.stamp == stamp && e.path == path).map(|e| e.target.clone())
    }

    /// Keeps `entry`, made by [`entry`].
    #[inline(never)]
    pub(crate) fn put(&mut self, entry: Entry) {
        match self.entries.iter().position(|e| e.path == entry.path) {
            Some(i) => self.entries[i] = entry,
            None if self.entries.len() < ENTRIES => self.entries.push(entry),
            None => {
                self.entries[self.next] = entry;
                self.next = (self.next + 1) % ENTRIES;
            }
        }
    }
}

/// What to keep of an exec of `path` that found `target`, the view's stamp read before the
/// lookup; `None` when it may not be kept (built outside the memo's lock, which allocates).
#[inline(never)]
pub(crate) fn entry(path: &[u8], stamp: (u64, u64), target: &Target) -> Option<Entry> {
    let kept = named_for_keeps(path) && target.argv.is_none() && target.exe.is_some();
    kept.then(|| Entry { path: path.to_vec(), stamp, target: target.clone() })
}

/// Whether an exec of `path` may be kept: its name does not depend on the working directory.
pub(crate) fn named_for_keeps(path: &[u8]) -> bool {
    path.starts_with(b"/")
}

/// Whether what `target` says still holds on the host: the program and its interpreter are
/// the files that were checked, unchanged, and the caller may still run them.
#[inline(never)]
pub(crate) fn still_holds(host: &dyn Host, target: &Target) -> bool {
    let h = Hc(host);
    let holds = |c: &Checked| {
        let same = h.stat(&c.host).is_ok_and(|st| {
            (st.dev(), st.ino(), st.change_stamp()) == (c.dev, c.ino, c.changed) && st.is_regular()
        });
        same && h.may_execute(&c.host).is_ok()
    };
    holds(&target.file) && target.interp.as_ref().is_none_or(holds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errno::Errno;
    use crate::testing::FakeHost;
    use syscalls::Sysno;

    fn target(path: &[u8]) -> Target {
        let file = Checked { host: [path, b"\0"].concat(), dev: 1, ino: 2, changed: [3, 4, 5] };
        Target { exe: Some(path.to_vec()), argv: None, file, interp: None }
    }

    fn keep(memo: &mut ExecMemo, path: &[u8], stamp: (u64, u64), t: &Target) {
        if let Some(e) = entry(path, stamp, t) {
            memo.put(e);
        }
    }

    #[test]
    fn an_entry_holds_for_its_stamp_and_path_only() {
        let mut memo = ExecMemo::default();
        keep(&mut memo, b"/bin/true", (1, 0), &target(b"/usr/bin/true"));
        assert!(memo.get(b"/bin/true", (1, 0)).is_some());
        assert!(memo.get(b"/bin/true", (2, 0)).is_none(), "a name changed");
        assert!(memo.get(b"/bin/true", (1, 1)).is_none(), "a file was copied up");
        assert!(memo.get(b"/bin/false", (1, 0)).is_none());
    }

    #[test]
    fn scripts_relative_paths_and_passthrough_trees_are_not_kept() {
        let mut memo = ExecMemo::default();
        let mut script = target(b"/bin/sh");
        script.argv = Some(alloc::vec![b"sh".to_vec(), b"/x.sh".to_vec()]);
        keep(&mut memo, b"/x.sh", (0, 0), &script);
        keep(&mut memo, b"bin/true", (0, 0), &target(b"/bin/true"));
        // The walk ended in a tree the view passes through (`/proc`): it knows no guest path.
        let mut by_fd = target(b"/proc/self/fd/3");
        by_fd.exe = None;
        keep(&mut memo, b"//proc/self/fd/3", (0, 0), &by_fd);
        for path in [&b"/x.sh"[..], b"bin/true", b"//proc/self/fd/3"] {
            assert!(memo.get(path, (0, 0)).is_none());
        }
    }

    /// A host whose files all have identity 1/2 and change stamp [3, 4, 5], and whose
    /// `faccessat` answers `access`.
    fn host(stamp_size: u64, access: i64) -> impl Host {
        FakeHost::new(move |nr, args| {
            if nr == Sysno::newfstatat.id() as u32 {
                let st = args[2] as *mut u8;
                // SAFETY: `Hc::stat` passes a 144-byte buffer.
                let buf = unsafe { core::slice::from_raw_parts_mut(st, 144) };
                buf[..8].copy_from_slice(&1u64.to_ne_bytes());
                buf[8..16].copy_from_slice(&2u64.to_ne_bytes());
                buf[24..28].copy_from_slice(&0o100755u32.to_ne_bytes());
                buf[48..56].copy_from_slice(&stamp_size.to_ne_bytes());
                buf[104..112].copy_from_slice(&4u64.to_ne_bytes());
                buf[112..120].copy_from_slice(&5u64.to_ne_bytes());
                0
            } else if nr == Sysno::faccessat.id() as u32 {
                access
            } else {
                0
            }
        })
    }

    #[test]
    fn a_file_changed_in_place_or_no_longer_runnable_is_looked_up_again() {
        let t = target(b"/usr/bin/true");
        assert!(still_holds(&host(3, 0), &t));
        assert!(!still_holds(&host(4, 0), &t), "rewritten: another size");
        assert!(!still_holds(&host(3, Errno::EACCES.ret()), &t), "not executable any more");
        let mut with_interp = target(b"/usr/bin/true");
        with_interp.interp =
            Some(Checked { host: b"/lib/ld\0".to_vec(), dev: 1, ino: 9, changed: [3, 4, 5] });
        assert!(!still_holds(&host(3, 0), &with_interp), "another interpreter file");
    }

    #[test]
    fn the_oldest_entry_makes_room() {
        let mut memo = ExecMemo::default();
        let paths: Vec<Vec<u8>> = (0..=ENTRIES).map(|i| alloc::format!("/bin/p{i}").into_bytes()).collect();
        for p in &paths {
            keep(&mut memo, p, (0, 0), &target(p));
        }
        assert!(memo.get(&paths[0], (0, 0)).is_none());
        assert!(memo.get(&paths[ENTRIES], (0, 0)).is_some());
        assert!(memo.get(&paths[1], (0, 0)).is_some());
    }
}
