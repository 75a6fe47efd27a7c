//! What other processes read of this one: the host shows `/proc/PID/cmdline`,
//! `/proc/PID/environ` and `/proc/PID/auxv` (and so `ps`, `pgrep`, `top`) from the process's
//! own memory and records, which the host's `execve` made for the runtime: `cloister-rt
//! PROGRAM [EXE] ARGV...`, the environment with the runtime's configuration in it, the
//! runtime's auxiliary vector. Once the program's own stack is built, [`publish`] points the
//! host's records at the program's strings and vector there (`prctl(PR_SET_MM, PR_SET_MM_MAP)`,
//! which needs no privilege as long as the executable's link is left alone), and [`retitle`]
//! writes the program's arguments and environment over the runtime's strings, padded with NULs,
//! as programs that retitle themselves do (PostgreSQL's `ps_status.c`, `setproctitle`): no
//! process reads the configuration after that, and where the host refuses the `prctl` a raw
//! reader sees the program's strings with empty ones after them, which `ps` and `pgrep` drop.
//! (`/proc/self/...` is the kernel's, served from the process image.)

use crate::loader::Image;
use crate::stack::Built;
use crate::sys;

/// `prctl(2)`'s `PR_SET_MM` and its `PR_SET_MM_MAP`.
const PR_SET_MM: u64 = 35;
const PR_SET_MM_MAP: u64 = 14;
/// The largest auxiliary vector the host keeps (`AT_VECTOR_SIZE` words on x86_64).
const SAVED_AUXV: usize = 52 * 8;

/// `struct prctl_mm_map`.
#[repr(C)]
struct MmMap {
    start_code: u64,
    end_code: u64,
    start_data: u64,
    end_data: u64,
    start_brk: u64,
    brk: u64,
    start_stack: u64,
    arg_start: u64,
    arg_end: u64,
    env_start: u64,
    env_end: u64,
    auxv: u64,
    auxv_size: u32,
    exe_fd: u32,
}

/// Makes the host show the program's arguments, environment and auxiliary vector (`built`,
/// on its initial stack), the bounds of its code and data (`main`) and a program break at
/// `brk` (where the kernel's starts) for this process, instead of the runtime's. Where the host
/// refuses it, [`retitle`]'s padding is what other processes see.
pub fn publish(main: &Image, built: &Built, brk: u64) {
    let auxv = if built.auxv.len() <= SAVED_AUXV { built.auxv.as_slice() } else { &[] };
    let map = MmMap {
        start_code: main.code.0,
        end_code: main.code.1,
        start_data: main.data.0,
        end_data: main.data.1,
        start_brk: brk,
        brk,
        start_stack: built.sp,
        arg_start: built.args.0,
        arg_end: built.args.1,
        env_start: built.env.0,
        env_end: built.env.1,
        auxv: auxv.as_ptr() as u64,
        auxv_size: auxv.len() as u32,
        exe_fd: u32::MAX,
    };
    let size = core::mem::size_of::<MmMap>() as u64;
    sys::call(sys::nr::PRCTL, &[PR_SET_MM, PR_SET_MM_MAP, &map as *const MmMap as u64, size]);
}

/// One area of NUL-terminated strings laid out back to back, as the host's `execve` writes
/// argv and envp: `None` unless they are.
pub fn area(strings: &[&[u8]]) -> Option<(*mut u8, usize)> {
    let first = strings.first()?.as_ptr();
    let mut end = first;
    for s in strings {
        if s.as_ptr() != end {
            return None;
        }
        // SAFETY: the string and its NUL lie in the area; one past the NUL is its end.
        end = unsafe { s.as_ptr().add(s.len() + 1) };
    }
    Some((first as *mut u8, end as usize - first as usize))
}

/// Writes `strings` (each with its NUL) at the start of the area `[at, at + len)`, as many
/// whole ones as fit, and NULs after them. A string may lie inside the area itself, at or after
/// where it is written: it is moved forward, in order, before any later one is overwritten.
///
/// # Safety
/// The area must be writable, and nothing may use it afterwards but through `strings`' copies
/// made before.
unsafe fn overwrite(at: *mut u8, len: usize, strings: &[&[u8]]) {
    let mut used = 0;
    for s in strings {
        if used + s.len() + 1 > len {
            break;
        }
        // SAFETY: [at + used, at + used + s.len() + 1) lies in the area; `copy` allows overlap.
        unsafe {
            core::ptr::copy(s.as_ptr(), at.add(used), s.len());
            *at.add(used + s.len()) = 0;
        }
        used += s.len() + 1;
    }
    // SAFETY: the rest of the area, after what was written.
    unsafe { core::ptr::write_bytes(at.add(used), 0, len - used) };
}

/// Replaces the host's strings for this process (`host_argv`, and the environment's area
/// `host_env` as [`area`] found it before any string was taken out, as its `execve` laid them
/// out) with the program's `argv` and `envp`.
///
/// # Safety
/// `host_argv` and `host_env` must be the strings of the process's initial stack, which
/// nothing reads after this call. `argv` must not point into the argument area; `envp` may
/// point into the environment area, in its order (the host's environment with some taken out).
pub unsafe fn retitle(
    host_argv: &[&[u8]],
    host_env: Option<(*mut u8, usize)>,
    argv: &[&[u8]],
    envp: &[&[u8]],
) {
    if let Some((at, len)) = area(host_argv) {
        // SAFETY: per the contract; `argv` lies outside the area.
        unsafe { overwrite(at, len, argv) };
    }
    if let Some((at, len)) = host_env {
        // SAFETY: per the contract; `envp`'s strings come from the area in order, so each
        // moves forward.
        unsafe { overwrite(at, len, envp) };
    }
}
