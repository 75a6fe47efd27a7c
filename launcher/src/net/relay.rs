//! The supervisor's part of a wire: a port on the hub, and two threads that move frames between
//! it and the sandbox's TAP device until the sandbox ends. `--net tap:IFNAME` uses the same
//! relay with a host TAP device ([`super::hosttap`]) in the hub's place ([`Peer`]).
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
use std::path::Path;
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

/// What the sandbox's TAP device is relayed to.
pub struct Peer {
    fd: OwnedFd,
    /// A hub's socket (`recv`/`send`), or a TAP device (`read`/`write`).
    socket: bool,
    /// What it is, for the line that says it went away.
    what: String,
}

impl Peer {
    /// The sandbox's port on the hub at `path` ([`connect`]).
    pub fn hub(path: &Path) -> Result<Peer, Failure> {
        Ok(Peer { fd: connect(path)?, socket: true, what: format!("the hub at {}", path.display()) })
    }

    /// A host TAP device the caller attached to.
    pub fn host_tap(tap: super::hosttap::HostTap) -> Peer {
        let what = format!("the host's TAP device {}", tap.name());
        Peer { fd: tap.into_fd(), socket: false, what }
    }
}

/// The two relay threads of a running sandbox.
pub struct Relay {
    peer: Arc<OwnedFd>,
    stop: Arc<OwnedFd>,
    threads: Vec<JoinHandle<()>>,
}

impl Relay {
    /// Starts relaying between the sandbox's `tap` and its `peer`.
    pub fn start(tap: OwnedFd, peer: Peer) -> Result<Relay, Failure> {
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
        // A hub's socket is read with MSG_DONTWAIT; a TAP device has no such flag.
        // SAFETY: fcntl on a descriptor we own.
        if !peer.socket && unsafe { libc::fcntl(peer.fd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
            return Err(setup("O_NONBLOCK on the host's TAP device"));
        }
        // SAFETY: eventfd makes a new descriptor or fails.
        let stop = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if stop < 0 {
            return Err(setup("eventfd"));
        }
        // SAFETY: eventfd returned a fresh descriptor that nothing else owns.
        let stop = Arc::new(unsafe { OwnedFd::from_raw_fd(stop) });
        let socket = peer.socket;
        let (tap, hub) = (Arc::new(tap), Arc::new(peer.fd));
        let cut = Arc::new(Cut { said: AtomicBool::new(false), what: peer.what });
        let mut threads = Vec::new();
        for to_hub in [true, false] {
            let (tap, hub, stop, cut) = (tap.clone(), hub.clone(), stop.clone(), cut.clone());
            let name = if to_hub { "wire-out" } else { "wire-in" };
            let thread = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    let tap_end = End { fd: tap.as_raw_fd(), socket: false, peer: false };
                    let hub_end = End { fd: hub.as_raw_fd(), socket, peer: true };
                    let (from, to) = if to_hub { (tap_end, hub_end) } else { (hub_end, tap_end) };
                    pump(from, to, stop.as_raw_fd(), &cut);
                })
                .map_err(|e| Failure::Setup(format!("cannot start the wire's relay: {e}")))?;
            threads.push(thread);
        }
        Ok(Relay { peer: hub, stop, threads })
    }

    /// Stops both threads (the sandbox ended) and closes the port, which the hub then removes
    /// (or lets go of the host's TAP device).
    pub fn stop(self) {
        let one = 1u64;
        // SAFETY: an 8-byte write to our eventfd, and shutdown on our socket, which wakes a
        // thread blocked in a send to a hub that does not read.
        unsafe {
            libc::write(self.stop.as_raw_fd(), (&one as *const u64).cast(), 8);
            libc::shutdown(self.peer.as_raw_fd(), libc::SHUT_RDWR);
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Says once that the peer (the hub, the host's TAP device) went away.
struct Cut {
    said: AtomicBool,
    what: String,
}

impl Cut {
    fn say(&self, e: std::io::Error) {
        if !self.said.swap(true, Ordering::Relaxed) {
            eprintln!(
                "cloister: {} went away ({e}); the sandbox's wire is cut, the program goes on",
                self.what
            );
        }
    }
}

/// One side of a relay thread: a TAP device (read and written with `read`/`write`), or the
/// hub's socket (`recv` without blocking, `send` without `SIGPIPE`).
#[derive(Clone, Copy)]
struct End {
    fd: RawFd,
    socket: bool,
    /// The peer's side, whose end is news (the sandbox's TAP device ends with its namespace).
    peer: bool,
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

/// Moves frames from `from` to `to` until `stop` is readable or the peer goes away. Reads never
/// block; a send to the hub blocks while the hub has no room, which slows the sandbox's TCP as
/// a full link would.
fn pump(from: End, to: End, stop: RawFd, cut: &Cut) {
    let mut buf = vec![0u8; MAX_FRAME];
    let peer_gone = |e: std::io::Error| {
        // `Relay::stop` shuts the port down after raising `stop`: that end is not news.
        if !ready(stop, 0) {
            cut.say(e);
        }
    };
    loop {
        let n = from.read(&mut buf);
        if n > 0 {
            // EBADFD: the host's TAP device was deleted under us.
            if to.write(&buf[..n as usize]) < 0
                && to.peer
                && matches!(errno(), libc::EPIPE | libc::ECONNRESET | libc::EBADFD)
            {
                return peer_gone(std::io::Error::last_os_error());
            }
            continue;
        }
        if n == 0 {
            // The hub closed the port (a TAP device never reads 0).
            return peer_gone(std::io::Error::from_raw_os_error(libc::ECONNRESET));
        }
        match errno() {
            libc::EAGAIN | libc::EINTR => {}
            libc::ECONNRESET | libc::EBADFD if from.peer => return peer_gone(std::io::Error::last_os_error()),
            // The sandbox's TAP device is gone (its namespace was torn down): nothing left to
            // move.
            _ => return,
        }
        let mut fds = [
            libc::pollfd { fd: from.fd, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: stop, events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: poll on an array of two pollfds that lives across the call.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if fds[1].revents != 0 {
            if !from.peer {
                drain(from, to, &mut buf);
            }
            return;
        }
    }
}

/// Moves what is still queued on the sandbox's TAP device when the sandbox ends: the last
/// frames its stack sent (a server's reply, its FIN) would otherwise never reach the peer, and
/// with the sandbox's namespace gone nothing sends them again, so a client waits in vain.
fn drain(from: End, to: End, buf: &mut [u8]) {
    loop {
        let n = from.read(buf);
        if n <= 0 || to.write(&buf[..n as usize]) < 0 {
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
