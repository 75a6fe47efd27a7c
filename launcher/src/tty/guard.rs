//! The terminal's guard: a process outside the sandbox that gives the user's terminal its modes
//! back when `cloister run` dies without doing it (`SIGKILL`, which runs no destructor).
//!
//! It holds the saved modes, a descriptor of the terminal and the read end of a pipe whose
//! only write end the supervisor keeps. A `D` on the pipe means the supervisor restored the
//! modes itself: the guard leaves them alone (the user's shell may already have set its own).
//! The end of the pipe without it means the supervisor is gone: the guard restores them. It
//! runs in a session of its own, so the terminal's signals never reach it, and holds no other
//! descriptor, so it keeps nothing of the sandbox alive.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// What the supervisor writes when it restored the modes itself.
const DONE: u8 = b'D';

/// The supervisor's end of the guard's pipe. Dropping it without [`Guard::release`] (or the
/// supervisor's death) makes the guard restore the terminal.
pub(super) struct Guard {
    pipe: OwnedFd,
}

impl Guard {
    /// Starts the guard of terminal `fd`, whose modes before the run were `saved`. `None` when
    /// it could not be started: the run goes on without it.
    pub(super) fn start(fd: RawFd, saved: libc::termios) -> Option<Guard> {
        let mut ends = [0; 2];
        // SAFETY: pipe2 fills the two-element array.
        if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return None;
        }
        // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
        // SAFETY: the child makes only raw system calls (the supervisor may have threads) on
        // data prepared above, then exits.
        match unsafe { libc::fork() } {
            -1 => None,
            // SAFETY: the child of the fork, with both descriptors open.
            0 => unsafe { watch(read.as_raw_fd(), fd, &saved) },
            pid => {
                // The end of the run sweeps the supervisor's children; not this one.
                crate::timeout::spare(pid);
                Some(Guard { pipe: write })
            }
        }
    }

    /// The supervisor restored the modes itself: the guard exits without touching them.
    pub(super) fn release(self) {
        // SAFETY: writing one byte from a local to our own pipe.
        unsafe { libc::write(self.pipe.as_raw_fd(), [DONE].as_ptr().cast(), 1) };
    }
}

/// The guard's life, in the child of a fork: async-signal-safe calls only.
///
/// # Safety
/// Only in the child of `fork`; `pipe` and `terminal` are open.
unsafe fn watch(pipe: RawFd, terminal: RawFd, saved: &libc::termios) -> ! {
    // SAFETY: raw system calls on the descriptors and the caller's copy of the modes.
    unsafe {
        libc::setsid();
        let (low, high) = (pipe.min(terminal), pipe.max(terminal));
        if low > 0 {
            libc::close_range(0, (low - 1) as libc::c_uint, 0);
        }
        if high > low + 1 {
            libc::close_range((low + 1) as libc::c_uint, (high - 1) as libc::c_uint, 0);
        }
        libc::close_range((high + 1) as libc::c_uint, libc::c_uint::MAX, 0);
        let mut byte = 0u8;
        let n = loop {
            let n = libc::read(pipe, (&mut byte as *mut u8).cast(), 1);
            if n >= 0 || *libc::__errno_location() != libc::EINTR {
                break n;
            }
        };
        if !(n == 1 && byte == DONE) {
            libc::tcsetattr(terminal, libc::TCSADRAIN, saved);
        }
        libc::_exit(0)
    }
}
