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
//! Who owns what, as Linux has it. Interval and POSIX timers are the process's own: a forked
//! child starts without them ([`Timers::enter_child`]), a `vfork` child that shares this memory
//! never fires them ([`Timers::claim`]), and only the interval timers are handed to the next
//! image at `execve` ([`Timers::intervals`]). A timer descriptor is a file that parent and child
//! share after fork: its expiry lives in the sandbox's shared memory ([`crate::timer_fds`]),
//! the table keeps a reference to it and a cached copy of its expiry, and an expiration is
//! counted once, by whichever holder fires it first. The table is bounded ([`MAX_TIMERS`]): no
//! call allocates past it.
//!
//! Read first: `setitimer(2)`, `timer_create(2)`, `timerfd_create(2)`, `signal(7)`.

use crate::sync::SpinLock;
use crate::timer_fds::{FdRef, TimerFds};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Timers one process may hold, of every kind together. Linux's limit is the pending-signal
/// rlimit (thousands); programs use a handful.
pub const MAX_TIMERS: usize = 256;

/// No expiry: what [`Timers::next_expiry`] holds while nothing is armed.
pub const NEVER: u64 = u64::MAX;

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
    /// `sigev_value`, handed to the program in `si_value`; for a timer descriptor, its
    /// [`FdRef`] in the shared table.
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
    /// The sandbox's timer descriptors.
    fds: &'static TimerFds,
    /// Whether the table holds a shared timer descriptor: only then is [`TimerFds::changes`]
    /// looked at.
    has_fds: AtomicBool,
    /// [`TimerFds::changes`] when the cached expiries of descriptors were last read.
    fd_changes: AtomicU64,
    /// Signals (a bit each) the timers queued since the process last waited for a child.
    queued: AtomicU64,
    table: SpinLock<Vec<Timer>>,
}

impl Timers {
    /// No timers; timer descriptors' timers go in `fds`.
    pub const fn new(fds: &'static TimerFds) -> Self {
        Timers {
            next: AtomicU64::new(NEVER),
            owner: AtomicU32::new(0),
            fds,
            has_fds: AtomicBool::new(false),
            fd_changes: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            table: SpinLock::new(Vec::new()),
        }
    }

    /// Records that a timer queued signal `sig` (1..=64).
    pub fn note_queued(&self, sig: u32) {
        if (1..=64).contains(&sig) {
            self.queued.fetch_or(1 << (sig - 1), Ordering::Relaxed);
        }
    }

    /// The signals the timers queued since the last call, as a mask.
    pub fn take_queued(&self) -> u64 {
        self.queued.swap(0, Ordering::Relaxed)
    }

    /// The sandbox's timer descriptors.
    pub fn fds(&self) -> &'static TimerFds {
        self.fds
    }

    /// The shared record of a timer descriptor, if it has one.
    fn shared_ref(t: &Timer) -> Option<FdRef> {
        let r = FdRef(t.value);
        (matches!(t.kind, Kind::Fd(_)) && r.shared()).then_some(r)
    }

    /// Re-reads the expiries of shared descriptors when another process may have re-armed one
    /// (two atomic loads when none did). Never called with the table locked.
    fn sync(&self) {
        if !self.has_fds.load(Ordering::Relaxed) {
            return;
        }
        let changes = self.fds.changes();
        if changes == self.fd_changes.load(Ordering::Relaxed) {
            return;
        }
        let mut table = self.table.lock();
        self.refresh(&mut table);
        self.fd_changes.store(changes, Ordering::Relaxed);
        self.recompute(&table);
    }

    /// Copies the shared expiries into the table, dropping descriptors whose record is gone.
    fn refresh(&self, table: &mut Vec<Timer>) {
        table.retain_mut(|t| match Self::shared_ref(t) {
            Some(r) => self.fds.get(r).map(|slot| t.slot = slot).is_some(),
            None => true,
        });
    }

    /// `pid` lets go of the shared record of `t`, if it has one.
    fn release(&self, t: &Timer) {
        let pid = self.owner.load(Ordering::Acquire);
        if let (Some(r), true) = (Self::shared_ref(t), pid != 0) {
            self.fds.release(r, pid);
        }
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
        self.sync();
        match self.next.load(Ordering::Acquire) {
            NEVER => None,
            e => Some(e),
        }
    }

    /// The earliest expiry of the armed timers whose notification `ends` accepts (timer
    /// descriptors' timers, which notify no one but their descriptor, are not among them).
    pub fn next_expiry_of(&self, ends: impl Fn(Notify) -> bool) -> Option<u64> {
        // Copied out first: `ends` may make host calls, which no spin lock should be held over.
        let armed: alloc::vec::Vec<(u64, Notify)> =
            self.table.lock().iter().filter(|t| t.slot.armed()).map(|t| (t.slot.expiry, t.notify)).collect();
        armed.into_iter().filter(|&(_, n)| ends(n)).map(|(e, _)| e).min()
    }

    /// The words that say whether a clock read has any timer to fire: while the first holds
    /// [`NEVER`] and the second `false` (no timer descriptor, whose expiries another process
    /// may move), a read is a step of the clock and nothing else. For a backend that serves
    /// clock reads without calling in here.
    pub fn quiet_words(&self) -> (&AtomicU64, &AtomicBool) {
        (&self.next, &self.has_fds)
    }

    /// Whether the process has any timer, armed or not.
    pub fn any(&self) -> bool {
        !self.table.lock().is_empty()
    }

    /// Whether some timer is due at `now`: one atomic load, for the clock-read path.
    pub fn due(&self, now: u64) -> bool {
        self.sync();
        now >= self.next.load(Ordering::Acquire)
    }

    fn recompute(&self, table: &[Timer]) {
        let next = table.iter().filter(|t| t.slot.armed()).map(|t| t.slot.expiry).min().unwrap_or(NEVER);
        self.next.store(next, Ordering::Release);
    }

    /// The timer `kind`, if it exists.
    pub fn get(&self, kind: Kind) -> Option<Timer> {
        let mut timer = self.table.lock().iter().find(|t| t.kind == kind).copied()?;
        if let Some(r) = Self::shared_ref(&timer) {
            timer.slot = self.fds.get(r).unwrap_or_default();
        }
        Some(timer)
    }

    /// Adds or replaces `timer` (by kind), returning the one it replaced.
    pub fn put(&self, mut timer: Timer) -> Result<Option<Timer>, AddError> {
        if let Some(r) = Self::shared_ref(&timer) {
            timer.slot = self.fds.get(r).unwrap_or_default();
        }
        let mut table = self.table.lock();
        let old = match table.iter().position(|t| t.kind == timer.kind) {
            Some(i) => {
                let old = core::mem::replace(&mut table[i], timer);
                self.release(&old);
                Some(old)
            }
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
        if Self::shared_ref(&timer).is_some() {
            self.has_fds.store(true, Ordering::Relaxed);
        }
        self.recompute(&table);
        Ok(old)
    }

    /// Re-arms an existing timer, keeping everything else; returns its previous slot, or
    /// `None` if there is no such timer.
    pub fn rearm(&self, kind: Kind, slot: Slot) -> Option<Slot> {
        let mut table = self.table.lock();
        let timer = table.iter_mut().find(|t| t.kind == kind)?;
        let old = match Self::shared_ref(timer) {
            Some(r) => self.fds.set(r, slot)?,
            None => timer.slot,
        };
        timer.slot = slot;
        timer.overrun = 0;
        self.recompute(&table);
        Some(old)
    }

    /// Removes a timer, returning it.
    pub fn remove(&self, kind: Kind) -> Option<Timer> {
        let mut table = self.table.lock();
        let i = table.iter().position(|t| t.kind == kind)?;
        let old = table.swap_remove(i);
        self.release(&old);
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

    /// Fires the timers due at `now` that expire first: `fire(timer, expirations)` runs for
    /// each, under the table's lock (it must not block or take the lock again), keeps the
    /// overrun count, and returns whether the timer should stay (a descriptor that is gone
    /// returns false). Timers that expire later, though due, fire at the next checkpoint:
    /// when another process moved the clock past several expiries at once, their signals
    /// come one checkpoint apart, in the order of the expiries, as they would have in time.
    /// A shared descriptor's expirations are claimed in the shared table first: those another
    /// holder claimed are not fired here. Returns how many fired.
    pub fn fire_due(&self, now: u64, mut fire: impl FnMut(&mut Timer, u64) -> bool) -> usize {
        if !self.due(now) {
            return 0;
        }
        let mut table = self.table.lock();
        let first = table.iter().filter(|t| t.slot.armed()).map(|t| t.slot.expiry).min().unwrap_or(NEVER);
        let mut fired = 0;
        let mut i = 0;
        while i < table.len() {
            if !table[i].slot.armed() || table[i].slot.expiry != first {
                i += 1;
                continue;
            }
            let n = match Self::shared_ref(&table[i]) {
                Some(r) => {
                    let n = self.fds.take_due(r, now);
                    match self.fds.get(r) {
                        Some(slot) if n.is_some() => table[i].slot = slot,
                        _ => {
                            table.swap_remove(i);
                            continue;
                        }
                    }
                    n.unwrap_or(0)
                }
                None => table[i].slot.take_due(now),
            };
            if n == 0 {
                i += 1;
                continue;
            }
            fired += 1;
            if fire(&mut table[i], n) {
                i += 1;
            } else {
                let gone = table.swap_remove(i);
                self.release(&gone);
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

    /// In a forked child, process `pid`: interval and POSIX timers are the parent's alone; the
    /// child holds the shared timer descriptors it inherited. A descriptor whose timer is
    /// its process's alone ([`FdRef::LOCAL`]) stays the parent's to fire: the child, which
    /// shares the file, sees the expirations the parent counts.
    pub fn enter_child(&self, pid: u32) {
        let mut table = self.table.lock();
        table.retain(|t| Self::shared_ref(t).is_some_and(|r| self.fds.hold(r, pid)));
        self.refresh(&mut table);
        self.recompute(&table);
        self.queued.store(0, Ordering::Relaxed);
        self.owner.store(pid, Ordering::Release);
    }

    /// Makes `child`, the empty table of a forked child's kernel kept outside the processes
    /// (ptrace), what the child's copy of this table becomes in-process
    /// ([`Timers::enter_child`]): the timer descriptors it shares with this process.
    pub fn fork_into(&self, child: &Timers, pid: u32) {
        let copy = self.table.lock().clone();
        *child.table.lock() = copy;
        child.has_fds.store(self.has_fds.load(Ordering::Relaxed), Ordering::Relaxed);
        child.enter_child(pid);
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
    use crate::shared::Shared;

    fn timers() -> Timers {
        Timers::new(&Shared::private().timer_fds)
    }

    /// A timer descriptor armed at `expiry` in the shared table, as `timerfd_create` and
    /// `timerfd_settime` leave it, held by process `pid`.
    fn shared_fd(t: &Timers, pid: u32, fd: i32, expiry: u64, interval: u64) -> Timer {
        let r = t.fds().alloc(pid, |_| true);
        t.fds().set(r, Slot::new(true, expiry, interval));
        Timer {
            kind: Kind::Fd(fd),
            clock: 1,
            notify: Notify::Fd,
            value: r.0,
            slot: Slot::default(),
            overrun: 0,
        }
    }

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
        let t = timers();
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
        let t = timers();
        assert!(t.claim(10));
        let fd = shared_fd(&t, 10, 900, 10, 0);
        t.put(fd).unwrap();
        t.fire_due(10, |_, _| false);
        assert_eq!(t.get(Kind::Fd(900)), None);
        assert_eq!(t.fds().get(FdRef(fd.value)), None, "the record outlived its last holder");
    }

    #[test]
    fn the_first_process_owns_the_timers() {
        let t = timers();
        assert!(t.claim(10) && t.claim(10));
        assert!(!t.claim(11), "a vfork child took its parent's timers");
        t.enter_child(11);
        assert!(t.claim(11) && !t.claim(10));
    }

    #[test]
    fn a_child_keeps_only_descriptors() {
        let t = timers();
        t.put(timer(Kind::Interval(0), 10, 0)).unwrap();
        t.put(timer(Kind::Posix(3), 10, 0)).unwrap();
        t.put(shared_fd(&t, 10, 901, 20, 0)).unwrap();
        // A descriptor without a shared record is the parent's to fire.
        t.put(Timer { kind: Kind::Fd(902), notify: Notify::Fd, ..timer(Kind::Fd(902), 5, 0) }).unwrap();
        t.enter_child(11);
        assert_eq!(t.get(Kind::Posix(3)), None);
        assert_eq!(t.get(Kind::Fd(902)), None);
        assert_eq!(t.next_expiry(), Some(20));
    }

    #[test]
    fn parent_and_child_count_a_shared_descriptor_once() {
        let parent = timers();
        assert!(parent.claim(10));
        let fd = shared_fd(&parent, 10, 960, 100, 0);
        parent.put(fd).unwrap();
        // fork: the child's table is a copy of the parent's, over the same shared memory.
        let child = Timers::new(parent.fds());
        child.put(fd).unwrap();
        child.enter_child(11);
        let (mut by_parent, mut by_child) = (0, 0);
        parent.fire_due(150, |_, n| {
            by_parent += n;
            true
        });
        child.fire_due(150, |_, n| {
            by_child += n;
            true
        });
        assert_eq!((by_parent, by_child), (1, 0));
        assert_eq!(child.next_expiry(), None, "the child still waits for an expiry counted");
    }

    #[test]
    fn a_rearm_in_one_process_moves_the_other_s_next_expiry() {
        let parent = timers();
        assert!(parent.claim(10));
        let fd = shared_fd(&parent, 10, 960, 1_000, 0);
        parent.put(fd).unwrap();
        let child = Timers::new(parent.fds());
        child.put(fd).unwrap();
        child.enter_child(11);
        assert_eq!(parent.next_expiry(), Some(1_000));
        child.rearm(Kind::Fd(960), Slot::new(true, 40, 0));
        assert_eq!(parent.next_expiry(), Some(40));
        assert_eq!(parent.get(Kind::Fd(960)).unwrap().slot.expiry, 40);
    }

    #[test]
    fn the_table_is_bounded_and_ids_are_reused() {
        let t = timers();
        for id in 0..MAX_TIMERS as i32 {
            assert_eq!(t.free_posix_id(), id);
            t.put(timer(Kind::Posix(id), 10, 0)).unwrap();
        }
        assert_eq!(t.put(timer(Kind::Posix(-1), 10, 0)), Err(AddError::Full));
        t.remove(Kind::Posix(7));
        assert_eq!(t.free_posix_id(), 7);
    }
}
