//! The fast entry: how a patched call site reaches the kernel without a signal.
//!
//! A trap costs a signal delivery and a `rt_sigreturn`, about 2 µs on our machines, twice a
//! native `stat`. Once a call site has trapped often enough, [`crate::patch`] rewrites its
//! `mov eax, NR` into a jump to a stub that calls [`cloister_fast_entry`]. The entry does by
//! hand what the host does for a signal handler, and only that:
//!
//! 1. saves the registers a system call preserves (the arguments, the flags, `xmm0`–`xmm15`,
//!    which the runtime's code may use while code around an inlined `syscall` keeps values
//!    in them) in a frame below the program's red zone;
//! 2. blocks every signal the handlers block (`rt_sigprocmask`), so that no program handler
//!    runs while the kernel holds a lock;
//! 3. moves to the thread's alternate signal stack, where the handlers run too, so a call
//!    from a small stack does not overflow it. A thread without one, or one already on it
//!    (inside a signal handler), takes the old road: the entry puts everything back and jumps
//!    to the site's own `syscall`, which traps;
//! 4. runs the kernel ([`cloister_fast_dispatch`]), then puts the program's mask back;
//! 5. makes the host call the kernel asked for, if any, from the runtime's code (so the
//!    redirect filter lets it through) with the program's mask and on the program's stack
//!    below the scratch the kernel wrote (the mask comes back there too, so a signal it lets
//!    in cannot land on a rewritten argument), so that it can block, be interrupted and be
//!    restarted like the call the program made;
//! 6. restores the registers and returns behind the site's `syscall`.
//!
//! One call skips steps 2–5: in reproducible mode, a `clock_gettime` of a realtime or monotonic
//! clock while the process has no timer that could fire ([`kernel_host::ClockWords`]) is a step
//! of the sandbox's clock and two stores, made right here with the program's own mask, as the
//! `rdtsc` entry does ([`crate::tsc`]): no host call, where the road through the kernel makes
//! three of its own (the mask twice, the alternate stack). Python reads the monotonic clock
//! about two thousand times in an import of a few modules. The stores into the program's
//! `timespec` may fault: [`clock_fix_up`] turns that into `EFAULT`, as the kernel would.
//!
//! Only the calls [`kernel_host::redirect::served_in_place`] names are ever patched: their
//! dispositions are a value or one host call (an exec's laid out into one), nothing that
//! needs the trap's frame.

use core::arch::global_asm;
use core::mem::offset_of;

use core::sync::atomic::{AtomicU64, Ordering};
use kernel_host::abi::{sigbit, SIGBUS, SIGSEGV};
use kernel_host::time::{MAX_ELAPSED, MONOTONIC_BASE_NS, STEP_NS};
use kernel_host::{Disposition, Errno, Kernel, Syscall, TaskCtx};

use crate::guest::{RawHost, SelfMemory};

/// The frame the entry builds on the program's stack. The assembly reads and writes it at the
/// offsets below; the dispatcher sees it as this struct.
#[repr(C)]
pub struct FastFrame {
    /// The call number (from the site's `mov eax`).
    nr: u64,
    /// The six argument registers, as the program set them: restored on the way out.
    args: [u64; 6],
    /// The program's `rbx`, which the entry uses to find this frame.
    rbx: u64,
    /// The program's signal mask, saved by the entry's `rt_sigprocmask`.
    old_mask: u64,
    /// `stack_t` of the thread's alternate stack: base, flags, size.
    altstack: [u64; 3],
    /// The mask to return with.
    mask_after: u64,
    /// 0: return `result`; 1: make the call in `host`.
    action: u64,
    /// The value to return.
    result: u64,
    /// The host call: number, then six arguments.
    host: [u64; 7],
    /// The stack pointer for the host call: below any scratch the kernel wrote.
    host_sp: u64,
}

/// Bytes the entry reserves for the frame, rounded up to keep the stack 16-byte aligned.
const FRAME_BYTES: usize = (core::mem::size_of::<FastFrame>() + 15) & !15;

/// What the entry blocks while the kernel runs: what the handlers' `sa_mask` blocks.
static BLOCKED: u64 = !(sigbit(SIGSEGV) | sigbit(SIGBUS));

extern "C" {
    /// Where every stub calls; never called from Rust.
    fn cloister_fast_entry();
}

/// The words of [`kernel_host::ClockWords`] the entry's clock read uses: 0 in the first
/// outside reproducible mode, where every call takes the road through the kernel.
#[no_mangle]
static CLOISTER_CLOCK_WORDS: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];
// The entry compares the expiry word with -1: that must be what "no timer armed" is.
const _: () = assert!(kernel_host::timer::NEVER == u64::MAX);
/// Indices into [`CLOISTER_CLOCK_WORDS`].
const CLOCK: usize = 0;
const SEEN: usize = 1;
const TIMERS_NEXT: usize = 2;
const TIMER_FDS: usize = 3;
const EPOCH: usize = 4;

/// Lets the entry serve clock reads itself, with `kernel`'s clock. Called at start-up, before
/// the program runs.
pub fn arm_clock(kernel: &'static Kernel) {
    let Some(w) = kernel.clock_words() else { return };
    let words = &CLOISTER_CLOCK_WORDS;
    words[SEEN].store(w.seen as *const AtomicU64 as u64, Ordering::Relaxed);
    words[TIMERS_NEXT].store(w.timers_next as *const AtomicU64 as u64, Ordering::Relaxed);
    words[TIMER_FDS].store(w.timer_fds as *const _ as u64, Ordering::Relaxed);
    words[EPOCH].store(w.epoch_ns, Ordering::Relaxed);
    // Last: the entry looks at this word first.
    words[CLOCK].store(w.clock as *const AtomicU64 as u64, Ordering::Release);
}

/// The address stubs call.
pub fn entry() -> u64 {
    cloister_fast_entry as *const () as u64
}

// On entry: rsp = program rsp - 128 (red zone) - 8, [rsp] = address of the stub's word that
// holds the return address (just after the site's `syscall`) as an offset from that word
// (`kernel_host::x86::syscall_stub`); eax = the call number; the
// arguments in their registers. rcx and r11 are the program's to lose, as with `syscall`.
global_asm!(
    ".globl cloister_fast_entry",
    "cloister_fast_entry:",
    "pushfq",
    "cld",
    "sub rsp, {frame}",
    "mov [rsp + {nr}], rax",
    "mov [rsp + {args}], rdi",
    "mov [rsp + {args} + 8], rsi",
    "mov [rsp + {args} + 16], rdx",
    "mov [rsp + {args} + 24], r10",
    "mov [rsp + {args} + 32], r8",
    "mov [rsp + {args} + 40], r9",
    "mov [rsp + {rbx}], rbx",
    "mov rbx, rsp",
    // Does the redirect filter trap this call? The stub's data (after the return address it
    // pushed: the site's resumption, the entry, then the test) says on which arguments. A call
    // it would let through goes to the host from the site's own `syscall`, untouched.
    "mov rcx, [rbx + {frame} + 8]",
    "mov r11d, [rcx + 16]",
    "test r11d, r11d",
    "jz 5f",
    "mov eax, [rcx + 20]",
    "mov rax, [rbx + {args} + rax * 8]",
    "cmp r11d, 1",
    "jne 3f",
    // MaskClear: trapped when none of the mask's bits is set.
    "test rax, [rcx + 24]",
    "jz 5f",
    "jmp 9f",
    "3:",
    "cmp r11d, 2",
    "jne 4f",
    // InRange: trapped when lo <= the argument's low 32 bits <= hi.
    "cmp eax, [rcx + 24]",
    "jb 9f",
    "cmp eax, [rcx + 28]",
    "ja 9f",
    "jmp 5f",
    // NonZero: trapped when the argument is not zero.
    "4:",
    "test rax, rax",
    "jz 9f",
    "5:",
    "cmp qword ptr [rbx + {nr}], {clock_gettime}",
    "je cloister_fast_clock",
    ".globl cloister_fast_masked",
    "cloister_fast_masked:",
    // rt_sigprocmask(SIG_SETMASK, &BLOCKED, &old_mask, 8)
    "mov eax, 14",
    "mov edi, 2",
    "lea rsi, [rip + {blocked}]",
    "lea rdx, [rbx + {old_mask}]",
    "mov r10d, 8",
    "syscall",
    // Up to here the thread holds nothing of the runtime's: a signal is the program's
    // (`trap::in_runtime_code`).
    ".globl cloister_fast_blocked",
    "cloister_fast_blocked:",
    // sigaltstack(NULL, &altstack): usable unless disabled (2) or in use (1).
    "mov eax, 131",
    "xor edi, edi",
    "lea rsi, [rbx + {altstack}]",
    "syscall",
    "test rax, rax",
    "jnz 8f",
    "test dword ptr [rbx + {altstack} + 8], 3",
    "jnz 8f",
    "mov rax, [rbx + {altstack}]",
    "add rax, [rbx + {altstack} + 16]",
    "and rax, -16",
    "mov rsp, rax",
    "sub rsp, 256",
    "movups [rsp], xmm0",
    "movups [rsp + 16], xmm1",
    "movups [rsp + 32], xmm2",
    "movups [rsp + 48], xmm3",
    "movups [rsp + 64], xmm4",
    "movups [rsp + 80], xmm5",
    "movups [rsp + 96], xmm6",
    "movups [rsp + 112], xmm7",
    "movups [rsp + 128], xmm8",
    "movups [rsp + 144], xmm9",
    "movups [rsp + 160], xmm10",
    "movups [rsp + 176], xmm11",
    "movups [rsp + 192], xmm12",
    "movups [rsp + 208], xmm13",
    "movups [rsp + 224], xmm14",
    "movups [rsp + 240], xmm15",
    "mov rdi, rbx",
    "call {dispatch}",
    "movups xmm0, [rsp]",
    "movups xmm1, [rsp + 16]",
    "movups xmm2, [rsp + 32]",
    "movups xmm3, [rsp + 48]",
    "movups xmm4, [rsp + 64]",
    "movups xmm5, [rsp + 80]",
    "movups xmm6, [rsp + 96]",
    "movups xmm7, [rsp + 112]",
    "movups xmm8, [rsp + 128]",
    "movups xmm9, [rsp + 144]",
    "movups xmm10, [rsp + 160]",
    "movups xmm11, [rsp + 176]",
    "movups xmm12, [rsp + 192]",
    "movups xmm13, [rsp + 208]",
    "movups xmm14, [rsp + 224]",
    "movups xmm15, [rsp + 240]",
    // Below the scratch the kernel wrote (a rewritten path, a sigaction) before any signal can
    // come: the frame of one delivered as the mask comes back must not land on it.
    "mov rsp, [rbx + {host_sp}]",
    // rt_sigprocmask(SIG_SETMASK, &mask_after, NULL, 8)
    "mov eax, 14",
    "mov edi, 2",
    "lea rsi, [rbx + {mask_after}]",
    "xor edx, edx",
    "mov r10d, 8",
    "syscall",
    // From here on the thread holds nothing of the runtime's: a signal is the program's
    // (`trap::in_runtime_code`).
    ".globl cloister_fast_unmasked",
    "cloister_fast_unmasked:",
    "mov rax, [rbx + {result}]",
    "cmp qword ptr [rbx + {action}], 0",
    "je 2f",
    "mov rax, [rbx + {host}]",
    "mov rdi, [rbx + {host} + 8]",
    "mov rsi, [rbx + {host} + 16]",
    "mov rdx, [rbx + {host} + 24]",
    "mov r10, [rbx + {host} + 32]",
    "mov r8, [rbx + {host} + 40]",
    "mov r9, [rbx + {host} + 48]",
    // The program's call, made from here: the host may interrupt and restart it.
    "syscall",
    "2:",
    "cloister_fast_return:",
    "mov rsp, rbx",
    "mov rdi, [rsp + {args}]",
    "mov rsi, [rsp + {args} + 8]",
    "mov rdx, [rsp + {args} + 16]",
    "mov r10, [rsp + {args} + 24]",
    "mov r8, [rsp + {args} + 32]",
    "mov r9, [rsp + {args} + 40]",
    "mov rbx, [rsp + {rbx}]",
    "add rsp, {frame}",
    // r11 holds the flags after a `syscall`, as the host leaves them.
    "mov r11, [rsp]",
    // The stub's word holds the site's resumption as an offset from the word itself.
    "mov rcx, [rsp + 8]",
    "add rcx, [rcx]",
    "popfq",
    "lea rsp, [rsp + 8 + 128]",
    "jmp rcx",
    // No usable alternate stack: put everything back and let the site's `syscall` trap.
    "8:",
    "mov eax, 14",
    "mov edi, 2",
    "lea rsi, [rbx + {old_mask}]",
    "xor edx, edx",
    "mov r10d, 8",
    "syscall",
    // A call the filter does not trap joins here, the mask untouched.
    "9:",
    "mov rax, [rsp + {nr}]",
    "mov rdi, [rsp + {args}]",
    "mov rsi, [rsp + {args} + 8]",
    "mov rdx, [rsp + {args} + 16]",
    "mov r10, [rsp + {args} + 24]",
    "mov r8, [rsp + {args} + 32]",
    "mov r9, [rsp + {args} + 40]",
    "mov rbx, [rsp + {rbx}]",
    "add rsp, {frame}",
    "mov rcx, [rsp + 8]",
    "add rcx, [rcx]",
    "popfq",
    "lea rcx, [rcx - 2]",
    "lea rsp, [rsp + 8 + 128]",
    "jmp rcx",
    // clock_gettime(clock, tp) in reproducible mode, with the program's mask, calling nothing:
    // only while no timer could fire, for the clocks whose reading is a base plus the elapsed
    // time; anything else goes the road through the kernel. The step is `VirtualClock::tick`'s:
    // next = min(now +sat STEP, max(MAX, now)), by compare-and-swap; seen = next.
    "cloister_fast_clock:",
    "mov r9, [rip + CLOISTER_CLOCK_WORDS + {clock_w}]",
    "test r9, r9",
    "jz cloister_fast_masked",
    "mov rax, [rip + CLOISTER_CLOCK_WORDS + {next_w}]",
    "cmp qword ptr [rax], -1",
    "jne cloister_fast_masked",
    "mov rax, [rip + CLOISTER_CLOCK_WORDS + {fds_w}]",
    "cmp byte ptr [rax], 0",
    "jne cloister_fast_masked",
    // CLOCK_REALTIME 0, _COARSE 5: the epoch; CLOCK_MONOTONIC 1, _RAW 4, _COARSE 6,
    // CLOCK_BOOTTIME 7: the monotonic base. The rest (CPU clocks, alarms, TAI, invalid ids)
    // are the kernel's to answer.
    "mov rax, [rbx + {args}]",
    "cmp rax, 7",
    "ja cloister_fast_masked",
    "mov ecx, eax",
    "mov edx, 1",
    "shl edx, cl",
    "test edx, 0x21",
    "jnz 11f",
    "test edx, 0xd2",
    "jz cloister_fast_masked",
    "mov r8, {mono_base}",
    "jmp 12f",
    "11:",
    "mov r8, [rip + CLOISTER_CLOCK_WORDS + {epoch_w}]",
    "12:",
    "mov rax, [r9]",
    "13:",
    "mov rdx, rax",
    "add rdx, {step}",
    "jnc 14f",
    "mov rdx, -1",
    "14:",
    "mov rcx, {max}",
    "cmp rax, rcx",
    "cmova rcx, rax",
    "cmp rdx, rcx",
    "cmova rdx, rcx",
    "lock cmpxchg [r9], rdx",
    "jne 13b",
    "mov rcx, [rip + CLOISTER_CLOCK_WORDS + {seen_w}]",
    "mov [rcx], rdx",
    // The reading, saturating, as seconds and nanoseconds.
    "mov rax, r8",
    "add rax, rdx",
    "jnc 15f",
    "mov rax, -1",
    "15:",
    "xor edx, edx",
    "mov ecx, 1000000000",
    "div rcx",
    "mov rdi, [rbx + {args} + 8]",
    ".globl cloister_fast_clock_store",
    "cloister_fast_clock_store:",
    "mov [rdi], rax",
    "mov [rdi + 8], rdx",
    ".globl cloister_fast_clock_stored",
    "cloister_fast_clock_stored:",
    "xor eax, eax",
    "jmp cloister_fast_return",
    ".globl cloister_fast_clock_efault",
    "cloister_fast_clock_efault:",
    "mov rax, -14",
    "jmp cloister_fast_return",
    ".globl cloister_fast_end",
    "cloister_fast_end:",
    frame = const FRAME_BYTES,
    nr = const offset_of!(FastFrame, nr),
    args = const offset_of!(FastFrame, args),
    rbx = const offset_of!(FastFrame, rbx),
    old_mask = const offset_of!(FastFrame, old_mask),
    altstack = const offset_of!(FastFrame, altstack),
    mask_after = const offset_of!(FastFrame, mask_after),
    action = const offset_of!(FastFrame, action),
    result = const offset_of!(FastFrame, result),
    host = const offset_of!(FastFrame, host),
    host_sp = const offset_of!(FastFrame, host_sp),
    blocked = sym BLOCKED,
    dispatch = sym cloister_fast_dispatch,
    clock_gettime = const 228,
    clock_w = const CLOCK * 8,
    seen_w = const SEEN * 8,
    next_w = const TIMERS_NEXT * 8,
    fds_w = const TIMER_FDS * 8,
    epoch_w = const EPOCH * 8,
    mono_base = const MONOTONIC_BASE_NS,
    step = const STEP_NS,
    max = const MAX_ELAPSED,
);

/// Runs the kernel for the call in `frame` and says what the entry does next.
///
/// # Safety
/// Called only by [`cloister_fast_entry`], with `frame` pointing at the frame it built.
unsafe extern "C" fn cloister_fast_dispatch(frame: *mut FastFrame) {
    // SAFETY: as for `dispatch`, whose contract is this one.
    unsafe { dispatch(frame) };
    // Where nothing of the runtime's can fault any more: signals sent meanwhile arrive as the
    // entry puts the program's mask back.
    crate::held::release();
}

/// [`cloister_fast_dispatch`] but for the signals it holds back.
///
/// # Safety
/// `frame` points at the frame the entry built.
unsafe fn dispatch(frame: *mut FastFrame) {
    // SAFETY: the entry passes its own frame, live until it returns.
    let frame = unsafe { &mut *frame };
    let call = Syscall { nr: frame.nr as u32, args: frame.args };
    let mem = SelfMemory;
    let kernel = crate::trap::kernel();
    let mut task = TaskCtx::new(&mem, &RawHost, frame.old_mask, frame as *const FastFrame as u64);
    let disposition = kernel.handle(&mut task, call);
    frame.mask_after = task.sigmask;
    let below = kernel_host::task::RED_ZONE + task.scratch_used;
    frame.host_sp = (frame as *const FastFrame as u64 - below) & !15;
    let host = match disposition {
        Disposition::Return(v) => {
            frame.action = 0;
            frame.result = v as u64;
            return;
        }
        Disposition::Host(host) if task.after.is_none() => host,
        // The exec's strings go in a mapping of their own, as on the trap path.
        Disposition::Exec(plan) => match crate::exec::call_for(&plan) {
            Some(host) => host,
            None => {
                frame.action = 0;
                frame.result = Errno::ENOMEM.ret() as u64;
                return;
            }
        },
        // `served_in_place` names no call that answers otherwise; should one start to, the
        // program learns of it rather than the runtime running half of it.
        _ => {
            frame.action = 0;
            frame.result = Errno::ENOSYS.ret() as u64;
            return;
        }
    };
    frame.action = 1;
    frame.host[0] = u64::from(host.nr);
    frame.host[1..].copy_from_slice(&host.args);
}

extern "C" {
    static cloister_fast_blocked: u8;
    static cloister_fast_unmasked: u8;
    static cloister_fast_end: u8;
    static cloister_fast_clock_store: u8;
    static cloister_fast_clock_stored: u8;
    static cloister_fast_clock_efault: u8;
}

/// Where the thread goes on when the entry's clock read faulted on the program's `timespec`
/// at `ip`: the path that returns `EFAULT`. `None` for any other `ip`.
pub fn clock_fix_up(ip: u64) -> Option<u64> {
    // Only the labels' addresses are taken, never their bytes.
    let stores = &raw const cloister_fast_clock_store as u64..&raw const cloister_fast_clock_stored as u64;
    stores.contains(&ip).then_some(&raw const cloister_fast_clock_efault as u64)
}

/// Whether `ip` lies in the fast entry's code that runs with the program's own mask, so that a
/// signal there is the program's: before the entry blocks signals (its tests, the clock read),
/// and after the kernel finished and released everything. Held back like one that arrives
/// while the kernel runs, it would stay blocked: the mask the entry saves and puts back would
/// include it.
pub fn unmasked(ip: u64) -> bool {
    // Only the addresses of these labels are taken, never their bytes.
    let before = entry()..&raw const cloister_fast_blocked as u64;
    let after = &raw const cloister_fast_unmasked as u64..&raw const cloister_fast_end as u64;
    before.contains(&ip) || after.contains(&ip)
}
