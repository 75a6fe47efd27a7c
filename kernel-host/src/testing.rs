//! Fakes for unit tests: a guest memory that is one byte range at a fixed address, and a host
//! that answers a handful of calls from canned values.

use crate::errno::{Errno, KResult};
use crate::process::ProcessImage;
use crate::task::{GuestMemory, Host};
use core::cell::RefCell;
use std::vec::Vec;

extern crate std;

/// Guest memory: `bytes` mapped at `base`; everything else faults.
pub struct FakeMem {
    /// The guest address of the first byte.
    pub base: u64,
    /// The memory's contents.
    pub bytes: RefCell<Vec<u8>>,
}

impl FakeMem {
    /// `len` zero bytes at `base`.
    pub fn new(base: u64, len: usize) -> Self {
        FakeMem { base, bytes: RefCell::new(std::vec![0; len]) }
    }

    fn range(&self, addr: u64, len: usize) -> KResult<core::ops::Range<usize>> {
        let start = addr.checked_sub(self.base).ok_or(Errno::EFAULT)? as usize;
        let end = start.checked_add(len).ok_or(Errno::EFAULT)?;
        if end > self.bytes.borrow().len() {
            return Err(Errno::EFAULT);
        }
        Ok(start..end)
    }

    /// Writes `data` at `addr`; panics if it does not fit.
    pub fn put(&self, addr: u64, data: &[u8]) {
        self.write(addr, data).unwrap();
    }

    /// The `len` bytes at `addr`; panics if they are not there.
    pub fn get(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = std::vec![0; len];
        self.read(addr, &mut v).unwrap();
        v
    }
}

impl GuestMemory for FakeMem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> KResult<()> {
        let r = self.range(addr, buf.len())?;
        buf.copy_from_slice(&self.bytes.borrow()[r]);
        Ok(())
    }

    fn write(&self, addr: u64, data: &[u8]) -> KResult<()> {
        let r = self.range(addr, data.len())?;
        self.bytes.borrow_mut()[r].copy_from_slice(data);
        Ok(())
    }

    fn read_cstr(&self, addr: u64, buf: &mut [u8]) -> KResult<usize> {
        for (i, slot) in buf.iter_mut().enumerate() {
            let mut b = [0u8];
            self.read(addr.checked_add(i as u64).ok_or(Errno::EFAULT)?, &mut b)?;
            if b[0] == 0 {
                return Ok(i);
            }
            *slot = b[0];
        }
        Err(Errno::ENAMETOOLONG)
    }
}

/// A host that records calls and answers with `answer`.
pub struct FakeHost<F: Fn(u32, [u64; 6]) -> i64> {
    /// What a call returns, from its number and arguments.
    pub answer: F,
    /// The calls made so far.
    pub calls: RefCell<Vec<(u32, [u64; 6])>>,
}

impl<F: Fn(u32, [u64; 6]) -> i64> FakeHost<F> {
    /// A host that answers with `answer` and has seen no call.
    pub fn new(answer: F) -> Self {
        FakeHost { answer, calls: RefCell::new(Vec::new()) }
    }
}

impl<F: Fn(u32, [u64; 6]) -> i64> Host for FakeHost<F> {
    fn syscall(&self, nr: u32, args: [u64; 6]) -> i64 {
        self.calls.borrow_mut().push((nr, args));
        (self.answer)(nr, args)
    }
}

/// The real host: the calls run on this machine (for tests of code that works on real files
/// in a directory of its own).
pub struct RealHost;

impl Host for RealHost {
    fn syscall(&self, nr: u32, a: [u64; 6]) -> i64 {
        // SAFETY: the tests pass pointers to live buffers of the sizes they name.
        unsafe {
            syscalls::raw::syscall6(
                nr as usize,
                a[0] as usize,
                a[1] as usize,
                a[2] as usize,
                a[3] as usize,
                a[4] as usize,
                a[5] as usize,
            ) as i64
        }
    }
}

/// The image of a made-up program, `/usr/bin/prog -x`, for a kernel built in a test.
pub fn image() -> ProcessImage {
    ProcessImage {
        exe: b"/usr/bin/prog".to_vec(),
        cmdline: b"prog\0-x\0".to_vec(),
        auxv: Vec::new(),
        environ_area: None,
        brk_start: 0x60_0000,
    }
}
