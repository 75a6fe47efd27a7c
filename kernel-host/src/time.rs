//! Time: shifted realtime clocks.
//!
//! With an offset, every clock that reads wall time (`CLOCK_REALTIME` and its coarse, alarm
//! and TAI variants, `gettimeofday`, `time`) reads the host's value plus the offset, and
//! absolute realtime sleeps are shifted back. Monotonic and CPU clocks are left alone, so they
//! stay monotonic. The kernel never reads a clock by itself: callers pass the host's reading.

use crate::abi::is_realtime_clock;
use crate::config::Config;

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
}

/// The sandbox's view of time.
pub struct Clock {
    offset: Option<i64>,
}

impl Clock {
    /// Clocks as the configuration sets them.
    pub fn new(config: &Config) -> Self {
        Clock { offset: config.time_offset }
    }

    /// Seconds to add to a reading of `clock` (0 for clocks that are not wall time).
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

    #[test]
    fn only_realtime_clocks_shift() {
        let clock = Clock::new(&Config { time_offset: Some(3600), ..Config::default() });
        assert_eq!(clock.offset_for(CLOCK_REALTIME), 3600);
        assert_eq!(clock.offset_for(1 /* CLOCK_MONOTONIC */), 0);
        assert_eq!(clock.offset_for(7 /* CLOCK_BOOTTIME */), 0);
    }
}
