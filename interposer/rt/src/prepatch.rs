//! The program interpreter's call sites, patched once per sandbox rather than trapping in
//! every image.
//!
//! Every dynamic program's start runs the same sites of the same `ld.so` (`brk`, `access`,
//! `openat`, `newfstatat`, and in reproducible mode eight `rdtsc`s) once each: a trap or a
//! fault each (2.5 to 3 µs here), too few for a process to patch them ([`crate::patch`]). So:
//!
//! 1. **Learn.** When such a site traps in the interpreter an image loaded, the image records
//!    it in the sandbox's shared table ([`kernel_host::learned`]), by the interpreter's identity
//!    and the site's address in its ELF image: a `mov eax, NR` leading to the `syscall` of a
//!    call the runtime serves in place, or an `rdtsc` whose next instructions can move
//!    ([`kernel_host::x86`]).
//! 2. **Copy.** An image about to load that interpreter, finding sites learned, maps a copy of
//!    it from the sandbox's state directory, named after the set of sites (and what their stubs
//!    hold). The first image to want a copy writes it: the file's bytes with each site's first
//!    bytes replaced by a jump, and a page of stubs after the image. Every check a patch makes
//!    in a running process is made again here, on the file's bytes; a site that fails one is
//!    left as it is. A site whose stub runs instructions in their place (those an `rdtsc`'s
//!    jump covers, those between a `mov eax` and its `syscall`) is patched only if no direct
//!    jump in the interpreter's code may land on one of them.
//! 3. **Map.** The loader maps the copy as it would the file, and the stub page right after
//!    the image: stubs are reached by 32-bit jumps and hold no absolute address of the image,
//!    so one copy serves every image wherever it lands.
//!
//! The copy is the same code as the interpreter in every other byte, and its pages are shared
//! through the page cache like the original's; `/proc/PID/maps` names the copy. Nothing is
//! learned or patched while calls are traced (`--trace` records trapped calls), and an
//! interpreter other than the first one learned (a second C library's) keeps trapping.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel_host::abi::page_up;
use kernel_host::elf::Plan;
use kernel_host::learned::{Site, SiteKind};
use kernel_host::redirect::served_in_place;
use kernel_host::shared::Shared;
use kernel_host::x86;
use kernel_host::Config;

use crate::loader::{self, File, Image, Tail};
use crate::sys::{self, nr};
use crate::{fast, fault, patch, trace, tsc};

/// Bytes of stubs after the image: one page holds the table's every site.
const STUB_PAGE: u64 = 4096;
/// The largest interpreter copied (`ld.so` is about 250 KiB).
const MAX_FILE: u64 = 16 << 20;

/// This image's interpreter, for the trap path to learn from: its load bias, its code's
/// biased range, and its identity ([`kernel_host::learned`]'s key). All 0: none.
static BIAS: AtomicU64 = AtomicU64::new(0);
static CODE: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
static FILE: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
/// The sandbox's shared memory, where the table is.
static SHARED: AtomicU64 = AtomicU64::new(0);

/// Records the interpreter this image loaded (its identity: `st_dev`, `st_ino`, size), so that
/// sites trapping in it are learned.
pub fn record(image: &Image, file: [u64; 3], shared: &'static Shared) {
    BIAS.store(image.bias, Ordering::Relaxed);
    CODE[0].store(image.code.0, Ordering::Relaxed);
    CODE[1].store(image.code.1, Ordering::Relaxed);
    for (slot, v) in FILE.iter().zip(file) {
        slot.store(v, Ordering::Relaxed);
    }
    SHARED.store(shared as *const Shared as u64, Ordering::Release);
}

/// Where this image's interpreter's code starts (0: no interpreter recorded).
fn code_start() -> u64 {
    CODE[0].load(Ordering::Relaxed)
}

/// The table, and the interpreter's identity and bias, if `at..at + len` lies in its code.
fn interpreter_at(at: u64, len: u64) -> Option<(&'static Shared, [u64; 3], u64)> {
    let shared = SHARED.load(Ordering::Acquire);
    let (lo, hi) = (CODE[0].load(Ordering::Relaxed), CODE[1].load(Ordering::Relaxed));
    if shared == 0 || at < lo || at.checked_add(len)? > hi {
        return None;
    }
    // SAFETY: `record` stored a `&'static Shared`.
    let shared = unsafe { &*(shared as *const Shared) };
    let file =
        [FILE[0].load(Ordering::Relaxed), FILE[1].load(Ordering::Relaxed), FILE[2].load(Ordering::Relaxed)];
    Some((shared, file, BIAS.load(Ordering::Relaxed)))
}

/// Called by the trap path for call `nr` trapped at `ip` (just after its `syscall`).
pub fn learn_syscall(ip: u64, nr: u32) {
    const BACK: usize = x86::SYSCALL_SITE_MAX + 1;
    // Up to BACK bytes before the `syscall`'s end, from the start of the code at most.
    let Some(from) = ip.checked_sub(BACK as u64).map(|f| f.max(code_start())) else { return };
    let len = (ip - from) as usize;
    let Some((shared, file, bias)) = interpreter_at(from, len as u64) else { return };
    if !served_in_place(nr) || trace::enabled() || patch::trap_test(nr).is_none() {
        return;
    }
    // The bytes before the `syscall`, and the byte before those.
    let mut bytes = [0u8; BACK];
    if len < x86::JUMP_LEN + 2 || !fault::copy(bytes.as_mut_ptr(), from as *const u8, len) {
        return;
    }
    let Some(start) = site_start(&bytes[..len], nr, from == code_start()) else { return };
    let Ok(vaddr) = u32::try_from((from + start as u64).wrapping_sub(bias)) else { return };
    shared.learned.learn(file, Site { vaddr, kind: SiteKind::Syscall(nr as u16) });
}

/// Where in `bytes` (the code that ends with a `syscall` of call `nr`; `at_code_start` when
/// nothing comes before it) the site starts: the nearest `mov eax, NR` that leads to that
/// `syscall` ([`x86::syscall_site`]) with no prefix before it that would make it part of
/// another instruction.
fn site_start(bytes: &[u8], nr: u32, at_code_start: bool) -> Option<usize> {
    let end = bytes.len() - 2;
    (0..end.saturating_sub(x86::JUMP_LEN - 1)).rev().find(|&start| {
        (if start == 0 { at_code_start } else { x86::prefix_free(bytes[start - 1]) })
            && x86::syscall_site(&bytes[start..], nr).is_some_and(|(at, _)| start + at == end)
    })
}

/// Called by the fault path for an `rdtsc` it answered at `rip`.
pub fn learn_rdtsc(rip: u64) {
    let Some((shared, file, bias)) = interpreter_at(rip, x86::RDTSC_SITE_MAX as u64) else { return };
    if trace::enabled() {
        return;
    }
    let mut code = [0u8; x86::RDTSC_SITE_MAX];
    if !fault::copy(code.as_mut_ptr(), rip as *const u8, code.len()) || x86::rdtsc_site(&code).is_none() {
        return;
    }
    let Ok(vaddr) = u32::try_from(rip.wrapping_sub(bias)) else { return };
    shared.learned.learn(file, Site { vaddr, kind: SiteKind::Rdtsc });
}

/// A site as its copy patches it: where, and the stub's test words for a call.
struct Planned {
    site: Site,
    test: [u8; 16],
}

/// What every interpreter image keeps after it: its stubs' page, or that page reserved.
pub const RESERVED: Tail = Tail { len: STUB_PAGE, stubs: None };

/// The patched copy of the interpreter with `st_dev` and `st_ino` `identity`, if the sandbox
/// made one for the sites it learned (see [`interpreter`]): the copy, what to map after it,
/// and the interpreter's identity with its size. Costs one `open` of the copy.
pub fn copy_of(
    identity: (u64, u64),
    config: &Config,
    view: bool,
    shared: &Shared,
) -> Option<(File, Tail, [u64; 3])> {
    let (size, sites) = shared.learned.sites_by_identity(identity)?;
    let id = [identity.0, identity.1, size];
    let (path, tail) = copy_path(id, &planned(config, view, sites), config)?;
    Some((open_copy(&path, id[2])?, tail, id))
}

/// A patched copy of the interpreter `file` (identity `id`: `st_dev`, `st_ino`, size) for the
/// sites the sandbox learned of it, written now if no image did yet, and what to map after
/// it; `None` when there is nothing to patch, no state directory, or no copy can be made.
pub fn interpreter(
    file: &File,
    id: [u64; 3],
    config: &Config,
    view: bool,
    shared: &Shared,
) -> Option<(File, Tail)> {
    let planned = planned(config, view, shared.learned.sites_of(id));
    let (path, tail) = copy_path(id, &planned, config)?;
    if let Some(copy) = open_copy(&path, id[2]) {
        return Some((copy, tail));
    }
    // A copy that cannot be written (a full or read-only state directory) would be tried
    // again by every image: the sandbox stops trying.
    let Some(copy) = write_copy(file, id[2], &planned, &path).and_then(|()| open_copy(&path, id[2])) else {
        give_up(shared);
        return None;
    };
    Some((copy, tail))
}

/// Maps the interpreter's `copy` (identity `id`) with its stubs' `tail` and records it; `None`
/// when the host will not map it (a state directory on a `noexec` mount), and then the
/// sandbox stops using copies ([`give_up`]) and the caller loads the interpreter itself.
pub fn map(copy: &File, tail: Tail, id: [u64; 3], shared: &'static Shared) -> Option<Image> {
    match loader::load_with(copy, 0, Some(tail)) {
        Ok(image) => {
            record(&image, id, shared);
            Some(image)
        }
        Err(_) => {
            give_up(shared);
            None
        }
    }
}

/// After a copy could not be written, or mapped: the sandbox stops learning, and its images
/// load the interpreter itself.
fn give_up(shared: &Shared) {
    shared.learned.close();
}

/// Opens the copy at `path` of an interpreter of `size` bytes.
fn open_copy(path: &str, size: u64) -> Option<File> {
    File::open(path.as_bytes()).ok().map(|f| f.with_size(page_up(size) + STUB_PAGE))
}

/// The path (NUL-terminated) of the copy of interpreter `id` with `planned` patched, and what
/// to map after it; `None` when nothing would be patched, or there is no state directory, or
/// calls are traced.
fn copy_path(id: [u64; 3], planned: &[Planned], config: &Config) -> Option<(alloc::string::String, Tail)> {
    let dir = config.shared_path.as_deref().and_then(|p| p.rsplit_once('/')).map(|(d, _)| d)?;
    if config.trace_fd.is_some() || planned.is_empty() {
        return None;
    }
    let path =
        alloc::format!("{dir}/{}{:016x}\0", kernel_host::learned::COPY_PREFIX, fingerprint(id, planned));
    Some((path, Tail { len: STUB_PAGE, stubs: Some(page_up(id[2])) }))
}

/// The sites this configuration patches, with their stubs' test words.
fn planned(config: &Config, view: bool, sites: Vec<Site>) -> Vec<Planned> {
    let virtual_tsc = config.reproducible.is_some();
    sites
        .into_iter()
        .filter_map(|site| match site.kind {
            SiteKind::Syscall(nr) => {
                let nr = u32::from(nr);
                let test = patch::trap_test_for(config, view, nr).filter(|_| served_in_place(nr))?;
                Some(Planned { site, test })
            }
            SiteKind::Rdtsc => virtual_tsc.then_some(Planned { site, test: [0; 16] }),
        })
        .collect()
}

/// What a copy's bytes depend on: the file, the sites, what their stubs hold.
fn fingerprint(id: [u64; 3], planned: &[Planned]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for v in id.into_iter().chain([fast::entry(), tsc::entry()]) {
        eat(&v.to_le_bytes());
    }
    for p in planned {
        eat(&p.site.word().to_le_bytes());
        eat(&p.test);
    }
    h
}

/// A planned site as the file's bytes have it.
struct Found {
    vaddr: u64,
    /// Where the site starts in the file.
    file_at: usize,
    /// The site's bytes onwards, as far as a site may reach.
    code: Vec<u8>,
    /// The bytes the jump replaces.
    covered: usize,
    /// Instructions the stub runs in their place: no jump may land strictly inside
    /// `vaddr..guard_end` (the `mov eax` and the `syscall` may be landed on).
    guard_end: u64,
    /// The executable segment it lies in.
    seg: usize,
    moved: Vec<(usize, x86::Movable)>,
    /// The call's number and the `syscall`'s offset; `None` for an `rdtsc`.
    call: Option<(u32, usize)>,
    test: [u8; 16],
}

/// Decodes `p` in the file's `bytes`; `None` when it is not the site the table says (the
/// checks a patch in a running process makes).
fn find(p: &Planned, plan: &Plan, bytes: &[u8]) -> Option<Found> {
    let vaddr = u64::from(p.site.vaddr);
    let seg = plan
        .segments
        .iter()
        .position(|s| s.prot & 4 != 0 && s.vaddr <= vaddr && vaddr < s.vaddr + s.filesz)?;
    let s = &plan.segments[seg];
    let seg_bytes = &bytes[s.offset as usize..(s.offset + s.filesz) as usize];
    let at = (vaddr - s.vaddr) as usize;
    let (code, covered, guard_end, moved, call) = match p.site.kind {
        SiteKind::Syscall(nr) => {
            let nr = u32::from(nr);
            let code = &seg_bytes[at..seg_bytes.len().min(at + x86::SYSCALL_SITE_MAX)];
            if at > 0 && !x86::prefix_free(seg_bytes[at - 1]) {
                return None;
            }
            let (syscall, moved) = x86::syscall_site(code, nr)?;
            (code, x86::JUMP_LEN, vaddr + syscall as u64, moved, Some((nr, syscall)))
        }
        SiteKind::Rdtsc => {
            let code = &seg_bytes[at..seg_bytes.len().min(at + x86::RDTSC_SITE_MAX)];
            let (covered, moved) = x86::rdtsc_site(code)?;
            (code, covered, vaddr + covered as u64, moved, None)
        }
    };
    Some(Found {
        vaddr,
        file_at: s.offset as usize + at,
        code: code.to_vec(),
        covered,
        guard_end,
        seg,
        moved,
        call,
        test: p.test,
    })
}

/// Writes the patched copy of `file` (of `size` bytes) to `path` (NUL-terminated): under a
/// name of this process's first, then renamed, so that another image never maps half of one.
fn write_copy(file: &File, size: u64, planned: &[Planned], path: &str) -> Option<()> {
    if size > MAX_FILE {
        return None;
    }
    let plan = loader::plan_of(file).ok()?;
    let stub_at = page_up(size) as usize;
    let mut out = Vec::with_capacity(stub_at + STUB_PAGE as usize);
    out.resize(size as usize, 0);
    loader::read_exact(file, &mut out, 0).ok()?;
    let found: Vec<Found> = planned.iter().filter_map(|p| find(p, &plan, &out)).collect();
    // A site whose moved instructions some jump may land in stays as it is: one pass over
    // each segment's code for all its sites.
    let mut landed = alloc::vec![false; found.len()];
    for (i, seg) in plan.segments.iter().enumerate() {
        let (idx, ranges): (Vec<usize>, Vec<(u64, u64)>) = found
            .iter()
            .enumerate()
            .filter(|(_, f)| f.seg == i)
            .map(|(k, f)| (k, (f.vaddr, f.guard_end)))
            .unzip();
        if idx.is_empty() {
            continue;
        }
        let code = &out[seg.offset as usize..(seg.offset + seg.filesz) as usize];
        for (k, hit) in idx.into_iter().zip(x86::jumped_into(code, seg.vaddr, &ranges)) {
            landed[k] = hit;
        }
    }
    let found = found.into_iter().zip(landed).filter(|(_, landed)| !landed).map(|(f, _)| f);

    let stub_vaddr = plan.hi;
    out.resize(stub_at, 0);
    let mut stubs: Vec<u8> = Vec::with_capacity(STUB_PAGE as usize);
    let mut taken: Vec<(u64, u64)> = Vec::new();
    for f in found {
        let here = stub_vaddr + stubs.len() as u64;
        let stub = match f.call {
            Some((nr, syscall)) => x86::moved_syscall_stub(
                f.vaddr,
                f.vaddr + syscall as u64,
                here,
                &f.code,
                &f.moved,
                nr,
                fast::entry(),
                f.test,
            ),
            None => x86::rdtsc_stub(f.vaddr, here, &f.code, f.covered, &f.moved, tsc::entry()),
        };
        let Some(stub) = stub else { continue };
        let end = f.vaddr + f.covered as u64;
        if taken.iter().any(|&(a, b)| f.vaddr < b && a < end) || stubs.len() + stub.len() > STUB_PAGE as usize
        {
            continue;
        }
        let Some(jump) = x86::jump(f.vaddr, here) else { continue };
        out[f.file_at..f.file_at + x86::JUMP_LEN].copy_from_slice(&jump);
        // Bytes the jump covers beyond its own are never run: `int3`, should anything land there.
        out[f.file_at + x86::JUMP_LEN..f.file_at + f.covered].fill(0xcc);
        stubs.extend_from_slice(&stub);
        // 16-byte aligned stubs, as the per-process ones.
        stubs.resize(stubs.len().next_multiple_of(16), 0xcc);
        taken.push((f.vaddr, end));
    }
    stubs.resize(STUB_PAGE as usize, 0xcc);
    out.extend_from_slice(&stubs);
    let tmp = alloc::format!("{}.{}\0", path.trim_end_matches('\0'), sys::call(nr::GETPID, &[]));
    write_file(&tmp, &out)?;
    if sys::call(nr::RENAME, &[tmp.as_ptr() as u64, path.as_ptr() as u64]) != 0 {
        sys::call(nr::UNLINK, &[tmp.as_ptr() as u64]);
        return None;
    }
    Some(())
}

/// Creates `path` (NUL-terminated; it must not exist) holding `bytes`, read-only.
fn write_file(path: &str, bytes: &[u8]) -> Option<()> {
    const O_WRONLY_CREAT_EXCL_CLOEXEC: u64 = 0o1 | 0o100 | 0o200 | 0o2_000_000;
    let fd =
        sys::call(nr::OPENAT, &[-100i64 as u64, path.as_ptr() as u64, O_WRONLY_CREAT_EXCL_CLOEXEC, 0o555]);
    if fd < 0 {
        return None;
    }
    let ok = sys::write_all(fd as i32, bytes);
    sys::call(nr::CLOSE, &[fd as u64]);
    if !ok {
        sys::call(nr::UNLINK, &[path.as_ptr() as u64]);
    }
    ok.then_some(())
}
