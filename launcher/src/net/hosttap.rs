//! The supervisor's end of `--net tap:IFNAME`: an existing TAP device of the host (or of a network
//! namespace the user made), opened before the sandbox starts. The sandbox gets an `eth0` of its
//! own as on a wire ([`super::tap`]), and the wire's relay ([`super::relay`]) moves the frames
//! between the two devices, so whatever the host does with IFNAME (a bridge, routes, a VM's
//! network) is the sandbox's network.
//!
//! Attaching never makes a device: the name must already be an interface of the supervisor's
//! network namespace, and still be the same one (same index) once attached, since `TUNSETIFF` on
//! a name that does not exist would make a new device. The kernel lets the device's owner (`ip
//! tuntap add IFNAME mode tap user UID`) or a holder of `CAP_NET_ADMIN` in its namespace attach;
//! a device without `multi_queue` takes one reader, so a device another program holds is busy.
//! The sandbox's `eth0` takes IFNAME's MTU, so that neither side sends frames the other drops.
//!
//! What this does not do: give the sandbox a default route (it has its subnet's, from `--ip`),
//! or change IFNAME in any way (its address, state and MTU are the host's business).
//!
//! Read first: the kernel's Documentation/networking/tuntap.rst, netdevice(7) (`SIOCGIFINDEX`,
//! `SIOCGIFMTU`), ip-tuntap(8).

use crate::failure::Failure;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// An open host TAP device, attached.
pub struct HostTap {
    fd: OwnedFd,
    name: String,
    mtu: u32,
}

impl HostTap {
    /// Attaches to the existing TAP device `name`. Fails (exit 125) with what to do when there is
    /// no such interface, it is not a TAP device, it is busy, or the caller may not attach.
    pub fn open(name: &str) -> Result<HostTap, Failure> {
        let fail = |why: String| Failure::Setup(format!("--net tap:{name}: {why}"));
        let make = || {
            format!(
                "make one first with `ip tuntap add {name} mode tap` (as root, or inside a network \
                 namespace you made, such as `unshare -rn`), and run cloister where it is"
            )
        };
        let not_allowed = |e: std::io::Error| {
            fail(format!(
                "you may not attach to it ({e}): run cloister as root (or with CAP_NET_ADMIN where \
                 the device lives), or make the device yours with `ip tuntap add {name} mode tap \
                 user {}` and /dev/net/tun open to you",
                // SAFETY: getuid cannot fail.
                unsafe { libc::getuid() }
            ))
        };
        let index = interface(name, libc::SIOCGIFINDEX)
            .map_err(|e| fail(format!("cannot ask about the interface ({e})")))?
            .ok_or_else(|| fail(format!("this network namespace has no interface {name}; {}", make())))?;
        // SAFETY: open makes a new descriptor or fails.
        let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
                return Err(not_allowed(e));
            }
            return Err(fail(format!("cannot open /dev/net/tun ({e}); load the tun module (modprobe tun)")));
        }
        // SAFETY: open returned a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: `ifreq` is plain data for which all zeroes is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        set_name(&mut req, name);
        req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF on our descriptor with an `ifreq` on this stack.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &req) } != 0 {
            let e = std::io::Error::last_os_error();
            let why = match e.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => return Err(not_allowed(e)),
                Some(libc::EINVAL) => {
                    format!(
                        "{name} is not a TAP device ({e}): name one made with `ip tuntap add NAME mode tap`"
                    )
                }
                Some(libc::EBUSY) => {
                    format!("another program holds {name} ({e}); stop it, or use another device")
                }
                _ => format!("cannot attach to it ({e})"),
            };
            return Err(fail(why));
        }
        // A device removed between the two looks would have been made anew by TUNSETIFF: this
        // one then goes when our descriptor closes, and the sandbox would be on nothing.
        if interface(name, libc::SIOCGIFINDEX).ok().flatten() != Some(index) {
            return Err(fail(format!("{name} went away while cloister attached to it; {}", make())));
        }
        let mtu = interface(name, libc::SIOCGIFMTU)
            .map_err(|e| fail(format!("cannot read its MTU ({e})")))?
            .and_then(|mtu| u32::try_from(mtu).ok())
            .ok_or_else(|| fail("it went away while cloister attached to it".into()))?;
        Ok(HostTap { fd, name: name.to_owned(), mtu })
    }

    /// The device's MTU, for the sandbox's `eth0`.
    pub fn mtu(&self) -> u32 {
        self.mtu
    }

    /// The device's name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The attached descriptor, for the relay.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

/// Asks about the interface `name` with `request` (`SIOCGIFINDEX` or `SIOCGIFMTU`): its index or
/// MTU, or `None` when the namespace has no such interface.
fn interface(name: &str, request: libc::c_ulong) -> std::io::Result<Option<i32>> {
    // SAFETY: socket makes a new descriptor or fails.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: socket returned a fresh descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    // SAFETY: as in `HostTap::open`.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    set_name(&mut req, name);
    // SAFETY: an ioctl that fills the `ifreq` on this stack.
    if unsafe { libc::ioctl(sock.as_raw_fd(), request, &mut req) } != 0 {
        let e = std::io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ENODEV) { Ok(None) } else { Err(e) };
    }
    // SAFETY: both requests fill the union's `int` member (`ifr_ifindex`, `ifr_mtu`), which
    // share its first four bytes.
    Ok(Some(unsafe { req.ifr_ifru.ifru_ifindex }))
}

/// Writes `name` into `req`, NUL-terminated; the policy's parser keeps names under 16 bytes.
fn set_name(req: &mut libc::ifreq, name: &str) {
    let room = req.ifr_name.len() - 1;
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes().take(room)) {
        *dst = src as libc::c_char;
    }
}
