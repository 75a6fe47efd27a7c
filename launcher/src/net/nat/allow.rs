//! [`AllowList`]: which destinations the NAT lets the sandbox reach, and where on the host each
//! one leads.
//!
//! A destination is what the sandbox addressed (an IPv4 address and a port). The gateway
//! [`GATEWAY`] leads to the host's 127.0.0.1, and only entries that name the loopback reach it:
//! `10.0.2.2:PORT`, `127.0.0.1:PORT`, a network inside 127.0.0.0/8, or a name that the gateway's
//! DNS answered with a loopback address. `*:PORT` and wider networks mean "the world", not the
//! host's own services. The rest of the sandbox's subnet (10.0.2.0/24) leads nowhere.
//!
//! A name entry (`example.com:443`) lets the sandbox reach the addresses the gateway's DNS gave
//! for that name ([`AllowList::learn`]): a program that never looked the name up through the
//! gateway cannot reach them by address alone.

use super::{GATEWAY, GUEST};
use policies::{AllowHost, AllowRule};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};

/// What to do with a new flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let it out, to this address on the host's side.
    Allowed(SocketAddrV4),
    /// Refuse it, as a firewall would.
    Refused,
}

/// The allow-list of a sandbox, with the addresses its names resolved to.
pub struct AllowList {
    rules: Vec<AllowRule>,
    /// (address as the sandbox sees it, port) pairs learned from DNS answers.
    learned: Vec<(Ipv4Addr, u16)>,
}

impl AllowList {
    /// The list for `rules`.
    pub fn new(rules: Vec<AllowRule>) -> AllowList {
        AllowList { rules, learned: Vec::new() }
    }

    /// Whether the sandbox may reach `dst:port`, and where that leads.
    pub fn check(&self, dst: Ipv4Addr, port: u16) -> Verdict {
        let subnet = u32::from(GUEST.netmask());
        let on_subnet = u32::from(dst) & subnet == u32::from(GUEST.ip) & subnet;
        if on_subnet && dst != GATEWAY {
            return Verdict::Refused;
        }
        let learned = self.learned.contains(&(dst, port));
        let by_rule = self.rules.iter().filter(|r| r.port == port).any(|rule| {
            if dst == GATEWAY {
                names_loopback(&rule.host)
            } else {
                match &rule.host {
                    AllowHost::Any => true,
                    host => host.contains(IpAddr::V4(dst)),
                }
            }
        });
        match (learned || by_rule, dst == GATEWAY) {
            (false, _) => Verdict::Refused,
            (true, true) => Verdict::Allowed(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)),
            (true, false) => Verdict::Allowed(SocketAddrV4::new(dst, port)),
        }
    }

    /// The ports the allow-list gives the name `name` (lower case, no trailing dot): empty when
    /// it names no such entry.
    pub fn ports_for_name(&self, name: &str) -> Vec<u16> {
        let named = |r: &&AllowRule| matches!(&r.host, AllowHost::Name(n) if n == name);
        self.rules.iter().filter(named).map(|r| r.port).collect()
    }

    /// Lets the sandbox reach `addr` (as it sees it) on `ports`: the DNS answered a name the
    /// allow-list names with it.
    pub fn learn(&mut self, addr: Ipv4Addr, ports: &[u16]) {
        for &port in ports {
            if !self.learned.contains(&(addr, port)) {
                self.learned.push((addr, port));
            }
        }
    }
}

/// Whether an entry names the host's loopback: the gateway's address, or addresses and
/// networks inside 127.0.0.0/8.
fn names_loopback(host: &AllowHost) -> bool {
    match host {
        AllowHost::Addr(IpAddr::V4(ip)) => *ip == GATEWAY || ip.is_loopback(),
        AllowHost::Net { addr: IpAddr::V4(ip), prefix_len } => ip.is_loopback() && *prefix_len >= 8,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(rules: &[&str]) -> AllowList {
        AllowList::new(rules.iter().map(|r| r.parse().unwrap()).collect())
    }

    #[test]
    fn the_gateway_is_the_hosts_loopback_only_when_named() {
        let lo = |port| Verdict::Allowed(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
        assert_eq!(list(&["10.0.2.2:80"]).check(GATEWAY, 80), lo(80));
        assert_eq!(list(&["127.0.0.1:80"]).check(GATEWAY, 80), lo(80));
        assert_eq!(list(&["127.0.0.0/8:80"]).check(GATEWAY, 80), lo(80));
        assert_eq!(list(&["10.0.2.2:80"]).check(GATEWAY, 81), Verdict::Refused);
        for wide in ["*:80", "0.0.0.0/0:80", "10.0.0.0/8:80"] {
            assert_eq!(list(&[wide]).check(GATEWAY, 80), Verdict::Refused, "{wide}");
        }
    }

    #[test]
    fn other_destinations_follow_the_rules_and_names_follow_dns() {
        let far = Ipv4Addr::new(192, 0, 2, 7);
        let to = |port| Verdict::Allowed(SocketAddrV4::new(far, port));
        assert_eq!(list(&["*:443"]).check(far, 443), to(443));
        assert_eq!(list(&["192.0.2.0/24:443"]).check(far, 443), to(443));
        assert_eq!(list(&["192.0.2.7:443"]).check(far, 80), Verdict::Refused);
        assert_eq!(list(&["*:443"]).check(Ipv4Addr::new(10, 0, 2, 9), 443), Verdict::Refused);
        let mut names = list(&["example.com:443", "example.com:80", "other.org:22"]);
        assert_eq!(names.check(far, 443), Verdict::Refused, "not looked up yet");
        assert_eq!(names.ports_for_name("example.com"), [443, 80]);
        assert!(names.ports_for_name("example.org").is_empty());
        names.learn(far, &[443, 80]);
        assert_eq!(names.check(far, 443), to(443));
        assert_eq!(names.check(far, 22), Verdict::Refused);
        names.learn(GATEWAY, &[22]);
        assert_eq!(names.check(GATEWAY, 22), Verdict::Allowed(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 22)));
    }
}
