//! What `execve` would run: the checks Linux makes before it replaces the caller, so that a
//! bad exec fails in the caller with the right errno instead of inside a fresh runtime.
//!
//! See `execve(2)` (ERRORS) and `binfmt_script`: an x86_64 ELF runs; a `#!` line names an
//! interpreter that must itself be runnable (up to [`MAX_DEPTH`] levels); anything else is
//! `ENOEXEC`. The runtime's loader does the full parse (goblin); this only decides errnos.

use crate::abi::{AT_FDCWD, O_CLOEXEC, O_NONBLOCK};
use crate::errno::{Errno, KResult};
use crate::task::Host;
use crate::vfs::host::Hc;
use alloc::vec::Vec;
use syscalls::Sysno;

/// Nested interpreters Linux follows (`BINPRM_MAX_RECURSION` is 4).
pub const MAX_DEPTH: usize = 4;
/// Bytes of a file's head read to decide its format (Linux reads 256 for `#!`).
pub const HEAD_LEN: usize = 256;

/// A `#!` line: the interpreter and its optional single argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shebang {
    /// Interpreter path.
    pub interpreter: Vec<u8>,
    /// The rest of the line after the interpreter, trimmed, if any.
    pub arg: Option<Vec<u8>>,
}

impl Shebang {
    /// The arguments the interpreter gets for the script at `path` run with `argv`, as
    /// `binfmt_script` builds them: the interpreter, its argument if any, the script's path,
    /// then the script's arguments after its `argv[0]`.
    pub fn argv(&self, path: Vec<u8>, argv: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let mut next = Vec::with_capacity(argv.len() + 2);
        next.push(self.interpreter.clone());
        next.extend(self.arg.clone());
        next.push(path);
        next.extend(argv.into_iter().skip(1));
        next
    }
}

/// The format of a file's head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// A 64-bit little-endian x86_64 ELF.
    Elf,
    /// A script.
    Script(Shebang),
    /// Neither: `ENOEXEC`.
    Unknown,
}

/// Reads the format from the first bytes of a file.
pub fn format_of(head: &[u8]) -> Format {
    if head.len() >= 20 && head.starts_with(b"\x7fELF") {
        let is_64_le = head[4] == 2 && head[5] == 1;
        let machine = u16::from_le_bytes([head[18], head[19]]);
        let kind = u16::from_le_bytes([head[16], head[17]]);
        // ET_EXEC or ET_DYN: an object file or a core dump is not a program.
        let runnable = matches!(kind, 2 | 3);
        return if is_64_le && machine == 62 && runnable { Format::Elf } else { Format::Unknown };
    }
    match parse_shebang(head) {
        Some(s) => Format::Script(s),
        None => Format::Unknown,
    }
}

/// Bytes read to find an ELF's `PT_INTERP` (program headers and the path usually sit in the
/// first page).
const ELF_HEAD_LEN: usize = 4096;

/// The `PT_INTERP` path of an ELF whose headers are in `head`, without its NUL. Headers or a
/// path beyond `head` are not looked for (the runtime's loader checks them in full).
pub fn interpreter(head: &[u8]) -> Option<Vec<u8>> {
    let word = |at: usize, n: usize| -> Option<u64> {
        let b = head.get(at..at + n)?;
        Some(b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    };
    let phoff = word(32, 8)? as usize;
    let (phentsize, phnum) = (word(54, 2)? as usize, word(56, 2)? as usize);
    if phentsize != 56 {
        return None;
    }
    (0..phnum.min(64)).find_map(|i| {
        let ph = phoff.checked_add(i * 56)?;
        if word(ph, 4)? != 3 {
            return None; // not PT_INTERP
        }
        let (off, len) = (word(ph + 8, 8)? as usize, word(ph + 32, 8)? as usize);
        let path = head.get(off..off.checked_add(len)?)?;
        let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
        Some(path[..end].to_vec())
    })
}

/// Parses a `#!` line.
pub fn parse_shebang(head: &[u8]) -> Option<Shebang> {
    let line = head.strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let is_blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = line.iter().position(|b| !is_blank(b))?;
    let line = &line[start..];
    let end = line.iter().position(is_blank).unwrap_or(line.len());
    let interpreter = line[..end].to_vec();
    let rest = &line[end..];
    let arg = rest
        .iter()
        .position(|b| !is_blank(b))
        .map(|s| {
            let trimmed = &rest[s..];
            let e = trimmed.iter().rposition(|b| !is_blank(b) && *b != b'\r').map_or(0, |e| e + 1);
            trimmed[..e].to_vec()
        })
        .filter(|a| !a.is_empty());
    Some(Shebang { interpreter, arg })
}

/// How a path the program names is found on the host: the NUL-terminated host path of the
/// file, and its canonical guest path where known (the filesystem view's walk).
pub type Lookup<'a> = &'a dyn Fn(&[u8]) -> KResult<(Vec<u8>, Option<Vec<u8>>)>;

/// A file the exec checked: its host path (NUL-terminated) and identity, so that the next
/// image can open it by that path and know it has the same file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The host path, NUL-terminated.
    pub host: Vec<u8>,
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
    /// Its [`crate::vfs::host::Stat::change_stamp`] when it was checked.
    pub changed: [u64; 3],
}

/// What an `execve` runs once its `#!` lines are followed: an x86_64 ELF.
#[derive(Clone, Debug)]
pub struct Target {
    /// The ELF's canonical guest path, where the lookup knows it (`/proc/self/exe`).
    pub exe: Option<Vec<u8>>,
    /// The arguments it gets when `#!` lines were followed: the program's own, with each
    /// script's interpreter (and its argument) and path put in front, as `binfmt_script` does;
    /// `None` when the program is the ELF, and its arguments are its own.
    pub argv: Option<Vec<Vec<u8>>>,
    /// The ELF.
    pub file: Checked,
    /// Its `PT_INTERP`, when the headers in the file's first page name one.
    pub interp: Option<Checked>,
}

/// Checks that `path` (as the program names it) could be executed with `argv`, following `#!`
/// lines, and says what would run. Returns the errno `execve` would fail with.
pub fn target(host: &dyn Host, lookup: Lookup<'_>, path: &[u8], argv: &[Vec<u8>]) -> KResult<Target> {
    let sys = |nr: Sysno, args: [u64; 6]| Errno::check(host.syscall(nr.id() as u32, args));
    let mut path = path.to_vec();
    let mut script_argv: Option<Vec<Vec<u8>>> = None;
    for _ in 0..=MAX_DEPTH {
        let (host_path, guest) = lookup(&path)?;
        let p = host_path.as_ptr() as u64;
        Hc(host).may_execute(&host_path)?;
        // Non-blocking: opening a FIFO to look at it must not wait for a writer.
        let fd = sys(Sysno::openat, [AT_FDCWD as u64, p, O_CLOEXEC | O_NONBLOCK, 0, 0, 0])? as u64;
        // Enough for the `#!` line and, for an ELF, its program headers and interpreter path.
        // On the heap: the handler may run on a program's small signal stack (Rust's threads
        // give it 8 KiB, of which the host's signal frame takes up to 3).
        let mut head = alloc::vec![0u8; ELF_HEAD_LEN];
        let stat = Hc(host).fstat(fd as i32);
        let read = sys(Sysno::pread64, [fd, head.as_mut_ptr() as u64, ELF_HEAD_LEN as u64, 0, 0, 0]);
        host.syscall(Sysno::close.id() as u32, [fd, 0, 0, 0, 0, 0]);
        let stat = stat?;
        if !stat.is_regular() {
            return Err(Errno::EACCES);
        }
        let read = read? as usize;
        match format_of(&head[..read.min(HEAD_LEN)]) {
            Format::Elf => {
                // A dynamic program whose loader is missing fails in the caller, as on Linux.
                let interp = match interpreter(&head[..read]) {
                    Some(interp) => Some(check_interp(host, lookup, &interp)?),
                    None => None,
                };
                let file = Checked {
                    host: host_path,
                    dev: stat.dev(),
                    ino: stat.ino(),
                    changed: stat.change_stamp(),
                };
                return Ok(Target { exe: guest, argv: script_argv, file, interp });
            }
            Format::Script(s) => {
                script_argv = Some(s.argv(path, script_argv.unwrap_or_else(|| argv.to_vec())));
                path = s.interpreter;
            }
            Format::Unknown => return Err(Errno::ENOEXEC),
        }
    }
    Err(Errno::ELOOP)
}

/// Checks that the interpreter `path` is a regular file that may be run.
fn check_interp(host: &dyn Host, lookup: Lookup<'_>, path: &[u8]) -> KResult<Checked> {
    let (interp, _) = lookup(path)?;
    Hc(host).may_execute(&interp)?;
    let stat = Hc(host).stat(&interp)?;
    // A FIFO or a device named as the loader: Linux's `open_exec` refuses it.
    if !stat.is_regular() {
        return Err(Errno::EACCES);
    }
    Ok(Checked { host: interp, dev: stat.dev(), ino: stat.ino(), changed: stat.change_stamp() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_lines_parse_like_linux() {
        let s = parse_shebang(b"#! /usr/bin/env  python3 -u \nprint()").unwrap();
        assert_eq!(s.interpreter, b"/usr/bin/env");
        assert_eq!(s.arg.as_deref(), Some(&b"python3 -u"[..]));
        let s = parse_shebang(b"#!/bin/sh\n").unwrap();
        assert_eq!((s.interpreter.as_slice(), s.arg), (&b"/bin/sh"[..], None));
        assert_eq!(parse_shebang(b"#!\n"), None);
        assert_eq!(parse_shebang(b"echo hi"), None);
    }

    #[test]
    fn the_interpreter_is_found_in_the_program_headers() {
        let mut h = alloc::vec![0u8; 512];
        h[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        h[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        h[56..58].copy_from_slice(&2u16.to_le_bytes()); // e_phnum
        h[64..68].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        h[120..124].copy_from_slice(&3u32.to_le_bytes()); // PT_INTERP
        h[128..136].copy_from_slice(&300u64.to_le_bytes()); // p_offset
        h[152..160].copy_from_slice(&9u64.to_le_bytes()); // p_filesz
        h[300..309].copy_from_slice(b"/lib/ld\0\0");
        assert_eq!(interpreter(&h).as_deref(), Some(&b"/lib/ld"[..]));
        h[120] = 4; // PT_NOTE: a static program
        assert_eq!(interpreter(&h), None);
        assert_eq!(interpreter(&h[..40]), None);
    }

    #[test]
    fn elf_heads_are_sorted_by_class_and_machine() {
        let mut h = [0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[18] = 62;
        h[16] = 3;
        assert_eq!(format_of(&h), Format::Elf);
        h[4] = 1;
        assert_eq!(format_of(&h), Format::Unknown);
        h[4] = 2;
        h[18] = 183; // aarch64
        assert_eq!(format_of(&h), Format::Unknown);
    }
}
