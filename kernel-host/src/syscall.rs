//! One call in, one disposition out: the kernel's contract with every backend.

use alloc::vec::Vec;

/// A system call as the program made it: the number and the six argument registers
/// (`rdi, rsi, rdx, r10, r8, r9`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Syscall {
    /// The call number (`rax`).
    pub nr: u32,
    /// The argument registers, in ABI order.
    pub args: [u64; 6],
}

impl Syscall {
    /// A call from its number and arguments.
    pub fn new(nr: syscalls::Sysno, args: [u64; 6]) -> Self {
        Syscall { nr: nr.id() as u32, args }
    }

    /// The call's name for messages and traces (`"uname"`), or `"unknown"`.
    pub fn name(&self) -> &'static str {
        syscalls::Sysno::new(self.nr as usize).map_or("unknown", |s| s.name())
    }
}

/// What the backend must do with a caught call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// The kernel served the call: return this value (or `-errno`) to the program.
    Return(i64),
    /// Run this call (perhaps rewritten) on the host, in the program's own context, and
    /// return its result to the program. Blocking calls and calls that change the thread's
    /// own state (its mask, its stack) take this path so that signals interrupt them as usual.
    Host(Syscall),
    /// Fork the process as `plan` says; the backend brackets it with
    /// [`crate::Kernel::prepare_fork`] and [`crate::Kernel::after_fork`].
    Fork(ForkPlan),
    /// Replace the program: `execve` through a fresh runtime.
    Exec(ExecPlan),
}

/// A fork the kernel asked for (`fork`, or `clone` without `CLONE_VM`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForkPlan {
    /// The `clone` call to make, with the child stack argument cleared: the child first
    /// returns into the backend on a copy of the parent's stack.
    pub call: Syscall,
    /// Stack pointer the child resumes the program on (`0`: the parent's).
    pub child_stack: u64,
}

/// An `execve` the kernel has checked and rewritten to re-enter through `cloister-rt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecPlan {
    /// The file to execute (the runtime).
    pub path: Vec<u8>,
    /// Its arguments, without terminating NULs.
    pub argv: Vec<Vec<u8>>,
    /// Its environment, `NAME=value` without terminating NULs.
    pub envp: Vec<Vec<u8>>,
}

/// Work the backend does once a call returned as [`Disposition::Host`] completes on the host,
/// set by the handler in [`crate::TaskCtx::after`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterHost {
    /// A timed wait: if the call returns `timed_out` (it waited its whole timeout), the virtual
    /// clock moves to `deadline` (elapsed nanoseconds) unless it is already past it, as if the
    /// time had passed. Reproducible mode; the clock is
    /// [`crate::Kernel::virtual_clock_counter`].
    AdvanceClockOnTimeout {
        /// The result that means "timed out" (`0` for poll-like calls, `-ETIMEDOUT` for futex).
        timed_out: i64,
        /// The clock's value at the wait's deadline.
        deadline: u64,
        /// Where the call's time left goes, for the `select` family, which writes it back.
        time_left: Option<TimeLeft>,
    },
}

/// Where a `select`-family wait (`select`, `pselect6`, `ppoll`) writes back its time left,
/// which must be the virtual clock's: the host's own figure is real time. Written after the
/// call returned, whatever it returned (as Linux writes it), from the clock at that moment; a
/// timeout that is not writable is left as it is, as Linux leaves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeLeft {
    /// The program's `timeval` or `timespec`.
    pub addr: u64,
    /// A `timeval` (microseconds) rather than a `timespec`.
    pub micros: bool,
}

impl TimeLeft {
    /// The bytes to write: `deadline` less `now` (elapsed nanoseconds), none if past it.
    pub fn bytes(self, deadline: u64, now: u64) -> [u8; 16] {
        let left = crate::time::TimePair::from_ns(deadline.saturating_sub(now));
        let frac = if self.micros { left.frac / 1000 } else { left.frac };
        crate::time::TimePair { secs: left.secs, frac }.to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::TimeLeft;

    #[test]
    fn time_left_is_the_deadline_less_the_clock() {
        let tv = TimeLeft { addr: 0, micros: true };
        let words = |b: [u8; 16]| {
            (u64::from_ne_bytes(b[..8].try_into().unwrap()), u64::from_ne_bytes(b[8..].try_into().unwrap()))
        };
        assert_eq!(words(tv.bytes(5_250_000_000, 1_000_000_000)), (4, 250_000));
        assert_eq!(words(tv.bytes(5, 9)), (0, 0), "past the deadline");
        let ts = TimeLeft { addr: 0, micros: false };
        assert_eq!(words(ts.bytes(2_000_000_123, 0)), (2, 123));
    }
}
