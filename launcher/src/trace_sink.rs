//! The supervisor's side of `--trace`: reads the runtime's records from the trace pipe, joins
//! each call with its result, and writes one JSON line per call through tracing-subscriber.
//! Every line has `pid`, `tid`, `syscall`, `args`, `result` (a number, or an errno name) and
//! `ns` (time spent in the kernel).

use kernel_host::trace::record::{self, Call, Outcome, Record};
use kernel_host::{Errno, Syscall};
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing_subscriber::fmt::format::FmtSpan;

/// How long the sink keeps reading after the program ended, for records still in flight
/// from descendants that outlive it.
const DRAIN: Duration = Duration::from_millis(500);

/// A running trace sink.
pub struct TraceSink {
    done: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl TraceSink {
    /// Starts reading `pipe` and writing JSON lines to `out`.
    pub fn start(pipe: OwnedFd, out: File) -> TraceSink {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let thread = std::thread::spawn(move || pump(pipe, out, &flag));
        TraceSink { done, thread }
    }

    /// Drains what is left and stops.
    pub fn finish(self) {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

fn pump(pipe: OwnedFd, out: File, done: &AtomicBool) {
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_span_events(FmtSpan::NONE)
        .with_target(false)
        .with_writer(Mutex::new(out))
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let mut file = File::from(pipe);
        let mut buf: Vec<u8> = Vec::new();
        let mut pending: HashMap<u64, Call> = HashMap::new();
        let mut chunk = [0u8; 65536];
        let mut drain_until: Option<Instant> = None;
        loop {
            if done.load(Ordering::Relaxed) && drain_until.is_none() {
                drain_until = Some(Instant::now() + DRAIN);
            }
            if drain_until.is_some_and(|t| Instant::now() >= t) {
                break;
            }
            let mut pfd = libc::pollfd { fd: file.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&mut pfd, 1, 50) };
            if ready <= 0 {
                continue;
            }
            let n = match file.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            let mut used = 0;
            while let Some((rec, len)) = record::decode(&buf[used..]) {
                used += len;
                match rec {
                    Some(Record::Call(call)) if call.outcome == Outcome::Returned => {
                        emit(&call, Some(call.result))
                    }
                    Some(Record::Call(call)) => {
                        pending.insert(call.cookie, call);
                    }
                    Some(Record::Result { cookie, result }) => {
                        if let Some(call) = pending.remove(&cookie) {
                            emit(&call, Some(result));
                        }
                    }
                    None => {}
                }
            }
            buf.drain(..used);
        }
        // Calls whose result never came: execs that succeeded, or processes that died.
        let mut rest: Vec<Call> = pending.into_values().collect();
        rest.sort_by_key(|c| c.cookie);
        for call in rest {
            emit(&call, (call.outcome == Outcome::Exec).then_some(0));
        }
    });
}

fn emit(call: &Call, result: Option<i64>) {
    let name = Syscall { nr: call.nr, args: [0; 6] }.name();
    let args = String::from_utf8_lossy(&call.args);
    match result.map(|r| (r, Errno::from_ret(r))) {
        Some((_, Some(e))) => {
            let errno = e.name().unwrap_or("EUNKNOWN");
            tracing::info!(pid = call.pid, tid = call.tid, syscall = name, args = %args, result = errno, ns = call.ns);
        }
        Some((r, None)) => {
            tracing::info!(pid = call.pid, tid = call.tid, syscall = name, args = %args, result = r, ns = call.ns);
        }
        None => {
            tracing::info!(pid = call.pid, tid = call.tid, syscall = name, args = %args, result = "unknown", ns = call.ns);
        }
    }
}
