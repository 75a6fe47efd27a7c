//! Handing a descriptor from the sandbox's first process to the supervisor over a unix socket
//! (`SCM_RIGHTS`): the TAP device a wire or NAT needs, the private layer's tmpfs. The sending
//! side runs between fork and exec, so it is async-signal-safe. See unix(7) and cmsg(3).

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// A control message with one descriptor (`CMSG_SPACE(sizeof(int))` bytes).
#[repr(C)]
struct OneFd {
    header: libc::cmsghdr,
    fd: RawFd,
    pad: u32,
}

const _: () = assert!(std::mem::size_of::<OneFd>() == 24 && std::mem::size_of::<libc::cmsghdr>() == 16);

/// Sends `fd` over `channel`, with one byte of data (a message with no data may not carry
/// control messages on a stream or sequenced socket). Returns whether it went.
///
/// # Safety
/// Async-signal-safe; `channel` must be a connected unix socket.
pub unsafe fn send(channel: RawFd, fd: RawFd) -> bool {
    let mut byte = [b'F'];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    let mut control = OneFd {
        header: libc::cmsghdr {
            // CMSG_LEN(sizeof(int)): the header and the descriptor, without the padding.
            cmsg_len: std::mem::size_of::<libc::cmsghdr>() + std::mem::size_of::<RawFd>(),
            cmsg_level: libc::SOL_SOCKET,
            cmsg_type: libc::SCM_RIGHTS,
        },
        fd,
        pad: 0,
    };
    // SAFETY: `msghdr` is plain data for which all zeroes is a valid value (no name).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = (&mut control as *mut OneFd).cast();
    msg.msg_controllen = std::mem::size_of::<OneFd>();
    // SAFETY: the message points at `iov`, `byte` and `control`, which outlive the call.
    unsafe { libc::sendmsg(channel, &msg, libc::MSG_NOSIGNAL) == 1 }
}

/// In the supervisor: the descriptor the sandbox's first process sent over `channel`
/// (close-on-exec here too), without waiting. `None` when nothing came.
pub fn receive(channel: RawFd) -> Option<OwnedFd> {
    let mut byte = [0u8];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    // SAFETY: plain data for which all zeroes is a valid value.
    let mut control: OneFd = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = (&mut control as *mut OneFd).cast();
    msg.msg_controllen = std::mem::size_of::<OneFd>();
    let flags = libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC;
    // SAFETY: the message points at buffers that outlive the call, sized as it says.
    let n = unsafe { libc::recvmsg(channel, &mut msg, flags) };
    let carried = n == 1
        && msg.msg_controllen >= std::mem::size_of::<libc::cmsghdr>() + std::mem::size_of::<RawFd>()
        && control.header.cmsg_level == libc::SOL_SOCKET
        && control.header.cmsg_type == libc::SCM_RIGHTS;
    // SAFETY: the kernel installed this descriptor for us with the message; nothing else owns it.
    carried.then(|| unsafe { OwnedFd::from_raw_fd(control.fd) })
}
