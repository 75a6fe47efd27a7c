//! [`AllowRule`]: one entry of the egress allow-list of `--net nat` (`--allow SPEC`, or the
//! policy's `"network": {"allow": [SPEC, ...]}`).
//!
//! A SPEC is `HOST:PORT`, where HOST is one of
//! - an address: `10.0.2.2`, `93.184.216.34`, `[::1]` (IPv6 in brackets);
//! - a network in CIDR notation: `10.0.0.0/8`, `[fd00::/8]` (no host bits set);
//! - a DNS name: `localhost`, `example.com` (letters, digits, `-` and `.`; matched without
//!   regard to case, and only once the sandbox looked it up through the gateway's DNS);
//! - `*`: any address, but not the host's own loopback, which only an entry that names it
//!   reaches (see docs/network.md).
//!
//! PORT is 1 to 65535, and applies to TCP and UDP alike. This module only reads and writes
//! entries; the NAT engine (`launcher/src/net/nat/`) decides what matches.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::de::Visitor;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where an [`AllowRule`] lets the sandbox go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowHost {
    /// One address.
    Addr(IpAddr),
    /// A network: its first address and the prefix length.
    Net {
        /// The network's address (its host bits are zero).
        addr: IpAddr,
        /// The prefix length, at most 32 (IPv4) or 128 (IPv6).
        prefix_len: u8,
    },
    /// A DNS name, lower case, without a trailing dot.
    Name(String),
    /// Any address but the host's loopback.
    Any,
}

impl AllowHost {
    /// Whether `ip` lies in this address or network (never for a name or `*`, which the
    /// engine matches itself).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (AllowHost::Addr(addr), _) => *addr == ip,
            (AllowHost::Net { addr: IpAddr::V4(net), prefix_len }, IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*prefix_len)).unwrap_or(0);
                u32::from(ip) & mask == u32::from(*net)
            }
            (AllowHost::Net { addr: IpAddr::V6(net), prefix_len }, IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*prefix_len)).unwrap_or(0);
                u128::from(ip) & mask == u128::from(*net)
            }
            _ => false,
        }
    }
}

/// One entry of the allow-list: a destination and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowRule {
    /// The destination.
    pub host: AllowHost,
    /// The TCP or UDP port, 1 to 65535.
    pub port: u16,
}

impl fmt::Display for AllowRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            AllowHost::Addr(IpAddr::V4(ip)) => write!(f, "{ip}"),
            AllowHost::Addr(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            AllowHost::Net { addr: IpAddr::V4(ip), prefix_len } => write!(f, "{ip}/{prefix_len}"),
            AllowHost::Net { addr: IpAddr::V6(ip), prefix_len } => write!(f, "[{ip}/{prefix_len}]"),
            AllowHost::Name(name) => f.write_str(name),
            AllowHost::Any => f.write_str("*"),
        }?;
        write!(f, ":{}", self.port)
    }
}

/// Why an allow-list entry was not accepted; [`AllowError::fix`] says what to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowError {
    /// The entry as written.
    pub written: String,
    /// What is wrong with it.
    pub problem: String,
}

/// What every [`AllowError`] suggests.
pub(crate) const ALLOW_FIX: &str = "write HOST:PORT, CIDR:PORT, NAME:PORT or *:PORT, such as \
     \"10.0.2.2:8000\", \"10.0.0.0/8:443\", \"example.com:443\", \"*:53\" or \"[::1]:80\"";

impl AllowError {
    /// What to write instead.
    pub fn fix(&self) -> &'static str {
        ALLOW_FIX
    }
}

impl fmt::Display for AllowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the allow-list entry {:?} {}", self.written, self.problem)
    }
}

impl std::error::Error for AllowError {}

impl FromStr for AllowRule {
    type Err = AllowError;

    fn from_str(written: &str) -> Result<AllowRule, AllowError> {
        let err = |problem: &str| AllowError { written: written.to_owned(), problem: problem.to_owned() };
        let (host, port) = written.rsplit_once(':').ok_or_else(|| err("has no port (:PORT)"))?;
        let decimal = port.bytes().all(|b| b.is_ascii_digit()) && !port.starts_with('0');
        let port = match port.parse::<u16>() {
            Ok(port) if decimal && port >= 1 => port,
            _ => return Err(err("has a port that is not a number from 1 to 65535")),
        };
        let host = if host == "*" {
            AllowHost::Any
        } else if let Some(inner) = host.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or_else(|| err("has a '[' without its ']'"))?;
            parse_ip(inner, true).map_err(|p| err(&p))?
        } else if host.contains(':') {
            return Err(err("has an IPv6 address without brackets (write [ADDR]:PORT)"));
        } else if host.bytes().next().is_some_and(|b| b.is_ascii_digit()) && looks_numeric(host) {
            parse_ip(host, false).map_err(|p| err(&p))?
        } else {
            AllowHost::Name(parse_name(host).map_err(err)?)
        };
        Ok(AllowRule { host, port })
    }
}

/// Whether a host reads as an IPv4 address or network rather than a name (digits, dots, one
/// slash).
fn looks_numeric(host: &str) -> bool {
    host.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'/')
}

/// An address or network: `ADDR` or `ADDR/LEN`, IPv6 when `v6` (written in brackets).
fn parse_ip(text: &str, v6: bool) -> Result<AllowHost, String> {
    let family = if v6 { "IPv6" } else { "IPv4" };
    let (addr, len) = match text.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| format!("has {addr:?}, which is not an {family} address"))?;
    if addr.is_ipv6() != v6 {
        return Err(format!("has {addr}, which is not an {family} address"));
    }
    let Some(len) = len else { return Ok(AllowHost::Addr(addr)) };
    let max = if v6 { 128 } else { 32 };
    let prefix_len = match len.parse::<u8>() {
        Ok(n) if n <= max && !len.starts_with('+') && (len == "0" || !len.starts_with('0')) => n,
        _ => return Err(format!("has a prefix length that is not 0 to {max}")),
    };
    let net = AllowHost::Net { addr, prefix_len };
    if !net.contains(addr) {
        return Err(format!("has host bits set in {addr}/{prefix_len}: write the network's first address"));
    }
    Ok(net)
}

/// A DNS name: labels of letters, digits and `-`, not starting or ending with `-`, at most 63
/// bytes each and 253 in all; lower-cased, without a trailing dot.
fn parse_name(name: &str) -> Result<String, &'static str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err("has no host before the port");
    }
    if name.len() > 253 {
        return Err("has a name longer than 253 bytes");
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("has a name with an empty label, or one longer than 63 bytes");
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err("has a name with a character other than letters, digits, '-' and '.'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("has a name with a label that starts or ends with '-'");
        }
    }
    Ok(name.to_ascii_lowercase())
}

impl Serialize for AllowRule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AllowRule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<AllowRule, D::Error> {
        struct RuleVisitor;

        impl Visitor<'_> for RuleVisitor {
            type Value = AllowRule;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an allow-list entry HOST:PORT")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<AllowRule, E> {
                v.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_str(RuleVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_and_show_back() {
        for text in [
            "10.0.2.2:8000",
            "10.0.0.0/8:443",
            "0.0.0.0/0:80",
            "[::1]:80",
            "[fd00::/8]:443",
            "example.com:443",
            "localhost:1",
            "*:65535",
        ] {
            let rule: AllowRule = text.parse().unwrap();
            assert_eq!(rule.to_string(), text);
        }
        let rule: AllowRule = "Example.COM.:53".parse().unwrap();
        assert_eq!(rule.host, AllowHost::Name("example.com".into()));
        assert!(AllowHost::Net { addr: "10.0.0.0".parse().unwrap(), prefix_len: 8 }
            .contains("10.200.0.1".parse().unwrap()));
        assert!(!AllowHost::Net { addr: "10.0.0.0".parse().unwrap(), prefix_len: 8 }
            .contains("11.0.0.1".parse().unwrap()));
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        for (text, problem) in [
            ("10.0.2.2", "has no port"),
            ("10.0.2.2:0", "not a number from 1 to 65535"),
            ("10.0.2.2:65536", "not a number from 1 to 65535"),
            ("10.0.2.2:080", "not a number from 1 to 65535"),
            ("10.0.2.2:+80", "not a number from 1 to 65535"),
            (":80", "has no host"),
            ("::1:80", "without brackets"),
            ("[::1:80", "without its ']'"),
            ("[10.0.0.1]:80", "not an IPv6 address"),
            ("10.0.0.1/8:80", "host bits set"),
            ("10.0.0.0/33:80", "prefix length"),
            ("10.0.0.300:80", "not an IPv4 address"),
            ("exa mple.com:80", "character other than"),
            ("-bad.com:80", "starts or ends with '-'"),
            ("a..b:80", "empty label"),
        ] {
            let err = text.parse::<AllowRule>().unwrap_err();
            assert!(err.to_string().contains(problem), "{text}: {err}");
        }
    }
}
