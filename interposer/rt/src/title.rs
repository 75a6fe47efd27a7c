//! What other processes read of this one: the host shows `/proc/PID/cmdline` and
//! `/proc/PID/environ` (and so `ps`, `pgrep`, `top`) from the process's own memory, the strings
//! the host's `execve` laid out for the runtime: `cloister-rt PROGRAM [EXE] ARGV...`, and the
//! environment with the runtime's configuration in it. Once the program's own stack is built,
//! [`retitle`] writes the program's arguments and environment over them, padded with NULs, as
//! programs that retitle themselves do (PostgreSQL's `ps_status.c`, `setproctitle`). The host
//! returns the whole area, so a raw reader sees the padding as empty strings at the end; `ps`
//! and `pgrep` drop them. (`/proc/self/...` is the kernel's, served from the process image.)

/// One area of NUL-terminated strings laid out back to back, as the host's `execve` writes
/// argv and envp: `None` unless they are.
fn area(strings: &[&[u8]]) -> Option<(*mut u8, usize)> {
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

/// Replaces the host's strings for this process (`host_argv`, `host_envp`, as its `execve` laid
/// them out) with the program's `argv` and `envp`.
///
/// # Safety
/// `host_argv` and `host_envp` must be the strings of the process's initial stack, which
/// nothing reads after this call. `argv` must not point into the argument area; `envp` may
/// point into the environment area, in its order (the host's environment with some taken out).
pub unsafe fn retitle(host_argv: &[&[u8]], host_envp: &[&[u8]], argv: &[&[u8]], envp: &[&[u8]]) {
    if let Some((at, len)) = area(host_argv) {
        // SAFETY: per the contract; `argv` lies outside the area.
        unsafe { overwrite(at, len, argv) };
    }
    if let Some((at, len)) = area(host_envp) {
        // SAFETY: per the contract; `envp`'s strings come from the area in order, so each
        // moves forward.
        unsafe { overwrite(at, len, envp) };
    }
}
