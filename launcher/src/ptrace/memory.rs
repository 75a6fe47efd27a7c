//! The tracee's memory, for the kernel: `process_vm_readv`/`process_vm_writev`, which fail
//! with `EFAULT` on an unmapped or protected address instead of faulting anything. The
//! writes go through the tracee's page protections, as its own stores would (scratch data is
//! written to its stack, which is writable).

use kernel_host::errno::KResult;
use kernel_host::{Errno, GuestMemory};

/// The memory of one traced thread's process.
pub struct TraceeMemory {
    /// Any thread of the process: they share the address space.
    pub tid: libc::pid_t,
}

impl TraceeMemory {
    fn transfer(&self, addr: u64, local: *mut u8, len: usize, write: bool) -> KResult<usize> {
        if len == 0 {
            return Ok(0);
        }
        let local = libc::iovec { iov_base: local.cast(), iov_len: len };
        let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: len };
        // SAFETY: `local` covers `len` bytes of a buffer the caller lends for the call (read
        // from when writing, written to when reading); the remote address is only used by the
        // kernel, which checks it against the tracee's mappings.
        let n = unsafe {
            if write {
                libc::process_vm_writev(self.tid, &local, 1, &remote, 1, 0)
            } else {
                libc::process_vm_readv(self.tid, &local, 1, &remote, 1, 0)
            }
        };
        if n <= 0 {
            return Err(Errno::EFAULT);
        }
        Ok(n as usize)
    }
}

impl GuestMemory for TraceeMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> KResult<()> {
        match self.transfer(addr, buf.as_mut_ptr(), buf.len(), false)? {
            n if n == buf.len() || buf.is_empty() => Ok(()),
            _ => Err(Errno::EFAULT),
        }
    }

    fn write(&self, addr: u64, data: &[u8]) -> KResult<()> {
        match self.transfer(addr, data.as_ptr().cast_mut(), data.len(), true)? {
            n if n == data.len() || data.is_empty() => Ok(()),
            _ => Err(Errno::EFAULT),
        }
    }

    fn read_cstr(&self, addr: u64, buf: &mut [u8]) -> KResult<usize> {
        // Page by page: a string that ends just before an unmapped page is still readable.
        let mut done = 0;
        while done < buf.len() {
            let at = addr.checked_add(done as u64).ok_or(Errno::EFAULT)?;
            let to_page_end = (4096 - (at % 4096)) as usize;
            let want = to_page_end.min(buf.len() - done);
            let got = self.transfer(at, buf[done..].as_mut_ptr(), want, false)?;
            if let Some(nul) = buf[done..done + got].iter().position(|&b| b == 0) {
                return Ok(done + nul);
            }
            done += got;
        }
        Err(Errno::ENAMETOOLONG)
    }
}
