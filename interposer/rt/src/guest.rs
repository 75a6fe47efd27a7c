//! The program's memory and the host, as the kernel sees them from inside the process.
//!
//! Guest memory is the runtime's own address space, reached with copies that turn a fault
//! into `EFAULT` ([`crate::fault`]): a bad pointer from the program never crashes the
//! runtime, and a good one costs a plain `memcpy`.

use kernel_host::errno::{Errno, KResult};
use kernel_host::{GuestMemory, Host};

use crate::{fault, sys};

/// The process's own memory, reached with the fault-safe copies of [`crate::fault`].
pub struct SelfMemory;

impl GuestMemory for SelfMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> KResult<()> {
        if fault::copy(buf.as_mut_ptr(), addr as *const u8, buf.len()) {
            Ok(())
        } else {
            Err(Errno::EFAULT)
        }
    }

    fn write(&self, addr: u64, data: &[u8]) -> KResult<()> {
        if fault::copy(addr as *mut u8, data.as_ptr(), data.len()) {
            Ok(())
        } else {
            Err(Errno::EFAULT)
        }
    }

    fn read_cstr(&self, addr: u64, buf: &mut [u8]) -> KResult<usize> {
        match fault::copy_cstr(buf.as_mut_ptr(), addr as *const u8, buf.len()) {
            None => Err(Errno::EFAULT),
            Some(n) if n == buf.len() => Err(Errno::ENAMETOOLONG),
            Some(n) => Ok(n),
        }
    }
}

/// Host calls made directly from the runtime's code.
pub struct RawHost;

impl Host for RawHost {
    fn syscall(&self, nr: u32, args: [u64; 6]) -> i64 {
        sys::syscall(nr, args)
    }

    fn runtime_loads_images(&self) -> bool {
        true
    }
}
