//! The strict backend (`--backend ptrace`): the program runs without `cloister-rt`, its
//! redirected calls stop it (`SECCOMP_RET_TRACE`), and the supervisor serves them with the same
//! kernel the in-process runtime uses, in its own address space, out of the program's reach.
//!
//! - [`check`]: the runtime loader's checks of a new image, made before the host runs it.
//! - [`filter`]: the redirect filter with `SECCOMP_RET_TRACE`, and which calls it redirects.
//! - [`sys`]: the raw layer: `ptrace` requests and registers (all the unsafe code).
//! - [`memory`]: the tracee's memory through `process_vm_readv`/`process_vm_writev`.
//! - [`host`]: host calls the kernel makes for a tracee, made by the supervisor.
//! - [`remote`]: the few the tracee must make itself, injected at its stop.
//! - [`image`]: what `cloister-rt`'s loader would do to a new image (exec path, auxv).
//! - [`trace`]: `--trace` records, written by the supervisor.
//! - [`tracer`]: the loop that follows every process and thread and applies dispositions.
//!
//! Read first: `ptrace(2)` (PTRACE_SEIZE, PTRACE_O_TRACESECCOMP, group-stop and PTRACE_LISTEN),
//! `seccomp(2)` (SECCOMP_RET_TRACE: a tracer may change or skip the call), and
//! `process_vm_readv(2)`.

pub mod check;
pub mod filter;
pub mod host;
pub mod image;
pub mod memory;
pub mod remote;
pub mod sys;
pub mod trace;
pub mod tracer;

pub use tracer::Tracer;
