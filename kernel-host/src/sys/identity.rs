//! `uname`, `sethostname`.

use super::ret;
use crate::abi::UTSNAME_SIZE;
use crate::errno::{Errno, KResult};
use crate::kernel::Kernel;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;
use syscalls::Sysno;

/// `uname(buf)`: the host's answer with the sandbox's identity written over it.
pub fn uname(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    ret((|| -> KResult<i64> {
        let mut uts = match k.identity.cached_host_uts() {
            Some(uts) => uts,
            None => {
                let mut uts = [0u8; UTSNAME_SIZE];
                Errno::check(task.host_call(Sysno::uname, [uts.as_mut_ptr() as u64, 0, 0, 0, 0, 0]))?;
                k.identity.cache_host_uts(uts);
                uts
            }
        };
        k.identity.patch_utsname(&mut uts);
        task.mem.write(call.args[0], &uts)?;
        Ok(0)
    })())
}

/// `sethostname`: the sandbox's name is set by its policy, not by the program.
pub fn sethostname(_k: &Kernel, _task: &mut TaskCtx<'_>, _call: &Syscall) -> Disposition {
    Disposition::Return(Errno::EPERM.ret())
}
