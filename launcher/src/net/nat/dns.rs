//! The gateway's DNS: answers queries to [`super::DNS`] port 53 for the names the allow-list
//! names, and NXDOMAIN for every other name (an event, like any refusal).
//!
//! An allowed name's IPv4 addresses come from the host's `/etc/hosts` first, then from the
//! nameservers of the host's `/etc/resolv.conf` (the query is passed on as the sandbox wrote
//! it, and the answer passed back). A loopback address in `/etc/hosts` is answered as the
//! gateway's address, which leads to the host's loopback. The addresses answered become
//! reachable on the name's ports ([`super::allow::AllowList::learn`]). Lookups run on a thread
//! of their own, since a nameserver may take seconds, and the engine collects their answers
//! when it is woken.
//!
//! Only A queries get addresses; AAAA and the other types get an empty answer (there is no IPv6
//! beyond the sandbox's link). What this does not do: DNS over TCP, or caching.
//!
//! Read first: RFC 1035 §4.1 (message format) and §4.1.4 (name compression), hosts(5),
//! resolv.conf(5).

use super::GATEWAY;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::mpsc;
use std::time::Duration;

/// How long a host nameserver has to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;
const NXDOMAIN: u8 = 3;
const SERVFAIL: u8 = 2;
const FORMERR: u8 = 1;

/// A query's question, read from its message.
#[derive(Debug, PartialEq, Eq)]
pub struct Question {
    /// The name, lower case, without the trailing dot.
    pub name: String,
    /// The record type asked for.
    pub qtype: u16,
    /// Where the question ends in the message.
    end: usize,
}

/// Reads the one question of a standard query; `None` for anything else.
pub fn parse_query(msg: &[u8]) -> Option<Question> {
    let header = msg.get(..12)?;
    let flags = u16::from_be_bytes([header[2], header[3]]);
    let qdcount = u16::from_be_bytes([header[4], header[5]]);
    // A query (QR 0), standard (opcode 0), one question.
    if flags & 0xf800 != 0 || qdcount != 1 {
        return None;
    }
    let mut at = 12;
    let mut name = String::new();
    loop {
        let len = usize::from(*msg.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        // A question's name is never compressed; labels are 63 bytes at most.
        if len > 63 || name.len() + len > 253 {
            return None;
        }
        let label = msg.get(at..at + len)?;
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(&String::from_utf8_lossy(label).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]);
    at += 4;
    (at <= msg.len()).then_some(Question { name, qtype, end: at })
}

/// The answer to `query` with `rcode` and, for an A question, `addrs`: the query's header and
/// question, then one A record per address.
pub fn answer(query: &[u8], question: Option<&Question>, rcode: u8, addrs: &[Ipv4Addr]) -> Vec<u8> {
    let end = question.map_or(12.min(query.len()), |q| q.end);
    let mut out = query[..end].to_vec();
    if out.len() < 12 {
        out.resize(12, 0);
    }
    // QR, the query's opcode and RD, RA, and the code.
    out[2] = 0x80 | (out[2] & 0x79);
    out[3] = 0x80 | rcode;
    let addrs = if question.is_some_and(|q| q.qtype == TYPE_A) && rcode == 0 { addrs } else { &[] };
    let qdcount: u16 = question.is_some().into();
    out[4..6].copy_from_slice(&qdcount.to_be_bytes());
    out[6..8].copy_from_slice(&(addrs.len() as u16).to_be_bytes());
    out[8..12].fill(0);
    for addr in addrs {
        // The name is a pointer to the question's (offset 12); TTL 60 s.
        out.extend_from_slice(&[0xc0, 12]);
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&60u32.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&addr.octets());
    }
    out
}

/// The answer to a malformed or unsupported query.
pub fn format_error(query: &[u8]) -> Vec<u8> {
    answer(query, None, FORMERR, &[])
}

/// The answer for a name the allow-list does not name.
pub fn no_such_name(query: &[u8], question: &Question) -> Vec<u8> {
    answer(query, Some(question), NXDOMAIN, &[])
}

/// A query for an allowed name, for the lookup thread.
struct Lookup {
    query: Vec<u8>,
    question: Question,
    guest: SocketAddrV4,
    ports: Vec<u16>,
}

/// A finished lookup: the reply for the sandbox, and the addresses to let it reach.
pub struct Answered {
    /// The reply message.
    pub reply: Vec<u8>,
    /// Who asked.
    pub guest: SocketAddrV4,
    /// The addresses answered (as the sandbox sees them).
    pub addrs: Vec<Ipv4Addr>,
    /// The name's ports on the allow-list.
    pub ports: Vec<u16>,
}

/// The lookup thread, and how its answers come back.
///
/// Dropping it ends the thread once it is done with the lookup at hand, without waiting for it:
/// a nameserver that does not answer must not keep the sandbox's end waiting.
pub struct Resolver {
    queries: mpsc::Sender<Lookup>,
    answers: mpsc::Receiver<Answered>,
    wake: std::sync::Arc<OwnedFd>,
}

impl Resolver {
    /// Starts the thread.
    pub fn start() -> std::io::Result<Resolver> {
        // SAFETY: eventfd makes a new descriptor or fails.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        let wake = std::sync::Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        let (queries, lookups) = mpsc::channel::<Lookup>();
        let (done, answers) = mpsc::channel();
        let waker = wake.clone();
        std::thread::Builder::new().name("nat-dns".into()).spawn(move || {
            for lookup in lookups {
                let (reply, addrs) = resolve(&lookup.query, &lookup.question);
                let answered = Answered { reply, guest: lookup.guest, addrs, ports: lookup.ports };
                if done.send(answered).is_err() {
                    return;
                }
                signal(waker.as_raw_fd());
            }
        })?;
        Ok(Resolver { queries, answers, wake })
    }

    /// The descriptor that becomes readable when an answer is ready.
    pub fn wake_fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }

    /// Looks `question` of `query` up for `guest`, for the name's `ports`.
    pub fn ask(&self, query: &[u8], question: Question, guest: SocketAddrV4, ports: Vec<u16>) {
        let _ = self.queries.send(Lookup { query: query.to_vec(), question, guest, ports });
    }

    /// The next finished lookup.
    pub fn next(&self) -> Option<Answered> {
        let mut count = 0u64;
        // SAFETY: an 8-byte read from our eventfd into a u64 (EAGAIN when nothing is there).
        unsafe { libc::read(self.wake.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
        self.answers.try_recv().ok()
    }
}

fn signal(fd: RawFd) {
    let one = 1u64;
    // SAFETY: an 8-byte write to our eventfd.
    unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}

/// The reply for an allowed name and the IPv4 addresses in it.
fn resolve(query: &[u8], question: &Question) -> (Vec<u8>, Vec<Ipv4Addr>) {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let addrs = hosts_lookup(&hosts, &question.name);
    // A name /etc/hosts knows is answered from it alone (an IPv6-only entry with no A record);
    // other types than A get an empty answer without asking anyone.
    if hosts_names(&hosts).any(|n| n == question.name) || question.qtype != TYPE_A {
        return (answer(query, Some(question), 0, &addrs), addrs);
    }
    let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    for server in nameservers(&conf) {
        if let Some(reply) = ask_upstream(server, query) {
            let addrs = a_records(&reply);
            return (reply, addrs);
        }
    }
    (answer(query, Some(question), SERVFAIL, &[]), Vec::new())
}

/// The IPv4 addresses `/etc/hosts` gives `name`, loopback ones as the gateway's.
fn hosts_lookup(hosts: &str, name: &str) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(Ok(addr)) = fields.next().map(str::parse::<Ipv4Addr>) else { continue };
        if fields.any(|n| n.eq_ignore_ascii_case(name)) {
            let addr = if addr.is_loopback() { GATEWAY } else { addr };
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
    }
    out
}

/// Every name `/etc/hosts` gives an address (IPv4 or IPv6), lower case.
fn hosts_names(hosts: &str) -> impl Iterator<Item = String> + '_ {
    hosts.lines().flat_map(|line| {
        line.split('#').next().unwrap_or("").split_whitespace().skip(1).map(str::to_ascii_lowercase)
    })
}

/// The IPv4 nameservers of a resolv.conf.
fn nameservers(conf: &str) -> Vec<Ipv4Addr> {
    conf.lines()
        .filter_map(|line| line.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().parse().ok())
        .collect()
}

/// Passes `query` to `server` and returns its reply.
fn ask_upstream(server: Ipv4Addr, query: &[u8]) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("0.0.0.0:0").ok()?;
    sock.set_read_timeout(Some(UPSTREAM_TIMEOUT)).ok()?;
    sock.connect(SocketAddrV4::new(server, 53)).ok()?;
    sock.send(query).ok()?;
    let mut buf = vec![0u8; 4096];
    let n = sock.recv(&mut buf).ok()?;
    buf.truncate(n);
    (buf.get(..2) == query.get(..2)).then_some(buf)
}

/// The addresses of the A records in a reply's answer section.
fn a_records(msg: &[u8]) -> Vec<Ipv4Addr> {
    let count = |at: usize| msg.get(at..at + 2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let (qdcount, ancount) = (count(4), count(6));
    let mut at = 12;
    let mut out = Vec::new();
    for _ in 0..qdcount {
        let Some(end) = skip_name(msg, at) else { return out };
        at = end + 4;
    }
    for _ in 0..ancount {
        let Some(end) = skip_name(msg, at) else { return out };
        let (rtype, rdlen) = (count(end), usize::from(count(end + 8)));
        let data = end + 10;
        if rtype == TYPE_A && rdlen == 4 {
            if let Some(b) = msg.get(data..data + 4) {
                out.push(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
            }
        }
        at = data + rdlen;
    }
    out
}

/// Where the name at `at` ends (after its zero label or its compression pointer).
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *msg.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l => at += 1 + usize::from(l),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q
    }

    #[test]
    fn questions_and_answers() {
        let q = query("LocalHost", TYPE_A);
        let question = parse_query(&q).unwrap();
        assert_eq!((question.name.as_str(), question.qtype), ("localhost", TYPE_A));
        let reply = answer(&q, Some(&question), 0, &[GATEWAY]);
        assert_eq!(&reply[..4], &[0x12, 0x34, 0x81, 0x80]);
        assert_eq!(a_records(&reply), [GATEWAY]);
        let refused = no_such_name(&q, &question);
        assert_eq!(refused[3] & 0xf, NXDOMAIN);
        assert!(a_records(&refused).is_empty());
        let aaaa = query("localhost", 28);
        let question = parse_query(&aaaa).unwrap();
        assert!(a_records(&answer(&aaaa, Some(&question), 0, &[GATEWAY])).is_empty());
        let mut response = q.clone();
        response[2] |= 0x80;
        assert_eq!(parse_query(&response), None, "not a query");
        assert_eq!(parse_query(&q[..q.len() - 1]), None, "cut short");
    }

    #[test]
    fn hosts_and_resolv_conf() {
        let hosts =
            "127.0.0.1 localhost\n# 1.2.3.4 commented\n192.0.2.9 Box box.lan\n::1 localhost ip6-localhost\n";
        assert_eq!(hosts_lookup(hosts, "localhost"), [GATEWAY]);
        assert_eq!(hosts_lookup(hosts, "box"), [Ipv4Addr::new(192, 0, 2, 9)]);
        assert!(hosts_lookup(hosts, "commented").is_empty());
        assert!(hosts_names(hosts).any(|n| n == "ip6-localhost"));
        let conf = "# x\nnameserver 127.0.0.53\nnameserver ::1\noptions edns0\n";
        assert_eq!(nameservers(conf), [Ipv4Addr::new(127, 0, 0, 53)]);
    }
}
