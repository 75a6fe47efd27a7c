//! Hand-made executables that cloister must refuse with exit status 126: complete, valid ELF
//! images for other architectures (each would exit with status 42 on its own machine), and
//! broken ones. Made byte by byte so that no cross toolchain or multilib is needed.
//!
//! Layouts from the System V ABI (`elf(5)`): `Elf32_Ehdr` is 52 bytes and `Elf32_Phdr` 32;
//! `Elf64_Ehdr` is 64 bytes and `Elf64_Phdr` 56.

use std::fs;
use std::path::Path;

const ET_EXEC: u16 = 2;
const EM_386: u16 = 3;
const EM_AARCH64: u16 = 183;
const PT_LOAD: u32 = 1;
const PF_R_X: u32 = 5;

/// An i386 (`ELFCLASS32`, `EM_386`) static executable loaded at 0x08048000 that calls
/// `exit(42)` through `int 0x80`. Runs natively only where the host kernel has IA-32
/// emulation.
pub fn i386_exit42() -> Vec<u8> {
    const BASE: u32 = 0x0804_8000;
    const HEADERS: u32 = 52 + 32;
    // mov eax, 1 (exit); mov ebx, 42; int 0x80
    let code: &[u8] = &[0xb8, 0x01, 0x00, 0x00, 0x00, 0xbb, 0x2a, 0x00, 0x00, 0x00, 0xcd, 0x80];
    let size = HEADERS + u32::try_from(code.len()).expect("tiny");
    let mut elf = Vec::new();
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1, 1, 0]); // ELFCLASS32, LSB, v1, SysV
    elf.extend_from_slice(&[0; 8]);
    elf.extend_from_slice(&ET_EXEC.to_le_bytes());
    elf.extend_from_slice(&EM_386.to_le_bytes());
    elf.extend_from_slice(&1u32.to_le_bytes()); // e_version
    elf.extend_from_slice(&(BASE + HEADERS).to_le_bytes()); // e_entry
    elf.extend_from_slice(&52u32.to_le_bytes()); // e_phoff
    elf.extend_from_slice(&0u32.to_le_bytes()); // e_shoff
    elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    elf.extend_from_slice(&52u16.to_le_bytes()); // e_ehsize
    elf.extend_from_slice(&32u16.to_le_bytes()); // e_phentsize
    elf.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    elf.extend_from_slice(&40u16.to_le_bytes()); // e_shentsize
    elf.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    elf.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    assert_eq!(elf.len(), 52);
    elf.extend_from_slice(&PT_LOAD.to_le_bytes());
    elf.extend_from_slice(&0u32.to_le_bytes()); // p_offset
    elf.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    elf.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    elf.extend_from_slice(&size.to_le_bytes()); // p_filesz
    elf.extend_from_slice(&size.to_le_bytes()); // p_memsz
    elf.extend_from_slice(&PF_R_X.to_le_bytes());
    elf.extend_from_slice(&0x1000u32.to_le_bytes()); // p_align
    assert_eq!(elf.len(), 84);
    elf.extend_from_slice(code);
    elf
}

/// An AArch64 (`ELFCLASS64`, `EM_AARCH64`) static executable loaded at 0x400000 that calls
/// `exit(42)` through `svc #0`: a valid 64-bit ELF for the wrong machine.
pub fn aarch64_exit42() -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    const HEADERS: u64 = 64 + 56;
    // mov x0, #42; mov x8, #93 (exit); svc #0
    let code: Vec<u8> =
        [0xd280_0540u32, 0xd280_0ba8, 0xd400_0001].iter().flat_map(|insn| insn.to_le_bytes()).collect();
    let size = HEADERS + u64::try_from(code.len()).expect("tiny");
    let mut elf = Vec::new();
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]); // ELFCLASS64, LSB, v1, SysV
    elf.extend_from_slice(&[0; 8]);
    elf.extend_from_slice(&ET_EXEC.to_le_bytes());
    elf.extend_from_slice(&EM_AARCH64.to_le_bytes());
    elf.extend_from_slice(&1u32.to_le_bytes()); // e_version
    elf.extend_from_slice(&(BASE + HEADERS).to_le_bytes()); // e_entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    elf.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    elf.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    elf.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    elf.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    elf.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    elf.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    assert_eq!(elf.len(), 64);
    elf.extend_from_slice(&PT_LOAD.to_le_bytes());
    elf.extend_from_slice(&PF_R_X.to_le_bytes());
    elf.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    elf.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    elf.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    elf.extend_from_slice(&size.to_le_bytes()); // p_filesz
    elf.extend_from_slice(&size.to_le_bytes()); // p_memsz
    elf.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    assert_eq!(elf.len(), 120);
    elf.extend_from_slice(&code);
    elf
}

/// The ELF magic followed by bytes that are no ELF header at all.
pub fn magic_and_garbage() -> Vec<u8> {
    let mut bytes = b"\x7fELF".to_vec();
    // A fixed pseudo-random pattern (xorshift), so failures are reproducible.
    let mut x: u32 = 0x9e37_79b9;
    for _ in 0..1020 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.push(x.to_le_bytes()[0]);
    }
    bytes
}

/// The first `len` bytes of a real x86_64 executable: a valid ELF header whose program
/// headers run past the end of the file.
pub fn truncated(real: &Path, len: usize) -> Vec<u8> {
    let mut bytes = fs::read(real).unwrap_or_else(|e| panic!("cannot read {}: {e}", real.display()));
    assert!(bytes.len() > len, "{} is too small to truncate", real.display());
    bytes.truncate(len);
    bytes
}
