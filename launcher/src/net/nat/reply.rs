//! Frames the engine writes to the sandbox itself, outside smoltcp: UDP datagrams (relayed
//! replies and DNS answers) and ICMP port unreachable. Each is built in place in the device's
//! transmit buffer: a datagram's payload is put there first ([`udp_payload`]), then the headers
//! around it.
//!
//! Read first: RFC 768 (UDP), RFC 791 (IPv4), RFC 792 (ICMP destination unreachable: the
//! offending datagram's IP header and first 8 bytes of data).

use super::device::Out;
use super::{GATEWAY, GUEST};
use crate::net::frame::{self, HEADER_LEN, MTU};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Message, Icmpv4Packet, IpAddress,
    IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket,
};
use std::net::SocketAddrV4;

/// An IPv4 header without options.
pub const IP_HEADER: usize = 20;
/// A UDP header.
pub const UDP_HEADER: usize = 8;
/// Where a datagram's payload starts in a frame.
pub const UDP_PAYLOAD: usize = HEADER_LEN + IP_HEADER + UDP_HEADER;
/// The largest UDP payload that fits the MTU.
pub const MAX_UDP_PAYLOAD: usize = MTU as usize - IP_HEADER - UDP_HEADER;

/// The gateway's MAC address, which smoltcp answers ARP with.
pub fn gateway_mac() -> EthernetAddress {
    EthernetAddress(frame::mac_for(policies::InterfaceAddress { ip: GATEWAY, prefix_len: GUEST.prefix_len }))
}

/// The sandbox's MAC address, which its TAP device was given.
pub fn guest_mac() -> EthernetAddress {
    EthernetAddress(frame::mac_for(GUEST))
}

/// Where to put a datagram's payload before [`send_udp`].
pub fn udp_payload(out: &mut Out) -> &mut [u8] {
    &mut out.buffer()[UDP_PAYLOAD..UDP_PAYLOAD + MAX_UDP_PAYLOAD]
}

/// Sends the `len` bytes at [`udp_payload`] to the sandbox as a datagram from `src` to `dst`.
pub fn send_udp(out: &mut Out, src: SocketAddrV4, dst: SocketAddrV4, len: usize) {
    let udp_len = UDP_HEADER + len;
    let total = HEADER_LEN + IP_HEADER + udp_len;
    let buf = &mut out.buffer()[..total];
    let ip = ip_header(buf, *src.ip(), *dst.ip(), IpProtocol::Udp, udp_len);
    let mut udp = UdpPacket::new_unchecked(ip);
    udp.set_src_port(src.port());
    udp.set_dst_port(dst.port());
    udp.set_len(udp_len as u16);
    udp.fill_checksum(&IpAddress::Ipv4(*src.ip()), &IpAddress::Ipv4(*dst.ip()));
    out.send(total);
}

/// Answers the IPv4 packet `offending` (from the sandbox) with ICMP port unreachable, from its
/// destination: what a host with nothing on that port, or a firewall that rejects, sends.
pub fn port_unreachable(out: &mut Out, offending: &[u8]) {
    let Ok(packet) = Ipv4Packet::new_checked(offending) else { return };
    let quoted = &offending[..(usize::from(packet.header_len()) + 8).min(offending.len())];
    let icmp_len = 8 + quoted.len();
    let total = HEADER_LEN + IP_HEADER + icmp_len;
    let (from, to) = (packet.dst_addr(), packet.src_addr());
    let buf = &mut out.buffer()[..total];
    let payload = ip_header(buf, from, to, IpProtocol::Icmp, icmp_len);
    payload[4..8].fill(0);
    payload[8..].copy_from_slice(quoted);
    let mut icmp = Icmpv4Packet::new_unchecked(payload);
    icmp.set_msg_type(Icmpv4Message::DstUnreachable);
    icmp.set_msg_code(3);
    icmp.fill_checksum();
    out.send(total);
}

/// Writes the Ethernet and IPv4 headers of a packet from `src` to `dst` at the start of `buf`
/// (the whole frame) and returns the IP payload, `payload_len` bytes.
fn ip_header(
    buf: &mut [u8],
    src: std::net::Ipv4Addr,
    dst: std::net::Ipv4Addr,
    protocol: IpProtocol,
    payload_len: usize,
) -> &mut [u8] {
    let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
    EthernetRepr { src_addr: gateway_mac(), dst_addr: guest_mac(), ethertype: EthernetProtocol::Ipv4 }
        .emit(&mut eth);
    let repr = Ipv4Repr { src_addr: src, dst_addr: dst, next_header: protocol, payload_len, hop_limit: 64 };
    let mut ip = Ipv4Packet::new_unchecked(&mut buf[HEADER_LEN..]);
    repr.emit(&mut ip, &ChecksumCapabilities::default());
    &mut buf[HEADER_LEN + IP_HEADER..HEADER_LEN + IP_HEADER + payload_len]
}
