//! The supervisor's part of a wire: a port on the hub, and two threads that move frames between
//! it and the sandbox's TAP device until the sandbox ends.
//!
//! The engine moves Ethernet frames and nothing else: the TCP/IP stack is the sandbox
//! namespace's own kernel stack, on the far side of the TAP device. One thread per direction, so
//! that a send to the hub that waits for room never keeps frames from the hub from reaching the
//! sandbox (the two supervisors on a hub would otherwise wait on each other). Each reads without
//! blocking and waits in `poll` only when there is nothing to read, so a busy wire costs two
//! system calls per frame per supervisor, and the frame is copied once in and once out.
//!
//! What this does not do: batch frames (a TAP device gives one per `read`), or use the TAP's
//! offloads (`IFF_VNET_HDR`), which would let the kernel hand over 64 KiB TCP segments with
//! their checksums undone; the MTU of 65520 ([`super::frame::MTU`]) gets most of that.
//!
//! Read first: unix(7) (`SOCK_SEQPACKET`), poll(2), eventfd(2).

use super::frame::MAX_FRAME;
use crate::failure::Failure;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Connects to the hub listening at `path`: the sandbox's port. Fails (exit 125) with what to do
/// when nothing listens there.
pub fn connect(path: &Path) -> Result<OwnedFd, Failure> {
    let fail = |e: std::io::Error| {
        let shown = path.display();
        let why = match e.raw_os_error() {
            Some(libc::ENOENT | libc::ECONNREFUSED) => {
                format!("no hub listens there ({e}); start one first with `cloister hub {shown}`")
            }
            Some(libc::EACCES | libc::EPERM) => {
                format!(
                    "cannot join the hub there ({e}): its socket's mode keeps you out; run a hub of your own"
                )
            }
            _ => format!("cannot join a hub there ({e}); check the path"),
        };
        Failure::Setup(format!("--net wire:{shown}: {why}"))
    };
    let sock = super::hub::unix_socket().map_err(fail)?;
    super::hub::connect_at(&sock, path).map_err(fail)?;
    Ok(sock)
}

/// The two relay threads of a running sandbox.
pub struct Relay {
    hub: Arc<OwnedFd>,
    stop: Arc<OwnedFd>,
    threads: Vec<JoinHandle<()>>,
}

impl Relay {
    /// Starts relaying between the sandbox's `tap` and its `hub` port (at `path`, for
    /// messages).
    pub fn start(tap: OwnedFd, hub: OwnedFd, path: &Path) -> Result<Relay, Failure> {
        let setup = |what: &str| {
            Failure::Setup(format!(
                "cannot start the wire's relay: {what}: {}",
                std::io::Error::last_os_error()
            ))
        };
        // SAFETY: fcntl on a descriptor we own.
        if unsafe { libc::fcntl(tap.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
            return Err(setup("O_NONBLOCK on the TAP device"));
        }
        // SAFETY: eventfd makes a new descriptor or fails.
        let stop = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if stop < 0 {
            return Err(setup("eventfd"));
        }
        // SAFETY: eventfd returned a fresh descriptor that nothing else owns.
        let stop = Arc::new(unsafe { OwnedFd::from_raw_fd(stop) });
        let (tap, hub) = (Arc::new(tap), Arc::new(hub));
        let cut = Arc::new(Cut { said: AtomicBool::new(false), path: path.to_owned() });
        let mut threads = Vec::new();
        for to_hub in [true, false] {
            let (tap, hub, stop, cut) = (tap.clone(), hub.clone(), stop.clone(), cut.clone());
            let name = if to_hub { "wire-out" } else { "wire-in" };
            let thread = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    let tap_end = End { fd: tap.as_raw_fd(), socket: false };
                    let hub_end = End { fd: hub.as_raw_fd(), socket: true };
                    let (from, to) = if to_hub { (tap_end, hub_end) } else { (hub_end, tap_end) };
                    pump(from, to, stop.as_raw_fd(), &cut);
                })
                .map_err(|e| Failure::Setup(format!("cannot start the wire's relay: {e}")))?;
            threads.push(thread);
        }
        Ok(Relay { hub, stop, threads })
    }

    /// Stops both threads (the sandbox ended) and closes the port, which the hub then removes.
    pub fn stop(self) {
        let one = 1u64;
        // SAFETY: an 8-byte write to our eventfd, and shutdown on our socket, which wakes a
        // thread blocked in a send to a hub that does not read.
        unsafe {
            libc::write(self.stop.as_raw_fd(), (&one as *const u64).cast(), 8);
            libc::shutdown(self.hub.as_raw_fd(), libc::SHUT_RDWR);
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Says once that the hub went away.
struct Cut {
    said: AtomicBool,
    path: PathBuf,
}

impl Cut {
    fn say(&self, e: std::io::Error) {
        if !self.said.swap(true, Ordering::Relaxed) {
            eprintln!(
                "cloister: the hub at {} went away ({e}); the sandbox's wire is cut, the program goes on",
                self.path.display()
            );
        }
    }
}

/// One side of a relay thread: the TAP device (read and written with `read`/`write`), or the
/// hub's socket (`recv` without blocking, `send` without `SIGPIPE`).
#[derive(Clone, Copy)]
struct End {
    fd: RawFd,
    socket: bool,
}

impl End {
    fn read(self, buf: &mut [u8]) -> isize {
        // SAFETY: reading into our own buffer, at most its length.
        unsafe {
            if self.socket {
                libc::recv(self.fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT)
            } else {
                libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len())
            }
        }
    }

    fn write(self, frame: &[u8]) -> isize {
        // SAFETY: writing from our own buffer; MSG_NOSIGNAL keeps a vanished hub from raising
        // SIGPIPE. A write to the TAP device never blocks.
        unsafe {
            if self.socket {
                libc::send(self.fd, frame.as_ptr().cast(), frame.len(), libc::MSG_NOSIGNAL)
            } else {
                libc::write(self.fd, frame.as_ptr().cast(), frame.len())
            }
        }
    }
}

/// Moves frames from `from` to `to` until `stop` is readable or the hub goes away. Reads never
/// block; a send to the hub blocks while the hub has no room, which slows the sandbox's TCP as
/// a full link would.
fn pump(from: End, to: End, stop: RawFd, cut: &Cut) {
    let mut buf = vec![0u8; MAX_FRAME];
    let hub_gone = |e: std::io::Error| {
        // `Relay::stop` shuts the port down after raising `stop`: that end is not news.
        if !ready(stop, 0) {
            cut.say(e);
        }
    };
    loop {
        let n = from.read(&mut buf);
        if n > 0 {
            if to.write(&buf[..n as usize]) < 0 && matches!(errno(), libc::EPIPE | libc::ECONNRESET) {
                return hub_gone(std::io::Error::last_os_error());
            }
            continue;
        }
        if n == 0 {
            // The hub closed the port (a TAP device never reads 0).
            return hub_gone(std::io::Error::from_raw_os_error(libc::ECONNRESET));
        }
        match errno() {
            libc::EAGAIN | libc::EINTR => {}
            libc::ECONNRESET => return hub_gone(std::io::Error::last_os_error()),
            // The TAP device is gone (its namespace was torn down): nothing left to move.
            _ => return,
        }
        let mut fds = [
            libc::pollfd { fd: from.fd, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: stop, events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: poll on an array of two pollfds that lives across the call.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if fds[1].revents != 0 {
            return;
        }
    }
}

/// Whether `fd` is readable within `timeout_ms`.
fn ready(fd: RawFd, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: poll on one pollfd that lives across the call.
    unsafe { libc::poll(&mut pfd, 1, timeout_ms) == 1 }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}
