//! What the supervisor does to a new image in place of `cloister-rt`'s loader: which file an
//! `execve` runs ([`exec_call`]), the auxiliary vector it starts with ([`fix_auxv`]), and the
//! contents of a `/proc` file the kernel serves ([`fill`]).

use super::host::TraceeHost;
use super::memory::TraceeMemory;
use super::sys;
use kernel_host::{Kernel, TaskCtx};

/// The `execve` the tracee makes for the kernel's checked exec `plan`: the program's own path
/// and arrays (`arrays`: argv, envp) when the host finds the file the view shows at that path;
/// otherwise (a file only the overlay's upper layer holds) its host path, and for a `#!`
/// script there the interpreter's, with the script's guest path as its argument, as the host
/// would have built it. Returns the guest addresses of the path and of argv.
pub fn exec_call(
    kernel: &Kernel,
    task: &mut TaskCtx<'_>,
    host: &TraceeHost,
    plan: &kernel_host::ExecPlan,
    arrays: [u64; 2],
) -> kernel_host::errno::KResult<(u64, u64)> {
    let guest = plan.argv.get(1).cloned().unwrap_or_default();
    let host_of = |p: &[u8]| match kernel.vfs() {
        Some(vfs) => vfs.host_path_of(kernel_host::vfs::host::Hc(host), p),
        None => Ok([p, b"\0"].concat()),
    };
    let file = host_of(&guest)?;
    let same = file.strip_suffix(b"\0") == Some(guest.as_slice());
    if same {
        let path = task.push_scratch(&[guest.as_slice(), b"\0"].concat())?;
        return Ok((path, arrays[0]));
    }
    let on_host = format!("/proc/{}/root{}", host.pid, String::from_utf8_lossy(&file[..file.len() - 1]));
    let mut head = [0u8; 256];
    let n =
        std::fs::File::open(on_host).and_then(|mut f| std::io::Read::read(&mut f, &mut head)).unwrap_or(0);
    let Some(shebang) = kernel_host::binfmt::parse_shebang(&head[..n]) else {
        return Ok((task.push_scratch(&file)?, arrays[0]));
    };
    let interpreter = host_of(&shebang.interpreter)?;
    // The plan's argv is `cloister-rt PROGRAM ARGV...`.
    let argv = shebang.argv(guest, plan.argv.get(2..).unwrap_or_default().to_vec());
    let mut pointers = Vec::with_capacity(argv.len() + 1);
    for a in &argv {
        pointers.push(task.push_scratch(&[a.as_slice(), b"\0"].concat())?);
    }
    pointers.push(0);
    let table: Vec<u8> = pointers.iter().flat_map(|p| p.to_ne_bytes()).collect();
    let argv = task.push_scratch(&table)?;
    Ok((task.push_scratch(&interpreter)?, argv))
}

/// Copies the supervisor's memfd `from` into the tracee's descriptor `fd` (a fresh memfd),
/// through `/proc/TID/fd`: the tracee's own offset stays at 0.
pub fn fill(tid: libc::pid_t, fd: i32, from: i32) {
    use std::io::{Read, Seek, Write};
    use std::os::fd::FromRawFd;
    let Ok(mut dst) = std::fs::OpenOptions::new().write(true).open(format!("/proc/{tid}/fd/{fd}")) else {
        return;
    };
    // SAFETY: `from` is the supervisor's own descriptor; ManuallyDrop leaves closing it to the
    // caller.
    let mut src = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(from) });
    let mut data = Vec::new();
    if src.seek(std::io::SeekFrom::Start(0)).is_ok() && src.read_to_end(&mut data).is_ok() {
        let _ = dst.write_all(&data);
    }
}

/// Does to a new image's auxiliary vector what `cloister-rt` does when it builds one: no vDSO
/// when clocks or randomness are virtual (so that clock reads and `getrandom` are calls the
/// filter sees), and `AT_RANDOM`'s bytes from the seed.
pub fn fix_auxv(tid: libc::pid_t, kernel: &Kernel) -> std::io::Result<()> {
    use kernel_host::GuestMemory;
    const AT_NULL: u64 = 0;
    const AT_IGNORE: u64 = 1;
    const AT_RANDOM: u64 = 25;
    const AT_SYSINFO_EHDR: u64 = 33;
    let config = kernel.config();
    let hide_vdso = config.virtual_clocks() || config.seed.is_some();
    let at_random = kernel.at_random();
    if !hide_vdso && at_random.is_none() {
        return Ok(());
    }
    let mem = TraceeMemory { tid };
    let word = |addr: u64| -> std::io::Result<u64> {
        let mut b = [0u8; 8];
        mem.read(addr, &mut b).map_err(|_| std::io::Error::from_raw_os_error(libc::EFAULT))?;
        Ok(u64::from_ne_bytes(b))
    };
    let efault = |_| std::io::Error::from_raw_os_error(libc::EFAULT);
    // The entry stack: argc, argv..., NULL, envp..., NULL, then (type, value) pairs.
    let sp = sys::regs(tid)?.rsp;
    let argc = word(sp)?;
    let mut at = sp + 8 * (argc + 2);
    while word(at)? != 0 {
        at += 8;
    }
    at += 8;
    for _ in 0..64 {
        let (kind, value) = (word(at)?, word(at + 8)?);
        match kind {
            AT_NULL => break,
            AT_SYSINFO_EHDR if hide_vdso => mem.write(at, &AT_IGNORE.to_ne_bytes()).map_err(efault)?,
            AT_RANDOM => {
                if let Some(bytes) = at_random {
                    mem.write(value, &bytes).map_err(efault)?;
                }
            }
            _ => {}
        }
        at += 16;
    }
    Ok(())
}
