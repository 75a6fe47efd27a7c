//! Which program each process of the sandbox runs, for `/proc/PID/exe` of another process.
//!
//! On the host every sandboxed process's `/proc/PID/exe` names `cloister-rt`: the runtime is
//! what the host executed. A process's own `/proc/self/exe` comes from its image; another's
//! comes from here. Each runtime records its program's guest path under its pid when it
//! starts, in a small table in the shared page, and a `readlink` of another process's `exe`
//! that the host answers with the runtime's path reads the table instead.
//!
//! Slots are indexed by pid, each a [`crate::seqlock::SeqWords`] record; a reader keeps what it
//! copied only if the slot names the pid it asked for. A slot taken over by another pid (two live processes whose pids differ by a multiple
//! of [`SLOTS`]), a path too long for a slot, or a torn slot is a miss, and the host's answer
//! stands. Every process of the sandbox can write
//! here: a path is checked (absolute, no NUL) before it is shown, and a liar misleads only its
//! own sandbox. A fork's child records its parent's program under its own pid.

use crate::seqlock::{pack, unpack, SeqWords};
use alloc::vec::Vec;

/// Slots in the table.
pub const SLOTS: usize = 64;
/// Words of a slot's path.
const WORDS: usize = 14;
/// The longest path a slot holds.
pub const MAX_PATH: usize = WORDS * 8;

/// One process's record: the pid in the low half of the first word and the path's length in
/// the high half, then the path.
type ExeSlot = SeqWords<{ WORDS + 1 }>;

/// The table.
#[repr(C)]
pub struct SharedExes {
    slots: [ExeSlot; SLOTS],
}

impl SharedExes {
    fn slot(&self, pid: u32) -> &ExeSlot {
        &self.slots[pid as usize % SLOTS]
    }

    /// Records that process `pid` runs the program at guest path `path`. A path longer than
    /// [`MAX_PATH`] clears the slot instead (a later reader misses). A slot another process is
    /// writing (or one whose writer died halfway) is left alone, and its pid's lookups miss.
    pub fn record(&self, pid: u32, path: &[u8]) {
        let len = if path.len() <= MAX_PATH { path.len() } else { 0 };
        let mut bytes = [0u8; MAX_PATH];
        bytes[..len].copy_from_slice(&path[..len]);
        let mut words = [0u64; WORDS + 1];
        words[0] = u64::from(pid) | (len as u64) << 32;
        pack(&bytes, &mut words[1..]);
        self.slot(pid).write(&words);
    }

    /// The program process `pid` recorded, if its slot still holds it.
    pub fn lookup(&self, pid: u32) -> Option<Vec<u8>> {
        let words = self.slot(pid).read()?;
        let head = words[0];
        if head as u32 != pid {
            return None;
        }
        let mut bytes = [0u8; MAX_PATH];
        unpack(&words[1..], &mut bytes);
        let path = bytes.get(..(head >> 32) as usize)?;
        (path.first() == Some(&b'/') && !path.contains(&0)).then(|| path.to_vec())
    }
}

/// The pid a `/proc/PID/exe` or `/proc/PID/task/TID/exe` path names (the process's).
pub fn pid_of_exe_link(path: &[u8]) -> Option<u32> {
    let rest = path.strip_prefix(b"/proc/")?;
    let parts: Vec<&[u8]> = rest.split(|&b| b == b'/').collect();
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    let pid = match parts.as_slice() {
        [pid, b"exe"] if digits(pid) => pid,
        [pid, b"task", tid, b"exe"] if digits(pid) && digits(tid) => pid,
        _ => return None,
    };
    core::str::from_utf8(pid).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> alloc::boxed::Box<SharedExes> {
        // SAFETY: all-zero bytes are a valid table: every field is an atomic.
        unsafe { alloc::boxed::Box::new_zeroed().assume_init() }
    }

    #[test]
    fn a_recorded_program_is_found_under_its_pid_only() {
        let t = table();
        t.record(7, b"/usr/bin/sleep");
        assert_eq!(t.lookup(7).as_deref(), Some(&b"/usr/bin/sleep"[..]));
        assert_eq!(t.lookup(8), None);
        // Another pid in the same slot takes it over: the first one misses, never reads the
        // other's program.
        t.record(7 + SLOTS as u32, b"/usr/bin/python3");
        assert_eq!(t.lookup(7), None);
        assert_eq!(t.lookup(7 + SLOTS as u32).as_deref(), Some(&b"/usr/bin/python3"[..]));
    }

    #[test]
    fn long_relative_or_torn_paths_are_misses() {
        let t = table();
        t.record(3, &[b'/'; MAX_PATH + 1]);
        assert_eq!(t.lookup(3), None);
        t.record(3, b"relative");
        assert_eq!(t.lookup(3), None);
        t.record(3, &[b'/'; MAX_PATH]);
        assert_eq!(t.lookup(3).map(|p| p.len()), Some(MAX_PATH));
        t.slot(3).abandon();
        assert_eq!(t.lookup(3), None);
    }

    #[test]
    fn exe_links_name_their_process() {
        assert_eq!(pid_of_exe_link(b"/proc/12/exe"), Some(12));
        assert_eq!(pid_of_exe_link(b"/proc/12/task/13/exe"), Some(12));
        for other in [&b"/proc/self/exe"[..], b"/proc/12/cwd", b"/proc/12/exe/x", b"/proc//exe"] {
            assert_eq!(pid_of_exe_link(other), None);
        }
    }
}
