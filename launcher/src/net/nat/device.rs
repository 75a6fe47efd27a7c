//! [`TapDevice`]: the sandbox's TAP device as smoltcp's `Device`, with the frames the engine read
//! and chose to hand to smoltcp waiting in a fixed set of buffers.
//!
//! The engine reads frames itself (it looks at each one before smoltcp does), so `receive` only
//! hands out what the engine queued; `transmit` writes straight to the TAP device from one
//! buffer. Nothing here allocates after [`TapDevice::new`].
//!
//! Every frame on this device starts with a `virtio_net_hdr` ([`VNET_HDR`] bytes; the device is
//! made with `IFF_VNET_HDR` and `TUN_F_CSUM`). Both ways it saves a pass over every byte: the
//! sandbox's kernel sends TCP and UDP without computing their checksums (we never check them:
//! the frames come through memory), and the TCP segments smoltcp sends carry
//! `VIRTIO_NET_HDR_F_NEEDS_CSUM` with no checksum computed, which the sandbox's kernel takes as
//! checked for a packet it delivers locally, as it does on its loopback.
//!
//! Read first: the kernel's `include/uapi/linux/virtio_net.h` (`struct virtio_net_hdr`) and
//! Documentation/networking/checksum-offloads.rst.

use super::super::frame::{HEADER_LEN, MAX_FRAME, MTU};
use smoltcp::phy::{self, Checksum, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use std::os::fd::RawFd;

/// Frames read in one batch at most, before smoltcp sees them.
pub const BATCH: usize = 32;

/// The `virtio_net_hdr` before every frame: flags, GSO type, header length, GSO size, checksum
/// start and offset.
pub const VNET_HDR: usize = 10;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`.
const NEEDS_CSUM: u8 = 1;

/// Where a TCP header keeps its checksum.
const TCP_CHECKSUM_OFFSET: u16 = 16;

/// The TAP device and its buffers.
pub struct TapDevice {
    fd: RawFd,
    slots: Vec<Box<[u8]>>,
    lens: [usize; BATCH],
    /// Slots `next..queued` hold frames for smoltcp.
    next: usize,
    queued: usize,
    out: Out,
}

/// The way to the sandbox: the TAP device and a buffer to build one frame in.
pub struct Out {
    fd: RawFd,
    tx: Box<[u8]>,
}

impl Out {
    /// The buffer a frame is built in before [`Out::send`].
    pub fn buffer(&mut self) -> &mut [u8] {
        &mut self.tx[VNET_HDR..]
    }

    /// Writes the first `len` bytes of the buffer to the sandbox, its checksums computed.
    pub fn send(&mut self, len: usize) {
        self.tx[..VNET_HDR].fill(0);
        write_frame(self.fd, &self.tx[..VNET_HDR + len]);
    }
}

impl TapDevice {
    /// The device over `fd` (non-blocking), which the caller keeps open.
    pub fn new(fd: RawFd) -> TapDevice {
        TapDevice {
            fd,
            slots: (0..BATCH).map(|_| vec![0u8; VNET_HDR + MAX_FRAME].into_boxed_slice()).collect(),
            lens: [0; BATCH],
            next: 0,
            queued: 0,
            out: Out { fd, tx: vec![0u8; VNET_HDR + MAX_FRAME].into_boxed_slice() },
        }
    }

    /// The TAP device.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Reads one frame into the next free slot: its length, or `None` when there is nothing to
    /// read or no slot is free. The frame stays there only if [`TapDevice::keep`] is called.
    pub fn read(&mut self) -> Option<usize> {
        let slot = self.slots.get_mut(self.queued)?;
        // SAFETY: reading into our own buffer, at most its length.
        let n = unsafe { libc::read(self.fd, slot.as_mut_ptr().cast(), slot.len()) };
        (n > VNET_HDR as isize).then(|| n as usize - VNET_HDR)
    }

    /// The frame [`TapDevice::read`] just read, and the way to answer it.
    pub fn last(&mut self, len: usize) -> (&[u8], &mut Out) {
        (&self.slots[self.queued][VNET_HDR..VNET_HDR + len], &mut self.out)
    }

    /// The way to the sandbox.
    pub fn out(&mut self) -> &mut Out {
        &mut self.out
    }

    /// Queues the frame [`TapDevice::read`] just read for smoltcp.
    pub fn keep(&mut self, len: usize) {
        self.lens[self.queued] = len;
        self.queued += 1;
    }

    /// Queues a copy of `frame` for smoltcp (a SYN the engine held); false when no slot is free.
    pub fn inject(&mut self, frame: &[u8]) -> bool {
        let Some(slot) = self.slots.get_mut(self.queued) else { return false };
        slot[VNET_HDR..VNET_HDR + frame.len()].copy_from_slice(frame);
        self.keep(frame.len());
        true
    }

    /// Whether a slot is free for [`TapDevice::read`].
    pub fn has_room(&self) -> bool {
        self.queued < BATCH
    }
}

/// Writes one frame to the TAP device. A TAP write does not block; the kernel drops the frame
/// when the sandbox's backlog is full, as a link would, and TCP sends it again.
fn write_frame(fd: RawFd, frame: &[u8]) {
    // SAFETY: writing from our own buffer.
    unsafe { libc::write(fd, frame.as_ptr().cast(), frame.len()) };
}

/// Where the TCP header of an IPv4 TCP frame starts; `None` for any other frame.
fn tcp_start(frame: &[u8]) -> Option<u16> {
    let ip = frame.get(HEADER_LEN..)?;
    let ipv4 = frame.get(12..14)? == [0x08, 0x00] && ip.first()? >> 4 == 4;
    (ipv4 && *ip.get(9)? == 6).then(|| (HEADER_LEN + usize::from(ip[0] & 0xf) * 4) as u16)
}

/// A frame the engine queued, for smoltcp to read.
pub struct Rx<'a>(&'a [u8]);

/// Room for one frame to the sandbox.
pub struct Tx<'a> {
    fd: RawFd,
    buf: &'a mut [u8],
}

impl phy::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let result = f(&mut self.buf[VNET_HDR..VNET_HDR + len]);
        let (header, frame) = self.buf.split_at_mut(VNET_HDR);
        header.fill(0);
        if let Some(start) = tcp_start(&frame[..len]) {
            // smoltcp left the TCP checksum out (see `capabilities`): the kernel takes the
            // segment as checked, and would finish the sum if it ever sent it on.
            header[0] = NEEDS_CSUM;
            header[6..8].copy_from_slice(&start.to_le_bytes());
            header[8..10].copy_from_slice(&TCP_CHECKSUM_OFFSET.to_le_bytes());
        }
        write_frame(self.fd, &self.buf[..VNET_HDR + len]);
        result
    }
}

impl phy::Device for TapDevice {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        if self.next == self.queued {
            self.next = 0;
            self.queued = 0;
            return None;
        }
        let i = self.next;
        self.next += 1;
        let rx = Rx(&self.slots[i][VNET_HDR..VNET_HDR + self.lens[i]]);
        Some((rx, Tx { fd: self.fd, buf: &mut self.out.tx }))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx<'_>> {
        Some(Tx { fd: self.fd, buf: &mut self.out.tx })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU as usize + HEADER_LEN;
        // The frames come from the sandbox's kernel through memory, never a wire: checking
        // their sums again would cost a pass over every byte for nothing (and TCP's and UDP's
        // are left to the device: not there at all). Ours are computed, but for TCP's, which
        // the frame's header says is offloaded (see `Tx::consume`).
        let mut checksum = ChecksumCapabilities::default();
        checksum.ipv4 = Checksum::Tx;
        checksum.tcp = Checksum::None;
        checksum.udp = Checksum::Tx;
        checksum.icmpv4 = Checksum::Tx;
        caps.checksum = checksum;
        caps
    }
}
