//! `--net nat`: a user-mode NAT gateway on the supervisor's side of the sandbox's `eth0`, that
//! lets out only what the allow-list names.
//!
//! The sandbox's first process makes its TAP device as for a wire ([`super::tap`]), at
//! [`GUEST`] with the default route through [`GATEWAY`]; the supervisor's [`Engine`] is the
//! other end. The sandbox's kernel sends it Ethernet frames, and the engine
//! - answers ARP for the gateway and the DNS address, and ICMP echo to them, through smoltcp;
//! - for a TCP SYN to a destination the allow-list names ([`allow`]), connects a host socket
//!   to it and, once that connection is up, lets a smoltcp socket made for that one
//!   destination accept the guest's connection; bytes then move between the two sockets both
//!   ways, half-closes included ([`tcp`]). A refused destination, or one whose host refuses
//!   the connection, gets a RST, and the refusal is an event;
//! - relays UDP datagrams to allowed destinations through a host socket per flow, and answers
//!   others with ICMP port unreachable ([`udp`]);
//! - answers DNS queries to [`DNS`] for the names the allow-list names, from the host's
//!   `/etc/hosts` and its nameservers, and NXDOMAIN for every other name ([`dns`]).
//!
//! The host's own loopback (127.0.0.1) is the gateway's address [`GATEWAY`], reached only when
//! an entry names it (`10.0.2.2:PORT`, `127.0.0.1:PORT`, or a name that resolves to loopback);
//! `*:PORT` does not. There is no IPv6 beyond `eth0`'s link-local address, and no IP
//! fragments: the MTU ([`super::frame::MTU`]) is large enough for every TCP segment and UDP
//! datagram a program sends on it.
//!
//! Read first: smoltcp's `iface::Interface` (any-IP) and `socket::tcp`, RFC 1035 §4 (DNS
//! messages), RFC 792 (ICMP destination unreachable), RFC 3022 (traditional NAT).

pub mod allow;
mod device;
mod dns;
mod engine;
mod reply;
mod tcp;
mod udp;

pub use engine::Engine;

use policies::InterfaceAddress;
use std::net::Ipv4Addr;

/// The gateway's address: the host's loopback seen from the sandbox.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);

/// The DNS server's address, which the engine answers itself.
pub const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);

/// The sandbox's address on `eth0`, with its subnet.
pub const GUEST: InterfaceAddress = InterfaceAddress { ip: Ipv4Addr::new(10, 0, 2, 15), prefix_len: 24 };
