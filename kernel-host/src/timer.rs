//! Timers on the virtual clock of reproducible mode: `alarm` and the interval timers, POSIX
//! timers (`timer_create`) and timer descriptors (`timerfd_create`).
//!
//! A timer is an expiry on the virtual clock (elapsed nanoseconds, like
//! [`crate::time::VirtualClock::elapsed`]) and an interval. Nothing fires by itself: the clock
//! only moves when the program makes it move, so timers are checked when it does (a clock
//! read, a sleep, a wait), and a wait that would outlast the next expiry ends at it
//! (`sys/wake.rs`). What firing does (queue a signal, make a descriptor readable) is the
//! caller's: this module only keeps the table and the arithmetic, so it can be tested alone.
//!
//! The table is per process, as Linux keeps timers: a forked child starts without interval
//! and POSIX timers ([`Timers::enter_child`]) but keeps its timer descriptors, which it
//! inherited. It is bounded ([`MAX_TIMERS`]): no call allocates past it.
//!
//! Read first: `setitimer(2)`, `timer_create(2)`, `timerfd_create(2)`, `signal(7)`.

use crate::sync::SpinLock;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Timers one process may hold, of every kind together. Linux's limit is the pending-signal
/// rlimit (thousands); programs use a handful.
pub const MAX_TIMERS: usize = 256;

/// No expiry: what [`Timers::next_expiry`] holds while nothing is armed.
const NEVER: u64 = u64::MAX;

/// An expiry and an interval on the virtual clock. `expiry` 0 means disarmed (no timer can
/// expire at the sandbox's very start: arming one takes a call, and calls come after it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    /// Elapsed nanoseconds at which the timer expires next; 0 when disarmed.
    pub expiry: u64,
    /// Nanoseconds between expirations; 0 for a one-shot timer.
    pub interval: u64,
}

impl Slot {
    /// A timer that expires at `expiry` (at least 1, so that a deadline already passed still
    /// reads as armed) and then every `interval`; disarmed when `armed` is false.
    pub fn new(armed: bool, expiry: u64, interval: u64) -> Self {
        if armed {
            Slot { expiry: expiry.max(1), interval }
        } else {
            Slot::default()
        }
    }

    /// Whether the timer will expire.
    pub fn armed(&self) -> bool {
        self.expiry != 0
    }

    /// Time left until the next expiry at `now` (0 when disarmed or due).
    pub fn remaining(&self, now: u64) -> u64 {
        if self.armed() {
            self.expiry.saturating_sub(now)
        } else {
            0
        }
    }

    /// The expirations that have come by `now`, moving the timer past them: computed, not
    /// counted, so a timer with a short interval left behind for long costs nothing.
    pub fn take_due(&mut self, now: u64) -> u64 {
        if !self.armed() || now < self.expiry {
            return 0;
        }
        if self.interval == 0 {
            self.expiry = 0;
            return 1;
        }
        let n = (now - self.expiry) / self.interval + 1;
        self.expiry = self.expiry.saturating_add(n.saturating_mul(self.interval));
        if self.expiry == NEVER {
            self.expiry = 0;
        }
        n
    }
}

/// Which timer an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An interval timer (`ITIMER_REAL` 0, `ITIMER_VIRTUAL` 1, `ITIMER_PROF` 2); `alarm` is
    /// `ITIMER_REAL`.
    Interval(u32),
    /// A POSIX timer, by the id `timer_create` returned.
    Posix(i32),
    /// A timer descriptor, by its number.
    Fd(i32),
}

/// What an expiry does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    /// Nothing (`SIGEV_NONE`): the program polls `timer_gettime`.
    Nothing,
    /// Queue this signal to the process.
    Process(u32),
    /// Queue this signal to one thread (`SIGEV_THREAD_ID`, glibc's `SIGEV_THREAD`).
    Thread(u32, u32),
    /// Add the expirations to the descriptor's count.
    Fd,
}

/// One timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timer {
    /// Which timer it is.
    pub kind: Kind,
    /// The clock its absolute times are read on.
    pub clock: u64,
    /// What its expiry does.
    pub notify: Notify,
    /// `sigev_value`, handed to the program in `si_value`.
    pub value: u64,
    /// When it expires.
    pub slot: Slot,
    /// Expirations that found the timer's signal still pending (`timer_getoverrun`).
    pub overrun: u64,
}

/// Why a timer could not be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddError {
    /// The table holds [`MAX_TIMERS`] already.
    Full,
}

/// A process's timers.
pub struct Timers {
    /// The earliest expiry of all armed timers ([`NEVER`] when none), read without the lock
    /// on every clock read.
    next: AtomicU64,
    /// The process the timers belong to (0: not known yet). A `vfork` child shares its
    /// parent's memory, and so this table, until it execs: it must neither fire the parent's
    /// timers nor take them through its exec.
    owner: AtomicU32,
    table: SpinLock<Vec<Timer>>,
}

impl Default for Timers {
    fn default() -> Self {
        Self::new()
    }
}

impl Timers {
    /// No timers.
    pub const fn new() -> Self {
        Timers { next: AtomicU64::new(NEVER), owner: AtomicU32::new(0), table: SpinLock::new(Vec::new()) }
    }

    /// Whether process `pid` owns the timers: the first process to ask does.
    pub fn claim(&self, pid: u32) -> bool {
        match self.owner.compare_exchange(0, pid, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => true,
            Err(owner) => owner == pid,
        }
    }

    /// The earliest armed expiry, if any.
    pub fn next_expiry(&self) -> Option<u64> {
        match self.next.load(Ordering::Acquire) {
            NEVER => None,
            e => Some(e),
        }
    }

    /// Whether the process has any timer, armed or not.
    pub fn any(&self) -> bool {
        !self.table.lock().is_empty()
    }

    /// Whether some timer is due at `now`: one atomic load, for the clock-read path.
    pub fn due(&self, now: u64) -> bool {
        now >= self.next.load(Ordering::Acquire)
    }

    fn recompute(&self, table: &[Timer]) {
        let next = table.iter().filter(|t| t.slot.armed()).map(|t| t.slot.expiry).min().unwrap_or(NEVER);
        self.next.store(next, Ordering::Release);
    }

    /// The timer `kind`, if it exists.
    pub fn get(&self, kind: Kind) -> Option<Timer> {
        self.table.lock().iter().find(|t| t.kind == kind).copied()
    }

    /// Adds or replaces `timer` (by kind), returning the one it replaced.
    pub fn put(&self, timer: Timer) -> Result<Option<Timer>, AddError> {
        let mut table = self.table.lock();
        let old = match table.iter().position(|t| t.kind == timer.kind) {
            Some(i) => Some(core::mem::replace(&mut table[i], timer)),
            None if table.len() >= MAX_TIMERS => return Err(AddError::Full),
            None => {
                if table.capacity() == 0 {
                    // One allocation for the table's whole life, so no later call allocates.
                    table.reserve_exact(MAX_TIMERS);
                }
                table.push(timer);
                None
            }
        };
        self.recompute(&table);
        Ok(old)
    }

    /// Re-arms an existing timer, keeping everything else; returns its previous slot, or
    /// `None` if there is no such timer.
    pub fn rearm(&self, kind: Kind, slot: Slot) -> Option<Slot> {
        let mut table = self.table.lock();
        let timer = table.iter_mut().find(|t| t.kind == kind)?;
        let old = core::mem::replace(&mut timer.slot, slot);
        timer.overrun = 0;
        self.recompute(&table);
        Some(old)
    }

    /// Removes a timer, returning it.
    pub fn remove(&self, kind: Kind) -> Option<Timer> {
        let mut table = self.table.lock();
        let i = table.iter().position(|t| t.kind == kind)?;
        let old = table.swap_remove(i);
        self.recompute(&table);
        Some(old)
    }

    /// The lowest POSIX timer id not in use.
    pub fn free_posix_id(&self) -> i32 {
        let table = self.table.lock();
        (0..=MAX_TIMERS as i32)
            .find(|id| !table.iter().any(|t| t.kind == Kind::Posix(*id)))
            .unwrap_or(MAX_TIMERS as i32)
    }

    /// Fires every timer due at `now`: `fire(timer, expirations)` runs for each, under the
    /// table's lock (it must not block or take the lock again), keeps the overrun count, and
    /// returns whether the timer should stay (a descriptor that is gone returns false).
    /// Returns how many fired.
    pub fn fire_due(&self, now: u64, mut fire: impl FnMut(&mut Timer, u64) -> bool) -> usize {
        if !self.due(now) {
            return 0;
        }
        let mut table = self.table.lock();
        let mut fired = 0;
        let mut i = 0;
        while i < table.len() {
            let n = table[i].slot.take_due(now);
            if n == 0 {
                i += 1;
                continue;
            }
            fired += 1;
            if fire(&mut table[i], n) {
                i += 1;
            } else {
                table.swap_remove(i);
            }
        }
        self.recompute(&table);
        fired
    }

    /// The interval timers as `(expiry, interval)`, by `which` (expiry 0: disarmed), for the
    /// next image: they survive `execve`; POSIX timers and descriptors' state do not.
    pub fn intervals(&self) -> [(u64, u64); 3] {
        let mut out = [(0, 0); 3];
        for t in self.table.lock().iter() {
            if let Kind::Interval(which) = t.kind {
                if let Some(slot) = out.get_mut(which as usize) {
                    *slot = (t.slot.expiry, t.slot.interval);
                }
            }
        }
        out
    }

    /// In a forked child: interval and POSIX timers are the parent's alone; timer
    /// descriptors were inherited and stay.
    pub fn enter_child(&self) {
        let mut table = self.table.lock();
        table.retain(|t| matches!(t.kind, Kind::Fd(_)));
        self.recompute(&table);
        self.owner.store(0, Ordering::Release);
    }

    /// Takes the lock before a fork.
    pub fn lock_for_fork(&self) {
        self.table.raw_lock();
    }

    /// Releases what [`Timers::lock_for_fork`] took.
    pub fn unlock_after_fork(&self) {
        self.table.raw_unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(kind: Kind, expiry: u64, interval: u64) -> Timer {
        Timer {
            kind,
            clock: 1,
            notify: Notify::Process(14),
            value: 0,
            slot: Slot::new(true, expiry, interval),
            overrun: 0,
        }
    }

    #[test]
    fn a_periodic_timer_counts_every_expiration_it_passed() {
        let mut s = Slot::new(true, 100, 10);
        assert_eq!(s.take_due(99), 0);
        assert_eq!(s.take_due(100), 1);
        assert_eq!(s.expiry, 110);
        assert_eq!(s.take_due(145), 4);
        assert_eq!(s.expiry, 150);
        let mut once = Slot::new(true, 5, 0);
        assert_eq!(once.take_due(1_000), 1);
        assert!(!once.armed());
        assert_eq!(once.take_due(2_000), 0);
    }

    #[test]
    fn a_deadline_in_the_past_is_still_armed() {
        assert!(Slot::new(true, 0, 0).armed());
        assert!(!Slot::new(false, 50, 5).armed());
    }

    #[test]
    fn next_expiry_follows_the_table() {
        let t = Timers::new();
        assert_eq!(t.next_expiry(), None);
        t.put(timer(Kind::Interval(0), 300, 0)).unwrap();
        t.put(timer(Kind::Posix(0), 200, 50)).unwrap();
        assert_eq!(t.next_expiry(), Some(200));
        assert!(!t.due(199) && t.due(200));
        let mut seen = Vec::new();
        let fired = t.fire_due(260, |timer, n| {
            seen.push((timer.kind, n));
            timer.overrun = n - 1;
            true
        });
        assert_eq!(fired, 1);
        assert_eq!(seen, [(Kind::Posix(0), 2)]);
        assert_eq!(t.get(Kind::Posix(0)).unwrap().overrun, 1);
        assert_eq!(t.next_expiry(), Some(300));
        t.remove(Kind::Interval(0));
        assert_eq!(t.next_expiry(), Some(300));
        t.rearm(Kind::Posix(0), Slot::default());
        assert_eq!(t.next_expiry(), None);
    }

    #[test]
    fn a_descriptor_that_is_gone_is_dropped_when_it_fires() {
        let t = Timers::new();
        t.put(timer(Kind::Fd(900), 10, 0)).unwrap();
        t.fire_due(10, |_, _| false);
        assert_eq!(t.get(Kind::Fd(900)), None);
    }

    #[test]
    fn the_first_process_owns_the_timers() {
        let t = Timers::new();
        assert!(t.claim(10) && t.claim(10));
        assert!(!t.claim(11), "a vfork child took its parent's timers");
        t.enter_child();
        assert!(t.claim(11));
    }

    #[test]
    fn a_child_keeps_only_descriptors() {
        let t = Timers::new();
        t.put(timer(Kind::Interval(0), 10, 0)).unwrap();
        t.put(timer(Kind::Posix(3), 10, 0)).unwrap();
        t.put(timer(Kind::Fd(901), 20, 0)).unwrap();
        t.enter_child();
        assert_eq!(t.get(Kind::Posix(3)), None);
        assert_eq!(t.next_expiry(), Some(20));
    }

    #[test]
    fn the_table_is_bounded_and_ids_are_reused() {
        let t = Timers::new();
        for id in 0..MAX_TIMERS as i32 {
            assert_eq!(t.free_posix_id(), id);
            t.put(timer(Kind::Posix(id), 10, 0)).unwrap();
        }
        assert_eq!(t.put(timer(Kind::Posix(-1), 10, 0)), Err(AddError::Full));
        t.remove(Kind::Posix(7));
        assert_eq!(t.free_posix_id(), 7);
    }
}
