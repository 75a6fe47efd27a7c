//! `getrandom`.

use super::ret;
use crate::errno::Errno;
use crate::kernel::Kernel;
use crate::syscall::{Disposition, Syscall};
use crate::task::TaskCtx;

/// Flags `getrandom` knows: `GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE`.
const GRND_KNOWN: u64 = 7;
/// Bytes generated and copied per step.
const CHUNK: usize = 256;

/// `getrandom(buf, len, flags)` from the seeded stream. A bad pointer after some bytes were
/// written returns the count written, as Linux does.
pub fn getrandom(k: &Kernel, task: &mut TaskCtx<'_>, call: &Syscall) -> Disposition {
    let [buf, len, flags, ..] = call.args;
    if flags & !GRND_KNOWN != 0 {
        return ret(Err(Errno::EINVAL));
    }
    let len = len.min(i32::MAX as u64);
    let mut done = 0u64;
    let mut chunk = [0u8; CHUNK];
    while done < len {
        let n = (len - done).min(CHUNK as u64) as usize;
        k.random.fill(&mut chunk[..n]);
        if let Err(e) = task.mem.write(buf + done, &chunk[..n]) {
            return ret(if done == 0 { Err(e) } else { Ok(done as i64) });
        }
        done += n as u64;
    }
    ret(Ok(done as i64))
}
