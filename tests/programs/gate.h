/* gate.h: how the escape-test programs (gate_escape.c, gate_meta.c, tests/escape/...) reach past
 * the filesystem view: they jump into cloister-rt's gate, the `syscall` instruction the redirect
 * filter trusts, at the runtime's entry point plus 16.
 *
 * Under --backend ptrace there is no gate: no cloister code is in the process, and no
 * instruction is trusted. find_gate then finds the gate's bytes missing from the address the
 * runtime's ELF header names, and via_gate makes the same call from this program's own `syscall`
 * instruction instead. That is the strongest bypass a program has there: the tracer stops it like
 * any other call (and serves it through the view) or the floor refuses it. find_gate prints which
 * it found, `gate=cloister-rt` or `gate=none`, so that a test can check that the attempts went
 * the way its backend should make them go. (So a program built with this header runs outside a
 * sandbox too, making every call itself: never run one so, least of all as root.)
 *
 * Why look at the process's memory, and not at an argument or a variable the test passes: a
 * program that thought it had a gate it has not would crash at the first attempt, and one that
 * missed a gate it has would test the view instead of the floor. Only the bytes at the address say
 * which it is; the pipe below reads them without faulting when nothing is mapped there. */
#ifndef CLOISTER_TEST_GATE_H
#define CLOISTER_TEST_GATE_H

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The gate's instructions: `syscall; mov rcx, [rsp]; mov rsp, [rsp + 8]; jmp rcx`
 * (interposer/src/runtime.rs checks the same bytes in the runtime's file). */
static const unsigned char GATE_BYTES[13] = {0x0f, 0x05, 0x48, 0x8b, 0x0c, 0x24, 0x48,
                                             0x8b, 0x64, 0x24, 0x08, 0xff, 0xe1};

/* The gate's address in this process, 0 when there is none (--backend ptrace). */
static unsigned long gate;
/* The gate's frame: each thread its own, so that threads may use the gate at once. */
static __thread unsigned long gate_frame[64];

/* Whether AT holds the gate's bytes in this process. The kernel copies them into a pipe, so an
 * address where nothing is mapped is EFAULT, not a crash. */
static int gate_mapped(unsigned long at)
{
    int p[2];
    unsigned char seen[sizeof GATE_BYTES];
    if (pipe(p) != 0)
        return 0;
    int same = write(p[1], (const void *)at, sizeof seen) == (long)sizeof seen &&
               read(p[0], seen, sizeof seen) == (long)sizeof seen && memcmp(seen, GATE_BYTES, sizeof seen) == 0;
    close(p[0]);
    close(p[1]);
    return same;
}

/* Finds the gate from the runtime's ELF header and prints `gate=cloister-rt` when this process
 * holds it, `gate=none` when it does not; prints why and returns -1 when the runtime's file
 * cannot be read. */
static int find_gate(const char *runtime)
{
    Elf64_Ehdr eh;
    int fd = open(runtime, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, &eh, sizeof eh) != sizeof eh) {
        perror(runtime);
        return -1;
    }
    close(fd);
    gate = gate_mapped(eh.e_entry + 16) ? eh.e_entry + 16 : 0;
    printf("gate=%s\n", gate ? "cloister-rt" : "none");
    fflush(stdout);
    return 0;
}

/* The call from this program's own `syscall` instruction: via_gate's way when there is no gate,
 * and the way a program's "direct" attempts are made (escape.h, net_escape.c). */
static long own_syscall(long nr, long a, long b, long c, long d, long e)
{
    register long rax __asm__("rax") = nr;
    register long rdi __asm__("rdi") = a;
    register long rsi __asm__("rsi") = b;
    register long rdx __asm__("rdx") = c;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = 0;
    __asm__ volatile("syscall"
                     : "+r"(rax)
                     : "r"(rdi), "r"(rsi), "r"(rdx), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return rax;
}

/* The gate runs `syscall`, then `mov rcx, [rsp]; mov rsp, [rsp + 8]; jmp rcx`: it returns to
 * the address at the stack pointer, with the stack pointer saved after it. r12 carries the
 * frame, since all six argument registers may be in use. Returns the raw result (-errno).
 * Without a gate, the same call from the program's own `syscall` (see the top of this file). */
__attribute__((noinline)) static long via_gate(long nr, long a, long b, long c, long d, long e)
{
    if (!gate)
        return own_syscall(nr, a, b, c, d, e);
    register long rax __asm__("rax") = nr;
    register long rdi __asm__("rdi") = a;
    register long rsi __asm__("rsi") = b;
    register long rdx __asm__("rdx") = c;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = 0; /* a sixth argument, 0 for the calls that take one */
    register unsigned long r11 __asm__("r11") = gate;
    register unsigned long *r12 __asm__("r12") = &gate_frame[32];
    __asm__ volatile("lea 1f(%%rip), %%rcx\n"
                     "mov %%rcx, (%%r12)\n"
                     "mov %%rsp, 8(%%r12)\n"
                     "mov %%r12, %%rsp\n"
                     "jmp *%%r11\n"
                     "1:\n"
                     : "+r"(rax), "+r"(rdi), "+r"(rsi), "+r"(rdx), "+r"(r10), "+r"(r8), "+r"(r11), "+r"(r12)
                     : "r"(r9)
                     : "rcx", "memory");
    return rax;
}

#endif
