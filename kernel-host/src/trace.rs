//! How a call prints in a trace: `--trace` shows each redirected call's arguments decoded
//! the way `strace` would, from the argument kinds in [`crate::table`].

use crate::abi::{AT_FDCWD, PATH_MAX};
use crate::syscall::Syscall;
use crate::table::{lookup, Arg};
use crate::task::GuestMemory;
use alloc::string::String;
use core::fmt::Write;

/// Longest path a trace prints before cutting it short.
const TRACE_PATH_MAX: usize = 256;

/// Writes the call's arguments as `a, b, "path"`. Reads paths from guest memory; an unreadable
/// one prints as its address.
pub fn describe_args(call: &Syscall, mem: &dyn GuestMemory, out: &mut String) {
    let kinds: &[Arg] = lookup(call.nr).map_or(&[Arg::Hex; 6][..], |e| e.args);
    for (i, (kind, &value)) in kinds.iter().zip(call.args.iter()).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = match kind {
            Arg::Int => write!(out, "{}", value as i64),
            Arg::Hex | Arg::Ptr => write!(out, "{value:#x}"),
            Arg::Fd if value as i32 as i64 == AT_FDCWD => write!(out, "AT_FDCWD"),
            Arg::Fd => write!(out, "{}", value as i32),
            Arg::Path => write_path(out, mem, value),
        };
    }
}

fn write_path(out: &mut String, mem: &dyn GuestMemory, addr: u64) -> core::fmt::Result {
    if addr == 0 {
        return write!(out, "NULL");
    }
    // On the heap: the handler may run on a program's small signal stack.
    let mut buf = alloc::vec![0u8; PATH_MAX];
    let text = match mem.read_cstr(addr, &mut buf) {
        Ok(n) => &buf[..n],
        Err(_) => return write!(out, "{addr:#x}"),
    };
    out.push('"');
    for &b in text.iter().take(TRACE_PATH_MAX) {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => write!(out, "\\x{b:02x}")?,
        }
    }
    if text.len() > TRACE_PATH_MAX {
        out.push_str("...");
    }
    out.push('"');
    Ok(())
}

/// The wire format of trace records, written by the runtime to its reserved trace descriptor
/// (a pipe to the supervisor) and read back by the launcher. Every record is written with one
/// `write` of at most `PIPE_BUF` bytes, so records from many threads and processes never
/// interleave.
pub mod record {
    use alloc::vec::Vec;

    /// Largest record: what one pipe write keeps whole.
    pub const MAX_LEN: usize = 4096;
    /// A redirected call and the kernel's decision.
    pub const KIND_CALL: u32 = 1;
    /// The result of a call that ran on the host after the kernel's decision.
    pub const KIND_RESULT: u32 = 2;
    /// Length of a call record before its argument text.
    pub const CALL_HEADER: usize = 48;
    /// Length of a result record.
    pub const RESULT_LEN: usize = 24;

    /// How the kernel disposed of a call.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(u32)]
    pub enum Outcome {
        /// Served by the kernel; the record holds the result.
        Returned = 0,
        /// Run on the host; a result record follows.
        Host = 1,
        /// A fork; a result record follows in the parent.
        Fork = 2,
        /// An exec; a result record follows only if it failed.
        Exec = 3,
    }

    impl Outcome {
        /// What a call record says of disposition `d`: its outcome, and the result when the
        /// kernel served the call (0 otherwise: a result record brings it).
        pub fn of(d: &crate::Disposition) -> (Outcome, i64) {
            match d {
                crate::Disposition::Return(v) => (Outcome::Returned, *v),
                crate::Disposition::Host(_) => (Outcome::Host, 0),
                crate::Disposition::Fork(_) => (Outcome::Fork, 0),
                crate::Disposition::Exec(_) => (Outcome::Exec, 0),
            }
        }
    }

    /// A decoded call record.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Call {
        /// Joins the call with its result record.
        pub cookie: u64,
        /// Process id.
        pub pid: u32,
        /// Thread id.
        pub tid: u32,
        /// Call number.
        pub nr: u32,
        /// What the kernel decided.
        pub outcome: Outcome,
        /// Nanoseconds spent in the kernel.
        pub ns: u64,
        /// The result, when `outcome` is `Returned`.
        pub result: i64,
        /// The decoded arguments.
        pub args: Vec<u8>,
    }

    /// A decoded record.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Record {
        /// A call.
        Call(Call),
        /// A later result.
        Result {
            /// The call's cookie.
            cookie: u64,
            /// Its result.
            result: i64,
        },
    }

    fn word<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
        let mut w = [0u8; N];
        w.copy_from_slice(&b[at..at + N]);
        w
    }

    /// Encodes a call record (arguments cut to fit [`MAX_LEN`]).
    pub fn encode_call(c: &Call) -> Vec<u8> {
        let args = &c.args[..c.args.len().min(MAX_LEN - CALL_HEADER)];
        let len = (CALL_HEADER + args.len()) as u32;
        let mut b = Vec::with_capacity(len as usize);
        b.extend(len.to_ne_bytes());
        b.extend(KIND_CALL.to_ne_bytes());
        b.extend(c.cookie.to_ne_bytes());
        b.extend(c.pid.to_ne_bytes());
        b.extend(c.tid.to_ne_bytes());
        b.extend(c.nr.to_ne_bytes());
        b.extend((c.outcome as u32).to_ne_bytes());
        b.extend(c.ns.to_ne_bytes());
        b.extend(c.result.to_ne_bytes());
        b.extend_from_slice(args);
        b
    }

    /// Encodes a result record.
    pub fn encode_result(cookie: u64, result: i64) -> [u8; RESULT_LEN] {
        let mut b = [0u8; RESULT_LEN];
        b[..4].copy_from_slice(&(RESULT_LEN as u32).to_ne_bytes());
        b[4..8].copy_from_slice(&KIND_RESULT.to_ne_bytes());
        b[8..16].copy_from_slice(&cookie.to_ne_bytes());
        b[16..24].copy_from_slice(&result.to_ne_bytes());
        b
    }

    /// Splits the next record off the front of `buf`: `Some((record, bytes used))`, or `None`
    /// when `buf` holds only part of one. Malformed records are skipped as `None` with the
    /// length consumed (`Some((None, n))`).
    pub fn decode(buf: &[u8]) -> Option<(Option<Record>, usize)> {
        if buf.len() < 8 {
            return None;
        }
        let len = u32::from_ne_bytes(word(buf, 0)) as usize;
        if !(8..=MAX_LEN).contains(&len) {
            return Some((None, buf.len()));
        }
        if buf.len() < len {
            return None;
        }
        let b = &buf[..len];
        let rec = match u32::from_ne_bytes(word(b, 4)) {
            KIND_CALL if len >= CALL_HEADER => {
                let outcome = match u32::from_ne_bytes(word(b, 28)) {
                    0 => Outcome::Returned,
                    1 => Outcome::Host,
                    2 => Outcome::Fork,
                    _ => Outcome::Exec,
                };
                Some(Record::Call(Call {
                    cookie: u64::from_ne_bytes(word(b, 8)),
                    pid: u32::from_ne_bytes(word(b, 16)),
                    tid: u32::from_ne_bytes(word(b, 20)),
                    nr: u32::from_ne_bytes(word(b, 24)),
                    outcome,
                    ns: u64::from_ne_bytes(word(b, 32)),
                    result: i64::from_ne_bytes(word(b, 40)),
                    args: b[CALL_HEADER..].to_vec(),
                }))
            }
            KIND_RESULT if len == RESULT_LEN => Some(Record::Result {
                cookie: u64::from_ne_bytes(word(b, 8)),
                result: i64::from_ne_bytes(word(b, 16)),
            }),
            _ => None,
        };
        Some((rec, len))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn records_round_trip_and_partial_input_waits() {
            let c = Call {
                cookie: 5,
                pid: 1,
                tid: 2,
                nr: 63,
                outcome: Outcome::Host,
                ns: 99,
                result: 0,
                args: b"0x1".to_vec(),
            };
            let mut buf = encode_call(&c);
            buf.extend(encode_result(5, -2));
            let (first, n) = decode(&buf).unwrap();
            assert_eq!(first, Some(Record::Call(c)));
            assert_eq!(decode(&buf[n..]).unwrap().0, Some(Record::Result { cookie: 5, result: -2 }));
            assert!(decode(&buf[..10]).is_none());
        }
    }
}
