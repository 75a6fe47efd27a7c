//! `cloister hub PATH`: a virtual Ethernet switch on a unix socket, which sandboxes started with
//! `--net wire:PATH` join as ports.
//!
//! Each port is one `SOCK_SEQPACKET` connection, one Ethernet frame per message (a supervisor's
//! relay, [`super::relay`]). The switch learns which port each source MAC address lives behind,
//! sends a unicast frame to the port its destination was learned on (or floods it to every
//! other port while it is unknown), and floods broadcast and multicast frames. A port that
//! disconnects is removed, with what was learned about it. One thread, level-triggered epoll,
//! no queue: a frame goes out while the next one waits in its socket, and a port whose
//! supervisor does not read for [`SEND_TIMEOUT_MS`] loses the frame, as a congested switch
//! would.
//!
//! The hub runs in the foreground until SIGINT or SIGTERM, then removes its socket. It refuses
//! to start over a live hub (something answers at PATH), and replaces a stale socket file.
//!
//! Each port sends from one source address, the first it used and no other port holds: frames
//! from any other source are dropped, so a peer cannot take over another's address, and the
//! tables hold one address per port (at most [`MAX_PORTS`] ports).
//!
//! What this does not do: VLANs, spanning tree, ageing of learned addresses. Anyone who can
//! connect to PATH can join the wire: the socket's mode (the umask's) decides who.
//!
//! Read first: unix(7), epoll(7), signalfd(2), IEEE 802.1D's learning bridge (in outline).

use super::frame::{self, Mac, MAX_FRAME};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// How long the hub waits for room in a port's socket before it drops a frame for that port.
pub const SEND_TIMEOUT_MS: i64 = 100;

/// Each port's socket buffer, asked for (the kernel caps it at `net.core.wmem_max` unless the
/// hub may force it): room for a few dozen full frames in flight.
const SOCKET_BUFFER: libc::c_int = 4 << 20;

/// Why the hub could not start.
#[derive(Debug)]
pub enum HubError {
    /// A hub (or something) already answers at the path.
    InUse(String),
    /// The path exists and is not a socket.
    NotASocket(String),
    /// The path does not fit in a unix socket address.
    TooLong(String),
    /// A system call failed.
    Os(&'static str, std::io::Error),
}

impl std::fmt::Display for HubError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HubError::InUse(p) => write!(f, "a hub already listens at {p}; stop it, or give another path"),
            HubError::NotASocket(p) => {
                write!(f, "{p} exists and is not a socket; remove it, or give another path")
            }
            HubError::TooLong(p) => write!(
                f,
                "{p} is longer than the 107 bytes a unix socket's address holds; give a shorter path"
            ),
            HubError::Os(what, e) => write!(f, "cannot {what}: {e}"),
        }
    }
}

/// Runs `cloister hub PATH` until SIGINT or SIGTERM; returns the exit status (125 when it
/// could not start).
pub fn run(path: &Path) -> i32 {
    match Hub::bind(path) {
        Ok(mut hub) => {
            eprintln!(
                "cloister hub: listening at {} (join with cloister run --net wire:{} --ip ADDR/LEN); \
                 Ctrl-C stops it",
                path.display(),
                path.display()
            );
            let status = hub.serve();
            hub.remove_socket();
            status
        }
        Err(e) => {
            eprintln!("cloister hub: {e}");
            125
        }
    }
}

/// A new close-on-exec unix `SOCK_SEQPACKET` socket.
pub(super) fn unix_socket() -> std::io::Result<OwnedFd> {
    // SAFETY: socket makes a new descriptor or fails.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The address of the unix socket at `path`, or `None` when it does not fit.
fn address(path: &Path) -> Option<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: plain data for which all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return None;
    }
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    Some((addr, len as libc::socklen_t))
}

/// Connects `sock` to the unix socket at `path`.
pub(super) fn connect_at(sock: &OwnedFd, path: &Path) -> std::io::Result<()> {
    let (addr, len) = address(path).ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENAMETOOLONG))?;
    // SAFETY: connect with an address that lives across the call, of the length given.
    if unsafe { libc::connect(sock.as_raw_fd(), (&addr as *const libc::sockaddr_un).cast(), len) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    set_buffer(sock.as_raw_fd());
    Ok(())
}

/// Asks for [`SOCKET_BUFFER`] bytes of send buffer on `fd`: forced where the caller may
/// (`CAP_NET_ADMIN`), else what `net.core.wmem_max` allows. For a unix socket the sender's
/// buffer is the link's capacity.
fn set_buffer(fd: RawFd) {
    let size = SOCKET_BUFFER;
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    for option in [libc::SO_SNDBUFFORCE, libc::SO_SNDBUF] {
        // SAFETY: setsockopt reads one int that lives across the call.
        if unsafe {
            libc::setsockopt(fd, libc::SOL_SOCKET, option, (&size as *const libc::c_int).cast(), len)
        } == 0
        {
            return;
        }
    }
}

/// The epoll token of the listening socket and of the signalfd; ports count up from
/// [`FIRST_PORT`].
const LISTENER: u64 = 0;
const SIGNALS: u64 = 1;
const FIRST_PORT: u64 = 2;

struct Hub {
    path: std::path::PathBuf,
    /// The socket file's inode, so that only our own file is removed at the end.
    inode: u64,
    listener: OwnedFd,
    signals: OwnedFd,
    epoll: OwnedFd,
    ports: HashMap<u64, OwnedFd>,
    learned: HashMap<Mac, u64>,
    /// The one source address each port sends from: the first it used. A port cannot speak
    /// for another's address, and the table of learned addresses holds at most one per port.
    pinned: HashMap<u64, Mac>,
    next: u64,
}

/// Ports a hub serves at once: what bounds its tables against a peer that connects in a loop.
const MAX_PORTS: usize = 1024;

impl Hub {
    fn bind(path: &Path) -> Result<Hub, HubError> {
        let shown = path.display().to_string();
        let (addr, len) = address(path).ok_or_else(|| HubError::TooLong(shown.clone()))?;
        match std::fs::symlink_metadata(path) {
            Ok(meta) if !meta.file_type().is_socket() => return Err(HubError::NotASocket(shown)),
            Ok(_) => {
                let probe = unix_socket().map_err(|e| HubError::Os("create a socket", e))?;
                match connect_at(&probe, path) {
                    Ok(()) => return Err(HubError::InUse(shown)),
                    // Nobody listens: the file a hub that was killed left behind.
                    Err(_) => {
                        std::fs::remove_file(path).map_err(|e| HubError::Os("remove the stale socket", e))?
                    }
                }
            }
            Err(_) => {}
        }
        let listener = unix_socket().map_err(|e| HubError::Os("create a socket", e))?;
        let os = |what| move |_| HubError::Os(what, std::io::Error::last_os_error());
        // SAFETY: bind and listen on our socket, with an address that lives across the call.
        unsafe {
            if libc::bind(listener.as_raw_fd(), (&addr as *const libc::sockaddr_un).cast(), len) != 0 {
                return Err(HubError::Os("bind the socket", std::io::Error::last_os_error()));
            }
            if libc::listen(listener.as_raw_fd(), 64) != 0 {
                return Err(HubError::Os("listen", std::io::Error::last_os_error()));
            }
        }
        let inode = std::os::unix::fs::MetadataExt::ino(
            &std::fs::symlink_metadata(path).map_err(|e| HubError::Os("stat the socket", e))?,
        );
        let signals = stop_signals().map_err(os("block SIGINT and SIGTERM"))?;
        // SAFETY: epoll_create1 makes a new descriptor or fails.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(HubError::Os("create an epoll instance", std::io::Error::last_os_error()));
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(epoll) };
        let hub = Hub {
            path: path.to_owned(),
            inode,
            listener,
            signals,
            epoll,
            ports: HashMap::new(),
            learned: HashMap::new(),
            pinned: HashMap::new(),
            next: FIRST_PORT,
        };
        hub.watch(hub.listener.as_raw_fd(), LISTENER).map_err(|e| HubError::Os("watch the socket", e))?;
        hub.watch(hub.signals.as_raw_fd(), SIGNALS).map_err(|e| HubError::Os("watch signals", e))?;
        Ok(hub)
    }

    fn watch(&self, fd: RawFd, token: u64) -> std::io::Result<()> {
        let mut event = libc::epoll_event { events: (libc::EPOLLIN | libc::EPOLLRDHUP) as u32, u64: token };
        // SAFETY: epoll_ctl with an event that lives across the call.
        if unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Switches frames until a stop signal; returns the exit status.
    fn serve(&mut self) -> i32 {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
        let mut buf = vec![0u8; MAX_FRAME];
        loop {
            // SAFETY: epoll_wait fills at most `events.len()` entries of our array.
            let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), events.as_mut_ptr(), 64, -1) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                eprintln!("cloister hub: cannot wait for frames: {e}");
                return 125;
            }
            for event in &events[..n as usize] {
                let (token, flags) = (event.u64, event.events);
                match token {
                    SIGNALS => return 0,
                    LISTENER => self.accept(),
                    port => self.forward_from(port, flags, &mut buf),
                }
            }
        }
    }

    fn accept(&mut self) {
        // SAFETY: accept4 without an address makes a new descriptor or fails.
        let fd = unsafe {
            libc::accept4(
                self.listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if fd < 0 {
            return;
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        let port = unsafe { OwnedFd::from_raw_fd(fd) };
        if self.ports.len() >= MAX_PORTS {
            return;
        }
        set_buffer(fd);
        let timeout = libc::timeval { tv_sec: 0, tv_usec: SEND_TIMEOUT_MS * 1000 };
        // SAFETY: setsockopt reads a timeval that lives across the call.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_SNDTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        let token = self.next;
        self.next += 1;
        if self.watch(fd, token).is_ok() {
            self.ports.insert(token, port);
        }
    }

    /// Reads what port `from` sent (a bounded batch, so one busy port cannot starve the others)
    /// and switches each frame; removes the port when its peer is gone.
    fn forward_from(&mut self, from: u64, flags: u32, buf: &mut [u8]) {
        let Some(fd) = self.ports.get(&from).map(AsRawFd::as_raw_fd) else { return };
        for _ in 0..64 {
            // SAFETY: recv into our own buffer, at most its length.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
            if n > 0 {
                self.switch(from, &buf[..n as usize]);
                continue;
            }
            let empty = n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN);
            if empty && flags & (libc::EPOLLHUP | libc::EPOLLRDHUP) as u32 == 0 {
                return;
            }
            // End of file, an error, or a hang-up with nothing left to read.
            return self.remove(from);
        }
    }

    /// Sends `frame`, which came in on port `from`, where its destination lives.
    fn switch(&mut self, from: u64, frame: &[u8]) {
        let (Some(dst), Some(src)) = (frame::destination(frame), frame::source(frame)) else { return };
        // No frame comes from a group address, and a port sends only from its own: the first
        // it used, if no other port holds it. Anything else is a spoof, and is dropped.
        if frame::is_group(src) {
            return;
        }
        match self.pinned.get(&from) {
            Some(&own) if own != src => return,
            Some(_) => {}
            None if self.learned.get(&src).is_some_and(|&p| p != from) => return,
            None => {
                self.pinned.insert(from, src);
                self.learned.insert(src, from);
            }
        }
        match self.learned.get(&dst) {
            Some(&to) if !frame::is_group(dst) => {
                // A frame for a host on its own segment goes nowhere, as on a real switch.
                if to != from {
                    self.send(to, frame);
                }
            }
            _ => {
                let others: Vec<u64> = self.ports.keys().copied().filter(|&p| p != from).collect();
                for to in others {
                    self.send(to, frame);
                }
            }
        }
    }

    fn send(&self, to: u64, frame: &[u8]) {
        if let Some(fd) = self.ports.get(&to) {
            // SAFETY: send from a buffer that lives across the call. Blocks at most
            // SEND_TIMEOUT_MS; a frame that does not fit by then is dropped (the port's TCP
            // retransmits), and a port that is gone is removed when its hang-up is read.
            unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), libc::MSG_NOSIGNAL) };
        }
    }

    fn remove(&mut self, port: u64) {
        if let Some(fd) = self.ports.remove(&port) {
            // SAFETY: removing our own descriptor from our epoll set; no event is read back.
            unsafe {
                libc::epoll_ctl(
                    self.epoll.as_raw_fd(),
                    libc::EPOLL_CTL_DEL,
                    fd.as_raw_fd(),
                    std::ptr::null_mut(),
                )
            };
        }
        self.learned.retain(|_, p| *p != port);
        self.pinned.remove(&port);
    }

    /// Removes the socket file, if it is still ours.
    fn remove_socket(&self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| std::os::unix::fs::MetadataExt::ino(&m) == self.inode);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Blocks SIGINT, SIGTERM and SIGHUP and returns a signalfd that reads them, so the hub stops
/// between two frames, and removes its socket.
fn stop_signals() -> Result<OwnedFd, ()> {
    // SAFETY: sigset operations on a local set; the mask changes only this (single) thread's.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(());
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hub on a scratch path with `n` ports made of socket pairs; returns the hub and the
    /// far end of each port.
    fn hub_with_ports(n: usize) -> (Hub, Vec<OwnedFd>) {
        let path = std::env::temp_dir().join(format!("cloister-hub-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut hub = Hub::bind(&path).unwrap_or_else(|e| panic!("{e}"));
        let mut far = Vec::new();
        for _ in 0..n {
            let mut pair = [0; 2];
            // SAFETY: `pair` is a valid array for socketpair to fill.
            let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0, pair.as_mut_ptr()) };
            assert_eq!(r, 0);
            // SAFETY: fresh descriptors nothing else owns.
            let (near, other) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
            let token = hub.next;
            hub.next += 1;
            hub.ports.insert(token, near);
            far.push(other);
        }
        hub.remove_socket();
        (hub, far)
    }

    fn frame(dst: Mac, src: Mac) -> Vec<u8> {
        [&dst[..], &src[..], &[0x08, 0x00], &[0u8; 46][..]].concat()
    }

    /// What arrived at `fd` since the last call, as frame count.
    fn received(fd: &OwnedFd) -> usize {
        let mut n = 0;
        let mut buf = [0u8; 2048];
        // SAFETY: recv into our own buffer, without blocking.
        while unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) }
            > 0
        {
            n += 1;
        }
        n
    }

    #[test]
    fn a_port_sends_only_from_its_own_address() {
        let (mut hub, far) = hub_with_ports(3);
        let (a, b, c) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 3]);
        let bcast = [0xff; 6];
        let (p0, p1, p2) = (FIRST_PORT, FIRST_PORT + 1, FIRST_PORT + 2);
        hub.switch(p0, &frame(bcast, a));
        hub.switch(p1, &frame(bcast, b));
        assert_eq!((received(&far[1]), received(&far[2])), (1, 2), "broadcasts are flooded");
        received(&far[0]);
        // Port 2 claims b's address: dropped, and b stays where it was learned.
        hub.switch(p2, &frame(a, b));
        assert_eq!(received(&far[0]), 0, "a spoofed frame was delivered");
        hub.switch(p0, &frame(b, a));
        assert_eq!((received(&far[1]), received(&far[2])), (1, 0), "b moved to the spoofer's port");
        // Port 2 takes its own address; a second one from it is dropped.
        hub.switch(p2, &frame(a, c));
        assert_eq!(received(&far[0]), 1);
        hub.switch(p2, &frame(a, [2, 0, 0, 0, 0, 9]));
        assert_eq!(received(&far[0]), 0, "a port sent from a second address");
        assert_eq!(hub.learned.len(), 3, "one learned address per port");
        // A group source address is never a sender's.
        hub.switch(p1, &frame(a, [3, 0, 0, 0, 0, 1]));
        assert_eq!(received(&far[0]), 0);
        hub.remove(p2);
        assert_eq!((hub.learned.len(), hub.pinned.len()), (2, 2));
    }
}
