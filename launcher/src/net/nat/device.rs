//! [`TapDevice`]: the sandbox's TAP device as smoltcp's `Device`, with the frames the engine read
//! and chose to hand to smoltcp waiting in a fixed set of buffers.
//!
//! The engine reads frames itself (it looks at each one before smoltcp does), so `receive` only
//! hands out what the engine queued; `transmit` writes straight to the TAP device from one
//! buffer. Nothing here allocates after [`TapDevice::new`].

use super::super::frame::{MAX_FRAME, MTU};
use smoltcp::phy::{self, Checksum, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use std::os::fd::RawFd;

/// Frames read in one batch at most, before smoltcp sees them.
pub const BATCH: usize = 32;

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
        &mut self.tx
    }

    /// Writes the first `len` bytes of the buffer to the sandbox.
    pub fn send(&mut self, len: usize) {
        write_frame(self.fd, &self.tx[..len]);
    }
}

impl TapDevice {
    /// The device over `fd` (non-blocking), which the caller keeps open.
    pub fn new(fd: RawFd) -> TapDevice {
        TapDevice {
            fd,
            slots: (0..BATCH).map(|_| vec![0u8; MAX_FRAME].into_boxed_slice()).collect(),
            lens: [0; BATCH],
            next: 0,
            queued: 0,
            out: Out { fd, tx: vec![0u8; MAX_FRAME].into_boxed_slice() },
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
        (n > 0).then_some(n as usize)
    }

    /// The frame [`TapDevice::read`] just read, and the way to answer it.
    pub fn last(&mut self, len: usize) -> (&[u8], &mut Out) {
        (&self.slots[self.queued][..len], &mut self.out)
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
        slot[..frame.len()].copy_from_slice(frame);
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
        let result = f(&mut self.buf[..len]);
        write_frame(self.fd, &self.buf[..len]);
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
        let rx = Rx(&self.slots[i][..self.lens[i]]);
        Some((rx, Tx { fd: self.fd, buf: &mut self.out.tx }))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx<'_>> {
        Some(Tx { fd: self.fd, buf: &mut self.out.tx })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU as usize + super::super::frame::HEADER_LEN;
        // The frames come from the sandbox's kernel through memory, never a wire: checking
        // their sums again would cost a pass over every byte for nothing. Ours are computed,
        // since the sandbox's kernel checks them.
        let mut checksum = ChecksumCapabilities::default();
        checksum.ipv4 = Checksum::Tx;
        checksum.tcp = Checksum::Tx;
        checksum.udp = Checksum::Tx;
        checksum.icmpv4 = Checksum::Tx;
        caps.checksum = checksum;
        caps
    }
}
