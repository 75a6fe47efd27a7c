//! The plan for loading an ELF program: its headers read, checked and turned into the list of
//! mappings to make, with no mapping made. The runtime's loader (`cloister-rt`'s `loader.rs`)
//! carries the plan out; keeping the parse here, pure, lets it be unit-tested and fuzzed on the
//! host (`fuzz/fuzz_targets/elf.rs`).
//!
//! Every number a plan holds has been checked so that the loader's address arithmetic cannot
//! overflow and every mapping lands inside the span the loader reserves first: a corrupt file
//! is a [`PlanError::Corrupt`] (exit 126 for the user), never a mapping over the runtime.
//!
//! See `elf(5)`, the System V x86_64 ABI and the host kernel's `load_elf_binary`, whose checks
//! this follows (and a few more: segments in order, inside the file, an entry point inside them).

use crate::abi::{page_up, PAGE_SIZE};
use alloc::vec::Vec;
use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{EM_X86_64, ET_DYN, ET_EXEC};
use goblin::elf::program_header::{ProgramHeader, PF_R, PF_W, PF_X, PT_INTERP, PT_LOAD, PT_PHDR};
use scroll::Pread;

/// Bytes of a 64-bit ELF header.
pub const EHDR_LEN: usize = 64;
/// Bytes of one 64-bit program header.
pub const PHENT: usize = 56;
/// Most program headers a program may have (Linux allows 64 KiB of them; real programs have
/// about a dozen).
pub const MAX_PHNUM: usize = 256;
/// Widest span of memory a program may ask for (1 TiB).
pub const MAX_SPAN: u64 = 1 << 40;
/// Longest `PT_INTERP` path, with its NUL (Linux's limit is `PATH_MAX`).
pub const MAX_INTERP: u64 = 4096;

/// One `PT_LOAD` segment, checked: `offset + filesz` and `vaddr + memsz` rounded up to a page
/// do not overflow, `filesz <= memsz`, and `vaddr` and `offset` agree modulo the page size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Where it goes, before the load bias.
    pub vaddr: u64,
    /// Bytes in memory (the rest after `filesz` is zeroed: bss).
    pub memsz: u64,
    /// Bytes from the file.
    pub filesz: u64,
    /// Where its bytes start in the file.
    pub offset: u64,
    /// `mmap` protection bits (`PROT_READ` 1, `PROT_WRITE` 2, `PROT_EXEC` 4).
    pub prot: u64,
}

/// What to map, and what the initial stack's auxiliary vector says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// `ET_DYN` (PIE, static-pie, `ld.so`): goes wherever the loader puts it, at a bias.
    pub position_independent: bool,
    /// Entry point, before the bias; inside `[lo, hi)`.
    pub entry: u64,
    /// Lowest page of the image, before the bias.
    pub lo: u64,
    /// First page after the image, before the bias; `lo < hi` and `hi - lo <= MAX_SPAN`.
    pub hi: u64,
    /// The `PT_LOAD` segments, in ascending order, not overlapping, each inside `[lo, hi)`.
    pub segments: Vec<Segment>,
    /// Address of the program headers in memory before the bias (`AT_PHDR`), if they are
    /// mapped.
    pub phdr: Option<u64>,
    /// Number of program headers (`AT_PHNUM`).
    pub phnum: u16,
    /// `PT_INTERP`'s path, ending in its one NUL, if any.
    pub interp: Option<Vec<u8>>,
}

/// Why a plan could not be made.
#[derive(Debug, PartialEq, Eq)]
pub enum PlanError<E> {
    /// The file is not a loadable x86_64 program; the text says why, for "cannot execute: ...".
    Corrupt(&'static str),
    /// Reading the file failed, with the reader's own error.
    Read(E),
}

/// Reads and checks the headers of an ELF program `file_len` bytes long. `read(buf, offset)`
/// fills `buf` with the file's bytes at `offset`, or fails (a file that ends early is the
/// reader's error to name).
pub fn plan<E>(
    mut read: impl FnMut(&mut [u8], u64) -> Result<(), E>,
    file_len: u64,
) -> Result<Plan, PlanError<E>> {
    use PlanError::Corrupt;
    let mut ehdr = [0u8; EHDR_LEN];
    read(&mut ehdr, 0).map_err(PlanError::Read)?;
    let header = goblin::elf::Elf::parse_header(&ehdr).map_err(|_| Corrupt("its ELF header is corrupt"))?;
    if header.e_ident[4] != 2 || header.e_ident[5] != 1 || header.e_machine != EM_X86_64 {
        return Err(Corrupt("it is not an x86_64 executable"));
    }
    if header.e_type != ET_EXEC && header.e_type != ET_DYN {
        return Err(Corrupt("it is neither an executable nor a position-independent one"));
    }
    let phnum = usize::from(header.e_phnum);
    if usize::from(header.e_phentsize) != PHENT || phnum == 0 || phnum > MAX_PHNUM {
        return Err(Corrupt("its program headers are corrupt"));
    }
    let mut ph_bytes = alloc::vec![0u8; PHENT * phnum];
    read(&mut ph_bytes, header.e_phoff).map_err(PlanError::Read)?;
    // Read where they lie, one at a time, each time they are looked through: a list of them
    // would be a copy of the headers in every exec'd image's heap, and the pages it fills.
    let ctx = Ctx::new(Container::Big, Endian::Little);
    let phdrs = || {
        ph_bytes.chunks_exact(PHENT).map(move |b| {
            b.pread_with::<ProgramHeader>(0, ctx).map_err(|_| Corrupt("its program headers are corrupt"))
        })
    };
    let segments = segments(phdrs())?;
    // The file must hold every segment's bytes: a mapping past its end faults (SIGBUS) when the
    // loader clears the tail of the last file page.
    if segments.iter().any(|s| s.filesz > 0 && s.offset + s.filesz > file_len) {
        return Err(Corrupt("a segment lies beyond the end of the file"));
    }
    let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
        return Err(Corrupt("it has nothing to load"));
    };
    let lo = first.vaddr & !(PAGE_SIZE - 1);
    let hi = page_up(last.vaddr + last.memsz);
    if hi <= lo || hi - lo > MAX_SPAN {
        return Err(Corrupt("its segments span an impossible range"));
    }
    if !(lo..hi).contains(&header.e_entry) {
        return Err(Corrupt("its entry point lies outside its segments"));
    }
    let find = |kind: u32| phdrs().find_map(|p| p.ok().filter(|p| p.p_type == kind));
    let phdr = match find(PT_PHDR) {
        Some(p) => Some(p.p_vaddr).filter(|v| (lo..hi).contains(v)),
        // Without PT_PHDR, the headers are where the segment holding their file bytes maps them.
        None => segments
            .iter()
            .find(|s| s.offset <= header.e_phoff && header.e_phoff - s.offset < s.filesz)
            .map(|s| s.vaddr + (header.e_phoff - s.offset)),
    };
    let interp = match find(PT_INTERP) {
        Some(p) => Some(interpreter(&p, &mut read)?),
        None => None,
    };
    Ok(Plan {
        position_independent: header.e_type == ET_DYN,
        entry: header.e_entry,
        lo,
        hi,
        segments,
        phdr,
        phnum: header.e_phnum,
        interp,
    })
}

/// The `PT_LOAD` segments, checked one by one and against each other.
fn segments<E>(
    phdrs: impl Iterator<Item = Result<ProgramHeader, PlanError<E>>>,
) -> Result<Vec<Segment>, PlanError<E>> {
    use PlanError::Corrupt;
    let mut out: Vec<Segment> = Vec::new();
    for p in phdrs {
        let p = p?;
        if p.p_type != PT_LOAD {
            continue;
        }
        if p.p_filesz > p.p_memsz || p.p_vaddr % PAGE_SIZE != p.p_offset % PAGE_SIZE {
            return Err(Corrupt("a segment is misaligned or larger on disk than in memory"));
        }
        // Room for the end of the segment rounded up to a page: the loader adds and rounds.
        let fits =
            |start: u64, len: u64| start.checked_add(len).is_some_and(|end| end <= u64::MAX - PAGE_SIZE);
        if !fits(p.p_vaddr, p.p_memsz) || !fits(p.p_offset, p.p_filesz) {
            return Err(Corrupt("a segment is larger than the address space"));
        }
        // elf(5): loadable segments are sorted by address. Overlapping ones would map over
        // each other (and, unsorted, outside the span the loader reserves).
        if out.last().is_some_and(|prev| p.p_vaddr < prev.vaddr + prev.memsz) {
            return Err(Corrupt("its segments overlap or are out of order"));
        }
        out.push(Segment {
            vaddr: p.p_vaddr,
            memsz: p.p_memsz,
            filesz: p.p_filesz,
            offset: p.p_offset,
            prot: prot_of(p.p_flags),
        });
    }
    Ok(out)
}

/// The interpreter's path: as Linux, it must end in a NUL; it ends at its first NUL.
fn interpreter<E>(
    p: &ProgramHeader,
    read: &mut impl FnMut(&mut [u8], u64) -> Result<(), E>,
) -> Result<Vec<u8>, PlanError<E>> {
    if p.p_filesz < 2 || p.p_filesz > MAX_INTERP {
        return Err(PlanError::Corrupt("its interpreter path is corrupt"));
    }
    let mut path = alloc::vec![0u8; p.p_filesz as usize];
    read(&mut path, p.p_offset).map_err(PlanError::Read)?;
    let end = path.iter().position(|&b| b == 0);
    match end {
        Some(end) if end > 0 && path.last() == Some(&0) => {
            path.truncate(end + 1);
            Ok(path)
        }
        _ => Err(PlanError::Corrupt("its interpreter path is corrupt")),
    }
}

/// `mmap` protection bits of a segment's `p_flags`.
fn prot_of(flags: u32) -> u64 {
    let mut p = 0;
    if flags & PF_R != 0 {
        p |= 1;
    }
    if flags & PF_W != 0 {
        p |= 2;
    }
    if flags & PF_X != 0 {
        p |= 4;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A program header: type, flags, offset, vaddr, filesz, memsz.
    type Ph = (u32, u32, u64, u64, u64, u64);

    /// An x86_64 ELF of `len` bytes with these program headers right after its header.
    fn elf(kind: u16, entry: u64, phdrs: &[Ph], len: usize) -> Vec<u8> {
        let mut f = alloc::vec![0u8; len];
        f[..4].copy_from_slice(b"\x7fELF");
        (f[4], f[5], f[6]) = (2, 1, 1);
        f[16..18].copy_from_slice(&kind.to_le_bytes());
        f[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        f[20..24].copy_from_slice(&1u32.to_le_bytes());
        f[24..32].copy_from_slice(&entry.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes());
        f[52..54].copy_from_slice(&64u16.to_le_bytes());
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for (i, &(t, flags, off, vaddr, filesz, memsz)) in phdrs.iter().enumerate() {
            let at = 64 + 56 * i;
            f[at..at + 4].copy_from_slice(&t.to_le_bytes());
            f[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
            f[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
            f[at + 16..at + 24].copy_from_slice(&vaddr.to_le_bytes());
            f[at + 32..at + 40].copy_from_slice(&filesz.to_le_bytes());
            f[at + 40..at + 48].copy_from_slice(&memsz.to_le_bytes());
        }
        f
    }

    fn plan_of(file: &[u8]) -> Result<Plan, PlanError<()>> {
        plan(
            |buf: &mut [u8], off| {
                let start = usize::try_from(off).map_err(|_| ())?;
                let src = file.get(start..start.checked_add(buf.len()).ok_or(())?).ok_or(())?;
                buf.copy_from_slice(src);
                Ok(())
            },
            file.len() as u64,
        )
    }

    const TEXT: Ph = (PT_LOAD, PF_R | PF_X, 0, 0x40_0000, 0x200, 0x200);

    #[test]
    fn a_static_program_plans_one_mapping_per_segment() {
        let data = (PT_LOAD, PF_R | PF_W, 0x1000, 0x40_1000, 0x10, 0x3000);
        let p = plan_of(&elf(ET_EXEC, 0x40_0100, &[TEXT, data], 0x1010)).unwrap();
        assert!(!p.position_independent);
        assert_eq!((p.lo, p.hi, p.entry, p.phnum), (0x40_0000, 0x40_4000, 0x40_0100, 2));
        assert_eq!(p.segments.len(), 2);
        assert_eq!((p.segments[0].prot, p.segments[1].prot), (5, 3));
        assert_eq!(p.phdr, Some(0x40_0040));
        assert_eq!(p.interp, None);
    }

    #[test]
    fn the_interpreter_path_ends_at_its_nul_and_must_have_one() {
        let mut f = elf(
            ET_DYN,
            0x100,
            &[(PT_INTERP, PF_R, 0x180, 0x180, 12, 12), (TEXT.0, 5, 0, 0, 0x200, 0x200)],
            0x200,
        );
        f[0x180..0x18c].copy_from_slice(b"/lib/ld\0xyz\0");
        assert_eq!(plan_of(&f).unwrap().interp.as_deref(), Some(&b"/lib/ld\0"[..]));
        f[0x18b] = b'!';
        assert_eq!(plan_of(&f), Err(PlanError::Corrupt("its interpreter path is corrupt")));
        f[0x180] = 0;
        f[0x18b] = 0;
        assert_eq!(plan_of(&f), Err(PlanError::Corrupt("its interpreter path is corrupt")));
    }

    #[test]
    fn a_segment_whose_end_wraps_around_is_corrupt() {
        // Regression: the old loader took the span from saturated ends, so this segment fell
        // outside the reserved span and was mapped with MAP_FIXED over whatever was there
        // (the runtime's own code, at its fixed address).
        let wraps = (PT_LOAD, PF_R, 0x1000, 0x1_0000_0000_1000, 0x10, u64::MAX - 0x1_0000_0000_1000);
        assert_eq!(
            plan_of(&elf(ET_EXEC, 0x40_0100, &[TEXT, wraps], 0x1010)),
            Err(PlanError::Corrupt("a segment is larger than the address space"))
        );
    }

    #[test]
    fn segments_out_of_order_overlapping_or_past_the_file_are_corrupt() {
        let before = (PT_LOAD, PF_R, 0x1000, 0x3f_f000, 0x10, 0x10);
        let overlapping = (PT_LOAD, PF_R, 0x1000, 0x40_0000, 0x10, 0x10);
        let order = Err(PlanError::Corrupt("its segments overlap or are out of order"));
        assert_eq!(plan_of(&elf(ET_EXEC, 0x40_0100, &[TEXT, before], 0x1010)), order);
        assert_eq!(plan_of(&elf(ET_EXEC, 0x40_0100, &[TEXT, overlapping], 0x1010)), order);
        let past_end = (PT_LOAD, PF_R, 0x1000, 0x40_1000, 0x2000, 0x2000);
        assert_eq!(
            plan_of(&elf(ET_EXEC, 0x40_0100, &[TEXT, past_end], 0x1010)),
            Err(PlanError::Corrupt("a segment lies beyond the end of the file"))
        );
    }

    #[test]
    fn spans_entry_points_and_headers_are_checked() {
        let huge = (PT_LOAD, PF_R | PF_W, 0x1000, 0x40_1000, 0, 1 << 50);
        assert_eq!(
            plan_of(&elf(ET_EXEC, 0x40_0100, &[TEXT, huge], 0x1010)),
            Err(PlanError::Corrupt("its segments span an impossible range"))
        );
        assert_eq!(
            plan_of(&elf(ET_EXEC, 0x50_0000, &[TEXT], 0x200)),
            Err(PlanError::Corrupt("its entry point lies outside its segments"))
        );
        assert_eq!(plan_of(&elf(ET_EXEC, 0x40_0100, &[TEXT], 0x200)[..100]), Err(PlanError::Read(())));
        let mut f = elf(ET_EXEC, 0x40_0100, &[TEXT], 0x200);
        f[56] = 0;
        assert_eq!(plan_of(&f), Err(PlanError::Corrupt("its program headers are corrupt")));
        let note = (4, PF_R, 0, 0, 0, 0);
        assert_eq!(
            plan_of(&elf(ET_EXEC, 0x40_0100, &[note], 0x200)),
            Err(PlanError::Corrupt("it has nothing to load"))
        );
    }
}
