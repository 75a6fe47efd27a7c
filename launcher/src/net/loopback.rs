//! Bringing up the loopback interface of a new network namespace.
//!
//! A new network namespace has one interface, `lo`, and it is down: 127.0.0.1 and ::1 are not
//! even assigned until it comes up (the kernel adds both when it does). One `SIOCSIFFLAGS` on any
//! socket made inside the namespace is enough; rtnetlink would need a message to build and an
//! answer to read for the same effect. See netdevice(7).

/// Sets `IFF_UP` on `lo` in the caller's network namespace. On failure returns the errno, which
/// is also left in `errno` for a forked child's error report.
///
/// Async-signal-safe (three system calls on a stack buffer, no allocation): it runs in the
/// sandbox's first process between fork and exec, and in `cloister doctor`'s probe child.
pub fn bring_up_loopback() -> Result<(), i32> {
    // SAFETY: socket, ioctl and close on a descriptor made here and on a zeroed `ifreq` that
    // lives on this stack for the calls; the ioctls read and write only that structure.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(*libc::__errno_location());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo") {
            *dst = *src as libc::c_char;
        }
        let mut ok = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) == 0;
        if ok {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            ok = libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) == 0;
        }
        // close must not overwrite the errno the caller reports.
        let errno = *libc::__errno_location();
        libc::close(fd);
        *libc::__errno_location() = errno;
        if ok {
            Ok(())
        } else {
            Err(errno)
        }
    }
}
