//! The ELF loader: maps a program (and its interpreter) the way the host kernel's
//! `load_elf_binary` would, so that the runtime, not the host, decides what the program's
//! initial state is. Headers are parsed with goblin; see `elf(5)` and the System V x86_64 ABI.
//!
//! Handles `ET_EXEC` (fixed address) and `ET_DYN` (PIE, static-pie, `ld.so`), `PT_LOAD`
//! segments with bss, `PT_INTERP` and `PT_PHDR`.

use alloc::vec::Vec;
use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{EM_X86_64, ET_DYN, ET_EXEC};
use goblin::elf::program_header::{ProgramHeader, PF_R, PF_W, PF_X, PT_INTERP, PT_LOAD, PT_PHDR};
use kernel_host::abi::{page_up, PAGE_SIZE};

use crate::sys::{self, nr};

/// An open file the loader reads from.
pub struct File {
    /// Its descriptor.
    pub fd: i32,
}

impl File {
    /// Opens `path` (NUL-terminated) read-only; the raw errno on failure.
    pub fn open(path: &[u8]) -> Result<File, i64> {
        let r = sys::call(nr::OPENAT, &[(-100i64) as u64, path.as_ptr() as u64, 0o2_000_000]);
        if r < 0 {
            Err(-r)
        } else {
            Ok(File { fd: r as i32 })
        }
    }

    /// Reads up to `buf.len()` bytes at `offset`.
    pub fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize, i64> {
        let r = sys::call(nr::PREAD64, &[self.fd as u64, buf.as_mut_ptr() as u64, buf.len() as u64, offset]);
        if r < 0 {
            Err(-r)
        } else {
            Ok(r as usize)
        }
    }
}

impl Drop for File {
    fn drop(&mut self) {
        sys::call(nr::CLOSE, &[self.fd as u64]);
    }
}

/// Why an image could not be loaded. Each is "cannot execute" (exit 126) for the user.
#[derive(Debug)]
pub enum LoadError {
    /// The headers are not those of an x86_64 executable.
    Format(&'static str),
    /// Reading the file failed.
    Read(i64),
    /// The host refused a mapping.
    Map(i64),
}

/// A mapped image.
pub struct Image {
    /// Load bias: what was added to every `p_vaddr`.
    pub bias: u64,
    /// Entry point, biased.
    pub entry: u64,
    /// Address of the program headers in memory.
    pub phdr: u64,
    /// Number of program headers.
    pub phnum: u64,
    /// Size of one program header.
    pub phent: u64,
    /// First address after the highest segment.
    pub end: u64,
    /// `PT_INTERP`'s path, NUL-terminated, if any.
    pub interp: Option<Vec<u8>>,
}

fn read_exact(file: &File, len: usize, offset: u64) -> Result<Vec<u8>, LoadError> {
    let mut buf = alloc::vec![0u8; len];
    let mut done = 0;
    while done < len {
        match file.pread(&mut buf[done..], offset + done as u64).map_err(LoadError::Read)? {
            0 => return Err(LoadError::Format("the file ends inside its headers")),
            n => done += n,
        }
    }
    Ok(buf)
}

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

fn map(addr: u64, len: u64, prot: u64, flags: u64, fd: i64, off: u64) -> Result<u64, LoadError> {
    let r = sys::call(nr::MMAP, &[addr, len, prot, flags, fd as u64, off]);
    if r < 0 {
        Err(LoadError::Map(-r))
    } else {
        Ok(r as u64)
    }
}

const MAP_PRIVATE: u64 = 0x02;
const MAP_FIXED: u64 = 0x10;
const MAP_ANON: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

/// Maps the ELF image in `file`. `hint` is where a position-independent image should go
/// (0: wherever the host puts it).
pub fn load(file: &File, hint: u64) -> Result<Image, LoadError> {
    let ehdr_bytes = read_exact(file, 64, 0)?;
    let header = goblin::elf::Elf::parse_header(&ehdr_bytes)
        .map_err(|_| LoadError::Format("its ELF header is corrupt"))?;
    if header.e_ident[4] != 2 || header.e_machine != EM_X86_64 {
        return Err(LoadError::Format("it is not an x86_64 executable"));
    }
    if header.e_type != ET_EXEC && header.e_type != ET_DYN {
        return Err(LoadError::Format("it is neither an executable nor a position-independent one"));
    }
    if header.e_phentsize as usize != 56 || header.e_phnum == 0 || header.e_phnum > 256 {
        return Err(LoadError::Format("its program headers are corrupt"));
    }
    let ph_len = 56 * header.e_phnum as usize;
    let ph_bytes = read_exact(file, ph_len, header.e_phoff)?;
    let ctx = Ctx::new(Container::Big, Endian::Little);
    let phdrs = ProgramHeader::parse(&ph_bytes, 0, header.e_phnum as usize, ctx)
        .map_err(|_| LoadError::Format("its program headers are corrupt"))?;
    let loads: Vec<&ProgramHeader> = phdrs.iter().filter(|p| p.p_type == PT_LOAD).collect();
    if loads.is_empty() {
        return Err(LoadError::Format("it has nothing to load"));
    }
    for p in &loads {
        if p.p_filesz > p.p_memsz || p.p_vaddr % PAGE_SIZE != p.p_offset % PAGE_SIZE {
            return Err(LoadError::Format("a segment is misaligned or larger on disk than in memory"));
        }
    }
    let lo = loads.iter().map(|p| p.p_vaddr & !(PAGE_SIZE - 1)).min().unwrap_or(0);
    let hi = loads.iter().map(|p| page_up(p.p_vaddr.saturating_add(p.p_memsz))).max().unwrap_or(0);
    if hi <= lo || hi - lo > (1 << 40) {
        return Err(LoadError::Format("its segments span an impossible range"));
    }
    let span = hi - lo;

    // Reserve the whole span first so that the segments land together, then map each over it.
    let bias = if header.e_type == ET_DYN {
        let flags = MAP_PRIVATE | MAP_ANON | if hint != 0 { MAP_FIXED_NOREPLACE } else { 0 };
        let at =
            map(hint, span, 0, flags, -1, 0).or_else(|_| map(0, span, 0, MAP_PRIVATE | MAP_ANON, -1, 0))?;
        at - lo
    } else {
        map(lo, span, 0, MAP_PRIVATE | MAP_ANON | MAP_FIXED_NOREPLACE, -1, 0)?;
        0
    };

    for p in &loads {
        map_segment(file, p, bias)?;
    }

    let phdr = match phdrs.iter().find(|p| p.p_type == PT_PHDR) {
        Some(p) => p.p_vaddr + bias,
        None => loads
            .iter()
            .find(|p| p.p_offset <= header.e_phoff && header.e_phoff < p.p_offset + p.p_filesz)
            .map_or(0, |p| p.p_vaddr + (header.e_phoff - p.p_offset) + bias),
    };
    let interp = match phdrs.iter().find(|p| p.p_type == PT_INTERP) {
        Some(p) if p.p_filesz > 1 && p.p_filesz <= 4096 => {
            let mut path = read_exact(file, p.p_filesz as usize, p.p_offset)?;
            if path.last() != Some(&0) {
                path.push(0);
            }
            Some(path)
        }
        Some(_) => return Err(LoadError::Format("its interpreter path is corrupt")),
        None => None,
    };
    Ok(Image {
        bias,
        entry: header.e_entry + bias,
        phdr,
        phnum: u64::from(header.e_phnum),
        phent: 56,
        end: hi + bias,
        interp,
    })
}

fn map_segment(file: &File, p: &ProgramHeader, bias: u64) -> Result<(), LoadError> {
    let prot = prot_of(p.p_flags);
    let page_off = p.p_vaddr & (PAGE_SIZE - 1);
    let start = p.p_vaddr - page_off + bias;
    let file_end = p.p_vaddr + p.p_filesz + bias;
    let mem_end = page_up(p.p_vaddr + p.p_memsz + bias);
    let has_bss = p.p_memsz > p.p_filesz;
    if p.p_filesz > 0 {
        // The last file page is made writable while its bss tail is cleared.
        let map_prot = if has_bss { prot | 2 } else { prot };
        map(
            start,
            page_up(file_end) - start,
            map_prot,
            MAP_PRIVATE | MAP_FIXED,
            i64::from(file.fd),
            p.p_offset - page_off,
        )?;
        if has_bss && file_end < page_up(file_end) {
            let tail = page_up(file_end) - file_end;
            // SAFETY: [file_end, page_up(file_end)) lies in the writable mapping made just above.
            unsafe { core::ptr::write_bytes(file_end as *mut u8, 0, tail as usize) };
        }
        if map_prot != prot {
            sys::call(nr::MPROTECT, &[start, page_up(file_end) - start, prot]);
        }
    }
    let anon_start = if p.p_filesz > 0 { page_up(file_end) } else { start };
    if mem_end > anon_start {
        map(anon_start, mem_end - anon_start, prot, MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0)?;
    }
    Ok(())
}
