//! One module per syscall family: each handler decodes its registers, validates, calls the
//! subsystem and returns a disposition. State and semantics live in the subsystems.

pub mod cpu;
pub mod dir;
pub mod exec;
pub(crate) mod exec_memo;
pub mod fd;
pub mod getcpu;
pub mod identity;
pub mod ids;
pub mod process;
pub mod procfs;
pub mod random;
pub mod sched;
pub mod signal;
pub mod time;
pub mod timer;
pub mod timerfd;
pub mod vfs;
pub mod wait;
pub mod wake;

use crate::errno::KResult;
use crate::syscall::Disposition;

/// A value or an errno, as the program receives it.
fn ret(result: KResult<i64>) -> Disposition {
    Disposition::Return(match result {
        Ok(v) => v,
        Err(e) => e.ret(),
    })
}
