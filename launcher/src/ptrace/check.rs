//! The checks `cloister-rt` makes on a new image before it maps it, made by the supervisor
//! before the host's `execve` runs it, so that both backends refuse the same files the same
//! way: exit status 126 (127 for a program that is not there) and one line on stderr.
//!
//! The host's own ELF loader is more lenient than the runtime's (`kernel_host::elf::plan`):
//! it runs an entry point outside every segment, or maps overlapping ones, and what it cannot
//! map past its point of no return kills the process with `SIGSEGV`. The kernel's exec check
//! (`binfmt::target`) has already followed `#!` lines and found the interpreter; this adds the
//! loader's checks of the ELF and of its `PT_INTERP` file.
//!
//! Read first: `kernel-host/src/elf.rs` and `interposer/rt/src/start.rs` (`not_executable`),
//! whose wording the lines here repeat.

use super::host::TraceeHost;
use kernel_host::binfmt;
use kernel_host::elf::{self, PlanError};
use kernel_host::errno::KResult;
use kernel_host::{Errno, Host, Kernel};
use syscalls::Sysno;

/// Why the runtime would not run an image: the exit status it would end with and its line
/// (without the `cloister: ` prefix and the newline).
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// 126 (cannot execute) or 127 (not found).
    pub status: i32,
    /// What the runtime would print.
    pub line: String,
}

/// Checks the image an exec of `program` (as the program named it) would run, as the runtime's
/// loader does once it is exec'd.
pub fn image(kernel: &Kernel, host: &TraceeHost, program: &[u8]) -> Result<(), Refusal> {
    let shown = String::from_utf8_lossy(program).into_owned();
    let lookup = |guest: &[u8]| lookup(kernel, host, guest);
    let target = match binfmt::target(host, &lookup, program, &[]) {
        Ok(target) => target,
        // The kernel's own check passed a moment ago: the file changed since.
        Err(e) => return Err(start_failure(kernel, host, program, e)),
    };
    // The files the check found, opened here (the host's calls are the supervisor's).
    let open = |c: &binfmt::Checked| {
        let flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK) as u64;
        let fd = host.syscall(
            Sysno::openat.id() as u32,
            [libc::AT_FDCWD as u64, c.host.as_ptr() as u64, flags, 0, 0, 0],
        );
        (fd >= 0).then_some(fd as i32)
    };
    let (file, interp_file) = (open(&target.file), target.interp.as_ref().and_then(open));
    let close = |fd: Option<i32>| {
        if let Some(fd) = fd {
            host.syscall(Sysno::close.id() as u32, [fd as u64, 0, 0, 0, 0, 0]);
        }
    };
    let cannot = |why: String| Refusal { status: 126, line: format!("{shown}: cannot execute: {why}") };
    let main = file.map(|fd| plan_of(fd).map_err(cannot));
    let interp = match (&main, interp_file) {
        (Some(Ok(plan)), Some(fd)) => Some(plan_of(fd).map_err(|why| {
            let path = plan.interp.as_deref().map(|p| &p[..p.len().saturating_sub(1)]).unwrap_or_default();
            cannot(format!("its interpreter {} cannot be loaded: {why}", String::from_utf8_lossy(path)))
        })),
        _ => None,
    };
    close(file);
    close(interp_file);
    match (main, interp) {
        (Some(Err(refusal)), _) | (_, Some(Err(refusal))) => Err(refusal),
        _ => Ok(()),
    }
}

/// What the runtime says when the sandbox's first program cannot be exec'd for `e`, the errno
/// the kernel's check found: "not found" (127) when there is no such file, "cannot execute"
/// (126) otherwise (a missing interpreter among them).
pub fn start_failure(kernel: &Kernel, host: &TraceeHost, program: &[u8], e: Errno) -> Refusal {
    let shown = String::from_utf8_lossy(program);
    let found = lookup(kernel, host, program).ok().and_then(|(path, _)| {
        let open = [libc::AT_FDCWD as u64, path.as_ptr() as u64, libc::O_RDONLY as u64, 0, 0, 0];
        let fd = host.syscall(Sysno::openat.id() as u32, open);
        if fd < 0 {
            return None;
        }
        let mut head = vec![0u8; 4096];
        // SAFETY: pread writes at most `head.len()` bytes into `head`.
        let n = unsafe { libc::pread(fd as i32, head.as_mut_ptr().cast(), head.len(), 0) };
        host.syscall(Sysno::close.id() as u32, [fd as u64, 0, 0, 0, 0, 0]);
        head.truncate(usize::try_from(n).unwrap_or(0));
        Some(head)
    });
    let why = e.name().unwrap_or("error");
    match found {
        None => Refusal { status: 127, line: format!("{shown}: not found") },
        // The kernel's check failed on the ELF's interpreter, not on the program.
        Some(head) => match binfmt::interpreter(&head).filter(|_| e == Errno::ENOENT) {
            Some(interp) if interp.is_empty() => Refusal {
                status: 126,
                line: format!("{shown}: cannot execute: its interpreter path is corrupt"),
            },
            Some(interp) => {
                let interp = String::from_utf8_lossy(&interp);
                Refusal {
                    status: 126,
                    line: format!("{shown}: cannot execute: its interpreter {interp} is missing ({why})"),
                }
            }
            None => Refusal { status: 126, line: format!("{shown}: cannot execute: {why}") },
        },
    }
}

/// Where the program's path leads on the host, as the kernel's exec looks it up: through the
/// view, or as it is. A relative path without a view is the tracee's, from its own working
/// directory, not the supervisor's.
fn lookup(kernel: &Kernel, host: &TraceeHost, guest: &[u8]) -> KResult<(Vec<u8>, Option<Vec<u8>>)> {
    match kernel.vfs() {
        Some(vfs) => vfs.program_of(kernel_host::vfs::host::Hc(host), guest),
        None if guest.first() == Some(&b'/') => Ok(([guest, b"\0"].concat(), None)),
        None => Ok(([format!("/proc/{}/cwd/", host.tid).as_bytes(), guest, b"\0"].concat(), None)),
    }
}

/// The loader's plan of the ELF open at the supervisor's descriptor `fd`, or why it has none.
fn plan_of(fd: i32) -> Result<elf::Plan, String> {
    // SAFETY: all-zero bytes are a valid `stat`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes one `stat` to a local.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(errno_text(std::io::Error::last_os_error()));
    }
    let read = |buf: &mut [u8], offset: u64| -> Result<(), String> {
        let mut done = 0;
        while done < buf.len() {
            let at = i64::try_from(offset.saturating_add(done as u64)).unwrap_or(i64::MAX);
            let rest = &mut buf[done..];
            // SAFETY: pread writes at most `rest.len()` bytes into `rest`.
            let n = unsafe { libc::pread(fd, rest.as_mut_ptr().cast(), rest.len(), at) };
            match n {
                0 => return Err("the file ends inside its headers".into()),
                n if n < 0 => return Err(errno_text(std::io::Error::last_os_error())),
                n => done += n as usize,
            }
        }
        Ok(())
    };
    elf::plan(read, u64::try_from(st.st_size).unwrap_or(0)).map_err(|e| match e {
        PlanError::Corrupt(why) => why.to_string(),
        PlanError::Read(why) => why,
    })
}

/// An errno's name (`EINVAL`), as the runtime writes it.
fn errno_text(e: std::io::Error) -> String {
    e.raw_os_error().and_then(|n| Errno(n).name()).unwrap_or("error").to_string()
}
