//! interposer: how cloister catches calls.
//!
//! This library holds the parts the launcher needs to set a program up for the in-process
//! runtime: the redirect filter ([`filter`]) and the runtime's own image ([`runtime`]), whose
//! code range the filter trusts. The runtime itself, `cloister-rt`, is the freestanding
//! binary in `interposer/rt/`; the ptrace backend will live here too.

pub mod filter;
pub mod runtime;

pub use filter::{redirect_program, SockFilter, TRAP_DATA};
pub use runtime::{LocateError, RtImage};
