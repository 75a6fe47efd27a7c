//! The cloister launcher and supervisor.
//!
//! `cloister run` loads the policy, checks the program, sets up the sandbox's floor (no new
//! privileges, the seccomp floor) and the redirect filter, starts the program through
//! `cloister-rt` and stays alive as its supervisor: it waits for the exit status and turns
//! the runtime's trace records into JSON lines. With a filesystem view it also lays out the
//! view's private state directory before the start and reports the program's file changes
//! after its end (`view`, `changes`); with `--net none` it gives the sandbox a network of its
//! own (`net`). Every sandbox's first process stays as its keeper, so that no sandboxed process
//! outlives the run (`keeper`, `timeout`), and the program starts under the policy's resource
//! limits (`limits`). With `--tty` the program gets a pseudo-terminal of its own, which the
//! supervisor relays to the user's terminal (`tty`).

pub mod changes;
pub mod cli;
pub mod doctor;
pub mod failure;
pub mod fdpass;
pub mod floor;
pub mod keeper;
pub mod landlock;
pub mod limits;
pub mod namespaces;
pub mod net;
pub mod policy_cmd;
pub mod program;
pub mod ptrace;
pub mod run;
pub mod seccomp_profile;
pub mod spawn;
pub mod syscalls_cmd;
pub mod timeout;
pub mod trace_sink;
pub mod tty;
pub mod view;
