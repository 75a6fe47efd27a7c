//! The ELF loader: maps a program (and its interpreter) the way the host kernel's
//! `load_elf_binary` would, so that the runtime, not the host, decides what the program's
//! initial state is. The headers are read and checked by [`kernel_host::elf::plan`] (goblin,
//! pure, fuzzed on the host); this file only makes the mappings the plan lists. See `elf(5)`
//! and the System V x86_64 ABI.
//!
//! Handles `ET_EXEC` (fixed address) and `ET_DYN` (PIE, static-pie, `ld.so`), `PT_LOAD`
//! segments with bss, `PT_INTERP` and `PT_PHDR`.

use alloc::vec::Vec;
use kernel_host::abi::{page_up, PAGE_SIZE};
use kernel_host::elf::{self, PlanError, Segment};
use kernel_host::vfs::host::Hc;

use crate::sys::{self, nr};

/// An open file the loader reads from.
pub struct File {
    /// Its descriptor.
    pub fd: i32,
    /// Its size, when whoever opened it has asked the host already.
    size: Option<u64>,
}

impl File {
    /// Opens `path` (NUL-terminated) read-only; the raw errno on failure. Non-blocking: a FIFO
    /// found where a program was expected must not stop the start (its loading fails).
    pub fn open(path: &[u8]) -> Result<File, i64> {
        let r = sys::call(nr::OPENAT, &[(-100i64) as u64, path.as_ptr() as u64, 0o2_000_000 | 0o4000]);
        if r < 0 {
            Err(-r)
        } else {
            Ok(File { fd: r as i32, size: None })
        }
    }

    /// Records the file's size, which its opener learnt from an `fstat` of its own: the loader
    /// then does not ask again.
    pub fn with_size(mut self, size: u64) -> File {
        self.size = Some(size);
        self
    }

    /// Its size, if its opener recorded it.
    pub fn size(&self) -> Option<u64> {
        self.size
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
    /// Where its code lies (from the lowest executable segment's start to the highest one's
    /// file end), and its data (likewise for the writable ones; empty at the code's end when
    /// there are none): what the host shows as the process's `start_code` .. `end_data`.
    pub code: (u64, u64),
    /// See [`Image::code`].
    pub data: (u64, u64),
}

/// The span of the segments whose protection has `bit`, biased: from the lowest start to the
/// highest file end, as the host's ELF loader reckons `start_code` and `end_data`.
fn span_of(segments: &[Segment], bit: u64, bias: u64) -> Option<(u64, u64)> {
    let mut with = segments.iter().filter(|s| s.prot & bit != 0);
    let first = with.next()?;
    let end = with.fold(first.vaddr + first.filesz, |end, s| end.max(s.vaddr + s.filesz));
    Some((first.vaddr.wrapping_add(bias), end.wrapping_add(bias)))
}

/// Bytes read at once from the start of a file: the ELF header, the program headers and the
/// interpreter's path usually lie in them, so the plan costs one read.
const HEAD: usize = 1024;

/// A file's first [`HEAD`] bytes, and reads served from them where they can be.
struct Head<'a> {
    file: &'a File,
    bytes: [u8; HEAD],
    len: usize,
}

impl<'a> Head<'a> {
    fn read(file: &'a File) -> Result<Self, LoadError> {
        let mut head = Head { file, bytes: [0; HEAD], len: 0 };
        head.len = file.pread(&mut head.bytes, 0).map_err(LoadError::Read)?;
        Ok(head)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), LoadError> {
        let in_head = usize::try_from(offset).ok().and_then(|o| Some(o..o.checked_add(buf.len())?));
        match in_head.and_then(|r| self.bytes[..self.len].get(r)) {
            Some(bytes) => {
                buf.copy_from_slice(bytes);
                Ok(())
            }
            None => read_exact(self.file, buf, offset),
        }
    }
}

/// The size of an open file.
fn size_of(file: &File) -> Result<u64, LoadError> {
    if let Some(size) = file.size {
        return Ok(size);
    }
    let stat = Hc(&crate::guest::RawHost).fstat(file.fd).map_err(|e| LoadError::Read(i64::from(e.0)))?;
    Ok(stat.size())
}

/// Fills `buf` from the file at `offset`; a file that ends first is corrupt.
pub fn read_exact(file: &File, buf: &mut [u8], offset: u64) -> Result<(), LoadError> {
    let mut done = 0;
    while done < buf.len() {
        match file.pread(&mut buf[done..], offset + done as u64).map_err(LoadError::Read)? {
            0 => return Err(LoadError::Format("the file ends inside its headers")),
            n => done += n,
        }
    }
    Ok(())
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

/// Pages kept right after an image (see [`load_with`]).
#[derive(Clone, Copy)]
pub struct Tail {
    /// How many bytes; page-aligned.
    pub len: u64,
    /// Where in the file the pages mapped there (executable) start, page-aligned; `None`:
    /// the pages are only reserved.
    pub stubs: Option<u64>,
}

/// The mapping plan of the ELF image in `file`, as [`load`] follows it.
pub fn plan_of(file: &File) -> Result<elf::Plan, LoadError> {
    let head = Head::read(file)?;
    elf::plan(|buf, offset| head.read_at(buf, offset), size_of(file)?).map_err(|e| match e {
        PlanError::Corrupt(why) => LoadError::Format(why),
        PlanError::Read(e) => e,
    })
}

/// Maps the ELF image in `file`. `hint` is where a position-independent image should go
/// (0: wherever the host puts it).
pub fn load(file: &File, hint: u64) -> Result<Image, LoadError> {
    load_with(file, hint, None)
}

/// [`load`], keeping `tail` right after the image's last page: a patched copy of an
/// interpreter maps its stubs there, a fixed distance from every site. (Kept whether or not
/// there are stubs, so that where the next mappings land does not depend on it.) A failure
/// leaves nothing mapped.
pub fn load_with(file: &File, hint: u64, tail: Option<Tail>) -> Result<Image, LoadError> {
    let plan = plan_of(file)?;
    let image_span = plan.hi - plan.lo;
    let span = image_span + tail.map_or(0, |t| t.len);

    // The first segment is mapped over the whole span, so that the segments land together;
    // each other one is then mapped over its part. (A separate reservation would cost one more
    // `mmap` per image, about 2 µs on our machines.) A first segment with bss, one that does not
    // start the span, or a writable one (a private writable mapping of the whole span would be
    // charged to the commit limit in full, where an image with a huge gap loads natively) gets
    // an empty reservation instead.
    let first = plan.segments.first().filter(|s| {
        s.filesz > 0 && s.memsz == s.filesz && s.prot & 2 == 0 && s.vaddr & !(PAGE_SIZE - 1) == plan.lo
    });
    let (prot, fd, offset) = match first {
        Some(s) => (s.prot, i64::from(file.fd), s.offset & !(PAGE_SIZE - 1)),
        None => (0, -1, 0),
    };
    let kind = if first.is_some() { MAP_PRIVATE } else { MAP_PRIVATE | MAP_ANON };
    let bias = if plan.position_independent {
        let fixed = if hint != 0 { MAP_FIXED_NOREPLACE } else { 0 };
        let at = map(hint, span, prot, kind | fixed, fd, offset)
            .or_else(|_| map(0, span, prot, kind, fd, offset))?;
        // Modulo 2^64: an image placed below its lowest address has a negative bias.
        at.wrapping_sub(plan.lo)
    } else {
        map(plan.lo, span, prot, kind | MAP_FIXED_NOREPLACE, fd, offset)?;
        0
    };

    // Where the first segment's mapping put the file: the pages of a later segment (or of the
    // stubs' page) whose file offset lies as far from it as its address does are mapped
    // already, and only need their protection (`mprotect` costs about half an `mmap` here).
    let span_map = first.map(|s| SpanMap { delta: offset.wrapping_sub(plan.lo), prot: s.prot });
    let skip = usize::from(first.is_some());
    let segments = plan.segments.iter().enumerate().skip(skip).try_for_each(|(i, s)| {
        // A segment whose first page an earlier one covers too is mapped over it, as the host's
        // loader does: the page shows the later segment's bytes.
        let shares = i > 0 && {
            let prev = &plan.segments[i - 1];
            s.vaddr & !(PAGE_SIZE - 1) < page_up(prev.vaddr + prev.memsz)
        };
        map_segment(file, s, bias, span_map.filter(|_| !shares))
    });
    let mapped = segments.and_then(|()| match tail {
        Some(Tail { len, stubs: Some(offset) }) => {
            let at = plan.hi.wrapping_add(bias);
            match span_map {
                Some(m) if m.holds(plan.hi, offset) => protect(at, len, 1 | 4),
                _ => map(at, len, 1 | 4, MAP_PRIVATE | MAP_FIXED, i64::from(file.fd), offset).map(drop),
            }
        }
        // Kept inaccessible, as an empty reservation: not the file's bytes past its end.
        Some(Tail { len, stubs: None }) if first.is_some() => {
            let at = plan.hi.wrapping_add(bias);
            map(at, len, 0, MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0).map(drop)
        }
        _ => Ok(()),
    });
    if let Err(e) = mapped {
        sys::call(nr::MUNMAP, &[plan.lo.wrapping_add(bias), span]);
        return Err(e);
    }
    if first.is_some() {
        close_holes(&plan.segments, bias);
    }

    let code =
        span_of(&plan.segments, 4, bias).unwrap_or((plan.lo.wrapping_add(bias), plan.hi.wrapping_add(bias)));
    let data = span_of(&plan.segments, 2, bias).unwrap_or((code.1, code.1));
    Ok(Image {
        code,
        data,
        bias,
        entry: plan.entry.wrapping_add(bias),
        phdr: plan.phdr.map_or(0, |p| p.wrapping_add(bias)),
        phnum: u64::from(plan.phnum),
        phent: elf::PHENT as u64,
        end: plan.hi.wrapping_add(bias),
        interp: plan.interp,
    })
}

/// Makes the gaps between segments inaccessible, as a reservation would have left them: the
/// first segment's mapping spans them.
fn close_holes(segments: &[Segment], bias: u64) {
    // An empty segment maps nothing: the gap runs from the segment before it to the one after.
    let mapped: Vec<&Segment> = segments.iter().filter(|s| s.memsz > 0).collect();
    for pair in mapped.windows(2) {
        let end = page_up(pair[0].vaddr + pair[0].memsz);
        let next = pair[1].vaddr & !(PAGE_SIZE - 1);
        if next > end {
            sys::call(nr::MPROTECT, &[end.wrapping_add(bias), next - end, 0]);
        }
    }
}

/// The first segment's mapping of the whole span: file offset minus unbiased address (modulo
/// 2^64), and its protection.
#[derive(Clone, Copy)]
struct SpanMap {
    delta: u64,
    prot: u64,
}

impl SpanMap {
    /// Whether the page at unbiased address `vaddr` shows the file's page at `offset`.
    fn holds(self, vaddr: u64, offset: u64) -> bool {
        vaddr.wrapping_add(self.delta) == offset
    }
}

/// `mprotect`, its error as a mapping's.
fn protect(addr: u64, len: u64, prot: u64) -> Result<(), LoadError> {
    match sys::call(nr::MPROTECT, &[addr, len, prot]) {
        r if r < 0 => Err(LoadError::Map(-r)),
        _ => Ok(()),
    }
}

/// Maps one segment inside the span reserved for its image (or, where the span's mapping
/// shows the segment's file pages already, gives them its protection). The plan checked that
/// it lies there and that its ends do not overflow; the bias is added modulo 2^64.
fn map_segment(file: &File, s: &Segment, bias: u64, span_map: Option<SpanMap>) -> Result<(), LoadError> {
    let prot = s.prot;
    let page_off = s.vaddr & (PAGE_SIZE - 1);
    let start = (s.vaddr - page_off).wrapping_add(bias);
    let file_end = (s.vaddr + s.filesz).wrapping_add(bias);
    let mem_end = page_up((s.vaddr + s.memsz).wrapping_add(bias));
    let has_bss = s.memsz > s.filesz;
    if s.filesz > 0 {
        // The last file page is made writable while its bss tail is cleared.
        let map_prot = if has_bss { prot | 2 } else { prot };
        let len = page_up(file_end) - start;
        match span_map.filter(|m| m.holds(s.vaddr - page_off, s.offset - page_off)) {
            Some(m) if m.prot == map_prot => {}
            Some(_) => protect(start, len, map_prot)?,
            None => {
                map(start, len, map_prot, MAP_PRIVATE | MAP_FIXED, i64::from(file.fd), s.offset - page_off)?;
            }
        }
        if has_bss && file_end < page_up(file_end) {
            let tail = page_up(file_end) - file_end;
            // SAFETY: [file_end, page_up(file_end)) lies in the writable mapping made just above.
            unsafe { core::ptr::write_bytes(file_end as *mut u8, 0, tail as usize) };
        }
        if map_prot != prot {
            sys::call(nr::MPROTECT, &[start, page_up(file_end) - start, prot]);
        }
    }
    let anon_start = if s.filesz > 0 { page_up(file_end) } else { start };
    if mem_end > anon_start {
        map(anon_start, mem_end - anon_start, prot, MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0)?;
    }
    Ok(())
}
