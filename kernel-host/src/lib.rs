//! kernel-host: cloister's library-OS kernel.
//!
//! The kernel is a function from one system call to one [`Disposition`]: it never catches a
//! call itself. A backend (the in-process runtime `cloister-rt`, later the ptrace supervisor)
//! catches the call, wraps the calling thread in a [`TaskCtx`] and asks
//! [`Kernel::handle`] what to do. Because everything the kernel touches comes in through
//! [`GuestMemory`] and [`Host`], the same code runs under every backend and in plain unit
//! tests with a fake memory and a fake host.
//!
//! `#![no_std]` + `alloc`, always: inside `cloister-rt` this code runs in a SIGSYS handler,
//! in a process whose libc it does not know, so it must not use libc, thread-local storage
//! or `std`. The compiler enforces that here.
//!
//! Layout: [`table`] maps syscall numbers to handlers (data, like gVisor's `linux64.go`);
//! `sys/` holds one module per syscall family that only translates between registers and
//! the subsystems ([`identity`], [`time`], [`timer`], [`random`], [`process`], [`signals`], [`procfs`],
//! [`vfs`]),
//! which hold the state and the semantics.

#![no_std]

extern crate alloc;

pub mod abi;
pub mod binfmt;
pub mod config;
pub mod dirs;
pub mod elf;
pub mod errno;
pub mod exes;
pub mod identity;
pub mod kernel;
pub mod learned;
pub mod process;
pub mod procfs;
pub mod random;
pub mod redirect;
pub mod seqlock;
pub mod shared;
pub mod signals;
pub mod sync;
pub mod syscall;
pub mod table;
pub mod task;
pub mod time;
pub mod timer;
pub mod timer_fds;
pub mod trace;
pub mod vfs;
pub mod x86;

mod sys;

pub use config::Config;
pub use errno::Errno;
pub use kernel::{ClockWords, ForkSide, Kernel};
pub use process::ProcessImage;
pub use sys::wake::Suspended as SuspendedWait;
pub use syscall::{AfterHost, Disposition, ExecPlan, ForkPlan, Syscall, TimeLeft};
pub use task::{GuestMemory, Host, TaskCtx, WaitSlot};

#[cfg(test)]
mod kernel_tests;
/// Fakes of the guest memory and the host, for unit tests and the fuzz targets (`fuzz/`); uses
/// `std`, so only with the `testing` feature, which cloister-rt never turns on.
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod timer_tests;
