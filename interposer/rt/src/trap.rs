//! The SIGSYS path: the redirect filter traps a call, the host kernel raises SIGSYS in the
//! calling thread, and this handler reads the registers from the `ucontext`, asks the kernel
//! for a disposition, applies it and returns.
//!
//! Calls the kernel returns to the host ([`Disposition::Host`]) are not made inside the
//! handler: the handler points the thread at a *gate* in the runtime's code (`syscall`, then
//! back to the program), so the call runs in the program's own context, with its own signal
//! mask, interruptible and restartable like any system call, and the filter lets it through
//! because it comes from the runtime's code. See `sigaction(2)`, `seccomp(2)`
//! (`SECCOMP_RET_TRAP`), and `getcontext(3)` for the frame layout.

use alloc::vec::Vec;
use core::arch::global_asm;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel_host::abi::{sigbit, KernelSigaction, SA_ONSTACK, SA_RESTORER, SA_SIGINFO, SIGSYS};
use kernel_host::{Disposition, ExecPlan, ForkPlan, GuestMemory, Kernel, Syscall, TaskCtx};

use crate::guest::{self, RawHost, SelfMemory};
use crate::sys::{self, nr};
use crate::{altstack, trace, HEAP};

/// The kernel serving this process, set once before the program starts.
static KERNEL: AtomicPtr<Kernel> = AtomicPtr::new(core::ptr::null_mut());

/// `si_code` of a seccomp trap.
const SYS_SECCOMP: i32 = 1;

// Offsets in `ucontext_t` (x86_64, glibc/kernel layout).
const UC_STACK_FLAGS: usize = 24;
const UC_GREGS: usize = 40;
const UC_SIGMASK: usize = 296;
const REG_R8: usize = 0;
const REG_R9: usize = 1;
const REG_R10: usize = 2;
const REG_RDI: usize = 8;
const REG_RSI: usize = 9;
const REG_RDX: usize = 12;
const REG_RAX: usize = 13;
const REG_RSP: usize = 15;
const REG_RIP: usize = 16;
// Offsets in `siginfo_t`.
const SI_ERRNO: usize = 4;
const SI_CODE: usize = 8;
const SI_SYSCALL: usize = 24;
/// `SS_DISABLE` in `stack_t.ss_flags`.
const SS_DISABLE: i32 = 2;

extern "C" {
    fn cloister_restorer();
    fn cloister_gate();
    fn cloister_gate_traced();
}

// The restorer: where a handler returns to. It lives in the runtime's code so that
// `rt_sigreturn` is never trapped. The gates: run the call, then return to the program at the
// address and stack pointer the handler stored at [rsp] and [rsp+8]. `rcx` and `r11` are
// clobbered by `syscall` anyway; nothing else is touched. The traced gate also writes the
// result record prepared at [rsp+16..rsp+40] to the trace descriptor.
global_asm!(
    ".globl cloister_restorer",
    "cloister_restorer:",
    "mov eax, 15",
    "syscall",
    "ud2",
    ".globl cloister_gate",
    "cloister_gate:",
    "syscall",
    "mov rcx, [rsp]",
    "mov rsp, [rsp + 8]",
    "jmp rcx",
    ".globl cloister_gate_traced",
    "cloister_gate_traced:",
    "syscall",
    "mov [rsp + 32], rax",
    "push rdi",
    "push rsi",
    "push rdx",
    "push rax",
    "mov eax, 1",
    "mov edi, dword ptr [rip + {fd}]",
    "lea rsi, [rsp + 48]",
    "mov edx, 24",
    "syscall",
    "pop rax",
    "pop rdx",
    "pop rsi",
    "pop rdi",
    "mov rcx, [rsp]",
    "mov rsp, [rsp + 8]",
    "jmp rcx",
    fd = sym trace::TRACE_FD,
);

/// Hands the kernel to the trap path and installs the SIGSYS handler.
pub fn install(kernel: &'static Kernel) {
    KERNEL.store(kernel as *const Kernel as *mut Kernel, Ordering::Release);
    let act = KernelSigaction {
        handler: on_sigsys as *const () as u64,
        flags: SA_SIGINFO | SA_ONSTACK | SA_RESTORER,
        restorer: cloister_restorer as *const () as u64,
        // Nothing may interrupt the handler: it holds kernel state only briefly, and a
        // signal arriving meanwhile is delivered as soon as the call returns.
        mask: !0,
    };
    let bytes = act.to_bytes();
    let r = sys::call(
        nr::RT_SIGACTION,
        &[u64::from(SIGSYS), bytes.as_ptr() as u64, 0, 8],
    );
    if r < 0 {
        crate::fail(125, "cannot install the SIGSYS handler");
    }
}

/// A view of the frame the host kernel pushed.
struct Frame {
    uc: *mut u8,
}

impl Frame {
    fn reg(&self, i: usize) -> u64 {
        // SAFETY: `uc` points to the live ucontext of this signal; gregs has 23 entries.
        unsafe { *(self.uc.add(UC_GREGS + 8 * i) as *const u64) }
    }
    fn set_reg(&mut self, i: usize, v: u64) {
        // SAFETY: as in `reg`; the frame is ours to modify until sigreturn.
        unsafe { *(self.uc.add(UC_GREGS + 8 * i) as *mut u64) = v }
    }
    fn sigmask(&self) -> u64 {
        // SAFETY: uc_sigmask is the 8-byte kernel sigset at this offset.
        unsafe { *(self.uc.add(UC_SIGMASK) as *const u64) }
    }
    fn set_sigmask(&mut self, m: u64) {
        // SAFETY: as in `sigmask`.
        unsafe { *(self.uc.add(UC_SIGMASK) as *mut u64) = m }
    }
    fn on_altstack_disabled(&self) -> bool {
        // SAFETY: uc_stack.ss_flags is an i32 at this offset.
        unsafe { *(self.uc.add(UC_STACK_FLAGS) as *const i32) & SS_DISABLE != 0 }
    }
    fn call(&self, nr: u32) -> Syscall {
        Syscall {
            nr,
            args: [
                self.reg(REG_RDI),
                self.reg(REG_RSI),
                self.reg(REG_RDX),
                self.reg(REG_R10),
                self.reg(REG_R8),
                self.reg(REG_R9),
            ],
        }
    }
}

extern "C" fn on_sigsys(sig: i32, info: *mut u8, uc: *mut u8) {
    // SAFETY: the host kernel passes a valid siginfo for an SA_SIGINFO handler.
    let (si_errno, si_code, si_syscall) = unsafe {
        (
            *(info.add(SI_ERRNO) as *const i32),
            *(info.add(SI_CODE) as *const i32),
            *(info.add(SI_SYSCALL) as *const i32),
        )
    };
    let kernel_ptr = KERNEL.load(Ordering::Acquire);
    if kernel_ptr.is_null() {
        crate::fail(125, "a call trapped before the runtime was ready");
    }
    // SAFETY: KERNEL is set once to a leaked, never-freed Kernel before any trap can happen.
    let kernel: &Kernel = unsafe { &*kernel_ptr };
    if si_code != SYS_SECCOMP || si_errno != i32::from(interposer_trap_data()) {
        forward(kernel, sig, info, uc);
        return;
    }
    let mut frame = Frame { uc };
    let call = frame.call(si_syscall as u32);
    let started = trace::enabled().then(sys::monotonic_ns);
    let mem = SelfMemory;
    let mut task = TaskCtx::new(&mem, &RawHost, frame.sigmask(), frame.reg(REG_RSP));
    let disposition = kernel.handle(&mut task, call);
    let elapsed = started.map(|t| sys::monotonic_ns().wrapping_sub(t));
    frame.set_sigmask(task.sigmask);
    let cookie = elapsed.map(|ns| trace::call(&call, &mem, &disposition, ns));
    match disposition {
        Disposition::Return(v) => frame.set_reg(REG_RAX, v as u64),
        Disposition::Host(host) => via_gate(&mut frame, &task, host, cookie),
        Disposition::Fork(plan) => fork(kernel, &mut frame, plan, cookie),
        Disposition::Exec(plan) => {
            let host = exec_call(plan);
            via_gate(&mut frame, &task, host, cookie);
        }
    }
    if frame.on_altstack_disabled() {
        altstack::install_for_this_thread();
    }
}

/// The trap data the launcher's filter uses; the same constant as in `interposer::filter`.
const fn interposer_trap_data() -> u16 {
    0xc15
}

/// Points the thread at the gate so that `host` runs in the program's context. The slots the
/// gate reads sit below the red zone and any scratch the kernel pushed.
fn via_gate(frame: &mut Frame, task: &TaskCtx<'_>, host: Syscall, cookie: Option<u64>) {
    let sp = frame.reg(REG_RSP);
    let new_sp = (sp - kernel_host::task::RED_ZONE - task.scratch_used - 40) & !15;
    let header: u64 = (2u64 << 32) | 24;
    let slots = [frame.reg(REG_RIP), sp, header, cookie.unwrap_or(0), 0];
    let mut bytes = [0u8; 40];
    for (i, s) in slots.iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&s.to_ne_bytes());
    }
    if let Err(e) = SelfMemory.write(new_sp, &bytes) {
        frame.set_reg(REG_RAX, e.ret() as u64);
        return;
    }
    let regs = [REG_RDI, REG_RSI, REG_RDX, REG_R10, REG_R8, REG_R9];
    for (r, v) in regs.iter().zip(host.args) {
        frame.set_reg(*r, v);
    }
    frame.set_reg(REG_RAX, u64::from(host.nr));
    frame.set_reg(REG_RSP, new_sp);
    let gate = if cookie.is_some() {
        cloister_gate_traced as *const () as usize
    } else {
        cloister_gate as *const () as usize
    };
    frame.set_reg(REG_RIP, gate as u64);
}

/// Forks inside the handler: parent and child both return from here, each with its result.
fn fork(kernel: &Kernel, frame: &mut Frame, plan: ForkPlan, cookie: Option<u64>) {
    kernel.prepare_fork();
    HEAP.lock_for_fork();
    let r = sys::syscall(plan.call.nr, plan.call.args);
    HEAP.unlock_after_fork();
    if r == 0 {
        guest::refresh_pid();
        kernel.after_fork(true);
        if plan.child_stack != 0 {
            frame.set_reg(REG_RSP, plan.child_stack);
        }
    } else {
        kernel.after_fork(false);
        if let Some(cookie) = cookie {
            trace::result(cookie, r);
        }
    }
    frame.set_reg(REG_RAX, r as u64);
}

/// Lays the plan out as C strings and arrays (leaked: on success the image is gone, on
/// failure it is a few hundred bytes) and returns the `execve` that runs it.
fn exec_call(plan: ExecPlan) -> Syscall {
    fn c_strings(items: Vec<Vec<u8>>) -> u64 {
        let mut ptrs: Vec<u64> = items
            .into_iter()
            .map(|mut s| {
                s.push(0);
                s.leak().as_ptr() as u64
            })
            .collect();
        ptrs.push(0);
        ptrs.leak().as_ptr() as u64
    }
    let mut path = plan.path;
    path.push(0);
    let path = path.leak().as_ptr() as u64;
    Syscall {
        nr: nr::EXECVE,
        args: [path, c_strings(plan.argv), c_strings(plan.envp), 0, 0, 0],
    }
}

/// A SIGSYS the runtime did not cause (a `kill`, or a filter of the program's own): given to
/// the handler the program installed, or to the default action.
fn forward(kernel: &Kernel, sig: i32, info: *mut u8, uc: *mut u8) {
    let act = kernel.program_sigsys();
    match act.handler {
        1 => {}
        0 => {
            // Default action: die of SIGSYS. Restore the default, and let the pending signal
            // kill the process once the handler returns and SIGSYS is unblocked.
            let dfl = KernelSigaction::default().to_bytes();
            sys::call(
                nr::RT_SIGACTION,
                &[u64::from(SIGSYS), dfl.as_ptr() as u64, 0, 8],
            );
            let pid = sys::call(nr::GETPID, &[]) as u64;
            let tid = sys::call(nr::GETTID, &[]) as u64;
            sys::call(nr::TGKILL, &[pid, tid, u64::from(SIGSYS)]);
            let mut frame = Frame { uc };
            frame.set_sigmask(frame.sigmask() & !sigbit(SIGSYS));
        }
        handler => {
            if act.flags & SA_SIGINFO != 0 {
                // SAFETY: the program registered this address as an SA_SIGINFO handler.
                let f: extern "C" fn(i32, *mut u8, *mut u8) =
                    unsafe { core::mem::transmute(handler as usize) };
                f(sig, info, uc);
            } else {
                // SAFETY: the program registered this address as a plain handler.
                let f: extern "C" fn(i32) = unsafe { core::mem::transmute(handler as usize) };
                f(sig);
            }
        }
    }
}
