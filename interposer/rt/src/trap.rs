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

use core::arch::global_asm;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use kernel_host::abi::{
    sigbit, KernelSigaction, SA_NODEFER, SA_ONSTACK, SA_RESTORER, SA_SIGINFO, SIGBUS, SIGSEGV, SIGSYS,
};
use kernel_host::{AfterHost, Disposition, ForkPlan, ForkSide, GuestMemory, Kernel, Syscall, TaskCtx};

use crate::guest::{RawHost, SelfMemory};
use crate::sys::{self, nr};
use crate::ucontext::{reg, Frame};
use crate::{altstack, cpu, exec, fault, forward, patch, trace, HEAP};

/// The kernel serving this process, set once before the program starts.
static KERNEL: AtomicPtr<Kernel> = AtomicPtr::new(core::ptr::null_mut());

/// `si_code` of a seccomp trap.
const SYS_SECCOMP: i32 = 1;
/// Offsets in `siginfo_t`.
const SI_ERRNO: usize = 4;
const SI_CODE: usize = 8;
const SI_SYSCALL: usize = 24;

extern "C" {
    fn cloister_restorer();
    fn cloister_gate_traced();
    fn cloister_gate_timed();
    fn cloister_gate_plain();
}

// The restorer: where a handler returns to. It lives in the runtime's code so that
// `rt_sigreturn` is never trapped. The gates (the plain one sits right after `_start`, see
// `start.rs`): run the call, then return to the program at the
// address and stack pointer the handler stored at [rsp] and [rsp+8]. `rcx` and `r11` are
// clobbered by `syscall` anyway; nothing else is touched. The traced gate also writes the
// result record prepared at [rsp+16..rsp+40] to the trace descriptor.
global_asm!(
    ".globl cloister_restorer",
    "cloister_restorer:",
    "mov eax, 15",
    "syscall",
    "ud2",
    // The traced gate: run the call, then write the result record.
    ".globl cloister_gate_traced",
    "cloister_gate_traced:",
    "syscall",
    "jmp cloister_gate_record",
    // The timed gate: if the call returned [rsp+16] (it timed out), move the virtual clock at
    // [rsp+32] up to the deadline [rsp+24] (a compare-and-swap maximum), then write the
    // result record if the call is traced.
    ".globl cloister_gate_timed",
    "cloister_gate_timed:",
    "syscall",
    "pushfq",
    "cmp rax, [rsp + 24]",
    "jne 5f",
    "push rax",
    "mov rcx, [rsp + 40]",
    "mov r11, [rsp + 48]",
    "mov rax, [r11]",
    "4:",
    "cmp rax, rcx",
    "jae 6f",
    "lock cmpxchg [r11], rcx",
    "jne 4b",
    "6:",
    "pop rax",
    "5:",
    // The time left (to [rsp+120], a timeval when [rsp+128] is set, else a timespec; 0:
    // none), whatever the call returned: the deadline [rsp+32] less the clock [rsp+40] (0 once
    // past), written with the fault-safe copy (a timeout in read-only memory is left as it is).
    "cmp qword ptr [rsp + 120], 0",
    "je 8f",
    "push rax",
    "sub rsp, 16",
    "mov r11, [rsp + 64]",
    "mov rax, [rsp + 56]",
    "sub rax, [r11]",
    "jae 10f",
    "xor eax, eax",
    "10:",
    "xor edx, edx",
    "mov ecx, 1000000000",
    "div rcx",
    "mov [rsp], rax",
    "mov rax, rdx",
    "cmp qword ptr [rsp + 152], 0",
    "je 11f",
    "xor edx, edx",
    "mov ecx, 1000",
    "div rcx",
    "11:",
    "mov [rsp + 8], rax",
    "mov rdi, [rsp + 144]",
    "mov rsi, rsp",
    "mov edx, 16",
    "cld",
    "call cloister_copy",
    "add rsp, 16",
    "pop rax",
    "8:",
    "popfq",
    // The result record [rsp+88..rsp+112] (header, cookie, result), written when the cookie is
    // not zero. The flags and every register but rcx and r11 are kept.
    "cloister_gate_record:",
    "pushfq",
    "cmp qword ptr [rsp + 104], 0",
    "je 7f",
    "mov [rsp + 112], rax",
    "push rdi",
    "push rsi",
    "push rdx",
    "push rax",
    "mov eax, 1",
    "mov edi, dword ptr [rip + {fd}]",
    "lea rsi, [rsp + 128]",
    "mov edx, 24",
    "syscall",
    "pop rax",
    "pop rdx",
    "pop rsi",
    "pop rdi",
    "7:",
    "popfq",
    "jmp cloister_gate_return",
    // The plain gate, and the common return of all three: put back the argument registers the
    // call was made with ([rsp+40..rsp+88]: the kernel preserves them, and code that made the
    // call may rely on that even when the handler rewrote the call), then return to the
    // program at [rsp] with its stack pointer [rsp+8].
    ".globl cloister_gate_plain",
    "cloister_gate_plain:",
    "syscall",
    "cloister_gate_return:",
    "mov rdi, [rsp + 40]",
    "mov rsi, [rsp + 48]",
    "mov rdx, [rsp + 56]",
    "mov r10, [rsp + 64]",
    "mov r8, [rsp + 72]",
    "mov r9, [rsp + 80]",
    "mov rcx, [rsp]",
    "mov rsp, [rsp + 8]",
    "jmp rcx",
    ".globl cloister_gates_end",
    "cloister_gates_end:",
    fd = sym trace::TRACE_FD,
);

/// Hands the kernel to the trap path and installs the SIGSYS handler.
pub fn install(kernel: &'static Kernel) {
    KERNEL.store(kernel as *const Kernel as *mut Kernel, Ordering::Release);
    // Nothing may interrupt the SIGSYS handler but a fault in a guest copy: it holds kernel
    // state only briefly, and a signal arriving meanwhile is delivered as soon as it returns.
    // The fault handler itself runs with everything blocked, as a program's handler runs with
    // its own signal blocked: a burst of SIGSEGV or SIGBUS sent by `kill` then waits as one
    // signal, where each would otherwise nest a frame on the alternate stack, past its end.
    // (It sets the mask a program handler it calls runs with, `forward`.)
    type Handler = extern "C" fn(i32, *mut u8, *mut u8);
    let for_sigsys = (SA_NODEFER, !(sigbit(SIGSEGV) | sigbit(SIGBUS)));
    let for_faults = (0, !0);
    let handlers: [(u32, Handler, (u64, u64)); 3] =
        [(SIGSYS, on_sigsys, for_sigsys), (SIGSEGV, on_fault, for_faults), (SIGBUS, on_fault, for_faults)];
    for (sig, handler, (nodefer, mask)) in handlers {
        let act = KernelSigaction {
            handler: handler as *const () as u64,
            flags: SA_SIGINFO | SA_ONSTACK | SA_RESTORER | nodefer,
            restorer: cloister_restorer as *const () as u64,
            mask,
        };
        let bytes = act.to_bytes();
        if sys::call(nr::RT_SIGACTION, &[u64::from(sig), bytes.as_ptr() as u64, 0, 8]) < 0 {
            crate::fail(125, "cannot install the runtime's signal handlers");
        }
    }
}

fn call_of(frame: &Frame, nr: u32) -> Syscall {
    let regs = [reg::RDI, reg::RSI, reg::RDX, reg::R10, reg::R8, reg::R9];
    Syscall { nr, args: regs.map(|r| frame.reg(r)) }
}

/// The kernel serving this process.
pub(crate) fn kernel() -> &'static Kernel {
    let kernel_ptr = KERNEL.load(Ordering::Acquire);
    if kernel_ptr.is_null() {
        crate::fail(125, "a signal arrived before the runtime was ready");
    }
    // SAFETY: KERNEL is set once to a leaked, never-freed Kernel before the program runs.
    unsafe { &*kernel_ptr }
}

/// SIGSEGV and SIGBUS: a fault in a guest copy becomes `EFAULT`; `rdtsc`, `rdtscp` and `cpuid`
/// made to fault in reproducible mode are answered ([`cpu`]); any other goes to the program.
extern "C" fn on_fault(sig: i32, info: *mut u8, uc: *mut u8) {
    // SAFETY: the host passes the live ucontext to an SA_SIGINFO handler.
    let mut frame = unsafe { Frame::new(uc) };
    // SAFETY: the host passes a valid siginfo to an SA_SIGINFO handler.
    let si_code = unsafe { *(info.add(SI_CODE) as *const i32) };
    let faulted = si_code > 0;
    if faulted {
        if let Some(resume) = fault::fix_up(frame.reg(reg::RIP)) {
            frame.set_reg(reg::RIP, resume);
            return;
        }
    } else if in_runtime_code(frame.reg(reg::RIP)) {
        // Sent (kill, tgkill) while the runtime was serving a call, perhaps holding a lock a
        // program handler would want: held back until the call is served (`held`). With no
        // slot free, kept pending in the interrupted context (this handler runs with it
        // blocked, so it does not come straight back), which is lost if the runtime then
        // faults on purpose.
        if !crate::held::hold(sig as u32) {
            frame.set_sigmask(frame.sigmask() | sigbit(sig as u32));
            sys::raise(sig as u32);
        }
        return;
    }
    if sig == SIGSEGV as i32 && si_code == cpu::SI_KERNEL && cpu::emulate(kernel(), &mut frame) {
        return;
    }
    forward::forward(kernel(), sig, info, &mut frame, faulted);
}

/// Whether `ip` lies in the runtime's own code (its text segment, from the ELF header the
/// linker places at the start of the image to the end of the text) while the runtime serves a
/// call. The gates, the fast entry's last part and the `rdtsc` entry run with the program's mask
/// and hold nothing of the runtime's: a signal there is the program's, and deferring it would
/// leave it blocked.
fn in_runtime_code(ip: u64) -> bool {
    extern "C" {
        static __ehdr_start: u8;
        static etext: u8;
        static cloister_gates_end: u8;
    }
    // Only the addresses of these symbols are taken, never their bytes.
    let (start, end) = (&raw const __ehdr_start as u64, &raw const etext as u64);
    let gates = cloister_gate_traced as *const () as u64..&raw const cloister_gates_end as u64;
    (start..end).contains(&ip)
        && !gates.contains(&ip)
        && !crate::fast::unmasked(ip)
        && !crate::tsc::contains(ip)
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
    let kernel = kernel();
    // SAFETY: the host passes the live ucontext to an SA_SIGINFO handler.
    let mut frame = unsafe { Frame::new(uc) };
    if si_code != SYS_SECCOMP || si_errno != i32::from(kernel_host::redirect::TRAP_DATA) {
        forward::forward(kernel, sig, info, &mut frame, false);
        return;
    }
    let call = call_of(&frame, si_syscall as u32);
    let ip = frame.reg(reg::RIP);
    let started = trace::enabled().then(sys::monotonic_ns);
    let mem = SelfMemory;
    let mut task = TaskCtx::new(&mem, &RawHost, frame.sigmask(), frame.reg(reg::RSP));
    let disposition = kernel.handle(&mut task, call);
    let elapsed = started.map(|t| sys::monotonic_ns().wrapping_sub(t));
    frame.set_sigmask(task.sigmask);
    let cookie = elapsed.map(|ns| trace::call(&call, &mem, &disposition, ns));
    match disposition {
        Disposition::Return(v) => frame.set_reg(reg::RAX, v as u64),
        Disposition::Host(host) => via_gate(kernel, &mut frame, &task, host, cookie),
        Disposition::Fork(plan) => fork(kernel, &mut frame, plan, cookie),
        Disposition::Exec(plan) => match exec::call_for(&plan) {
            Some(host) => via_gate(kernel, &mut frame, &task, host, cookie),
            None => frame.set_reg(reg::RAX, kernel_host::Errno::ENOMEM.ret() as u64),
        },
    }
    if frame.had_no_altstack() {
        altstack::install_for_this_thread();
    }
    patch::after_trap(ip, call.nr, &call.args);
    // Last: the patcher probes pages, which faults on purpose.
    crate::held::release();
}

/// Words a gate reads at its stack pointer: return address, stack pointer, the timed gate's
/// three (result meaning "timed out", deadline, clock), the six argument registers to put
/// back, the trace result record (header, cookie, result), and where the timed gate writes
/// a `select`'s time left (address, 1 for a `timeval`).
const GATE_SLOTS: usize = 16;

/// Points the thread at the gate so that `host` runs in the program's context. The slots the
/// gate reads sit below the red zone and any scratch the kernel pushed.
fn via_gate(kernel: &Kernel, frame: &mut Frame, task: &TaskCtx<'_>, host: Syscall, cookie: Option<u64>) {
    let sp = frame.reg(reg::RSP);
    let new_sp = (sp - kernel_host::task::RED_ZONE - task.scratch_used - GATE_SLOTS as u64 * 8) & !15;
    // The words after the return address and stack pointer are the gate's own.
    let (timed, left) = match (task.after, kernel.virtual_clock_counter()) {
        (Some(AfterHost::AdvanceClockOnTimeout { timed_out, deadline, time_left }), Some(counter)) => (
            Some([timed_out as u64, deadline, counter as *const AtomicU64 as u64]),
            time_left.map_or([0; 2], |t| [t.addr, u64::from(t.micros)]),
        ),
        _ => (None, [0; 2]),
    };
    let gate = match (timed, cookie) {
        (Some(_), _) => cloister_gate_timed as *const () as u64,
        (None, Some(_)) => cloister_gate_traced as *const () as u64,
        (None, None) => cloister_gate_plain as *const () as u64,
    };
    let timed_words = timed.unwrap_or([0; 3]);
    let record = cookie.map_or([0; 3], |cookie| [(2u64 << 32) | 24, cookie, 0]);
    let regs = [reg::RDI, reg::RSI, reg::RDX, reg::R10, reg::R8, reg::R9];
    let mut slots = [0u64; GATE_SLOTS];
    slots[..5].copy_from_slice(&[frame.reg(reg::RIP), sp, timed_words[0], timed_words[1], timed_words[2]]);
    for (slot, r) in slots[5..11].iter_mut().zip(regs) {
        *slot = frame.reg(r);
    }
    slots[11..14].copy_from_slice(&record);
    slots[14..].copy_from_slice(&left);
    let mut bytes = [0u8; GATE_SLOTS * 8];
    for (i, s) in slots.iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&s.to_ne_bytes());
    }
    if let Err(e) = SelfMemory.write(new_sp, &bytes) {
        frame.set_reg(reg::RAX, e.ret() as u64);
        return;
    }
    for (r, v) in regs.iter().zip(host.args) {
        frame.set_reg(*r, v);
    }
    frame.set_reg(reg::RAX, u64::from(host.nr));
    frame.set_reg(reg::RSP, new_sp);
    frame.set_reg(reg::RIP, gate);
}

/// Forks inside the handler: parent and child both return from here, each with its result.
fn fork(kernel: &Kernel, frame: &mut Frame, plan: ForkPlan, cookie: Option<u64>) {
    let parent_tid = sys::call(nr::GETTID, &[]) as u32;
    kernel.prepare_fork();
    // Lock order: kernel, alternate stacks, exec layouts, patched sites, then the heap, which the others'
    // critical sections may allocate from.
    altstack::lock_for_fork();
    exec::lock_for_fork();
    patch::lock_for_fork();
    HEAP.lock_for_fork();
    let r = sys::syscall(plan.call.nr, plan.call.args);
    HEAP.unlock_after_fork();
    patch::unlock_after_fork();
    exec::unlock_after_fork();
    if r == 0 {
        let tid = sys::call(nr::GETTID, &[]) as u32;
        altstack::unlock_after_fork(Some((parent_tid, tid)));
        kernel.after_fork(ForkSide::Child { parent_tid, tid });
        if plan.child_stack != 0 {
            frame.set_reg(reg::RSP, plan.child_stack);
        }
    } else {
        altstack::unlock_after_fork(None);
        kernel.after_fork(ForkSide::Parent);
        if let Some(cookie) = cookie {
            trace::result(cookie, r);
        }
    }
    frame.set_reg(reg::RAX, r as u64);
}
