//! [`InterfaceAddress`]: the IPv4 address and prefix length of a sandbox's interface on a wire
//! (`--ip 10.9.0.2/24`, or `"address"` in the policy's `network` section).
//!
//! Only what the kernel would refuse, or what cannot work on a LAN, is refused here: a missing or
//! out-of-range prefix length, an address that is not a host's (loopback, multicast, the
//! unspecified and broadcast addresses), and the network and broadcast addresses of its own
//! subnet. Whether two sandboxes share a subnet is the user's choice.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::de::Visitor;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IPv4 address with the length of its subnet's prefix, as `ip addr` writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceAddress {
    /// The interface's address.
    pub ip: Ipv4Addr,
    /// The subnet's prefix length, 1 to 30.
    pub prefix_len: u8,
}

impl InterfaceAddress {
    /// The subnet mask, e.g. 255.255.255.0 for /24.
    pub fn netmask(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::MAX << (32 - u32::from(self.prefix_len)))
    }
}

impl fmt::Display for InterfaceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip, self.prefix_len)
    }
}

/// Why an interface address was not accepted; [`AddressError::fix`] says what to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressError {
    /// The address as written.
    pub written: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// What every [`AddressError`] suggests.
pub(crate) const ADDRESS_FIX: &str =
    "write an IPv4 address of a private subnet with its prefix length, such as \"10.9.0.2/24\"";

impl AddressError {
    /// What to write instead.
    pub fn fix(&self) -> &'static str {
        ADDRESS_FIX
    }
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the interface address {:?} {}", self.written, self.problem)
    }
}

impl std::error::Error for AddressError {}

impl FromStr for InterfaceAddress {
    type Err = AddressError;

    fn from_str(written: &str) -> Result<InterfaceAddress, AddressError> {
        let err = |problem| AddressError { written: written.to_owned(), problem };
        let (ip, len) = written.split_once('/').ok_or_else(|| err("has no prefix length (/LEN)"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| err("is not an IPv4 address"))?;
        let prefix_len: u8 = match len.parse() {
            Ok(n @ 1..=30) if !len.starts_with('+') => n,
            _ => return Err(err("has a prefix length that is not 1 to 30")),
        };
        if ip.is_loopback() || ip.is_multicast() || ip.is_unspecified() || ip.is_broadcast() {
            return Err(err("is not a host's address (loopback, multicast or reserved)"));
        }
        let address = InterfaceAddress { ip, prefix_len };
        let host = u32::from(ip) & !u32::from(address.netmask());
        if host == 0 || host == !u32::from(address.netmask()) {
            return Err(err("is its subnet's network or broadcast address"));
        }
        Ok(address)
    }
}

impl Serialize for InterfaceAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for InterfaceAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<InterfaceAddress, D::Error> {
        struct AddressVisitor;

        impl Visitor<'_> for AddressVisitor {
            type Value = InterfaceAddress;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an IPv4 address with its prefix length")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<InterfaceAddress, E> {
                v.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_str(AddressVisitor)
    }
}
