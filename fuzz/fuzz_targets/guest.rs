//! The kernel's parsers of guest data: a few calls from the syscall table, with arguments that
//! point into a guest memory (`kernel_host::testing::FakeMem`) holding the fuzzer's bytes, so
//! that every structure the program hands the kernel (`sockaddr_un` in bind/connect/sendto,
//! `open_how`, `sigaction`, `timespec`, `sigevent`, `itimerval`, id lists, `argv`/`envp`
//! arrays, paths...) arrives malformed, truncated or straddling the end of the memory. The host
//! is `kernel_host::testing::FakeHost`, answering every call with one of a few results a real
//! host could give (errors, 0, a descriptor). The kernel must answer, never panic.
//!
//! Every input also hands a `sockaddr_un` of any length to bind, connect, sendto or
//! getsockname under a view, so that the address parser is reached on every run, and feeds
//! the `linux_dirent64` records of a host `getdents64` (`kernel_host::dirs`): parsed from
//! any bytes, written back, parsed again to the same entries, and served to a buffer of any
//! size without overrunning it.

#![no_main]

use kernel_host::config::{Mount, MountKind, Reproducible};
use kernel_host::dirs::{self, Dirs, Entry, Read};
use kernel_host::shared::Shared;
use kernel_host::table::TABLE;
use kernel_host::testing::{FakeHost, FakeMem};
use kernel_host::{Config, Kernel, Syscall, TaskCtx};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use std::alloc::{dealloc, Layout};
use std::cell::Cell;
use syscalls::Sysno;

/// The guest memory: 64 KiB at a fixed address.
const BASE: u64 = 0x10_000;
const LEN: usize = 0x10_000;
/// The stack pointer: scratch pushed below it stays inside the memory.
const SP: u64 = BASE + LEN as u64 - 0x100;
/// Host calls answered from the list before every call is interrupted.
const HOST_CALLS: usize = 10_000;
/// Results the fake host gives: ENOENT, EBADF, EACCES, EINVAL, EFAULT, success, a descriptor.
const ANSWERS: [i64; 7] = [-2, -9, -13, -22, -14, 0, 5];

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = dirents(&mut u);
    let _ = with_shared(&mut u, unix_addresses);
    let _ = with_shared(&mut u, calls);
});

/// `getdents64` records: parse, round-trip, serve.
fn dirents(u: &mut Unstructured) -> Result<()> {
    let len = u.int_in_range(0..=512)?;
    let raw: &[u8] = u.bytes(len)?;
    let mut entries = Vec::new();
    dirs::parse(raw, &mut entries);
    let mut written = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        assert!(!e.name.contains(&0), "a name holds its NUL: {e:?}");
        e.write(i as u64 + 1, &mut written);
    }
    let mut again: Vec<Entry> = Vec::new();
    dirs::parse(&written, &mut again);
    assert_eq!(again, entries, "linux_dirent64 records do not round-trip");

    let listings = Dirs::default();
    listings.start(3, 1, 2, 99, entries);
    for _ in 0..u.int_in_range(0..=4)? {
        let room = u.int_in_range(0..=600)?;
        if u.arbitrary()? {
            let _ = listings.seek(3, 1, 2, u.int_in_range(-2..=40)?);
        }
        if let Read::Entries(bytes) = listings.read(3, 1, 2, 99, room) {
            assert!(bytes.len() <= room, "{} bytes served into a buffer of {room}", bytes.len());
        }
    }
    Ok(())
}

/// The kernel one input runs against: without a view, in reproducible mode, or with a view;
/// `shared` is its sandbox's shared page, fresh for every input so that runs do not depend on
/// each other (the virtual clock lives there).
fn kernel(kind: u8, shared: &'static Shared) -> Kernel {
    let mut config = Config { rt_path: "/opt/cloister-rt".into(), ..Config::default() };
    if kind % 3 == 1 {
        config.reproducible = Some(Reproducible { epoch: 1_700_000_000, fast_sleep: true, cpus: 2 });
        config.seed = Some(7);
        config.hostname = Some("box".into());
    }
    if kind % 3 == 2 {
        let m = |guest: &str, kind| Mount { guest: guest.into(), kind };
        config.mounts = vec![
            m("/", MountKind::Overlay { lower: "/lower".into(), upper: "/upper".into() }),
            m("/tmp", MountKind::Tmpfs { host: "/private/tmp".into() }),
            m("/home/u/secret", MountKind::Hidden { host: "/private/empty".into() }),
            m("/data", MountKind::ReadOnly { host: "/srv/data".into() }),
        ];
    }
    let image = kernel_host::testing::image();
    Kernel::new(config, image, Some(shared))
}

/// An argument register: a pointer into the memory (or just past it), a small number, or any.
fn arg(u: &mut Unstructured) -> Result<u64> {
    Ok(match u.int_in_range(0..=4u8)? {
        0 => BASE + u64::from(u.int_in_range(0..=LEN as u32)?),
        1 => i64::from(u.arbitrary::<i8>()?) as u64,
        2 => u64::from(u.arbitrary::<u16>()?),
        3 => (-100i64) as u64, // AT_FDCWD
        _ => u.arbitrary()?,
    })
}

/// Runs `f` with a fresh shared page, freed afterwards.
fn with_shared(u: &mut Unstructured, f: fn(&mut Unstructured, &'static Shared) -> Result<()>) -> Result<()> {
    let shared = Shared::private();
    let result = f(u, shared);
    // SAFETY: `Shared::private` allocated the page with this layout and leaked it; the kernel
    // that used it is gone with `f`, and nothing else holds it.
    unsafe { dealloc((shared as *const Shared).cast_mut().cast(), Layout::new::<Shared>()) };
    result
}

/// A host that answers from `answers` in turn, then as if signals kept arriving.
fn host(answers: Vec<i64>) -> FakeHost<impl Fn(u32, [u64; 6]) -> i64> {
    let next = Cell::new(0usize);
    FakeHost::new(move |nr, _| {
        let i = next.get();
        next.set(i + 1);
        // The fake host's waits return at once, so a wait for real time (a timer an hour away)
        // would spin here where a real host sleeps: past a budget, signals arrive (SIGALRM
        // from rt_sigtimedwait, EINTR from the rest), which the kernel's wait loops count and
        // give up on.
        if i > HOST_CALLS {
            return if nr == Sysno::rt_sigtimedwait.id() as u32 { 14 } else { -4 };
        }
        answers[i % answers.len()]
    })
}

/// Some host results, chosen by the input.
fn answers(u: &mut Unstructured) -> Result<Vec<i64>> {
    (0..16).map(|_| Ok(ANSWERS[u.choose_index(ANSWERS.len())?])).collect()
}

/// A `sockaddr_un` at the start of the memory, of any length, to bind, connect, sendto and
/// getsockname under a filesystem view (the calls that parse one), so that every input
/// reaches the parser.
fn unix_addresses(u: &mut Unstructured, shared: &'static Shared) -> Result<()> {
    let k = kernel(2, shared);
    let call = [Sysno::bind, Sysno::connect, Sysno::sendto, Sysno::getsockname][u.choose_index(4)?];
    let len = u64::from(u.int_in_range(0..=120u8)?);
    let mut addr = [0u8; 120];
    u.fill_buffer(&mut addr)?;
    if u.arbitrary()? {
        addr[..2].copy_from_slice(&1u16.to_ne_bytes()); // AF_UNIX
    }
    let host = host(answers(u)?);
    let mem = FakeMem::new(BASE, LEN);
    mem.put(BASE, &addr);
    mem.put(BASE + 0x200, &(len as u32).to_ne_bytes());
    let args = match call {
        Sysno::sendto => [3, BASE + 0x400, 16, 0, BASE, len],
        Sysno::getsockname => [3, BASE, BASE + 0x200, 0, 0, 0],
        _ => [3, BASE, len, 0, 0, 0],
    };
    let mut task = TaskCtx::new(&mem, &host, 0, SP);
    let _ = k.handle(&mut task, Syscall::new(call, args));
    Ok(())
}

/// One to four calls from the table against one kernel.
fn calls(u: &mut Unstructured, shared: &'static Shared) -> Result<()> {
    let k = kernel(u.arbitrary()?, shared);
    let mut plan = Vec::new();
    for _ in 0..u.int_in_range(1..=4)? {
        let entry = &TABLE[u.choose_index(TABLE.len())?];
        let args = [arg(u)?, arg(u)?, arg(u)?, arg(u)?, arg(u)?, arg(u)?];
        plan.push(Syscall { nr: entry.sysno.id() as u32, args });
    }
    let host = host(answers(u)?);
    let mem = FakeMem::new(BASE, LEN);
    let rest = std::mem::replace(u, Unstructured::new(&[])).take_rest();
    mem.bytes.borrow_mut()[..rest.len().min(LEN)].copy_from_slice(&rest[..rest.len().min(LEN)]);
    let mut task = TaskCtx::new(&mem, &host, 0, SP);
    for call in plan {
        let _ = k.handle(&mut task, call);
        task.scratch_used = 0;
        task.after = None;
    }
    Ok(())
}
