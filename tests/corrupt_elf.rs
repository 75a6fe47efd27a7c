//! Corrupt ELF programs: each is "cannot execute", exit status 126 with one line on stderr,
//! never a crash of the runtime (a signal) nor a failure of cloister itself (125).
//!
//! Every image starts from one hand-made x86_64 program that exits with status 42 (checked
//! first, so that each corrupt one fails for the reason it names) and breaks one thing. Each
//! is run twice: as `cloister run -- PROGRAM`, where the launcher's check may refuse it, and
//! exec'd by a shell inside the sandbox, which the kernel's `execve` lets through to the
//! runtime's loader (`kernel_host::elf::plan`). These tests run under cloister only: Linux
//! itself refuses some of these files and kills the process for others (its loader is past the
//! point of no return), and there is no native status to compare with.

use cloister_tests::{temp_dir, write_file, Mode};

const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PF_R: u32 = 4;
const PF_RX: u32 = 5;
const PF_RW: u32 = 6;

/// Where the good program loads, and its entry point.
const BASE: u64 = 0x40_0000;
const ENTRY: u64 = BASE + CODE as u64;
/// Where the code sits in the file, and the file's length.
const CODE: usize = 0x200;
const LEN: usize = 0x300;
/// cloister-rt's fixed load address (interposer/rt/build.rs).
const RT_BASE: u64 = 0x6f00_0000_0000;

/// One program header.
#[derive(Clone, Copy)]
struct Ph {
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
}

/// The good program's one segment: the whole file, readable and executable.
const TEXT: Ph =
    Ph { kind: PT_LOAD, flags: PF_RX, offset: 0, vaddr: BASE, filesz: LEN as u64, memsz: LEN as u64 };

/// A static x86_64 executable with these program headers (right after the ELF header) and
/// the code `exit(42)` at `CODE`.
fn image(phdrs: &[Ph]) -> Vec<u8> {
    elf(ET_EXEC, ENTRY, phdrs)
}

/// The same program, position-independent (`ET_DYN` at 0): it can be an interpreter.
fn pie() -> Vec<u8> {
    elf(ET_DYN, CODE as u64, &[Ph { vaddr: 0, ..TEXT }])
}

/// An x86_64 ELF of type `kind` with entry point `entry`, these program headers and `exit(42)`.
fn elf(kind: u16, entry: u64, phdrs: &[Ph]) -> Vec<u8> {
    let mut f = vec![0u8; LEN];
    f[..8].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]); // ELFCLASS64, LSB, v1, SysV
    f[16..18].copy_from_slice(&kind.to_le_bytes());
    f[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    f[20..24].copy_from_slice(&1u32.to_le_bytes()); // e_version
    f[24..32].copy_from_slice(&entry.to_le_bytes());
    f[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    f[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    f[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    f[56..58].copy_from_slice(&u16::try_from(phdrs.len()).expect("few").to_le_bytes());
    for (i, p) in phdrs.iter().enumerate() {
        let at = 64 + 56 * i;
        f[at..at + 4].copy_from_slice(&p.kind.to_le_bytes());
        f[at + 4..at + 8].copy_from_slice(&p.flags.to_le_bytes());
        f[at + 8..at + 16].copy_from_slice(&p.offset.to_le_bytes());
        f[at + 16..at + 24].copy_from_slice(&p.vaddr.to_le_bytes());
        f[at + 24..at + 32].copy_from_slice(&p.vaddr.to_le_bytes()); // p_paddr
        f[at + 32..at + 40].copy_from_slice(&p.filesz.to_le_bytes());
        f[at + 40..at + 48].copy_from_slice(&p.memsz.to_le_bytes());
        f[at + 48..at + 56].copy_from_slice(&0x1000u64.to_le_bytes()); // p_align
    }
    // mov edi, 42; mov eax, 60 (exit); syscall
    f[CODE..CODE + 12].copy_from_slice(&[0xbf, 42, 0, 0, 0, 0xb8, 60, 0, 0, 0, 0x0f, 0x05]);
    f
}

/// Where a `PT_INTERP` path is stored in the file: after the code.
const INTERP_AT: usize = CODE + 0x40;

/// The `PT_INTERP` header of a path of `len` bytes at `INTERP_AT`.
fn interp_header(len: usize) -> Ph {
    let len = len as u64;
    Ph {
        kind: PT_INTERP,
        flags: PF_R,
        offset: INTERP_AT as u64,
        vaddr: BASE + INTERP_AT as u64,
        filesz: len,
        memsz: len,
    }
}

/// The good program with a `PT_INTERP` header `interp` and the bytes `path` at `INTERP_AT`.
fn with_interp_header(interp: Ph, path: &[u8]) -> Vec<u8> {
    assert!(INTERP_AT + path.len() <= LEN, "the interpreter path does not fit in the image");
    let mut f = image(&[interp, TEXT]);
    f[INTERP_AT..INTERP_AT + path.len()].copy_from_slice(path);
    f
}

/// The good program with a `PT_INTERP` header naming `path` (with its NUL, if it has one).
fn with_interp(path: &[u8]) -> Vec<u8> {
    with_interp_header(interp_header(path.len()), path)
}

/// Runs `bytes` as a program under cloister, directly and exec'd from a shell inside the
/// sandbox, and checks both runs for status 126 and one line naming it.
fn refused(name: &str, bytes: &[u8]) {
    let path = write_program(name, bytes);
    Mode::Cloister.command(&path).output().expect_failure_line(126, &path);
    Mode::Cloister
        .command("/bin/sh")
        .args(["-c", "exec \"$0\"", &path])
        .output()
        .expect_failure_line(126, &path);
}

/// Runs `bytes` as a program under cloister, only directly.
fn refused_directly(name: &str, bytes: &[u8]) {
    let path = write_program(name, bytes);
    Mode::Cloister.command(&path).output().expect_failure_line(126, &path);
}

/// Writes an executable file in a directory of its own; its path.
fn write_program(name: &str, bytes: &[u8]) -> String {
    let path = temp_dir("corrupt-elf").join(name);
    write_file(&path, bytes, 0o755);
    path.into_os_string().into_string().expect("a UTF-8 temporary path")
}

#[test]
fn the_good_program_runs() {
    // The base every corrupt image breaks: if this fails, the others prove nothing.
    let dir = temp_dir("corrupt-elf");
    let good = dir.join("good");
    write_file(&good, image(&[TEXT]), 0o755);
    Mode::Native.command(&good).output().expect_code(42);
    Mode::Cloister.command(&good).output().expect_code(42);
    // ... and so does one with a PT_INTERP naming a position-independent copy (which runs).
    let pie_path = dir.join("good-pie");
    write_file(&pie_path, pie(), 0o755);
    Mode::Cloister.command(&pie_path).output().expect_code(42);
    let interp = [pie_path.to_str().expect("a UTF-8 temporary path").as_bytes(), b"\0"].concat();
    let path = dir.join("good-with-interpreter");
    write_file(&path, with_interp(&interp), 0o755);
    Mode::Cloister.command(&path).output().expect_code(42);
}

#[test]
fn truncated_headers_are_126() {
    let good = image(&[TEXT, TEXT, TEXT]);
    refused("cut-in-elf-header", &good[..40]);
    refused("cut-in-program-headers", &good[..100]);
}

#[test]
fn bad_program_header_offsets_are_126() {
    for (name, phoff) in
        [("phoff-past-end", LEN as u64 - 10), ("phoff-huge", u64::MAX - 0x20), ("phoff-negative", 1 << 63)]
    {
        let mut f = image(&[TEXT]);
        f[32..40].copy_from_slice(&phoff.to_le_bytes());
        refused(name, &f);
    }
    let mut f = image(&[TEXT]);
    f[56..58].copy_from_slice(&0u16.to_le_bytes()); // e_phnum: no program headers
    refused("no-program-headers", &f);
    let mut f = image(&[TEXT]);
    f[54..56].copy_from_slice(&32u16.to_le_bytes()); // e_phentsize of a 32-bit file
    refused("phentsize-32", &f);
}

#[test]
fn overlapping_and_unordered_segments_are_126() {
    let data = Ph { flags: PF_RW, vaddr: BASE + 0x100, ..TEXT };
    refused("overlapping-segments", &image(&[TEXT, data]));
    let below = Ph { flags: PF_RW, vaddr: BASE - 0x1000, ..TEXT };
    refused("unordered-segments", &image(&[TEXT, below]));
}

#[test]
fn huge_segments_are_126() {
    refused(
        "memsz-2^50",
        &image(&[TEXT, Ph { flags: PF_RW, vaddr: BASE + 0x1000, filesz: 0, memsz: 1 << 50, ..TEXT }]),
    );
    refused("memsz-max", &image(&[Ph { memsz: u64::MAX, ..TEXT }]));
    refused("filesz-max", &image(&[Ph { filesz: u64::MAX - 0x1000, memsz: u64::MAX - 0x1000, ..TEXT }]));
    // A segment whose end wraps around the address space, placed on the runtime's own code:
    // the loader once mapped it there (MAP_FIXED), outside the span it had reserved.
    let wraps = Ph {
        kind: PT_LOAD,
        flags: PF_RX,
        offset: 0,
        vaddr: RT_BASE,
        filesz: 0x100,
        memsz: u64::MAX - RT_BASE,
    };
    refused("segment-wraps-onto-runtime", &image(&[TEXT, wraps]));
}

#[test]
fn segments_past_the_end_of_the_file_are_126() {
    // The file page is mapped past the end of the file, and clearing its bss tail faulted
    // (SIGBUS) in the runtime.
    let past =
        Ph { kind: PT_LOAD, flags: PF_RW, offset: 0x1000, vaddr: BASE + 0x1000, filesz: 0x10, memsz: 0x2000 };
    refused("segment-past-eof", &image(&[TEXT, past]));
}

#[test]
fn entry_points_outside_the_segments_are_126() {
    let mut f = image(&[TEXT]);
    f[24..32].copy_from_slice(&0u64.to_le_bytes());
    refused("entry-zero", &f);
    f[24..32].copy_from_slice(&(RT_BASE + 0x1000).to_le_bytes());
    refused("entry-in-runtime", &f);
}

#[test]
fn bad_interpreter_headers_are_126() {
    // Directly only: inside the sandbox, execve looks for the empty path and fails (ENOENT).
    refused_directly("interp-empty", &with_interp(b"\0"));
    refused("interp-no-nul", &with_interp(b"/lib64/ld-linux-x86-64.so.2"));
    let path = b"/lib64/ld-linux-x86-64.so.2\0";
    refused(
        "interp-past-eof",
        &with_interp_header(Ph { offset: 0x10_0000, ..interp_header(path.len()) }, path),
    );
    refused("interp-huge", &with_interp_header(Ph { filesz: 1 << 40, ..interp_header(path.len()) }, path));
    refused("interp-a-directory", &with_interp(b"/\0"));
    // An interpreter that is itself corrupt.
    let bad = write_program("corrupt-interpreter", &image(&[TEXT])[..100]);
    refused("interp-corrupt", &with_interp(&[bad.as_bytes(), b"\0"].concat()));
}

#[test]
fn a_missing_interpreter_is_126() {
    // Only when cloister runs it: inside the sandbox, execve fails with ENOENT, as on Linux.
    refused_directly("missing-interpreter", &with_interp(b"/nonexistent/ld.so\0"));
}
