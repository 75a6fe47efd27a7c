//! `--trace` under ptrace: the supervisor writes the records `cloister-rt` would write, in the
//! format of `kernel_host::trace::record`, to the pipe the launcher's trace sink reads.

use super::memory::TraceeMemory;
use kernel_host::{Disposition, Syscall};

/// Writes the record of one call, as cloister-rt's `trace::call` does, with the ids the program
/// sees (its namespace's).
pub fn trace_call(
    pipe: &std::os::fd::OwnedFd,
    mem: &TraceeMemory,
    (tgid, tid): (libc::pid_t, libc::pid_t),
    cookie: u64,
    call: &Syscall,
    d: &Disposition,
    ns: u64,
) {
    use kernel_host::trace::record::{self, Call, Outcome};
    let mut args = String::new();
    kernel_host::trace::describe_args(call, mem, &mut args);
    let (outcome, result) = Outcome::of(d);
    let rec = record::encode_call(&Call {
        cookie,
        pid: namespace_id(tgid, "NSpid:").unwrap_or(tgid as u32),
        tid: namespace_id(tid, "NSpid:").unwrap_or(tid as u32),
        nr: call.nr,
        outcome,
        ns,
        result,
        args: args.into_bytes(),
    });
    write_record(pipe, &rec);
}

/// The id of `id` in its own pid namespace (the last of `key` in `/proc/ID/status`).
pub fn namespace_id(id: libc::pid_t, key: &str) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{id}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(key))?.split_whitespace().last()?.parse().ok()
}

/// One record, in one `write` (records are at most `PIPE_BUF` bytes).
pub fn write_record(pipe: &std::os::fd::OwnedFd, rec: &[u8]) {
    use std::os::fd::AsRawFd;
    // SAFETY: writing a local buffer to the supervisor's own pipe.
    unsafe { libc::write(pipe.as_raw_fd(), rec.as_ptr().cast(), rec.len()) };
}
