//! The sandbox's end of a wire, of the NAT gateway or of a host TAP device: a TAP device named `eth0` in its network
//! namespace, made and configured by the sandbox's first process, whose descriptor goes to the
//! supervisor. Behind a gateway (`--net nat`) the device also gets the default route.
//!
//! The first process has `CAP_NET_ADMIN` in the namespace it just made (through its user
//! namespace when not root), so it can do what needs it: `TUNSETIFF` on `/dev/net/tun`, and the
//! `SIOCSIF*` ioctls that set the MAC address, the MTU, the IPv4 address and netmask and bring
//! the device up (the kernel then adds the subnet's route, and an IPv6 link-local address).
//! The program never holds the descriptor: it is close-on-exec, and closed as soon as it was
//! sent over the supervisor's socket (`SCM_RIGHTS`); the supervisor then moves the frames
//! ([`super::relay`]). Since `CAP_NET_ADMIN` leaves the bounding set before exec, the program
//! cannot change the interface either.
//!
//! Everything here that runs in the child is async-signal-safe: system calls on structures
//! prepared before the fork ([`TapConfig`]).
//!
//! Read first: the kernel's Documentation/networking/tuntap.rst, netdevice(7), unix(7)
//! (`SCM_RIGHTS`), cmsg(3).

use super::frame::{self, MTU};
use policies::InterfaceAddress;
use std::os::fd::RawFd;

/// The interface's name inside the sandbox.
pub const IFNAME: &[u8] = b"eth0";

/// Which part of making the TAP device failed; `errno` says why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapFailure {
    /// Opening `/dev/net/tun` or `TUNSETIFF`.
    Create,
    /// Setting its MAC address, MTU or IPv4 address, or bringing it up.
    Configure,
    /// Sending its descriptor to the supervisor.
    HandOver,
}

/// The device to make, prepared before the fork.
#[derive(Clone, Copy, Debug)]
pub struct TapConfig {
    mac: frame::Mac,
    ip: libc::in_addr,
    netmask: libc::in_addr,
    /// The interface's MTU: the wire's ([`MTU`]), or a host TAP device's.
    mtu: u32,
    /// The default route's gateway (`--net nat`); a wire has none.
    gateway: Option<libc::in_addr>,
    /// Frames carry a `virtio_net_hdr` and the device offloads checksums (`--net nat`): the
    /// sandbox's kernel then leaves TCP and UDP checksums to the device, and takes ours as
    /// already checked (see `super::nat::device`). A wire's frames are plain Ethernet.
    offload: bool,
}

impl TapConfig {
    /// The device for a sandbox at `address`.
    pub fn new(address: InterfaceAddress) -> TapConfig {
        let in_addr = |ip: std::net::Ipv4Addr| libc::in_addr { s_addr: u32::from(ip).to_be() };
        TapConfig {
            mac: frame::mac_for(address),
            ip: in_addr(address.ip),
            netmask: in_addr(address.netmask()),
            mtu: MTU,
            gateway: None,
            offload: false,
        }
    }

    /// The sandbox's address on the device.
    pub fn address(&self) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::from(u32::from_be(self.ip.s_addr))
    }

    /// The device for a sandbox at `address` whose default route goes through `gateway`.
    pub fn with_gateway(address: InterfaceAddress, gateway: std::net::Ipv4Addr) -> TapConfig {
        let gateway = Some(libc::in_addr { s_addr: u32::from(gateway).to_be() });
        TapConfig { gateway, offload: true, ..TapConfig::new(address) }
    }

    /// The same device with another MTU (that of the host TAP device it is relayed to).
    pub fn with_mtu(self, mtu: u32) -> TapConfig {
        TapConfig { mtu, ..self }
    }

    /// Makes the device in the caller's network namespace, configures it, brings it up and
    /// sends its descriptor over `channel`; the caller keeps no copy. On failure `errno` says
    /// why.
    ///
    /// # Safety
    /// Async-signal-safe and allocation-free, for the sandbox's first process between fork and
    /// exec; `channel` must be a connected unix socket.
    pub unsafe fn create_and_send(&self, channel: RawFd) -> Result<(), TapFailure> {
        // SAFETY: open, ioctl, sendmsg and close on descriptors made here and on structures
        // that live on this stack for the calls.
        unsafe {
            let tap = libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
            if tap < 0 {
                return Err(TapFailure::Create);
            }
            let send = || if crate::fdpass::send(channel, tap) { Ok(()) } else { Err(TapFailure::HandOver) };
            let result = self.configure(tap).and_then(|()| send());
            close_keeping_errno(tap);
            result
        }
    }

    /// `TUNSETIFF` on `tap`, then the interface's settings through an `AF_INET` socket.
    ///
    /// # Safety
    /// As [`TapConfig::create_and_send`]; `tap` is an open `/dev/net/tun`.
    unsafe fn configure(&self, tap: RawFd) -> Result<(), TapFailure> {
        // SAFETY: ioctls on descriptors this process owns, each given a zeroed `ifreq` on this
        // stack with the union member that request reads set.
        unsafe {
            let mut req = ifreq();
            let vnet = if self.offload { libc::IFF_VNET_HDR } else { 0 };
            req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | vnet) as libc::c_short;
            if libc::ioctl(tap, libc::TUNSETIFF, &req) != 0 {
                return Err(TapFailure::Create);
            }
            if self.offload && libc::ioctl(tap, libc::TUNSETOFFLOAD, libc::TUN_F_CSUM as libc::c_ulong) != 0 {
                return Err(TapFailure::Create);
            }
            let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if sock < 0 {
                return Err(TapFailure::Configure);
            }
            let mut ok = true;
            let mut req = ifreq();
            req.ifr_ifru.ifru_hwaddr.sa_family = libc::ARPHRD_ETHER;
            for (dst, src) in req.ifr_ifru.ifru_hwaddr.sa_data.iter_mut().zip(self.mac) {
                *dst = src as libc::c_char;
            }
            ok &= libc::ioctl(sock, libc::SIOCSIFHWADDR, &req) == 0;
            let mut req = ifreq();
            req.ifr_ifru.ifru_mtu = self.mtu as libc::c_int;
            ok = ok && libc::ioctl(sock, libc::SIOCSIFMTU, &req) == 0;
            for (request, addr) in [(libc::SIOCSIFADDR, self.ip), (libc::SIOCSIFNETMASK, self.netmask)] {
                let mut req = ifreq();
                let sin = &mut req.ifr_ifru as *mut _ as *mut libc::sockaddr_in;
                (*sin).sin_family = libc::AF_INET as libc::sa_family_t;
                (*sin).sin_addr = addr;
                ok = ok && libc::ioctl(sock, request, &req) == 0;
            }
            let mut req = ifreq();
            ok = ok && libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) == 0;
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            ok = ok && libc::ioctl(sock, libc::SIOCSIFFLAGS, &req) == 0;
            if let Some(gateway) = self.gateway {
                ok = ok && default_route(sock, gateway);
            }
            close_keeping_errno(sock);
            if ok {
                Ok(())
            } else {
                Err(TapFailure::Configure)
            }
        }
    }
}

/// Adds the default route through `gateway` on [`IFNAME`] (`SIOCADDRT`, as `route add default
/// gw GATEWAY eth0` does).
///
/// # Safety
/// Async-signal-safe; `sock` is an open `AF_INET` socket.
unsafe fn default_route(sock: RawFd, gateway: libc::in_addr) -> bool {
    let mut name = [0 as libc::c_char; 8];
    for (dst, src) in name.iter_mut().zip(IFNAME) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: `rtentry` is plain data for which all zeroes is a valid value (a null device).
    let mut route: libc::rtentry = unsafe { std::mem::zeroed() };
    let sin = |addr: libc::in_addr| {
        // SAFETY: as above, for `sockaddr`.
        let mut sa: libc::sockaddr = unsafe { std::mem::zeroed() };
        let sin = &mut sa as *mut libc::sockaddr as *mut libc::sockaddr_in;
        // SAFETY: `sockaddr_in` is no larger than `sockaddr`, and both are plain data.
        unsafe {
            (*sin).sin_family = libc::AF_INET as libc::sa_family_t;
            (*sin).sin_addr = addr;
        }
        sa
    };
    route.rt_dst = sin(libc::in_addr { s_addr: 0 });
    route.rt_genmask = sin(libc::in_addr { s_addr: 0 });
    route.rt_gateway = sin(gateway);
    route.rt_flags = libc::RTF_UP | libc::RTF_GATEWAY;
    route.rt_dev = name.as_mut_ptr();
    // SAFETY: the route and the name it points at live on this stack across the call.
    unsafe { libc::ioctl(sock, libc::SIOCADDRT, &route) == 0 }
}

/// A zeroed `ifreq` naming [`IFNAME`].
fn ifreq() -> libc::ifreq {
    // SAFETY: `ifreq` is plain data for which all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(IFNAME) {
        *dst = *src as libc::c_char;
    }
    req
}

/// Closes `fd` without changing `errno`, which the caller reports.
///
/// # Safety
/// Async-signal-safe; `fd` must be owned by the caller.
unsafe fn close_keeping_errno(fd: RawFd) {
    // SAFETY: errno is this thread's; close on a descriptor the caller owns.
    unsafe {
        let errno = *libc::__errno_location();
        libc::close(fd);
        *libc::__errno_location() = errno;
    }
}
