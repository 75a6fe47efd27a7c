//! Start-up: from the host's `execve` of `cloister-rt` to the program's first instruction.
//!
//! The launcher (or the kernel, when the program execs) runs `cloister-rt PROGRAM ARGV...`
//! with the configuration in `CLOISTER_RT_CONFIG`. The runtime reads both, follows `#!`
//! lines, maps the program and its interpreter, builds the kernel and the initial stack,
//! installs the SIGSYS handler and jumps to the entry point. The configuration variable never
//! reaches the program.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::arch::{asm, global_asm};
use kernel_host::binfmt::{self, Format, MAX_DEPTH};
use kernel_host::shared::Shared;
use kernel_host::vfs::host::Hc;
use kernel_host::vfs::mount::MountTable;
use kernel_host::vfs::Vfs;
use kernel_host::{Config, Kernel, ProcessImage};

use crate::loader::{self, File, Image, LoadError};
use crate::stack::{self, AuxValue, InitialStack};
use crate::sys::{self, nr};
use crate::{altstack, cpu, fail, prepatch, title, trace, trap};

// The entry point jumps over the plain gate, which sits 16 bytes after it: the launcher finds
// the gate there (`interposer::runtime`) without reading the symbol table, and checks its bytes.
global_asm!(
    ".globl _start",
    ".globl cloister_gate",
    ".balign 16",
    "_start:",
    "jmp 2f",
    ".balign 16",
    "cloister_gate:",
    "syscall",
    "mov rcx, [rsp]",
    "mov rsp, [rsp + 8]",
    "jmp rcx",
    "2:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    // The start-up runs on the first alternate stack (`altstack::FIRST_STACK`), not below the
    // host's strings, where the program's stack goes.
    "lea rsp, [rip + {stack} + {size}]",
    "call {main}",
    "ud2",
    main = sym rt_main,
    stack = sym altstack::FIRST_STACK,
    size = const altstack::SIZE,
);

/// Where a position-independent program goes, as the host kernel's `ELF_ET_DYN_BASE`.
const PIE_BASE: u64 = 0x5555_5555_4000;
/// Bytes left between the runtime's frames and the program's stack.
const STACK_GAP: u64 = 64 * 1024;
/// Where the program's stack starts below the top of the stack mapping: far enough down for the
/// runtime's own strings (its configuration among them) and frames, so that the program's
/// addresses do not move with their size.
const STACK_RESERVE: u64 = 1024 * 1024;

/// The top of the program's initial stack: a fixed distance below the top of the stack mapping
/// (which the host's `AT_EXECFN` string ends just below), so that with address randomisation
/// off the program sees the same stack addresses whatever the runtime's configuration says;
/// `STACK_GAP` below the host's initial stack pointer `here` when the strings are too large for
/// that.
///
/// A stack limit (`RLIMIT_STACK`) under four times the reserve shrinks it to a quarter of the
/// limit: the stack cannot grow past the limit, and a program started below it would fault on
/// its first push.
fn program_stack_top(execfn: Option<u64>, here: u64) -> u64 {
    let below_frame = (here - STACK_GAP) & !15;
    let Some(execfn) = execfn else { return below_frame };
    // SAFETY: the host kernel's AT_EXECFN points to a NUL-terminated string on this stack.
    let end = execfn + unsafe { cstr(execfn as *const u8) }.len() as u64 + 1;
    let mapping_top = (end + 4095) & !4095;
    const RLIMIT_STACK: u64 = 3;
    let mut limit = [u64::MAX; 2];
    sys::call(nr::PRLIMIT64, &[0, RLIMIT_STACK, 0, limit.as_mut_ptr() as u64]);
    let reserve = STACK_RESERVE.min(limit[0] / 4);
    let fixed = (mapping_top - reserve) & !15;
    fixed.min(below_frame)
}

/// Reads a NUL-terminated string at `p`.
///
/// # Safety
/// `p` must point to a NUL-terminated string that outlives the result.
unsafe fn cstr<'a>(p: *const u8) -> &'a [u8] {
    let mut n = 0;
    // SAFETY: the string is NUL-terminated, per the contract.
    while unsafe { *p.add(n) } != 0 {
        n += 1;
    }
    // SAFETY: the n bytes before the NUL are readable.
    unsafe { core::slice::from_raw_parts(p, n) }
}

struct HostStack {
    argv: Vec<&'static [u8]>,
    envp: Vec<&'static [u8]>,
    /// The auxiliary vector's pairs where the host laid them out.
    auxv: &'static [[u64; 2]],
}

/// Reads the stack the host built for the runtime.
///
/// # Safety
/// `sp` must be the process's initial stack pointer.
unsafe fn read_host_stack(sp: *const u64) -> HostStack {
    // SAFETY: the host kernel lays out argc, argv, NULL, envp, NULL, auxv pairs, AT_NULL at
    // the initial stack pointer, and the strings stay for the life of the process.
    unsafe {
        let argc = *sp as usize;
        let argv = (0..argc).map(|i| cstr(*sp.add(1 + i) as *const u8)).collect();
        // Counted first, so that each list is one block of the heap rather than a trail of
        // outgrown ones.
        let env_at = sp.add(argc + 2);
        let envc = (0..).take_while(|&i| *env_at.add(i) != 0).count();
        let envp = (0..envc).map(|i| cstr(*env_at.add(i) as *const u8)).collect();
        let aux_at = env_at.add(envc + 1);
        let auxc = (0..).take_while(|&i| *aux_at.add(2 * i) != 0).count();
        let auxv = core::slice::from_raw_parts(aux_at.cast::<[u64; 2]>(), auxc);
        HostStack { argv, envp, auxv }
    }
}

fn with_nul(s: &[u8]) -> Vec<u8> {
    let mut v = s.to_vec();
    v.push(0);
    v
}

/// The program after following `#!` lines: the file to map, and the arguments it gets.
struct Resolved {
    file: File,
    argv: Vec<Vec<u8>>,
    /// Its canonical path in the view, when the view's walk knows it.
    guest: Option<Vec<u8>>,
}

fn not_executable(path: &[u8], why: &str) -> ! {
    fail(126, &alloc::format!("{}: cannot execute: {why}", alloc::string::String::from_utf8_lossy(path)))
}

/// Where the program's paths lead on the host: through the filesystem view when there is
/// one, unchanged otherwise.
fn host_path(view: Option<&Vfs>, path: &[u8]) -> Result<Vec<u8>, i64> {
    program_path(view, path).map(|(host, _)| host)
}

/// [`host_path`], and the canonical guest path when the view knows it.
fn program_path(view: Option<&Vfs>, path: &[u8]) -> Result<(Vec<u8>, Option<Vec<u8>>), i64> {
    match view {
        Some(v) => v.program_of(Hc(&crate::guest::RawHost), path).map_err(|e| i64::from(e.0)),
        None => Ok((with_nul(path), None)),
    }
}

fn resolve(view: Option<&Vfs>, program: &[u8], mut argv: Vec<Vec<u8>>) -> Resolved {
    let mut path = program.to_vec();
    for _ in 0..=MAX_DEPTH {
        let (file, guest) = match program_path(view, &path).and_then(|(p, g)| Ok((File::open(&p)?, g))) {
            Ok(f) => f,
            Err(2) | Err(20) => {
                fail(127, &alloc::format!("{}: not found", alloc::string::String::from_utf8_lossy(&path)))
            }
            Err(e) => not_executable(&path, errno_text(e)),
        };
        let mut head = [0u8; binfmt::HEAD_LEN];
        let n = file.pread(&mut head, 0).unwrap_or(0);
        match binfmt::format_of(&head[..n]) {
            Format::Elf => return Resolved { file, argv, guest },
            Format::Script(s) => {
                argv = s.argv(path.clone(), argv);
                path = s.interpreter;
            }
            Format::Unknown if n >= 4 && head.starts_with(b"\x7fELF") => {
                not_executable(&path, "it is not an x86_64 executable")
            }
            Format::Unknown => {
                not_executable(&path, "it is not an executable file (no ELF header, no #! line)")
            }
        }
    }
    not_executable(program, "too many levels of #! interpreters")
}

/// The command line of a runtime an exec'ing image told what it checked
/// ([`kernel_host::config::Handover`]): `cloister-rt PROGRAM EXE EXE_HOST INTERP_HOST ARGV...`.
const HANDOVER_ARGS: usize = 5;

/// Opens `host` (a host path, no NUL) if it is still the regular file `identity` (`st_dev`,
/// `st_ino`) an exec checked; `None` otherwise (it was moved or replaced since, or never
/// given), and the program is looked up again.
fn open_checked(host: &[u8], identity: (u64, u64)) -> Option<File> {
    if host.is_empty() {
        return None;
    }
    let file = File::open(&with_nul(host)).ok()?;
    let stat = Hc(&crate::guest::RawHost).fstat(file.fd).ok()?;
    (stat.is_regular() && (stat.dev(), stat.ino()) == identity).then(|| file.with_size(stat.size()))
}

/// The program an exec'ing image checked, opened by its host path, with its arguments (after
/// `#!` lines) and canonical guest path; `None` if it is not the file that was checked.
fn handed_over(exe: (u64, u64), argv: &[&[u8]]) -> Option<Resolved> {
    let file = open_checked(argv.get(3)?, exe)?;
    let guest = Some(argv[2].to_vec()).filter(|e| !e.is_empty());
    Some(Resolved { file, argv: argv[HANDOVER_ARGS..].iter().map(|a| a.to_vec()).collect(), guest })
}

fn errno_text(e: i64) -> &'static str {
    kernel_host::Errno(e as i32).name().unwrap_or("error")
}

fn load_or_fail(file: &File, hint: u64, path: &[u8]) -> Image {
    loader::load(file, hint).unwrap_or_else(|e| not_executable(path, load_error_text(&e)))
}

/// Loads the interpreter `interp` of the program `exe`, with the page kept after it that a
/// patched copy maps its stubs on ([`prepatch::RESERVED`]); a failure names both.
fn load_interp_or_fail(file: &File, exe: &[u8], interp: &[u8]) -> Image {
    loader::load_with(file, 0, Some(prepatch::RESERVED)).unwrap_or_else(|e| {
        let interp = alloc::string::String::from_utf8_lossy(interp);
        not_executable(
            exe,
            &alloc::format!("its interpreter {interp} cannot be loaded: {}", load_error_text(&e)),
        )
    })
}

fn load_error_text(e: &LoadError) -> &'static str {
    match *e {
        LoadError::Format(why) => why,
        LoadError::Read(e) | LoadError::Map(e) => errno_text(e),
    }
}

/// The canonical path of an open file, as `/proc/self/exe` would show it.
fn path_of(file: &File) -> Vec<u8> {
    let link = alloc::format!("/proc/self/fd/{}\0", file.fd);
    let mut buf = alloc::vec![0u8; 4096];
    let n = sys::call(nr::READLINK, &[link.as_ptr() as u64, buf.as_mut_ptr() as u64, buf.len() as u64]);
    buf.truncate(n.max(0) as usize);
    buf
}

/// Names the thread after the program, as the host's `execve` would (`ps`, `top`,
/// `/proc/self/comm` show it): the last path component, cut to 15 bytes.
fn set_comm(program: &[u8]) {
    const PR_SET_NAME: u64 = 15;
    let base = program.rsplit(|&b| b == b'/').next().unwrap_or(program);
    let mut name = [0u8; 16];
    let n = base.len().min(15);
    name[..n].copy_from_slice(&base[..n]);
    sys::call(nr::PRCTL, &[PR_SET_NAME, name.as_ptr() as u64]);
}

/// Maps the memory the whole sandbox shares from the file the launcher made for it, with the
/// mount table of `table` bytes the launcher packed after it ([`Config::mount_table`]).
fn map_shared_file(path: &str, table: usize) -> (&'static Shared, &'static [u8]) {
    const O_RDWR_CLOEXEC: u64 = 2 | 0o2_000_000;
    let cpath = with_nul(path.as_bytes());
    let fd = sys::call(nr::OPENAT, &[-100i64 as u64, cpath.as_ptr() as u64, O_RDWR_CLOEXEC, 0]);
    if fd < 0 {
        fail(125, &alloc::format!("cloister-rt: cannot open the sandbox's shared memory {path}"));
    }
    let mapped = map_shared(fd as i32, table);
    sys::call(nr::CLOSE, &[fd as u64]);
    mapped
}

/// Maps the memory the whole sandbox shares from `fd` (the file, or its reserved descriptor),
/// and the `table` bytes of packed mount table that follow it in one mapping.
fn map_shared(fd: i32, table: usize) -> (&'static Shared, &'static [u8]) {
    const PROT_RW: u64 = 3;
    const MAP_SHARED: u64 = 1;
    let len = Shared::SIZE + kernel_host::abi::page_up(table as u64) as usize;
    let at = sys::call(nr::MMAP, &[0, len as u64, PROT_RW, MAP_SHARED, fd as u64, 0]);
    if at < 0 {
        fail(125, "cloister-rt: cannot map the sandbox's shared memory (was descriptor 1022 closed?)");
    }
    // SAFETY: a fresh shared mapping of Shared::SIZE bytes, page-aligned, never unmapped: a
    // valid `Shared`, whose fields are atomics that any process of the sandbox may change.
    let shared = unsafe { &*(at as *const Shared) };
    if shared.magic.load(core::sync::atomic::Ordering::Relaxed) != Shared::MAGIC {
        fail(125, "cloister-rt: the sandbox's shared memory is not laid out as this runtime expects");
    }
    // The table is only read: made read-only, a stray write of the program's cannot change the
    // view of every process in the sandbox.
    let table_at = at as u64 + Shared::SIZE as u64;
    if table > 0 && sys::call(nr::MPROTECT, &[table_at, len as u64 - Shared::SIZE as u64, 1]) < 0 {
        fail(125, "cloister-rt: cannot protect the sandbox's mount table");
    }
    // SAFETY: the mapping goes on `table` bytes past the page, read-only, and is never
    // unmapped. The launcher wrote them before any process started, and nothing writes them
    // after (a program that makes them writable again and scribbles over them only gets a
    // wrong view of its own sandbox: the table is read with bounds checks).
    let packed = unsafe { core::slice::from_raw_parts(table_at as *const u8, table) };
    (shared, packed)
}

/// The strings, each followed by a NUL, in one block sized at once (as `/proc/PID/cmdline` and
/// `environ` show them).
fn nul_joined<S: AsRef<[u8]>>(strings: &[S]) -> Vec<u8> {
    let mut out = Vec::with_capacity(strings.iter().map(|s| s.as_ref().len() + 1).sum());
    for s in strings {
        out.extend_from_slice(s.as_ref());
        out.push(0);
    }
    out
}

/// The view's mount table: packed in the shared memory where the launcher put it, or, from a
/// configuration that carries its mounts itself, built from those.
fn mount_table(config: &Config, packed: Option<&'static [u8]>) -> MountTable {
    match packed {
        Some(packed) => MountTable::from_packed(packed).unwrap_or_else(|| {
            fail(
                125,
                "cloister-rt: the view's mount table in the shared memory is unreadable (mixed versions?)",
            )
        }),
        None => MountTable::new(&config.mounts),
    }
}

/// The program's interpreter (`PT_INTERP`), to load.
struct Interpreter<'a> {
    /// Its path, as the program names it.
    name: &'a [u8],
    /// Its host path and identity (`st_dev`, `st_ino`) as the exec'ing image checked them.
    checked: Option<(&'a [u8], (u64, u64))>,
    /// The program, for the error message.
    exe: &'a [u8],
}

impl Interpreter<'_> {
    /// Maps the interpreter: a patched copy the sandbox made of it ([`prepatch`]) when there is
    /// one, the file itself otherwise. Records it, so that its sites are learned.
    fn load(self, config: &Config, view: Option<&Vfs>, shared: &'static Shared) -> Image {
        // A copy of the checked interpreter: the original need not be opened at all.
        let copied = self.checked.and_then(|(_, identity)| {
            let (copy, tail, id) = prepatch::copy_of(identity, config, view.is_some(), shared)?;
            prepatch::map(&copy, tail, id, shared)
        });
        if let Some(image) = copied {
            return image;
        }
        let (file, id) = self.open(view);
        let Some(id) = id else { return load_interp_or_fail(&file, self.exe, self.name) };
        let copied = prepatch::interpreter(&file, id, config, view.is_some(), shared)
            .and_then(|(copy, tail)| prepatch::map(&copy, tail, id, shared));
        if let Some(image) = copied {
            return image;
        }
        let image = load_interp_or_fail(&file, self.exe, self.name);
        prepatch::record(&image, id, shared);
        image
    }

    /// The interpreter's file and identity (`st_dev`, `st_ino`, size): the one the exec checked
    /// if it is still that file, else looked up here (and the host asked what it is).
    fn open(&self, view: Option<&Vfs>) -> (File, Option<[u64; 3]>) {
        if let Some((file, (dev, ino))) =
            self.checked.and_then(|(host, identity)| Some((open_checked(host, identity)?, identity)))
        {
            let id = file.size().map(|size| [dev, ino, size]);
            return (file, id);
        }
        let file = host_path(view, self.name).and_then(|p| File::open(&p)).unwrap_or_else(|e| {
            not_executable(
                self.exe,
                &alloc::format!(
                    "its interpreter {} is missing ({})",
                    alloc::string::String::from_utf8_lossy(self.name),
                    errno_text(e)
                ),
            )
        });
        let id = Hc(&crate::guest::RawHost).fstat(file.fd).ok().map(|st| [st.dev(), st.ino(), st.size()]);
        match id {
            Some([_, _, size]) => (file.with_size(size), id),
            None => (file, None),
        }
    }
}

extern "C" fn rt_main(sp: *const u64) -> ! {
    // SAFETY: `_start` passes the initial stack pointer.
    let mut host = unsafe { read_host_stack(sp) };
    // The environment's area is found before the configuration's string is taken out of the
    // list, which becomes the program's environment in place: no second list in the heap.
    let host_env = title::area(&host.envp);
    let prefix = [Config::ENV.as_bytes(), b"="].concat();
    let mut config = None;
    host.envp.retain(|e| match e.strip_prefix(prefix.as_slice()) {
        Some(value) => {
            config = Some(core::str::from_utf8(value).ok().and_then(|t| Config::decode(t).ok()));
            false
        }
        None => true,
    });
    let envp = core::mem::take(&mut host.envp);
    let mut config = match config {
        Some(Some(c)) => c,
        Some(None) => {
            fail(125, "cloister-rt: the configuration from the launcher is unreadable (mixed versions?)")
        }
        None => fail(125, "cloister-rt is started by `cloister run`, not directly"),
    };
    if host.argv.len() < 2 {
        fail(125, "cloister-rt: no program given");
    }
    let program = host.argv[1];
    let table = config.mount_table.unwrap_or(0);
    let shared = match (&config.shared_path, config.shared_fd) {
        (Some(path), _) => Some(map_shared_file(path, table)),
        (None, fd) => fd.map(|fd| map_shared(fd, table)),
    };
    // One memory for the view and the kernel, the sandbox's or, without one, their own.
    let (shared, packed) = match shared {
        Some((shared, packed)) => (shared, config.mount_table.map(|_| packed)),
        None if config.mount_table.is_some() => {
            fail(125, "cloister-rt: the configuration names a mount table but no shared memory to find it in")
        }
        None => (Shared::private(), None),
    };
    let view = Vfs::new(mount_table(&config, packed), shared);
    let handover = config.handover.take();
    let handover_args = |i: usize| host.argv.get(i).copied().unwrap_or_default();
    // The interpreter the exec checked, opened when it is loaded: its host path and identity.
    let mut interp_checked = handover.and_then(|h| Some((handover_args(4), h.interp?)));
    let mut resolved = match handover.and_then(|h| handed_over(h.exe, &host.argv)) {
        Some(r) => r,
        None => {
            // Without a handover, or with a file that is not the one checked any more: look
            // the program up as the launcher's first start does. A handover's arguments are
            // already past the `#!` lines, and its EXE is the ELF they lead to.
            interp_checked = None;
            let (path, args) = match handover {
                Some(_) => {
                    let elf = [handover_args(2), handover_args(3)].into_iter().find(|p| !p.is_empty());
                    (elf.unwrap_or(program), HANDOVER_ARGS)
                }
                None => (program, 2),
            };
            resolve(
                view.as_ref(),
                path,
                host.argv[args.min(host.argv.len())..].iter().map(|a| a.to_vec()).collect(),
            )
        }
    };
    // The view's walk knows the file's canonical name; otherwise the host says it (the
    // `readlink` of `/proc/self/fd/N` costs about 20 µs of every exec, so only then).
    let exe = match (&view, resolved.guest.take()) {
        (_, Some(guest)) => guest,
        (Some(v), None) => {
            let exe = path_of(&resolved.file);
            // The host's name of the file is a layer's; the program knows it by its name in the view.
            v.guest_of_host(&exe).unwrap_or(exe)
        }
        (None, None) => path_of(&resolved.file),
    };

    if let Some(v) = &view {
        // Another process's `/proc/PID/exe` shows this program, not the runtime.
        v.record_exe(sys::call(nr::GETPID, &[]) as u32, &exe);
    }

    let host_aux = |key: u64| host.auxv.iter().find(|[k, _]| *k == key).map(|&[_, v]| v);
    let host_random = host_aux(stack::AT_RANDOM).map_or([0u8; 16], |p| {
        let mut r = [0u8; 16];
        // SAFETY: AT_RANDOM points to 16 bytes on the host-built stack.
        r.copy_from_slice(unsafe { core::slice::from_raw_parts(p as *const u8, 16) });
        r
    });
    // Reproducible mode runs without address randomisation: the program lands where the host
    // kernel would put it with ASLR off.
    // The slide has its own random bits: AT_RANDOM's become the program's stack canary, and
    // must not be told by its load address. 28 bits of pages, as the host kernel uses.
    // The break starts a random number of pages above the image, up to 1 GiB, as the host
    // kernel's `arch_randomize_brk` puts it on x86_64: a heap overflow must not know where it
    // lands.
    let (pie_slide, brk_slide) = if config.reproducible.is_some() {
        (0, 0)
    } else {
        let mut bits = [0u8; 8];
        sys::call(nr::GETRANDOM, &[bits.as_mut_ptr() as u64, 8, 0]);
        let bits = u64::from_ne_bytes(bits);
        ((bits & 0x0fff_ffff) << 12, ((bits >> 32) & 0x3_ffff) << 12)
    };
    let main = load_or_fail(&resolved.file, PIE_BASE + pie_slide, &exe);
    let interp = main.interp.as_ref().map(|path| {
        let interp = Interpreter { name: &path[..path.len() - 1], checked: interp_checked, exe: &exe };
        interp.load(&config, view.as_ref(), shared)
    });
    drop(resolved.file);

    let random = kernel_host::random::Random::new(&config).at_random().unwrap_or(host_random);
    let overridden = [
        stack::AT_PHDR,
        stack::AT_PHENT,
        stack::AT_PHNUM,
        stack::AT_BASE,
        stack::AT_FLAGS,
        stack::AT_ENTRY,
        stack::AT_RANDOM,
        stack::AT_EXECFN,
        stack::AT_SYSINFO_EHDR,
    ];
    // Sized once: grown, the list would leave its smaller copies in the heap.
    let mut auxv: Vec<(u64, AuxValue)> = Vec::with_capacity(host.auxv.len() + overridden.len());
    if !config.virtual_clocks() {
        if let Some(vdso) = host_aux(stack::AT_SYSINFO_EHDR) {
            auxv.push((stack::AT_SYSINFO_EHDR, AuxValue::Value(vdso)));
        }
    }
    auxv.extend(
        host.auxv.iter().filter(|[k, _]| !overridden.contains(k)).map(|&[k, v]| (k, AuxValue::Value(v))),
    );
    auxv.extend([
        (stack::AT_PHDR, AuxValue::Value(main.phdr)),
        (stack::AT_PHENT, AuxValue::Value(main.phent)),
        (stack::AT_PHNUM, AuxValue::Value(main.phnum)),
        (stack::AT_BASE, AuxValue::Value(interp.as_ref().map_or(0, |i| i.bias))),
        (stack::AT_FLAGS, AuxValue::Value(0)),
        (stack::AT_ENTRY, AuxValue::Value(main.entry)),
        (stack::AT_RANDOM, AuxValue::Random),
        (stack::AT_EXECFN, AuxValue::ExecFn),
    ]);
    let argv: Vec<&[u8]> = resolved.argv.iter().map(|a| a.as_slice()).collect();
    let top = program_stack_top(host_aux(stack::AT_EXECFN), sp as u64);
    let initial = InitialStack { argv: &argv, envp: &envp, auxv: &auxv, execfn: program, random };
    // SAFETY: `top` is at least STACK_GAP below the host's initial stack pointer, on the process
    // stack, which grows on demand and holds nothing below that point (the runtime's frames are
    // on its own stack).
    let built = unsafe { initial.write(top) };
    // Other processes read the program's strings, not the runtime's (`title.rs`); the break
    // starts where the kernel's does (`ProcessImage::brk_start`).
    let brk_start = kernel_host::abi::page_up(main.end) + brk_slide;
    title::publish(&main, &built, brk_start);

    let cmdline = nul_joined(&resolved.argv);
    let trace_fd = config.trace_fd;
    let image = ProcessImage { exe, cmdline, auxv: built.auxv, environ_area: Some(built.env), brk_start };
    let kernel: &'static Kernel = Box::leak(Box::new(Kernel::with_view(config, image, Some(shared), view)));
    if let Some(fd) = trace_fd {
        trace::enable(fd);
    }
    // A mask inherited from whoever started cloister may block the runtime's own signals:
    // unblock them on the host, and let the program believe them blocked as it inherited.
    let unblock = kernel_host::signals::RUNTIME_MASK;
    let mut old = 0u64;
    sys::call(nr::RT_SIGPROCMASK, &[1, &unblock as *const u64 as u64, &mut old as *mut u64 as u64, 8]);
    kernel.inherit_blocked(sys::call(nr::GETTID, &[]) as u32, old);
    altstack::install_for_this_thread();
    trap::install(kernel);
    cpu::setup(kernel);
    crate::tsc::arm(kernel);
    crate::fast::arm_clock(kernel);
    set_comm(program);
    // SAFETY: the host's strings are read no more: the program's stack, image and name are
    // built from copies; `argv` is the resolved arguments' own memory, `envp` the host's
    // environment in order.
    unsafe { title::retitle(&host.argv, host_env, &argv, &envp) };
    let entry = interp.as_ref().map_or(main.entry, |i| i.entry);
    // SAFETY: the stack at `built.sp` is the program's initial stack and `entry` its (or its
    // interpreter's) entry point; the registers are cleared as the ABI expects at process
    // start (`rdx` = 0: no function for `atexit`).
    unsafe {
        asm!(
            "mov rsp, rdi",
            "xor edx, edx",
            "xor edi, edi",
            "xor ebp, ebp",
            "jmp rsi",
            in("rdi") built.sp,
            in("rsi") entry,
            options(noreturn),
        );
    }
}
