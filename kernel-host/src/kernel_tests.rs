//! Kernel-level tests: real handlers, a fake guest memory and a fake host, no interception.

use crate::abi::{sigbit, KernelSigaction, SIGSET_SIZE, SIGSYS, SIG_BLOCK, UTSNAME_SIZE, UTS_NODENAME};
use crate::testing::{FakeHost, FakeMem};
use crate::{Config, Disposition, Errno, Kernel, Syscall, TaskCtx};
use alloc::vec::Vec;
use syscalls::Sysno;

const BASE: u64 = 0x10_000;
const SP: u64 = BASE + 0x8000;

fn kernel(cfg: Config) -> Kernel {
    let image = crate::testing::image();
    Kernel::new(Config { rt_path: "/opt/cloister-rt".into(), ..cfg }, image, None)
}

fn host_uname(nr: u32, args: [u64; 6]) -> i64 {
    if nr == Sysno::uname.id() as u32 {
        // SAFETY: the kernel passes a pointer to its own UTSNAME_SIZE-byte buffer.
        let buf = unsafe { core::slice::from_raw_parts_mut(args[0] as *mut u8, UTSNAME_SIZE) };
        buf[..5].copy_from_slice(b"Linux");
        buf[UTS_NODENAME..UTS_NODENAME + 4].copy_from_slice(b"host");
        return 0;
    }
    -38
}

#[test]
fn uname_shows_the_virtual_hostname_and_faults_on_bad_pointers() {
    let k = kernel(Config { hostname: Some("box".into()), ..Config::default() });
    let (mem, host) = (FakeMem::new(BASE, 0x10000), FakeHost::new(host_uname));
    let mut t = TaskCtx::new(&mem, &host, 0, SP);
    assert_eq!(k.handle(&mut t, Syscall::new(Sysno::uname, [BASE, 0, 0, 0, 0, 0])), Disposition::Return(0));
    assert_eq!(mem.get(BASE + UTS_NODENAME as u64, 4), b"box\0");
    assert_eq!(mem.get(BASE, 5), b"Linux");
    assert_eq!(
        k.handle(&mut t, Syscall::new(Sysno::uname, [1, 0, 0, 0, 0, 0])),
        Disposition::Return(Errno::EFAULT.ret())
    );
}

#[test]
fn sigsys_cannot_be_blocked_or_taken() {
    let k = kernel(Config::default());
    let (mem, host) = (FakeMem::new(BASE, 0x10000), FakeHost::new(|_, _| 0));
    let mut t = TaskCtx::new(&mem, &host, 0, SP);
    mem.put(BASE, &u64::MAX.to_ne_bytes());
    let call = Syscall::new(Sysno::rt_sigprocmask, [SIG_BLOCK, BASE, BASE + 8, SIGSET_SIZE, 0, 0]);
    assert_eq!(k.handle(&mut t, call), Disposition::Return(0));
    assert_eq!(t.sigmask & sigbit(SIGSYS), 0);
    assert_ne!(t.sigmask & sigbit(2), 0);
    // ... but the program is told it is blocked.
    let query = Syscall::new(Sysno::rt_sigprocmask, [SIG_BLOCK, 0, BASE + 8, SIGSET_SIZE, 0, 0]);
    assert_eq!(k.handle(&mut t, query), Disposition::Return(0));
    assert_eq!(
        u64::from_ne_bytes(mem.get(BASE + 8, 8).try_into().unwrap()),
        !crate::abi::sigbit(9) & !crate::abi::sigbit(19)
    );

    let act = KernelSigaction { handler: 0x1234, flags: 4, restorer: 0, mask: u64::MAX };
    mem.put(BASE + 64, &act.to_bytes());
    host.calls.borrow_mut().clear();
    let set = Syscall::new(Sysno::rt_sigaction, [31, BASE + 64, 0, 8, 0, 0]);
    assert_eq!(k.handle(&mut t, set), Disposition::Return(0));
    assert!(host.calls.borrow().is_empty(), "SIGSYS's handler must never reach the host");
    let get = Syscall::new(Sysno::rt_sigaction, [31, 0, BASE + 128, 8, 0, 0]);
    assert_eq!(k.handle(&mut t, get), Disposition::Return(0));
    assert_eq!(mem.get(BASE + 128, 32), act.to_bytes());

    // Another signal's handler mask loses SIGSYS on its way to the host.
    let other = Syscall::new(Sysno::rt_sigaction, [2, BASE + 64, 0, 8, 0, 0]);
    let Disposition::Host(h) = k.handle(&mut t, other) else { panic!("expected a host call") };
    let mut b = [0u8; 32];
    b.copy_from_slice(&mem.get(h.args[1], 32));
    assert_eq!(KernelSigaction::from_bytes(&b).mask, !crate::abi::UNBLOCKABLE);
    assert!(h.args[1] < SP - 128, "scratch must sit below the red zone");
}

#[test]
fn seeded_getrandom_is_repeatable_and_faults_cleanly() {
    let cfg = Config { seed: Some(9), ..Config::default() };
    let (k1, k2) = (kernel(cfg.clone()), kernel(cfg));
    let (mem, host) = (FakeMem::new(BASE, 0x10000), FakeHost::new(|_, _| 0));
    let mut t = TaskCtx::new(&mem, &host, 0, SP);
    let call = Syscall::new(Sysno::getrandom, [BASE, 600, 0, 0, 0, 0]);
    assert_eq!(k1.handle(&mut t, call), Disposition::Return(600));
    let first = mem.get(BASE, 600);
    assert_eq!(k2.handle(&mut t, call), Disposition::Return(600));
    assert_eq!(first, mem.get(BASE, 600));
    let bad = Syscall::new(Sysno::getrandom, [8, 16, 0, 0, 0, 0]);
    assert_eq!(k1.handle(&mut t, bad), Disposition::Return(Errno::EFAULT.ret()));
}

#[test]
fn proc_self_exe_names_the_program() {
    let k = kernel(Config::default());
    let (mem, host) = (FakeMem::new(BASE, 0x10000), FakeHost::new(|_, _| 4242));
    let mut t = TaskCtx::new(&mem, &host, 0, SP);
    mem.put(BASE, b"/proc/self/exe\0");
    let call = Syscall::new(Sysno::readlink, [BASE, BASE + 256, 100, 0, 0, 0]);
    assert_eq!(k.handle(&mut t, call), Disposition::Return(13));
    assert_eq!(mem.get(BASE + 256, 13), b"/usr/bin/prog");
    mem.put(BASE, b"/etc/passwd\0");
    assert_eq!(k.handle(&mut t, call), Disposition::Host(call));
}

#[test]
fn execve_reenters_through_the_runtime() {
    let k = kernel(Config { hostname: Some("box".into()), ..Config::default() });
    let host = FakeHost::new(|nr, args| {
        if nr == Sysno::pread64.id() as u32 {
            // SAFETY: the kernel passes a pointer to its own buffer of at least 64 bytes.
            let buf = unsafe { core::slice::from_raw_parts_mut(args[1] as *mut u8, 64) };
            buf[..4].copy_from_slice(b"\x7fELF");
            buf[4] = 2;
            buf[5] = 1;
            buf[18] = 62;
            buf[16] = 3;
            return 64;
        }
        if nr == Sysno::fstat.id() as u32 {
            // SAFETY: as above, a 144-byte stat buffer.
            let buf = unsafe { core::slice::from_raw_parts_mut(args[1] as *mut u8, 144) };
            buf[24..28].copy_from_slice(&0o100_755u32.to_ne_bytes());
        }
        if nr == Sysno::openat.id() as u32 {
            5
        } else {
            0
        }
    });
    let mem = FakeMem::new(BASE, 0x10000);
    let mut t = TaskCtx::new(&mem, &host, 0, SP);
    mem.put(BASE, b"/bin/true\0");
    mem.put(BASE + 32, b"true\0");
    mem.put(BASE + 64, b"CLOISTER_RT_CONFIG=evil\0");
    mem.put(BASE + 128, b"HOME=/root\0");
    mem.put(BASE + 256, &(BASE + 32).to_ne_bytes());
    mem.put(BASE + 264, &0u64.to_ne_bytes());
    mem.put(BASE + 272, &(BASE + 64).to_ne_bytes());
    mem.put(BASE + 280, &(BASE + 128).to_ne_bytes());
    mem.put(BASE + 288, &0u64.to_ne_bytes());
    let call = Syscall::new(Sysno::execve, [BASE, BASE + 256, BASE + 272, 0, 0, 0]);
    let Disposition::Exec(plan) = k.handle(&mut t, call) else { panic!("expected an exec plan") };
    assert_eq!(plan.path, b"/opt/cloister-rt");
    assert_eq!(plan.argv, [b"cloister-rt".to_vec(), b"/bin/true".to_vec(), b"true".to_vec()]);
    assert_eq!(plan.envp.len(), 2);
    assert_eq!(plan.envp[0], b"HOME=/root");
    let cfg = core::str::from_utf8(&plan.envp[1]).unwrap().strip_prefix("CLOISTER_RT_CONFIG=").unwrap();
    assert_eq!(Config::decode(cfg).unwrap().hostname.as_deref(), Some("box"));
}

#[test]
fn execve_of_a_missing_file_fails_in_the_caller() {
    let k = kernel(Config::default());
    let host = FakeHost::new(|_, _| Errno::ENOENT.ret());
    let mem = FakeMem::new(BASE, 0x10000);
    let mut t = TaskCtx::new(&mem, &host, 0, SP);
    mem.put(BASE, b"/nope\0");
    let call = Syscall::new(Sysno::execve, [BASE, 0, 0, 0, 0, 0]);
    assert_eq!(k.handle(&mut t, call), Disposition::Return(Errno::ENOENT.ret()));
}

#[test]
fn strings_are_read_at_their_own_size() {
    let (mem, host) = (FakeMem::new(BASE, 0x10000), FakeHost::new(|_, _| 0));
    let t = TaskCtx::new(&mem, &host, 0, SP);
    mem.put(BASE, b"short\0");
    let s = t.read_cstring(BASE, 128 * 1024).unwrap();
    assert_eq!((s.as_slice(), s.capacity()), (&b"short"[..], 5));
    let long = [b'x'; 1000];
    mem.put(BASE + 0x100, &long);
    mem.put(BASE + 0x100 + 1000, b"\0");
    let s = t.read_cstring(BASE + 0x100, 4096).unwrap();
    assert_eq!((s.len(), s.capacity()), (1000, 1000));
    assert_eq!(t.read_cstring(BASE + 0x100, 999), Err(Errno::ENAMETOOLONG));
}

#[test]
fn close_range_skips_every_reserved_descriptor() {
    let k = kernel(Config { trace_fd: Some(1023), shared_fd: Some(1022), ..Config::default() });
    let (mem, host) = (FakeMem::new(BASE, 0x1000), FakeHost::new(|_, _| 0));
    let mut t = TaskCtx::new(&mem, &host, 0, SP);
    let call = Syscall::new(Sysno::close_range, [3, u64::from(u32::MAX), 0, 0, 0, 0]);
    assert_eq!(k.handle(&mut t, call), Disposition::Return(0));
    let ranges: Vec<(u64, u64)> = host.calls.borrow().iter().map(|(_, a)| (a[0], a[1])).collect();
    assert_eq!(ranges, [(3, 1021), (1024, u64::from(u32::MAX))]);
    host.calls.borrow_mut().clear();
    let call = Syscall::new(Sysno::close_range, [1022, 1023, 0, 0, 0, 0]);
    assert_eq!(k.handle(&mut t, call), Disposition::Return(0));
    assert!(host.calls.borrow().is_empty());
}

#[test]
fn a_fast_sleep_of_centuries_leaves_the_clocks_readable_and_monotonic() {
    // Found by fuzz/guest: the sleep moved the virtual clock to u64::MAX and the next read
    // overflowed (time back at the start in a release build).
    let repro = crate::config::Reproducible { fast_sleep: true, ..Default::default() };
    let k = kernel(Config { reproducible: Some(repro), ..Config::default() });
    let (mem, host) = (FakeMem::new(BASE, 0x10000), FakeHost::new(|_, _| 0));
    let mut t = TaskCtx::new(&mem, &host, 0, SP);
    let now = |t: &mut TaskCtx<'_>| {
        assert_eq!(
            k.handle(t, Syscall::new(Sysno::clock_gettime, [1, BASE + 64, 0, 0, 0, 0])),
            Disposition::Return(0)
        );
        let b = mem.get(BASE + 64, 16);
        i64::from_ne_bytes(b[..8].try_into().unwrap())
    };
    let before = now(&mut t);
    mem.put(BASE, &18_446_744_073i64.to_ne_bytes());
    mem.put(BASE + 8, &0i64.to_ne_bytes());
    assert_eq!(
        k.handle(&mut t, Syscall::new(Sysno::nanosleep, [BASE, 0, 0, 0, 0, 0])),
        Disposition::Return(0)
    );
    let (a, b) = (now(&mut t), now(&mut t));
    assert!(before < a && a <= b, "{before}, then {a}, then {b}");
    assert!(matches!(k.handle(&mut t, Syscall::new(Sysno::times, [0; 6])), Disposition::Return(r) if r > 0));
}
