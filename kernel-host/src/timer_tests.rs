//! Timers through the real handlers: a fake guest memory and a fake host that records the
//! signals the kernel queues, so that when a timer fires can be checked to the nanosecond.

use crate::config::Reproducible;
use crate::testing::{FakeHost, FakeMem};
use crate::{Config, Disposition, Errno, Kernel, Syscall, TaskCtx};
use alloc::vec::Vec;
use core::cell::Cell;
use syscalls::Sysno;

const BASE: u64 = 0x10_000;
const SP: u64 = BASE + 0x8000;
const SIGALRM: u64 = 14;

fn kernel(fast_sleep: bool) -> Kernel {
    let image = crate::testing::image();
    let reproducible = Some(Reproducible { fast_sleep, ..Reproducible::default() });
    Kernel::new(Config { reproducible, ..Config::default() }, image, None)
}

fn call(nr: Sysno, args: &[u64]) -> Syscall {
    let mut all = [0; 6];
    all[..args.len()].copy_from_slice(args);
    Syscall::new(nr, all)
}

/// The signals queued through `rt_sigqueueinfo`, in order.
fn queued(calls: &[(u32, [u64; 6])]) -> Vec<u64> {
    calls.iter().filter(|c| c.0 == Sysno::rt_sigqueueinfo.id() as u32).map(|c| c.1[1]).collect()
}

/// `struct itimerval` / `itimerspec`: interval, then value.
fn spec(interval: (i64, i64), value: (i64, i64)) -> Vec<u8> {
    [interval.0, interval.1, value.0, value.1].iter().flat_map(|w| w.to_ne_bytes()).collect()
}

#[test]
fn an_interval_timer_fires_at_the_clock_read_that_reaches_it() {
    let k = kernel(false);
    let (mem, host) = (FakeMem::new(BASE, 0x10000), FakeHost::new(|_, _| 0));
    let mut t = TaskCtx::new(&mem, &host, 0, SP);
    // 10 µs: ten clock reads of 1 µs each.
    mem.put(BASE, &spec((0, 10), (0, 10)));
    let set = call(Sysno::setitimer, &[0, BASE, 0]);
    assert_eq!(k.handle(&mut t, set), Disposition::Return(0));
    let read = call(Sysno::clock_gettime, &[1, BASE + 64]);
    for _ in 0..9 {
        k.handle(&mut t, read);
    }
    assert!(queued(&host.calls.borrow()).is_empty(), "fired early");
    k.handle(&mut t, read);
    assert_eq!(queued(&host.calls.borrow()), [SIGALRM]);
    for _ in 0..10 {
        k.handle(&mut t, read);
    }
    assert_eq!(queued(&host.calls.borrow()), [SIGALRM, SIGALRM], "the interval re-arms it");
    // getitimer: 10 µs left, every 10 µs.
    assert_eq!(k.handle(&mut t, call(Sysno::getitimer, &[0, BASE + 128])), Disposition::Return(0));
    assert_eq!(mem.get(BASE + 128, 32), spec((0, 10), (0, 10)));
}

#[test]
fn alarm_returns_the_seconds_left_rounded() {
    let k = kernel(true);
    let (mem, host) = (FakeMem::new(BASE, 0x10000), FakeHost::new(|_, _| 0));
    let mut t = TaskCtx::new(&mem, &host, 0, SP);
    assert_eq!(k.handle(&mut t, call(Sysno::alarm, &[5])), Disposition::Return(0));
    // 1.6 s later: 3.4 s left, which alarm reports as 3.
    mem.put(BASE, &[1i64.to_ne_bytes(), 600_000_000i64.to_ne_bytes()].concat());
    assert_eq!(k.handle(&mut t, call(Sysno::nanosleep, &[BASE, 0])), Disposition::Return(0));
    assert_eq!(k.handle(&mut t, call(Sysno::alarm, &[0])), Disposition::Return(3));
    assert_eq!(k.handle(&mut t, call(Sysno::alarm, &[0])), Disposition::Return(0));
}

/// The host of a process that handles `SIGALRM`: a signal the kernel queues stays pending,
/// and a round's `rt_sigtimedwait` answers `waited()`.
fn alarm_host(queued_signal: &Cell<bool>, waited: fn() -> i64) -> impl Fn(u32, [u64; 6]) -> i64 + '_ {
    move |nr, args| match Sysno::new(nr as usize) {
        Some(Sysno::rt_sigqueueinfo) => {
            queued_signal.set(true);
            0
        }
        // The signal the timer queued stays pending, and the program handles it.
        Some(Sysno::rt_sigpending) if queued_signal.get() => {
            // SAFETY: the kernel passes a pointer to its own 8-byte set.
            unsafe { *(args[0] as *mut u64) = 1 << (SIGALRM - 1) };
            0
        }
        Some(Sysno::rt_sigaction) if args[2] != 0 => {
            // SAFETY: the kernel passes a pointer to its own 32-byte sigaction.
            unsafe { *(args[2] as *mut u64) = 0x40_1000 };
            0
        }
        Some(Sysno::rt_sigtimedwait) => waited(),
        _ => 0,
    }
}

/// Arms a 30 ms interval timer and returns a one-second `nanosleep` (its remainder at
/// `BASE + 96`) for the caller to make.
fn arm_and_sleep(k: &Kernel, t: &mut TaskCtx<'_>, mem: &FakeMem) -> Syscall {
    mem.put(BASE, &spec((0, 0), (0, 30_000)));
    assert_eq!(k.handle(t, call(Sysno::setitimer, &[0, BASE, 0])), Disposition::Return(0));
    mem.put(BASE + 64, &[1i64.to_ne_bytes(), 0i64.to_ne_bytes()].concat());
    call(Sysno::nanosleep, &[BASE + 64, BASE + 96])
}

#[test]
fn a_fast_sleep_stops_at_the_timer_whose_signal_interrupts_it() {
    let k = kernel(true);
    let queued_signal = Cell::new(false);
    let (mem, host) =
        (FakeMem::new(BASE, 0x10000), FakeHost::new(alarm_host(&queued_signal, || Errno::EAGAIN.ret())));
    let mut t = TaskCtx::new(&mem, &host, 0, SP);
    let sleep = arm_and_sleep(&k, &mut t, &mem);
    assert_eq!(k.handle(&mut t, sleep), Disposition::Return(Errno::EINTR.ret()));
    assert_eq!(queued(&host.calls.borrow()), [SIGALRM]);
    // Woken at 30 ms: 970 ms left, to the nanosecond.
    assert_eq!(mem.get(BASE + 96, 16), [0i64.to_ne_bytes(), 970_000_000i64.to_ne_bytes()].concat());
}

/// The same sleep with its rounds run in the task, as the ptrace backend runs them: the
/// handler leaves each round in the lent slot, and the wait goes on from the round's result.
#[test]
fn a_wait_whose_rounds_run_in_the_task_ends_as_in_the_handler() {
    let k = kernel(true);
    let queued_signal = Cell::new(false);
    let in_handler = || panic!("a round made by the handler");
    let (mem, host) = (FakeMem::new(BASE, 0x10000), FakeHost::new(alarm_host(&queued_signal, in_handler)));
    let slot = crate::WaitSlot::default();
    let mut t = TaskCtx::new(&mem, &host, 0, SP);
    t.rounds = Some(&slot);
    let sleep = arm_and_sleep(&k, &mut t, &mem);
    k.handle(&mut t, sleep);
    let mut rounds = 0;
    let end = loop {
        let round = slot.suspended.take().expect("a round for the task");
        assert_eq!(round.call.nr, Sysno::rt_sigtimedwait.id() as u32);
        // Fast sleeps: the round only looks, with a zero timeout below the red zone.
        assert_eq!(mem.get(round.call.args[2], 16), [0u8; 16]);
        assert!(round.call.args[2] < SP - crate::task::RED_ZONE);
        rounds += 1;
        let mut t = TaskCtx::new(&mem, &host, 0, SP);
        t.rounds = Some(&slot);
        let d = k.resume(&mut t, sleep, round, Errno::EAGAIN.ret());
        if slot.suspended.get().is_none() {
            break d;
        }
    };
    assert_eq!(end, Disposition::Return(Errno::EINTR.ret()), "after {rounds} rounds");
    assert_eq!(queued(&host.calls.borrow()), [SIGALRM]);
    assert_eq!(mem.get(BASE + 96, 16), [0i64.to_ne_bytes(), 970_000_000i64.to_ne_bytes()].concat());
}

#[test]
fn posix_timers_are_checked_and_deleted_once() {
    let k = kernel(true);
    let (mem, host) = (FakeMem::new(BASE, 0x10000), FakeHost::new(|_, _| 0));
    let mut t = TaskCtx::new(&mem, &host, 0, SP);
    let einval = Disposition::Return(Errno::EINVAL.ret());
    assert_eq!(k.handle(&mut t, call(Sysno::timer_create, &[4, 0, BASE])), einval, "CLOCK_MONOTONIC_RAW");
    assert_eq!(k.handle(&mut t, call(Sysno::timer_create, &[1, 0, BASE])), Disposition::Return(0));
    assert_eq!(mem.get(BASE, 4), 0i32.to_ne_bytes());
    assert_eq!(k.handle(&mut t, call(Sysno::timer_create, &[1, 0, BASE])), Disposition::Return(0));
    assert_eq!(mem.get(BASE, 4), 1i32.to_ne_bytes());
    mem.put(BASE + 32, &spec((0, 0), (-1, 0)));
    assert_eq!(k.handle(&mut t, call(Sysno::timer_settime, &[0, 0, BASE + 32, 0])), einval);
    assert_eq!(k.handle(&mut t, call(Sysno::timer_getoverrun, &[1])), Disposition::Return(0));
    assert_eq!(k.handle(&mut t, call(Sysno::timer_delete, &[1])), Disposition::Return(0));
    assert_eq!(k.handle(&mut t, call(Sysno::timer_delete, &[1])), einval);
    assert_eq!(k.handle(&mut t, call(Sysno::timer_gettime, &[7, BASE])), einval);
}

#[test]
fn interval_timers_survive_exec_and_posix_timers_do_not() {
    let k = kernel(true);
    let (mem, host) = (FakeMem::new(BASE, 0x10000), FakeHost::new(|_, _| 0));
    let mut t = TaskCtx::new(&mem, &host, 0, SP);
    assert_eq!(k.handle(&mut t, call(Sysno::alarm, &[7])), Disposition::Return(0));
    assert_eq!(k.handle(&mut t, call(Sysno::timer_create, &[1, 0, BASE])), Disposition::Return(0));
    let expiry = k.timers.intervals()[0].0;
    assert!(expiry >= 7_000_000_000, "alarm(7) expires at {expiry}");
    let next = Config { itimers: k.timers.intervals(), ..k.config.clone() };
    let image = crate::testing::image();
    let after = Kernel::new(Config::decode(&next.encode()).unwrap(), image, None);
    assert_eq!(after.timers.intervals()[0], (expiry, 0));
    assert_eq!(after.timers.get(crate::timer::Kind::Posix(0)), None);
}

/// A host with one child that `ready` says has ended (`waitid` with `WNOWAIT` sees it), where
/// the signals the kernel queues stay pending (the program's handler has no `SA_RESTART`) and
/// waits for signals time out.
fn host_with_child<'a>(ready: &'a Cell<bool>, queued: &'a Cell<u64>) -> impl Fn(u32, [u64; 6]) -> i64 + 'a {
    move |nr: u32, args: [u64; 6]| -> i64 {
        match Sysno::new(nr as usize) {
            Some(Sysno::getpid | Sysno::gettid) => 5,
            Some(Sysno::rt_sigqueueinfo) => {
                queued.set(queued.get() | 1 << (args[1] - 1));
                0
            }
            Some(Sysno::rt_sigpending) => {
                // SAFETY: the kernel passes a pointer to its own 8-byte set.
                unsafe { *(args[0] as *mut u64) = queued.get() };
                0
            }
            Some(Sysno::rt_sigaction) if args[2] != 0 => {
                // SAFETY: the kernel passes a pointer to its own 32-byte sigaction: a handler,
                // no flags.
                unsafe { *(args[2] as *mut u64) = 0x40_1000 };
                0
            }
            Some(Sysno::waitid) => {
                if ready.get() {
                    // SAFETY: the kernel passes a pointer to its own 128-byte siginfo; si_pid.
                    unsafe { *((args[2] + 16) as *mut i32) = 6 };
                }
                0
            }
            Some(Sysno::rt_sigtimedwait) => Errno::EAGAIN.ret(),
            _ => 0,
        }
    }
}

#[test]
fn a_poll_for_children_after_a_blocked_timer_signal_finds_none_once() {
    let k = kernel(true);
    let (ready, queued) = (Cell::new(true), Cell::new(0));
    let (mem, host) = (FakeMem::new(BASE, 0x10000), FakeHost::new(host_with_child(&ready, &queued)));
    // SIGALRM blocked, as coreutils timeout blocks it around its polls.
    let mut t = TaskCtx::new(&mem, &host, 1 << (SIGALRM - 1), SP);
    mem.put(BASE, &spec((0, 0), (0, 5)));
    assert_eq!(k.handle(&mut t, call(Sysno::setitimer, &[0, BASE, 0])), Disposition::Return(0));
    // The child's sleep moved the clock past the expiry, and the child ended.
    k.clock.virtual_clock().unwrap().advance(1_000_000);
    let poll = call(Sysno::wait4, &[6, BASE + 64, 1 /* WNOHANG */, 0]);
    assert_eq!(k.handle(&mut t, poll), Disposition::Return(0), "the child's end overtook the timer");
    assert_eq!(queued.get(), 1 << (SIGALRM - 1));
    assert_eq!(k.handle(&mut t, poll), Disposition::Host(poll), "the child stays hidden");
}

/// `setitimer(ITIMER_REAL)` one second ahead, once.
fn arm_one_second(k: &Kernel, t: &mut TaskCtx<'_>, mem: &FakeMem) {
    mem.put(BASE, &spec((0, 0), (1, 0)));
    assert_eq!(k.handle(t, call(Sysno::setitimer, &[0, BASE, 0])), Disposition::Return(0));
}

/// With a timer armed, a poll made while the child runs is answered from a look at the
/// children, not left to the host's wait: a child that ended (its sleep moving the clock past
/// the parent's expiry) between the kernel's decision and the host's wait would be reported
/// before the timer.
#[test]
fn a_poll_with_a_timer_armed_does_not_leave_a_running_child_to_the_host() {
    let k = kernel(true);
    let (ready, queued) = (Cell::new(false), Cell::new(0));
    let (mem, host) = (FakeMem::new(BASE, 0x10000), FakeHost::new(host_with_child(&ready, &queued)));
    let mut t = TaskCtx::new(&mem, &host, 1 << (SIGALRM - 1), SP);
    arm_one_second(&k, &mut t, &mem);
    let poll = call(Sysno::wait4, &[6, BASE + 64, 1 /* WNOHANG */, 0]);
    assert_eq!(k.handle(&mut t, poll), Disposition::Return(0), "the host's wait could see a late end");
    assert_eq!(queued.get(), 0, "the clock is before the expiry");
}

/// The same look answers a `waitid` poll: with no child ended it returns 0 and zeroes the
/// `siginfo_t`, as Linux does, without the host's wait.
#[test]
fn a_waitid_poll_with_a_timer_armed_is_answered_with_a_zeroed_siginfo() {
    let k = kernel(true);
    let (ready, queued) = (Cell::new(false), Cell::new(0));
    let (mem, host) = (FakeMem::new(BASE, 0x10000), FakeHost::new(host_with_child(&ready, &queued)));
    let mut t = TaskCtx::new(&mem, &host, 1 << (SIGALRM - 1), SP);
    arm_one_second(&k, &mut t, &mem);
    let info = BASE + 256;
    mem.put(info, &[0xff; 128]);
    // waitid(P_ALL, 0, info, WEXITED | WNOHANG)
    let poll = call(Sysno::waitid, &[0, 0, info, 4 | 1, 0]);
    assert_eq!(k.handle(&mut t, poll), Disposition::Return(0));
    assert_eq!(mem.get(info, 32), [0u8; 32], "the siginfo is not zeroed");
    let waits = host.calls.borrow().iter().filter(|c| c.0 == Sysno::waitid.id() as u32).count();
    assert_eq!(waits, 1, "one look, no other wait");
}

/// `waitid`'s options are `EINVAL` for `wait4`, timer or not: the host says so.
#[test]
fn a_wait4_with_waitid_s_options_goes_to_the_host() {
    let k = kernel(true);
    let (ready, queued) = (Cell::new(false), Cell::new(0));
    let (mem, host) = (FakeMem::new(BASE, 0x10000), FakeHost::new(host_with_child(&ready, &queued)));
    let mut t = TaskCtx::new(&mem, &host, 1 << (SIGALRM - 1), SP);
    arm_one_second(&k, &mut t, &mem);
    for options in [1 | 0x0100_0000 /* WNOHANG | WNOWAIT */, 1 | 4 /* WNOHANG | WEXITED */] {
        let poll = call(Sysno::wait4, &[u64::MAX, BASE + 64, options, 0]);
        assert_eq!(k.handle(&mut t, poll), Disposition::Host(poll), "options {options:#x}");
    }
}

/// A child found ended by the look was seen after the clock passed where it is then: the
/// timers due by then fire first, and their blocked signal holds the child's end back once.
#[test]
fn a_child_found_ended_by_a_poll_comes_after_the_timers_its_end_passed() {
    let k = kernel(true);
    let clock = k.clock.virtual_clock().unwrap();
    let (ready, queued) = (Cell::new(true), Cell::new(0));
    let child = host_with_child(&ready, &queued);
    // The child ends, its sleep past the parent's expiry, right before the kernel looks.
    let host = FakeHost::new(|nr: u32, args: [u64; 6]| -> i64 {
        if nr == Sysno::waitid.id() as u32 {
            clock.advance(5_000_000_000);
        }
        child(nr, args)
    });
    let mem = FakeMem::new(BASE, 0x10000);
    let mut t = TaskCtx::new(&mem, &host, 1 << (SIGALRM - 1), SP);
    arm_one_second(&k, &mut t, &mem);
    let poll = call(Sysno::wait4, &[6, BASE + 64, 1 /* WNOHANG */, 0]);
    assert_eq!(k.handle(&mut t, poll), Disposition::Return(0), "the child's end overtook the timer");
    assert_eq!(queued.get(), 1 << (SIGALRM - 1));
}

#[test]
fn a_wait_for_a_child_ends_at_the_parent_s_timer() {
    let k = kernel(true);
    let (ready, queued) = (Cell::new(false), Cell::new(0));
    let (mem, host) = (FakeMem::new(BASE, 0x10000), FakeHost::new(host_with_child(&ready, &queued)));
    let mut t = TaskCtx::new(&mem, &host, 0, SP);
    assert_eq!(k.handle(&mut t, call(Sysno::alarm, &[1])), Disposition::Return(0));
    let start = k.clock.virtual_clock().unwrap().elapsed();
    let wait = call(Sysno::wait4, &[u64::MAX /* -1 */, BASE + 64, 0, 0]);
    assert_eq!(k.handle(&mut t, wait), Disposition::Return(Errno::EINTR.ret()));
    assert_eq!(queued.get(), 1 << (SIGALRM - 1));
    assert_eq!(k.clock.virtual_clock().unwrap().elapsed() - start, 1_000_000_000);
    // A child that has ended is reported: no timer is left to wait for.
    ready.set(true);
    assert_eq!(k.handle(&mut t, wait), Disposition::Host(wait));
}
