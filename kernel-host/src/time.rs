//! Time: shifted realtime clocks, or a virtual clock.
//!
//! With an offset, every clock that reads wall time (`CLOCK_REALTIME` and its coarse, alarm
//! and TAI variants, `gettimeofday`, `time`) reads the host's value plus the offset, and
//! absolute realtime sleeps are shifted back. Monotonic and CPU clocks are left alone, so they
//! stay monotonic.
//!
//! In reproducible mode every clock is virtual: one counter of nanoseconds, shared by the
//! whole sandbox ([`crate::shared::Shared`]), that advances by [`STEP_NS`] on every read and by
//! the duration of every sleep, never by itself. Wall clocks read the epoch plus the counter;
//! the others read [`MONOTONIC_BASE_NS`] plus the counter. The kernel never reads a clock by
//! itself: in offset mode callers pass the host's reading.

use crate::abi::is_realtime_clock;
use crate::config::Config;
use crate::shared::Shared;
use core::sync::atomic::{AtomicU64, Ordering};

/// How far the virtual clock moves on each read, so that two reads never return the same
/// time and a loop that waits for time to pass ends.
pub const STEP_NS: u64 = 1_000;
/// What monotonic clocks read when the sandbox starts: as if the machine had been up 100 s.
pub const MONOTONIC_BASE_NS: u64 = 100 * 1_000_000_000;
/// Where the virtual clock stops (about 292 years after the start): every clock's base plus
/// the elapsed time fits in a `u64`, and a deadline a sleep sets cannot wrap the clock around.
pub const MAX_ELAPSED: u64 = i64::MAX as u64;
/// Nanoseconds per second.
const NS: u64 = 1_000_000_000;

/// `struct timespec` / `struct timeval`: two 64-bit words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimePair {
    /// Seconds.
    pub secs: i64,
    /// Nanoseconds (`timespec`) or microseconds (`timeval`).
    pub frac: i64,
}

impl TimePair {
    /// Parses 16 bytes as the kernel lays them out.
    pub fn from_bytes(b: &[u8; 16]) -> Self {
        let mut s = [0u8; 8];
        let mut f = [0u8; 8];
        s.copy_from_slice(&b[..8]);
        f.copy_from_slice(&b[8..]);
        TimePair { secs: i64::from_ne_bytes(s), frac: i64::from_ne_bytes(f) }
    }

    /// The 16 bytes the kernel would write.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.secs.to_ne_bytes());
        b[8..].copy_from_slice(&self.frac.to_ne_bytes());
        b
    }

    /// A `timespec` from nanoseconds.
    pub fn from_ns(ns: u64) -> Self {
        TimePair { secs: (ns / NS) as i64, frac: (ns % NS) as i64 }
    }

    /// Nanoseconds of a `timespec`; `None` if it is negative or not normalised.
    pub fn to_ns(self) -> Option<u64> {
        if self.secs < 0 || !(0..NS as i64).contains(&self.frac) {
            return None;
        }
        (self.secs as u64).checked_mul(NS)?.checked_add(self.frac as u64)
    }
}

/// [`VirtualClock`]'s `seen` when the process cannot tell what it last saw.
const UNSEEN: u64 = u64::MAX;

/// The virtual clock of reproducible mode.
pub struct VirtualClock {
    shared: &'static Shared,
    epoch_ns: u64,
    fast_sleep: bool,
    /// The clock as this process last saw it (a read, a sleep that ended), or [`UNSEEN`]
    /// after something that may have moved it out of sight (a wait on the host, a child's
    /// end). Per process: fork copies it, exec starts from the shared clock.
    seen: AtomicU64,
}

impl VirtualClock {
    /// The shared clock and this process's last sight of it, for an entry that reads the
    /// counter without calling in here (the in-process runtime's patched `rdtsc` sites): it must
    /// step them as [`VirtualClock::tick`] does.
    pub fn tick_words(&self) -> (&AtomicU64, &AtomicU64) {
        (&self.shared.clock_ns, &self.seen)
    }

    /// Advances the clock by one step and returns the nanoseconds elapsed since the start.
    pub fn tick(&self) -> u64 {
        // Up to MAX_ELAPSED, where the clock stops rather than wrap around to the start.
        let step = |now: u64| Some(now.saturating_add(STEP_NS).min(MAX_ELAPSED.max(now)));
        let before = self.shared.clock_ns.fetch_update(Ordering::Relaxed, Ordering::Relaxed, step);
        let now = step(before.unwrap_or_else(|now| now)).unwrap_or(MAX_ELAPSED);
        self.seen.store(now, Ordering::Relaxed);
        now
    }

    /// The deadline of a wait of `ns` from now: where a sleep that runs to its end puts the
    /// clock, [`MAX_ELAPSED`] at most.
    pub fn after(&self, ns: u64) -> u64 {
        self.elapsed().saturating_add(ns).min(MAX_ELAPSED)
    }

    /// A sleep of `ns` from now: the clock moves to the sleeper's deadline unless another
    /// thread or process already moved it past (sleeps that overlap do not add up). Returns
    /// the deadline.
    pub fn advance(&self, ns: u64) -> u64 {
        let deadline = self.after(ns);
        self.advance_to(deadline);
        deadline
    }

    /// Moves the clock to `deadline` (elapsed nanoseconds) unless it is past it already: a
    /// wait that reached a timer's expiry.
    pub fn advance_to(&self, deadline: u64) {
        let deadline = deadline.min(MAX_ELAPSED);
        let before = self.shared.clock_ns.fetch_max(deadline, Ordering::Relaxed);
        self.seen.store(before.max(deadline), Ordering::Relaxed);
    }

    /// Where a relative timer the process arms now starts: the clock as the process last
    /// saw it. Other processes move the shared clock meanwhile, in the host's scheduling
    /// order; a timer armed right after a fork (`timeout`) must not start after a sleep its
    /// child happened to make first. When the process cannot tell, the shared clock.
    pub fn anchor(&self) -> u64 {
        self.seen.load(Ordering::Relaxed).min(self.elapsed())
    }

    /// The clock may have moved out of this process's sight (a wait made on the host, whose
    /// end the gate records; a child that ended): timers start from the shared clock again.
    pub fn lose_sight(&self) {
        self.seen.store(UNSEEN, Ordering::Relaxed);
    }

    /// The process sees the clock as it is now, unless it saw it earlier: at a fork, which no
    /// sleep of the child can have preceded, so that a timer the parent arms right after it
    /// does not start after one.
    pub fn keep_sight(&self) {
        self.seen.fetch_min(self.elapsed(), Ordering::Relaxed);
    }

    /// Elapsed nanoseconds, without advancing.
    pub fn elapsed(&self) -> u64 {
        self.shared.clock_ns.load(Ordering::Relaxed)
    }

    /// Reads `clock` (advancing the counter).
    pub fn read(&self, clock: u64) -> TimePair {
        let elapsed = self.tick();
        TimePair::from_ns(self.base(clock).saturating_add(elapsed))
    }

    /// What `clock` read when the sandbox started: the epoch for wall clocks, nothing for
    /// CPU-time clocks (a process has used none yet), an uptime for the others.
    pub fn base(&self, clock: u64) -> u64 {
        const CLOCK_PROCESS_CPUTIME_ID: u64 = 2;
        const CLOCK_THREAD_CPUTIME_ID: u64 = 3;
        if is_realtime_clock(clock) {
            self.epoch_ns
        } else if matches!(clock, CLOCK_PROCESS_CPUTIME_ID | CLOCK_THREAD_CPUTIME_ID) || (clock as i64) < 0 {
            0
        } else {
            MONOTONIC_BASE_NS
        }
    }

    /// Whether sleeps return at once.
    pub fn fast_sleep(&self) -> bool {
        self.fast_sleep
    }

    /// The shared counter itself.
    pub fn counter(&self) -> &'static AtomicU64 {
        &self.shared.clock_ns
    }
}

/// The sandbox's view of time.
pub struct Clock {
    offset: Option<i64>,
    virt: Option<VirtualClock>,
}

impl Clock {
    /// Clocks as the configuration sets them; `shared` holds the virtual clock's counter.
    pub fn new(config: &Config, shared: &'static Shared) -> Self {
        let virt = config.reproducible.map(|r| VirtualClock {
            shared,
            epoch_ns: (r.epoch.max(0) as u64).saturating_mul(NS),
            fast_sleep: r.fast_sleep,
            seen: AtomicU64::new(shared.clock_ns.load(Ordering::Relaxed)),
        });
        Clock { offset: config.time_offset, virt }
    }

    /// The virtual clock, in reproducible mode.
    pub fn virtual_clock(&self) -> Option<&VirtualClock> {
        self.virt.as_ref()
    }

    /// Seconds to add to a host reading of `clock` (0 for clocks that are not wall time).
    pub fn offset_for(&self, clock: u64) -> i64 {
        match self.offset {
            Some(off) if is_realtime_clock(clock) => off,
            _ => 0,
        }
    }

    /// The offset for wall-clock readings (`gettimeofday`, `time`).
    pub fn wall_offset(&self) -> i64 {
        self.offset.unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::CLOCK_REALTIME;
    use crate::config::Reproducible;

    fn shared() -> &'static Shared {
        Shared::private()
    }

    #[test]
    fn only_realtime_clocks_shift() {
        let clock = Clock::new(&Config { time_offset: Some(3600), ..Config::default() }, shared());
        assert_eq!(clock.offset_for(CLOCK_REALTIME), 3600);
        assert_eq!(clock.offset_for(1 /* CLOCK_MONOTONIC */), 0);
        assert_eq!(clock.offset_for(7 /* CLOCK_BOOTTIME */), 0);
    }

    #[test]
    fn the_virtual_clock_starts_at_the_epoch_and_only_moves_when_used() {
        let cfg = Config { reproducible: Some(Reproducible::default()), ..Config::default() };
        let clock = Clock::new(&cfg, shared());
        let v = clock.virtual_clock().unwrap();
        let first = v.read(CLOCK_REALTIME);
        assert_eq!(first, TimePair { secs: 946_684_800, frac: STEP_NS as i64 });
        assert!(v.read(CLOCK_REALTIME).to_ns() > first.to_ns());
        v.advance(2 * NS);
        assert_eq!(v.read(1).secs, 102);
    }

    #[test]
    fn a_sleep_of_centuries_stops_the_clock_at_its_end_instead_of_wrapping_it() {
        // Found by fuzz/guest: a fast sleep of ~584 years moved the counter to u64::MAX, and the
        // next read overflowed (a panic with overflow checks, time back at 0 without).
        let cfg = Config { reproducible: Some(Reproducible::default()), ..Config::default() };
        let clock = Clock::new(&cfg, shared());
        let v = clock.virtual_clock().unwrap();
        v.advance(u64::MAX);
        let (a, b) = (v.tick(), v.tick());
        assert!(a <= b && b == MAX_ELAPSED, "{a} then {b}");
        v.advance_to(u64::MAX);
        assert_eq!(v.elapsed(), MAX_ELAPSED);
        assert!(v.read(1).to_ns().is_some_and(|ns| ns >= MAX_ELAPSED));
        assert_eq!(v.after(u64::MAX), MAX_ELAPSED);
    }

    #[test]
    fn timers_start_where_the_process_last_saw_the_clock() {
        let cfg = Config { reproducible: Some(Reproducible::default()), ..Config::default() };
        let clock = Clock::new(&cfg, shared());
        let v = clock.virtual_clock().unwrap();
        let seen = v.tick();
        // Another process sleeps: the shared counter moves, this process has not seen it.
        v.counter().fetch_add(5 * NS, Ordering::Relaxed);
        assert_eq!(v.anchor(), seen);
        v.lose_sight();
        assert_eq!(v.anchor(), seen + 5 * NS);
        assert_eq!(v.tick(), v.anchor());
    }
}
