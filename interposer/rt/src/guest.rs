//! The program's memory and the host, as the kernel sees them from inside the process.
//!
//! Guest memory is reached with `process_vm_readv`/`process_vm_writev` on the process itself:
//! the host kernel checks every page, so a bad pointer from the program comes back as
//! `EFAULT` and never faults inside the runtime.

use core::sync::atomic::{AtomicI32, Ordering};
use kernel_host::errno::{Errno, KResult};
use kernel_host::{GuestMemory, Host};

use crate::sys::{self, nr};

/// This process's id, for `process_vm_*`; refreshed in a forked child.
static PID: AtomicI32 = AtomicI32::new(0);

/// Reads the process id from the host again (at start-up and in a forked child).
pub fn refresh_pid() {
    PID.store(sys::call(nr::GETPID, &[]) as i32, Ordering::Relaxed);
}

/// The process's own memory.
pub struct SelfMemory;

fn transfer(nr: u32, addr: u64, local: *const u8, len: usize) -> KResult<usize> {
    if len == 0 {
        return Ok(0);
    }
    let local_iov = [local as u64, len as u64];
    let remote_iov = [addr, len as u64];
    let pid = PID.load(Ordering::Relaxed) as u64;
    let r = sys::call(
        nr,
        &[
            pid,
            local_iov.as_ptr() as u64,
            1,
            remote_iov.as_ptr() as u64,
            1,
            0,
        ],
    );
    if r < 0 {
        Err(Errno::from_ret(r).unwrap_or(Errno::EFAULT)).map_err(|e| {
            if e == Errno::ESRCH {
                Errno::EFAULT
            } else {
                e
            }
        })
    } else {
        Ok(r as usize)
    }
}

impl GuestMemory for SelfMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> KResult<()> {
        match transfer(nr::PROCESS_VM_READV, addr, buf.as_mut_ptr(), buf.len())? {
            n if n == buf.len() => Ok(()),
            _ => Err(Errno::EFAULT),
        }
    }

    fn write(&self, addr: u64, data: &[u8]) -> KResult<()> {
        match transfer(nr::PROCESS_VM_WRITEV, addr, data.as_ptr(), data.len())? {
            n if n == data.len() => Ok(()),
            _ => Err(Errno::EFAULT),
        }
    }

    fn read_cstr(&self, addr: u64, buf: &mut [u8]) -> KResult<usize> {
        let mut done = 0;
        while done < buf.len() {
            // Never read past the end of a page in one go: the next page may be unmapped
            // although the string ends before it.
            let page_left = 4096 - ((addr as usize + done) & 4095);
            let want = page_left.min(buf.len() - done);
            let got = transfer(
                nr::PROCESS_VM_READV,
                addr + done as u64,
                buf[done..].as_mut_ptr(),
                want,
            )?;
            if got == 0 {
                return Err(Errno::EFAULT);
            }
            if let Some(nul) = buf[done..done + got].iter().position(|&b| b == 0) {
                return Ok(done + nul);
            }
            done += got;
        }
        Err(Errno::ENAMETOOLONG)
    }
}

/// Host calls made directly from the runtime's code.
pub struct RawHost;

impl Host for RawHost {
    fn syscall(&self, nr: u32, args: [u64; 6]) -> i64 {
        sys::syscall(nr, args)
    }
}
