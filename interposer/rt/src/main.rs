//! `cloister-rt`: the in-process runtime.
//!
//! A static, libc-free executable linked at a fixed address. Every program in a sandbox is
//! started through it: it maps the program itself ([`loader`]), builds its initial stack
//! ([`stack`]), and serves the calls the redirect filter traps from a SIGSYS handler
//! ([`trap`]) that runs kernel-host inside the program's own process. No libc, no
//! thread-local storage, no `std`: it shares the process with a libc it does not know.

#![no_std]
#![no_main]

extern crate alloc;

mod altstack;
mod cpu;
mod exec;
mod fast;
mod fault;
mod forward;
mod guest;
mod heap;
mod held;
mod loader;
mod mem;
mod patch;
mod prepatch;
mod stack;
mod start;
mod sys;
mod title;
mod trace;
mod trap;
mod tsc;
mod ucontext;

/// A writable byte in the padding `bss.ld` puts before the writable data, which makes the
/// padding writable too, and so part of the data's segment rather than a mapping of its own.
#[used]
#[link_section = ".cloister_pad"]
static DATA_PAD: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

/// The runtime's allocator.
#[global_allocator]
pub static HEAP: heap::Heap = heap::Heap::new();

/// Prints `cloister: MESSAGE` on stderr and exits with `code`: 125 for the runtime's own
/// failures, 126 when the program cannot be executed, 127 when it is not found.
pub fn fail(code: i32, message: &str) -> ! {
    let line = alloc::format!("cloister: {message}\n");
    sys::write_all(2, line.as_bytes());
    sys::exit_group(code)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    use core::fmt::Write;
    let mut line = alloc::string::String::new();
    let _ = writeln!(line, "cloister-rt: internal error: {info}");
    sys::write_all(2, line.as_bytes());
    sys::exit_group(125)
}

/// The prebuilt `alloc` library references the unwinder; with `panic = "abort"` it is never
/// reached.
#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! {
    sys::exit_group(125)
}

/// Referenced by the prebuilt `alloc` library's unwind tables; never called with
/// `panic = "abort"`.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}
