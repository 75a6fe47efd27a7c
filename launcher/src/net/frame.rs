//! Ethernet frames as the hub and the relay see them: a destination and a source MAC address,
//! then anything. Nothing past the first 12 bytes is read, so IPv4, IPv6, ARP and whatever a
//! program sends cross the wire alike.
//!
//! Read first: IEEE 802.3's frame layout (destination, source, EtherType), and RFC 7042 §2.1 for
//! the group (multicast) and locally-administered bits of a MAC address.

use policies::InterfaceAddress;

/// Bytes before the payload: two MAC addresses and the EtherType.
pub const HEADER_LEN: usize = 14;

/// The largest frame the wire carries: the interfaces' MTU ([`MTU`]) plus the header, with room
/// for a VLAN tag. A buffer this size never truncates a frame read from a TAP device.
pub const MAX_FRAME: usize = MTU as usize + HEADER_LEN + 4;

/// The MTU of every wire interface. The largest an Ethernet device takes, as with loopback's
/// 65536: a TAP device without offloads hands the relay one frame per IP packet, so a TCP
/// stream costs a handful of system calls per 64 KiB rather than per 1.5 KiB. Every sandbox on
/// a hub has the same, which they must (nothing on the wire fragments or sends "packet too
/// big").
pub const MTU: u32 = 65520;

/// A MAC address.
pub type Mac = [u8; 6];

/// The frame's destination address, if it is long enough to be a frame.
pub fn destination(frame: &[u8]) -> Option<Mac> {
    frame.get(..6)?.try_into().ok().filter(|_| frame.len() >= HEADER_LEN)
}

/// The frame's source address, if it is long enough to be a frame.
pub fn source(frame: &[u8]) -> Option<Mac> {
    frame.get(6..12)?.try_into().ok().filter(|_| frame.len() >= HEADER_LEN)
}

/// Whether `mac` is a group address (broadcast or multicast): the first octet's lowest bit.
pub fn is_group(mac: Mac) -> bool {
    mac[0] & 1 == 1
}

/// The MAC address of the sandbox at `address`: locally administered and unicast (`02`), then
/// `c1` for cloister, then the four octets of the IPv4 address. Derived, not random, so that a
/// reproducible run is reproducible on the wire too and a capture shows who is who; two sandboxes
/// on one hub with one address would clash on IP anyway.
pub fn mac_for(address: InterfaceAddress) -> Mac {
    let [a, b, c, d] = address.ip.octets();
    [0x02, 0xc1, a, b, c, d]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_come_from_the_header() {
        let mut frame = [0u8; 60];
        frame[..6].copy_from_slice(&[0xff; 6]);
        frame[6..12].copy_from_slice(&[2, 0xc1, 10, 0, 0, 1]);
        assert_eq!(destination(&frame), Some([0xff; 6]));
        assert_eq!(source(&frame), Some([2, 0xc1, 10, 0, 0, 1]));
        assert!(is_group([0xff; 6]) && is_group([0x33, 0x33, 0, 0, 0, 1]));
        assert!(!is_group([2, 0xc1, 10, 0, 0, 1]));
        assert_eq!(destination(&frame[..13]), None, "a runt is not a frame");
        let mac = mac_for("10.77.0.2/24".parse().unwrap());
        assert_eq!(mac, [2, 0xc1, 10, 77, 0, 2]);
        assert!(!is_group(mac) && mac[0] & 2 == 2, "unicast, locally administered");
    }
}
