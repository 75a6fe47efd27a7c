//! Timer descriptors' expiries, kept once for the whole sandbox.
//!
//! A timer descriptor is a file: after `fork` parent and child hold the same open file, with one
//! timer and one expiration count, read by whichever reads first (`timerfd_create(2)`). The count
//! is the host timerfd's own (cloister sets it, see `sys/timerfd.rs`), so it is shared already;
//! the expiry and interval must be shared too, or each process that holds the descriptor would
//! count every expiration once more. So they live here, in the sandbox's shared memory
//! ([`crate::shared::Shared`]), one record per descriptor `timerfd_create` made: any process
//! that holds the descriptor may fire it at its checkpoints, and an expiration is claimed by a
//! compare-and-swap on the expiry, so exactly one process counts it. A `timerfd_settime` in
//! any of them re-arms the one timer, and the others see it ([`TimerFds::changes`]).
//!
//! Only atomics live here (a process may die anywhere). A record is freed when the processes
//! that hold it let it go ([`TimerFds::release`]), or, when a new descriptor finds every record
//! taken, when all of them have ended ([`TimerFds::alloc`] asks the caller which are alive).
//! A process that closed a descriptor but lives on keeps its record until it notices the
//! descriptor is gone (at the next expiry) or ends: records are bounded ([`SLOTS`]), and a
//! descriptor made when all are held by live processes keeps its timer to its own process
//! ([`FdRef::LOCAL`]), as before this table existed.
//!
//! Read first: `timerfd_create(2)`, `fork(2)`.

use crate::timer::Slot;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Timer descriptors the sandbox may hold at once with a shared timer.
pub const SLOTS: usize = 64;
/// Processes a record names as holders; more make the record permanent (see [`Record`]).
const HOLDERS: usize = 6;
/// [`Record::overflow`] when more processes held the record than it could name.
const PERMANENT: u32 = 1;
/// How long [`TimerFds::counting`] waits for another process (two system calls' time, many
/// times over).
const BUSY_SPINS: u32 = 1 << 20;

/// One timer descriptor's timer.
#[repr(C)]
pub struct Record {
    /// 0: free. Otherwise the tag [`FdRef`] carries, unique for the sandbox's life, so that a
    /// stale reference never reaches the descriptor that reused the record.
    tag: AtomicU64,
    /// Elapsed nanoseconds of the next expiry; 0: disarmed (as [`Slot::expiry`]).
    expiry: AtomicU64,
    /// Nanoseconds between expirations.
    interval: AtomicU64,
    /// Processes (pids) that hold the descriptor; 0: an empty place.
    holders: [AtomicU32; HOLDERS],
    /// [`PERMANENT`] when a holder found no place: the record is never reclaimed.
    overflow: AtomicU32,
    /// Non-zero while a process adds expirations to the host's count ([`TimerFds::counting`]).
    busy: AtomicU32,
}

/// The sandbox's timer descriptors.
#[repr(C)]
pub struct TimerFds {
    /// Bumped by every re-arm: a process whose cached expiries may be late re-reads them.
    changes: AtomicU64,
    /// The last tag handed out.
    next_tag: AtomicU64,
    records: [Record; SLOTS],
}

/// A process's reference to a record: the record's index and tag, in one word (the index in
/// the low 16 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdRef(pub u64);

impl FdRef {
    /// No record: the descriptor's timer is its process's alone.
    pub const LOCAL: FdRef = FdRef(0);

    fn index(self) -> usize {
        (self.0 & 0xffff) as usize
    }

    fn tag(self) -> u64 {
        self.0 >> 16
    }

    /// Whether the timer is in the shared table.
    pub fn shared(self) -> bool {
        self.tag() != 0
    }
}

impl TimerFds {
    fn record(&self, r: FdRef) -> Option<&Record> {
        let rec = self.records.get(r.index())?;
        (r.shared() && rec.tag.load(Ordering::Acquire) == r.tag()).then_some(rec)
    }

    /// How many re-arms there have been: a process compares it with the count it last saw.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// A disarmed record held by `pid`, or [`FdRef::LOCAL`] when all are taken by processes
    /// `alive` says still run.
    pub fn alloc(&self, pid: u32, alive: impl Fn(u32) -> bool) -> FdRef {
        let tag = self.next_tag.fetch_add(1, Ordering::Relaxed) + 1;
        let claim = |i: usize, rec: &Record, old: u64| {
            if rec.tag.compare_exchange(old, tag, Ordering::AcqRel, Ordering::Relaxed).is_err() {
                return None;
            }
            rec.expiry.store(0, Ordering::Relaxed);
            rec.interval.store(0, Ordering::Relaxed);
            rec.overflow.store(0, Ordering::Relaxed);
            rec.busy.store(0, Ordering::Relaxed);
            for (n, h) in rec.holders.iter().enumerate() {
                h.store(if n == 0 { pid } else { 0 }, Ordering::Release);
            }
            Some(FdRef((tag << 16) | i as u64))
        };
        let free = self.records.iter().enumerate().filter(|(_, r)| r.tag.load(Ordering::Relaxed) == 0);
        for (i, rec) in free {
            if let Some(r) = claim(i, rec, 0) {
                return r;
            }
        }
        // Every record is taken: reclaim one whose holders have all ended.
        for (i, rec) in self.records.iter().enumerate() {
            let old = rec.tag.load(Ordering::Acquire);
            let dead = rec.overflow.load(Ordering::Relaxed) != PERMANENT
                && rec.holders.iter().map(|h| h.load(Ordering::Relaxed)).all(|p| p == 0 || !alive(p));
            if old != 0 && dead {
                if let Some(r) = claim(i, rec, old) {
                    return r;
                }
            }
        }
        FdRef::LOCAL
    }

    /// Names `pid` as a holder of `r` (a forked child, which inherited the descriptor).
    /// Returns false when the record is gone.
    pub fn hold(&self, r: FdRef, pid: u32) -> bool {
        let Some(rec) = self.record(r) else { return false };
        if rec.holders.iter().any(|h| h.load(Ordering::Relaxed) == pid) {
            return true;
        }
        if !rec
            .holders
            .iter()
            .any(|h| h.compare_exchange(0, pid, Ordering::AcqRel, Ordering::Relaxed).is_ok())
        {
            rec.overflow.store(PERMANENT, Ordering::Relaxed);
        }
        true
    }

    /// `pid` no longer holds `r`; the record is freed when nobody does.
    pub fn release(&self, r: FdRef, pid: u32) {
        let Some(rec) = self.record(r) else { return };
        for h in &rec.holders {
            let _ = h.compare_exchange(pid, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
        let empty = rec.holders.iter().all(|h| h.load(Ordering::Acquire) == 0);
        if empty && rec.overflow.load(Ordering::Relaxed) != PERMANENT {
            let _ = rec.tag.compare_exchange(r.tag(), 0, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// The timer of `r`; `None` when the record is gone.
    pub fn get(&self, r: FdRef) -> Option<Slot> {
        let rec = self.record(r)?;
        Some(Slot {
            expiry: rec.expiry.load(Ordering::Acquire),
            interval: rec.interval.load(Ordering::Acquire),
        })
    }

    /// Re-arms `r`, returning its previous timer; `None` when the record is gone.
    pub fn set(&self, r: FdRef, slot: Slot) -> Option<Slot> {
        let rec = self.record(r)?;
        let interval = rec.interval.swap(slot.interval, Ordering::AcqRel);
        let expiry = rec.expiry.swap(slot.expiry, Ordering::AcqRel);
        self.changes.fetch_add(1, Ordering::AcqRel);
        Some(Slot { expiry, interval })
    }

    /// Runs `add`, which adds expirations of `r` to the host's count by taking the count and
    /// setting it back, while no other process does the same for `r`: two at once would lose
    /// one's expirations. A process that died in the middle cannot hold the others up for
    /// long: after [`BUSY_SPINS`] they go ahead.
    pub fn counting<R>(&self, r: FdRef, add: impl FnOnce() -> R) -> R {
        let Some(rec) = self.record(r) else { return add() };
        let mut spins = 0;
        while rec.busy.compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
            spins += 1;
            if spins >= BUSY_SPINS {
                break;
            }
            core::hint::spin_loop();
        }
        let out = add();
        rec.busy.store(0, Ordering::Release);
        out
    }

    /// Claims the expirations of `r` that have come by `now`, moving its timer past them: the
    /// caller counts them, and no other process will. `None` when the record is gone.
    pub fn take_due(&self, r: FdRef, now: u64) -> Option<u64> {
        let rec = self.record(r)?;
        loop {
            let expiry = rec.expiry.load(Ordering::Acquire);
            let mut slot = Slot { expiry, interval: rec.interval.load(Ordering::Acquire) };
            let n = slot.take_due(now);
            if n == 0 {
                return Some(0);
            }
            if rec.expiry.compare_exchange(expiry, slot.expiry, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                return Some(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::Shared;

    fn table() -> &'static TimerFds {
        &Shared::private().timer_fds
    }

    #[test]
    fn each_expiration_is_claimed_once() {
        let t = table();
        let r = t.alloc(10, |_| true);
        assert!(r.shared());
        t.set(r, Slot::new(true, 100, 50));
        assert_eq!(t.take_due(r, 99), Some(0));
        assert_eq!(t.take_due(r, 160), Some(2));
        // The other process that holds the descriptor finds nothing left to count.
        assert_eq!(t.take_due(r, 160), Some(0));
        assert_eq!(t.get(r), Some(Slot { expiry: 200, interval: 50 }));
    }

    #[test]
    fn a_rearm_is_seen_by_every_holder() {
        let t = table();
        let r = t.alloc(10, |_| true);
        let before = t.changes();
        assert_eq!(t.set(r, Slot::new(true, 7, 0)), Some(Slot::default()));
        assert_ne!(t.changes(), before);
    }

    #[test]
    fn a_record_is_freed_when_its_last_holder_lets_go() {
        let t = table();
        let r = t.alloc(10, |_| true);
        assert!(t.hold(r, 11));
        t.release(r, 10);
        assert!(t.get(r).is_some(), "the child still holds it");
        t.release(r, 11);
        assert_eq!(t.get(r), None);
        assert!(!t.hold(r, 12), "a stale reference reached a freed record");
    }

    #[test]
    fn records_of_processes_that_ended_are_reclaimed_when_all_are_taken() {
        let t = table();
        let refs: alloc::vec::Vec<FdRef> = (0..SLOTS as u32).map(|i| t.alloc(100 + i, |_| true)).collect();
        assert!(refs.iter().all(|r| r.shared()));
        assert_eq!(t.alloc(1, |_| true), FdRef::LOCAL, "every holder still runs");
        let again = t.alloc(1, |pid| pid != 105);
        assert!(again.shared());
        assert_eq!(t.get(refs[5]), None, "the reclaimed record kept its old tag");
        assert!(t.get(again).is_some());
    }
}
