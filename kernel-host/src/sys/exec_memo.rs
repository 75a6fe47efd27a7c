//! What the last execs of each program found ([`binfmt::target`]), so that a process that runs
//! the same programs again and again (a shell's loop, `make`) does not look each one up
//! through the view and read its headers every time: eleven host calls and about 20 µs of
//! every exec of a dynamic program here, against two.
//!
//! An entry is used only while everything its lookup depended on is as it was:
//! - the view's names ([`crate::vfs::Vfs::lookup_stamp`]: no rename, removal, new symlink or
//!   opaque directory, no copy-up since, by any process of the sandbox);
//! - the host's say on running it: each use asks the host again whether the program and its
//!   interpreter may be executed (`faccessat`), so a mode, owner or credential change is seen;
//! - the files themselves: the next image opens them by their host paths and compares their
//!   identity with the one checked, and looks the program up afresh if either was replaced
//!   (`interposer/rt/src/start.rs`).
//!
//! Only ELF programs named by an absolute path are kept, with a view, and not under `/proc` or
//! `/dev`, whose names lead to different files over time (`/proc/self/fd/N`). A change the
//! view does not see, such as a symlink on the way retargeted by the host, is seen by the next
//! lookup after any of the above changes.

use crate::binfmt::Target;
use crate::errno::Errno;
use crate::task::Host;
use alloc::vec::Vec;
use syscalls::Sysno;

/// Programs a process remembers: enough for the commands a build or a script runs in turn.
const ENTRIES: usize = 16;
const X_OK: u64 = 1;
const AT_FDCWD: u64 = -100i64 as u64;

/// The programs a process exec'd lately.
#[derive(Default)]
pub(crate) struct ExecMemo {
    entries: Vec<Entry>,
    next: usize,
}

struct Entry {
    path: Vec<u8>,
    stamp: (u64, u64),
    target: Target,
}

impl ExecMemo {
    /// What an exec of `path` found when the view's stamp was `stamp`, if the host still lets
    /// the caller run it.
    pub(crate) fn get(&self, host: &dyn Host, path: &[u8], stamp: (u64, u64)) -> Option<Target> {
        let e = self.entries.iter().find(|e| e.stamp == stamp && e.path == path)?;
        let runnable = |c: &crate::binfmt::Checked| {
            let args = [AT_FDCWD, c.host.as_ptr() as u64, X_OK, 0, 0, 0];
            Errno::check(host.syscall(Sysno::faccessat.id() as u32, args)).is_ok()
        };
        (runnable(&e.target.file) && e.target.interp.as_ref().is_none_or(runnable)).then(|| e.target.clone())
    }

    /// Keeps what an exec of `path` found, the view's stamp read before the lookup.
    pub(crate) fn put(&mut self, path: &[u8], stamp: (u64, u64), target: &Target) {
        if !keepable(path) || target.argv.is_some() {
            return;
        }
        let entry = Entry { path: path.to_vec(), stamp, target: target.clone() };
        match self.entries.iter().position(|e| e.path == path) {
            Some(i) => self.entries[i] = entry,
            None if self.entries.len() < ENTRIES => self.entries.push(entry),
            None => {
                self.entries[self.next] = entry;
                self.next = (self.next + 1) % ENTRIES;
            }
        }
    }
}

/// Whether an exec of `path` may be remembered: absolute, and not in a tree whose names lead
/// to different files over time.
pub(crate) fn keepable(path: &[u8]) -> bool {
    path.starts_with(b"/") && !path.starts_with(b"/proc/") && !path.starts_with(b"/dev/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binfmt::Checked;
    use crate::testing::FakeHost;

    fn target(path: &[u8]) -> Target {
        let file = Checked { host: [path, b"\0"].concat(), dev: 1, ino: 2 };
        Target { exe: Some(path.to_vec()), argv: None, file, interp: None }
    }

    #[test]
    fn an_entry_holds_for_its_stamp_and_path_only() {
        let host = FakeHost::new(|_, _| 0);
        let mut memo = ExecMemo::default();
        memo.put(b"/bin/true", (1, 0), &target(b"/usr/bin/true"));
        assert!(memo.get(&host, b"/bin/true", (1, 0)).is_some());
        assert!(memo.get(&host, b"/bin/true", (2, 0)).is_none(), "a name changed");
        assert!(memo.get(&host, b"/bin/true", (1, 1)).is_none(), "a file was copied up");
        assert!(memo.get(&host, b"/bin/false", (1, 0)).is_none());
    }

    #[test]
    fn scripts_relative_paths_and_proc_are_not_kept() {
        let host = FakeHost::new(|_, _| 0);
        let mut memo = ExecMemo::default();
        let mut script = target(b"/bin/sh");
        script.argv = Some(alloc::vec![b"sh".to_vec(), b"/x.sh".to_vec()]);
        memo.put(b"/x.sh", (0, 0), &script);
        memo.put(b"bin/true", (0, 0), &target(b"/bin/true"));
        memo.put(b"/proc/self/fd/3", (0, 0), &target(b"/bin/true"));
        for path in [&b"/x.sh"[..], b"bin/true", b"/proc/self/fd/3"] {
            assert!(memo.get(&host, path, (0, 0)).is_none());
        }
    }

    #[test]
    fn a_program_the_host_no_longer_lets_run_is_looked_up_again() {
        let host =
            FakeHost::new(|nr, _| if nr == Sysno::faccessat.id() as u32 { Errno::EACCES.ret() } else { 0 });
        let mut memo = ExecMemo::default();
        memo.put(b"/bin/true", (0, 0), &target(b"/usr/bin/true"));
        assert!(memo.get(&host, b"/bin/true", (0, 0)).is_none());
    }

    #[test]
    fn the_oldest_entry_makes_room() {
        let host = FakeHost::new(|_, _| 0);
        let mut memo = ExecMemo::default();
        let paths: Vec<Vec<u8>> = (0..=ENTRIES).map(|i| alloc::format!("/bin/p{i}").into_bytes()).collect();
        for p in &paths {
            memo.put(p, (0, 0), &target(p));
        }
        assert!(memo.get(&host, &paths[0], (0, 0)).is_none());
        assert!(memo.get(&host, &paths[ENTRIES], (0, 0)).is_some());
        assert!(memo.get(&host, &paths[1], (0, 0)).is_some());
    }
}
