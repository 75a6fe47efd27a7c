//! The NAT's TCP: one host socket per connection of the sandbox's, spliced to a smoltcp socket
//! that accepted that connection.
//!
//! A SYN from the sandbox to an allowed destination does not reach smoltcp at once: the engine
//! holds it and connects a non-blocking host socket to where the destination leads. When that
//! connection is up, a smoltcp socket listening on exactly the destination's address and port
//! (smoltcp's any-IP) is made, and the held SYN is handed to smoltcp, which accepts it; when
//! the host refuses, the SYN is handed over without a listener, and smoltcp answers with a RST
//! as for any closed port. So the sandbox's `connect` succeeds only when the far end accepted,
//! and fails with `ECONNREFUSED` when it refused, as without a NAT in between.
//!
//! Bytes then move between the two sockets without a buffer of ours: from smoltcp's receive
//! buffer straight into `write` on the host socket, and from `read` on the host socket straight
//! into smoltcp's send buffer. A FIN on one side becomes a `shutdown(SHUT_WR)` or `close` on the
//! other; a reset on either side resets the other.

use super::allow::{AllowList, Verdict};
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, CongestionControl, State};
use smoltcp::wire::IpListenEndpoint;
use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Each smoltcp socket's receive and send buffer. The receive buffer is the window the sandbox
/// may fill before the host reads; both need to cover the bandwidth-delay product of a fast
/// local link with room to spare.
const BUFFER: usize = 1 << 20;

/// A connection's ends, as the sandbox sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tuple {
    /// The sandbox's address and port.
    pub guest: SocketAddrV4,
    /// The destination it addressed.
    pub dest: SocketAddrV4,
}

/// What the engine does with a SYN.
pub enum Syn {
    /// Hand it to smoltcp now (a retransmission on a connection smoltcp has, or a refusal,
    /// which smoltcp answers with a RST).
    ToStack,
    /// Keep it from smoltcp: the engine holds it, or drops a retransmission of one it holds.
    Held,
}

struct Conn {
    tuple: Tuple,
    host: OwnedFd,
    /// The held SYN, while the host socket connects.
    syn: Option<Vec<u8>>,
    handle: Option<SocketHandle>,
    /// The host socket may have data (cleared when a read would block).
    readable: bool,
    /// The host socket may take data (cleared when a write would block).
    writable: bool,
    /// The host side sent its FIN, and smoltcp was told to close.
    host_done: bool,
    /// The sandbox sent its FIN, and the host socket was shut down for writing.
    guest_done: bool,
}

/// The connections of one sandbox.
#[derive(Default)]
pub struct Tcp {
    conns: Vec<Option<Conn>>,
    by_tuple: HashMap<Tuple, usize>,
    /// Connections whose host socket finished connecting, successfully or not.
    connected: Vec<usize>,
}

impl Tcp {
    /// A SYN (without ACK) from the sandbox, `frame` being the whole Ethernet frame.
    pub fn on_syn(&mut self, frame: &[u8], tuple: Tuple, allow: &AllowList) -> Syn {
        if let Some(&i) = self.by_tuple.get(&tuple) {
            return match self.conns[i].as_ref().is_some_and(|c| c.syn.is_some()) {
                true => Syn::Held,
                false => Syn::ToStack,
            };
        }
        let host = match allow.check(*tuple.dest.ip(), tuple.dest.port()) {
            Verdict::Refused => {
                tracing::info!(
                    target: "cloister::net::nat",
                    event = "refused",
                    protocol = "tcp",
                    destination = %tuple.dest,
                    "refused: not on the allow-list"
                );
                return Syn::ToStack;
            }
            Verdict::Allowed(host) => host,
        };
        let sock = match connect_nonblocking(host) {
            Ok(sock) => sock,
            Err(e) => {
                tracing::info!(
                    target: "cloister::net::nat",
                    event = "unreachable",
                    protocol = "tcp",
                    destination = %tuple.dest,
                    host = %host,
                    error = %e,
                    "the destination refused the connection"
                );
                return Syn::ToStack;
            }
        };
        tracing::info!(target: "cloister::net::nat", event = "connect", protocol = "tcp", destination = %tuple.dest, host = %host);
        let conn = Conn {
            tuple,
            host: sock,
            syn: Some(frame.to_vec()),
            handle: None,
            readable: true,
            writable: true,
            host_done: false,
            guest_done: false,
        };
        let i = match self.conns.iter().position(Option::is_none) {
            Some(i) => {
                self.conns[i] = Some(conn);
                i
            }
            None => {
                self.conns.push(Some(conn));
                self.conns.len() - 1
            }
        };
        self.by_tuple.insert(tuple, i);
        Syn::Held
    }

    /// Adds the host sockets to `fds` with what each waits for, and their indices to `owners`.
    pub fn poll_fds(&self, sockets: &SocketSet<'_>, fds: &mut Vec<libc::pollfd>, owners: &mut Vec<usize>) {
        for (i, conn) in self.conns.iter().enumerate() {
            let Some(conn) = conn else { continue };
            let mut events = 0;
            match conn.handle {
                None => events = libc::POLLOUT,
                Some(handle) => {
                    let sock = sockets.get::<tcp::Socket>(handle);
                    if !conn.readable && !conn.host_done && sock.can_send() {
                        events |= libc::POLLIN;
                    }
                    if !conn.writable && sock.can_recv() {
                        events |= libc::POLLOUT;
                    }
                }
            }
            if events != 0 {
                fds.push(libc::pollfd { fd: conn.host.as_raw_fd(), events, revents: 0 });
                owners.push(i);
            }
        }
    }

    /// Takes what `poll` said of connection `i`'s host socket.
    pub fn ready(&mut self, i: usize, revents: i16) {
        let Some(conn) = self.conns.get_mut(i).and_then(Option::as_mut) else { return };
        if conn.handle.is_none() && conn.syn.is_some() {
            self.connected.push(i);
            return;
        }
        let failed = revents & (libc::POLLERR | libc::POLLHUP) != 0;
        conn.readable |= revents & libc::POLLIN != 0 || failed;
        conn.writable |= revents & libc::POLLOUT != 0 || failed;
    }

    /// The next connection whose host socket finished connecting: makes its listener when the
    /// host accepted, forgets it when the host refused, and returns the held SYN for smoltcp
    /// either way.
    pub fn next_connected(&mut self, sockets: &mut SocketSet<'static>) -> Option<Vec<u8>> {
        let i = self.connected.pop()?;
        let conn = self.conns[i].as_mut()?;
        let syn = conn.syn.take()?;
        match socket_error(conn.host.as_raw_fd()) {
            0 => {
                let mut sock = tcp::Socket::new(
                    tcp::SocketBuffer::new(vec![0u8; BUFFER]),
                    tcp::SocketBuffer::new(vec![0u8; BUFFER]),
                );
                sock.set_congestion_control(CongestionControl::Cubic);
                sock.set_nagle_enabled(false);
                let dest = conn.tuple.dest;
                let endpoint = IpListenEndpoint { addr: Some((*dest.ip()).into()), port: dest.port() };
                if sock.listen(endpoint).is_ok() {
                    conn.handle = Some(sockets.add(sock));
                    return Some(syn);
                }
                self.forget(i, sockets);
            }
            errno => {
                tracing::info!(
                    target: "cloister::net::nat",
                    event = "unreachable",
                    protocol = "tcp",
                    destination = %conn.tuple.dest,
                    error = %std::io::Error::from_raw_os_error(errno),
                    "the destination refused the connection"
                );
                self.forget(i, sockets);
            }
        }
        Some(syn)
    }

    /// Moves what can move on every open connection, and forgets the finished ones. Returns
    /// whether anything moved.
    pub fn pump(&mut self, sockets: &mut SocketSet<'static>) -> bool {
        let mut moved = false;
        for i in 0..self.conns.len() {
            let Some(conn) = self.conns[i].as_mut() else { continue };
            let Some(handle) = conn.handle else { continue };
            let sock = sockets.get_mut::<tcp::Socket>(handle);
            moved |= to_host(conn, sock);
            moved |= to_guest(conn, sock);
            let finished = match sock.state() {
                // Listen again: the sandbox reset the connection before it was up.
                State::Closed | State::Listen => true,
                State::TimeWait => conn.host_done && conn.guest_done,
                _ => false,
            };
            if finished {
                if !(conn.host_done && conn.guest_done) {
                    // The sandbox reset the connection: reset the host's too.
                    linger_zero(conn.host.as_raw_fd());
                }
                self.forget(i, sockets);
                moved = true;
            }
        }
        moved
    }

    fn forget(&mut self, i: usize, sockets: &mut SocketSet<'static>) {
        if let Some(conn) = self.conns[i].take() {
            self.by_tuple.remove(&conn.tuple);
            if let Some(handle) = conn.handle {
                sockets.remove(handle);
            }
        }
    }
}

/// From smoltcp's receive buffer to the host socket, and the sandbox's FIN after the bytes.
fn to_host(conn: &mut Conn, sock: &mut tcp::Socket<'_>) -> bool {
    let mut moved = false;
    let fd = conn.host.as_raw_fd();
    while conn.writable && sock.can_recv() {
        let wrote = sock.recv(|data| {
            // SAFETY: writing from smoltcp's buffer, at most its length; MSG_NOSIGNAL keeps a
            // closed peer from raising SIGPIPE.
            let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
            if n < 0 {
                (0, Err(errno()))
            } else {
                (n as usize, Ok(n as usize))
            }
        });
        match wrote {
            Ok(Ok(_)) => moved = true,
            Ok(Err(libc::EAGAIN | libc::EINTR)) => conn.writable = false,
            Ok(Err(_)) | Err(_) => {
                // The host reset the connection: so does the sandbox's.
                sock.abort();
                conn.host_done = true;
                conn.guest_done = true;
                return true;
            }
        }
    }
    let guest_finished = matches!(
        sock.state(),
        State::CloseWait | State::LastAck | State::Closing | State::TimeWait | State::Closed
    );
    if guest_finished && !conn.guest_done && !sock.can_recv() {
        // SAFETY: shutdown on our socket.
        unsafe { libc::shutdown(fd, libc::SHUT_WR) };
        conn.guest_done = true;
        moved = true;
    }
    moved
}

/// From the host socket into smoltcp's send buffer, and the host's FIN after the bytes.
fn to_guest(conn: &mut Conn, sock: &mut tcp::Socket<'_>) -> bool {
    let mut moved = false;
    let fd = conn.host.as_raw_fd();
    while conn.readable && !conn.host_done && sock.can_send() {
        let read = sock.send(|room| {
            // SAFETY: reading into smoltcp's buffer, at most its length.
            let n = unsafe { libc::recv(fd, room.as_mut_ptr().cast(), room.len(), libc::MSG_DONTWAIT) };
            if n < 0 {
                (0, Err(errno()))
            } else {
                (n as usize, Ok(n as usize))
            }
        });
        match read {
            Ok(Ok(0)) => {
                sock.close();
                conn.host_done = true;
                moved = true;
            }
            Ok(Ok(_)) => moved = true,
            Ok(Err(libc::EAGAIN | libc::EINTR)) => conn.readable = false,
            Ok(Err(_)) | Err(_) => {
                sock.abort();
                conn.host_done = true;
                conn.guest_done = true;
                return true;
            }
        }
    }
    moved
}

/// A non-blocking TCP socket connecting to `addr`: connected, or connecting.
fn connect_nonblocking(addr: SocketAddrV4) -> std::io::Result<OwnedFd> {
    // SAFETY: socket makes a new descriptor or fails.
    let fd = unsafe {
        libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0)
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: setsockopt with an int that lives across the call.
    unsafe {
        libc::setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, (&one as *const libc::c_int).cast(), 4);
    }
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(*addr.ip()).to_be() },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: connect with a sockaddr_in that lives across the call, and its size.
    let r = unsafe { libc::connect(fd, (&sin as *const libc::sockaddr_in).cast(), len) };
    if r == 0 || errno() == libc::EINPROGRESS {
        Ok(sock)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `SO_ERROR` of `fd`: 0 once a non-blocking connect succeeded.
fn socket_error(fd: RawFd) -> i32 {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt into an int and its length, both living across the call.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r != 0 {
        errno()
    } else {
        err
    }
}

/// Makes the coming `close` of `fd` send a RST rather than a FIN.
fn linger_zero(fd: RawFd) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    let len = std::mem::size_of::<libc::linger>() as libc::socklen_t;
    // SAFETY: setsockopt with a linger that lives across the call.
    unsafe {
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_LINGER, (&linger as *const libc::linger).cast(), len)
    };
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}
