//! [`Engine`]: the supervisor's thread that is the NAT gateway for one sandbox, from the moment
//! its TAP device arrives until the sandbox ends.
//!
//! One thread does everything, in a loop: read up to a batch of frames from the TAP device
//! and sort them (UDP to [`super::udp`] and [`super::dns`], SYNs to [`super::tcp`], the rest to
//! smoltcp), let smoltcp process them, hand smoltcp the SYNs whose host connections came up,
//! move bytes between smoltcp's sockets and the host's, and wait in `poll` only when nothing
//! moved. Refusals are `tracing` events (target `cloister::net::nat`), written as JSON lines
//! to the `--trace` file when there is one.

use super::allow::AllowList;
use super::device::TapDevice;
use super::dns::{self, Resolver};
use super::tcp::{Syn, Tcp, Tuple};
use super::udp::Udp;
use super::{reply, DNS, GATEWAY, GUEST};
use crate::failure::Failure;
use policies::AllowRule;
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{
    ArpPacket, EthernetFrame, EthernetProtocol, HardwareAddress, IpCidr, IpProtocol, Ipv4Packet, TcpPacket,
    UdpPacket,
};
use std::fs::File;
use std::net::SocketAddrV4;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest the loop sleeps when nothing is due.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// A running NAT gateway.
pub struct Engine {
    stop: Arc<OwnedFd>,
    thread: JoinHandle<()>,
}

impl Engine {
    /// Starts the gateway on the sandbox's `tap` device, letting out what `rules` name, with
    /// its events written to `events` (the `--trace` file) when given.
    pub fn start(tap: OwnedFd, rules: Vec<AllowRule>, events: Option<File>) -> Result<Engine, Failure> {
        let setup = |what: &str, e: std::io::Error| {
            Failure::Setup(format!("cannot start the NAT gateway: {what}: {e}"))
        };
        // SAFETY: fcntl on a descriptor we own.
        if unsafe { libc::fcntl(tap.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
            return Err(setup("O_NONBLOCK on the TAP device", std::io::Error::last_os_error()));
        }
        // SAFETY: eventfd makes a new descriptor or fails.
        let stop = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if stop < 0 {
            return Err(setup("eventfd", std::io::Error::last_os_error()));
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        let stop = Arc::new(unsafe { OwnedFd::from_raw_fd(stop) });
        let resolver = Resolver::start().map_err(|e| setup("the DNS thread", e))?;
        let stop_fd = stop.clone();
        let thread = std::thread::Builder::new()
            .name("nat".into())
            .spawn(move || {
                let run = || Gateway::new(&tap, AllowList::new(rules), resolver).run(stop_fd.as_raw_fd());
                match events {
                    Some(file) => {
                        let subscriber = tracing_subscriber::fmt()
                            .json()
                            .flatten_event(true)
                            .with_target(true)
                            .with_writer(Mutex::new(file))
                            .finish();
                        tracing::subscriber::with_default(subscriber, run);
                    }
                    None => run(),
                }
            })
            .map_err(|e| setup("its thread", e))?;
        Ok(Engine { stop, thread })
    }

    /// Stops the gateway (the sandbox ended); host connections still open are closed.
    pub fn stop(self) {
        let one = 1u64;
        // SAFETY: an 8-byte write to our eventfd.
        unsafe { libc::write(self.stop.as_raw_fd(), (&one as *const u64).cast(), 8) };
        let _ = self.thread.join();
    }
}

/// The gateway's state.
struct Gateway {
    dev: TapDevice,
    iface: Interface,
    sockets: SocketSet<'static>,
    tcp: Tcp,
    udp: Udp,
    allow: AllowList,
    dns: Resolver,
    epoch: Instant,
}

/// Whose descriptor a `pollfd` is.
#[derive(Clone, Copy)]
enum Owner {
    Flow(usize),
    Conn(usize),
}

impl Gateway {
    fn new(tap: &OwnedFd, allow: AllowList, dns: Resolver) -> Gateway {
        let mut dev = TapDevice::new(tap.as_raw_fd());
        let epoch = Instant::now();
        let mut config = Config::new(HardwareAddress::Ethernet(reply::gateway_mac()));
        config.random_seed = seed();
        let mut iface = Interface::new(config, &mut dev, SmolInstant::from_micros(0));
        iface.update_ip_addrs(|addrs| {
            for ip in [GATEWAY, DNS] {
                let _ = addrs.push(IpCidr::new(ip.into(), GUEST.prefix_len));
            }
        });
        // Any-IP: packets to any address routed through the gateway are the gateway's.
        let _ = iface.routes_mut().add_default_ipv4_route(GATEWAY);
        iface.set_any_ip(true);
        Gateway {
            dev,
            iface,
            sockets: SocketSet::new(Vec::new()),
            tcp: Tcp::default(),
            udp: Udp::default(),
            allow,
            dns,
            epoch,
        }
    }

    fn now(&self) -> SmolInstant {
        SmolInstant::from_micros(self.epoch.elapsed().as_micros() as i64)
    }

    fn run(mut self, stop: RawFd) {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(64);
        let mut owners: Vec<Owner> = Vec::with_capacity(64);
        let (mut flow_ids, mut conn_ids) = (Vec::with_capacity(64), Vec::with_capacity(64));
        let mut last_expiry = Instant::now();
        loop {
            let busy = self.step();
            fds.clear();
            owners.clear();
            for fd in [self.dev_fd(), stop, self.dns.wake_fd()] {
                fds.push(libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
            }
            flow_ids.clear();
            self.udp.poll_fds(&mut fds, &mut flow_ids);
            owners.extend(flow_ids.iter().map(|&i| Owner::Flow(i)));
            conn_ids.clear();
            self.tcp.poll_fds(&self.sockets, &mut fds, &mut conn_ids);
            owners.extend(conn_ids.iter().map(|&i| Owner::Conn(i)));
            let timeout = if busy {
                0
            } else {
                let now = self.now();
                let due = self
                    .iface
                    .poll_delay(now, &self.sockets)
                    .map(|d| Duration::from_micros(d.total_micros()));
                let wait = due.unwrap_or(MAX_WAIT).min(MAX_WAIT);
                // Round up, so that a wait of 0.3 ms does not spin.
                wait.as_micros().div_ceil(1000) as i32
            };
            // SAFETY: poll on a vector of pollfds that lives across the call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if n < 0 {
                continue;
            }
            if fds[1].revents != 0 {
                return;
            }
            if fds[2].revents != 0 {
                self.dns_answers();
            }
            for (pfd, owner) in fds[3..].iter().zip(&owners) {
                if pfd.revents == 0 {
                    continue;
                }
                match *owner {
                    Owner::Flow(i) => self.udp.ready(self.dev.out(), i),
                    Owner::Conn(i) => self.tcp.ready(i, pfd.revents),
                }
            }
            if last_expiry.elapsed() >= MAX_WAIT {
                last_expiry = Instant::now();
                self.udp.expire(last_expiry);
            }
        }
    }

    fn dev_fd(&self) -> RawFd {
        self.dev.fd()
    }

    /// One round of work; whether anything happened (then the loop does not wait).
    fn step(&mut self) -> bool {
        let mut frames = 0;
        while self.dev.has_room() {
            let Some(len) = self.dev.read() else { break };
            frames += 1;
            if self.sort(len) {
                self.dev.keep(len);
            }
        }
        let now = self.now();
        self.iface.poll(now, &mut self.dev, &mut self.sockets);
        while let Some(syn) = self.tcp.next_connected(&mut self.sockets) {
            self.dev.inject(&syn);
            let now = self.now();
            self.iface.poll(now, &mut self.dev, &mut self.sockets);
        }
        let moved = self.tcp.pump(&mut self.sockets);
        if moved {
            let now = self.now();
            self.iface.poll(now, &mut self.dev, &mut self.sockets);
        }
        frames > 0 || moved
    }

    /// Looks at the frame just read: true to hand it to smoltcp, false when it was dealt with
    /// here (UDP, a held SYN) or dropped.
    fn sort(&mut self, len: usize) -> bool {
        let (frame, out) = self.dev.last(len);
        let Ok(eth) = EthernetFrame::new_checked(frame) else { return false };
        match eth.ethertype() {
            // ARP for the gateway's and the DNS server's addresses only: the rest of the subnet
            // is nobody.
            EthernetProtocol::Arp => ArpPacket::new_checked(eth.payload())
                .is_ok_and(|arp| [GATEWAY, DNS].iter().any(|ip| arp.target_protocol_addr() == ip.octets())),
            EthernetProtocol::Ipv4 => {
                let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else { return false };
                if ip.more_frags() || ip.frag_offset() != 0 {
                    return false;
                }
                let (src, dst) = (ip.src_addr(), ip.dst_addr());
                // Broadcast and multicast (DHCP, mDNS, the subnet's broadcast) lead nowhere, and
                // get no ICMP error either.
                let subnet_broadcast = u32::from(GUEST.ip) | !u32::from(GUEST.netmask());
                if dst.is_broadcast() || dst.is_multicast() || u32::from(dst) == subnet_broadcast {
                    return false;
                }
                let packet = &eth.payload()[..usize::from(ip.total_len())];
                match ip.next_header() {
                    IpProtocol::Udp => {
                        let Ok(udp) = UdpPacket::new_checked(ip.payload()) else { return false };
                        let guest = SocketAddrV4::new(src, udp.src_port());
                        let dest = SocketAddrV4::new(dst, udp.dst_port());
                        if dst == DNS {
                            if dest.port() == 53 {
                                let query = udp.payload().to_vec();
                                self.dns_query(&query, guest);
                            } else {
                                reply::port_unreachable(out, packet);
                            }
                        } else {
                            self.udp.datagram(out, &self.allow, packet, guest, dest, udp.payload());
                        }
                        false
                    }
                    IpProtocol::Tcp => {
                        let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else { return false };
                        if !tcp.syn() || tcp.ack() {
                            return true;
                        }
                        let tuple = Tuple {
                            guest: SocketAddrV4::new(src, tcp.src_port()),
                            dest: SocketAddrV4::new(dst, tcp.dst_port()),
                        };
                        matches!(self.tcp.on_syn(frame, tuple, &self.allow), Syn::ToStack)
                    }
                    // Echo requests to the gateway's own addresses; smoltcp's any-IP would
                    // answer them for every address, as if the world were reachable.
                    IpProtocol::Icmp => dst == GATEWAY || dst == DNS,
                    _ => false,
                }
            }
            _ => false,
        }
    }

    /// A DNS query from the sandbox: looked up when the allow-list names the name, answered
    /// NXDOMAIN (and recorded) when not.
    fn dns_query(&mut self, query: &[u8], guest: SocketAddrV4) {
        let Some(question) = dns::parse_query(query) else {
            return self.send_dns(&dns::format_error(query), guest);
        };
        let ports = self.allow.ports_for_name(&question.name);
        if ports.is_empty() {
            tracing::info!(
                target: "cloister::net::nat",
                event = "refused",
                protocol = "dns",
                name = %question.name,
                "refused: the name is not on the allow-list"
            );
            let reply = dns::no_such_name(query, &question);
            return self.send_dns(&reply, guest);
        }
        self.dns.ask(query, question, guest, ports);
    }

    /// Collects the finished lookups: their addresses become reachable, and the answers go out.
    fn dns_answers(&mut self) {
        while let Some(answered) = self.dns.next() {
            for addr in &answered.addrs {
                self.allow.learn(*addr, &answered.ports);
            }
            self.send_dns(&answered.reply, answered.guest);
        }
    }

    fn send_dns(&mut self, reply: &[u8], guest: SocketAddrV4) {
        let out = self.dev.out();
        let room = reply::udp_payload(out);
        let len = reply.len().min(room.len());
        room[..len].copy_from_slice(&reply[..len]);
        reply::send_udp(out, SocketAddrV4::new(DNS, 53), guest, len);
    }
}

/// A seed for smoltcp's initial sequence numbers and ports: unpredictable to the sandbox.
fn seed() -> u64 {
    let mut seed = [0u8; 8];
    // SAFETY: getrandom into a buffer of the length given.
    unsafe { libc::getrandom(seed.as_mut_ptr().cast(), 8, 0) };
    u64::from_ne_bytes(seed)
}
