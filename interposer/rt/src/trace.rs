//! Trace records for `--trace`: one per redirected call, written to the reserved trace
//! descriptor in the format of [`kernel_host::trace::record`]. Off unless the launcher passed
//! a descriptor.

use alloc::string::String;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use kernel_host::trace::record::{self, Call, Outcome};
use kernel_host::{Disposition, GuestMemory, Syscall};

use crate::sys::{self, nr};

/// The trace descriptor, or -1. Read by the traced gate's assembly, hence `no_mangle`-free
/// but symbol-referenced.
pub static TRACE_FD: AtomicI32 = AtomicI32::new(-1);
static SEQ: AtomicU32 = AtomicU32::new(0);

/// Turns tracing on.
pub fn enable(fd: i32) {
    TRACE_FD.store(fd, Ordering::Relaxed);
}

/// Whether calls are traced.
pub fn enabled() -> bool {
    TRACE_FD.load(Ordering::Relaxed) >= 0
}

/// Writes the record of one call; returns the cookie its result record will carry.
pub fn call(call: &Syscall, mem: &dyn GuestMemory, d: &Disposition, ns: u64) -> u64 {
    let tid = sys::call(nr::GETTID, &[]) as u32;
    let cookie = (u64::from(tid) << 32) | u64::from(SEQ.fetch_add(1, Ordering::Relaxed));
    let mut args = String::new();
    kernel_host::trace::describe_args(call, mem, &mut args);
    let (outcome, result) = Outcome::of(d);
    let rec = record::encode_call(&Call {
        cookie,
        pid: sys::call(nr::GETPID, &[]) as u32,
        tid,
        nr: call.nr,
        outcome,
        ns,
        result,
        args: args.into_bytes(),
    });
    sys::write_all(TRACE_FD.load(Ordering::Relaxed), &rec);
    cookie
}

/// Writes a result record (for forks, whose result the handler sees itself).
pub fn result(cookie: u64, value: i64) {
    sys::write_all(TRACE_FD.load(Ordering::Relaxed), &record::encode_result(cookie, value));
}
