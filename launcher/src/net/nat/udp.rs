//! The NAT's UDP: a connected host socket per flow (the sandbox's port and the destination it
//! addressed), made by the first datagram, forgotten after [`IDLE`] without traffic.
//!
//! Datagrams to a destination the allow-list does not name are answered with ICMP port
//! unreachable, so that a connected UDP socket in the sandbox sees `ECONNREFUSED` at once, as
//! from a host with nothing on that port. Queries to the gateway's DNS address go to [`super::dns`].

use super::allow::{AllowList, Verdict};
use super::device::Out;
use super::reply;
use std::net::SocketAddrV4;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// How long a flow lives without a datagram either way.
pub const IDLE: Duration = Duration::from_secs(60);

/// Most flows at once: the oldest goes first beyond it.
const MAX_FLOWS: usize = 1024;

struct Flow {
    sock: OwnedFd,
    guest: SocketAddrV4,
    dest: SocketAddrV4,
    last: Instant,
}

/// The UDP flows of one sandbox.
#[derive(Default)]
pub struct Udp {
    flows: Vec<Flow>,
}

impl Udp {
    /// A datagram from the sandbox: `ip` is its IPv4 packet, `payload` the UDP payload.
    pub fn datagram(
        &mut self,
        out: &mut Out,
        allow: &AllowList,
        ip: &[u8],
        guest: SocketAddrV4,
        dest: SocketAddrV4,
        payload: &[u8],
    ) {
        let found = self.flows.iter().position(|f| f.guest == guest && f.dest == dest);
        let i = match found {
            Some(i) => i,
            None => match allow.check(*dest.ip(), dest.port()) {
                Verdict::Refused => {
                    tracing::info!(
                        target: "cloister::net::nat",
                        event = "refused",
                        protocol = "udp",
                        destination = %dest,
                        "refused: not on the allow-list"
                    );
                    return reply::port_unreachable(out, ip);
                }
                Verdict::Allowed(host) => match connected_socket(host) {
                    Ok(sock) => {
                        tracing::info!(target: "cloister::net::nat", event = "flow", protocol = "udp", destination = %dest, host = %host);
                        if self.flows.len() >= MAX_FLOWS {
                            let oldest =
                                (0..self.flows.len()).min_by_key(|&i| self.flows[i].last).unwrap_or(0);
                            self.flows.swap_remove(oldest);
                        }
                        self.flows.push(Flow { sock, guest, dest, last: Instant::now() });
                        self.flows.len() - 1
                    }
                    Err(_) => return reply::port_unreachable(out, ip),
                },
            },
        };
        let flow = &mut self.flows[i];
        flow.last = Instant::now();
        // SAFETY: sending from the frame's buffer on our socket.
        let n = unsafe {
            libc::send(flow.sock.as_raw_fd(), payload.as_ptr().cast(), payload.len(), libc::MSG_DONTWAIT)
        };
        if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECONNREFUSED) {
            // The host answered an earlier datagram with port unreachable: pass it on.
            reply::port_unreachable(out, ip);
        }
    }

    /// Adds the flows' sockets to `fds` (waiting to read), and their indices to `owners`.
    pub fn poll_fds(&self, fds: &mut Vec<libc::pollfd>, owners: &mut Vec<usize>) {
        for (i, flow) in self.flows.iter().enumerate() {
            fds.push(libc::pollfd { fd: flow.sock.as_raw_fd(), events: libc::POLLIN, revents: 0 });
            owners.push(i);
        }
    }

    /// Passes the datagrams waiting on flow `i` to the sandbox.
    pub fn ready(&mut self, out: &mut Out, i: usize) {
        let Some(flow) = self.flows.get_mut(i) else { return };
        loop {
            let room = reply::udp_payload(out);
            // SAFETY: receiving into the transmit buffer, at most its length.
            let n = unsafe {
                libc::recv(flow.sock.as_raw_fd(), room.as_mut_ptr().cast(), room.len(), libc::MSG_DONTWAIT)
            };
            if n < 0 {
                return;
            }
            flow.last = Instant::now();
            reply::send_udp(out, flow.dest, flow.guest, n as usize);
        }
    }

    /// Forgets the flows idle for [`IDLE`].
    pub fn expire(&mut self, now: Instant) {
        self.flows.retain(|f| now.duration_since(f.last) < IDLE);
    }
}

/// How much a flow's host socket may hold before the gateway reads it: a burst of large
/// datagrams (iperf3's are 32 KiB) overflows the default at once.
const RECEIVE_BUFFER: libc::c_int = 4 << 20;

/// A non-blocking UDP socket connected to `addr`.
fn connected_socket(addr: SocketAddrV4) -> std::io::Result<OwnedFd> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0")?;
    sock.connect(addr)?;
    sock.set_nonblocking(true)?;
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let size = (&RECEIVE_BUFFER as *const libc::c_int).cast();
    // SAFETY: setsockopt with an int that lives across the call. The forced size needs
    // CAP_NET_ADMIN; without it the kernel caps the plain one at `net.core.rmem_max`.
    unsafe {
        if libc::setsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, size, len) != 0 {
            libc::setsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, size, len);
        }
    }
    Ok(OwnedFd::from(sock))
}
