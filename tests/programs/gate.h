/* gate.h: how the escape-test programs (gate_escape.c, gate_meta.c) reach past the
 * filesystem view: they jump into cloister-rt's gate, the `syscall` instruction the redirect
 * filter trusts, at the runtime's entry point plus 16. */
#ifndef CLOISTER_TEST_GATE_H
#define CLOISTER_TEST_GATE_H

#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static unsigned long gate;
/* The gate's frame: each thread its own, so that threads may use the gate at once. */
static __thread unsigned long gate_frame[64];

/* Finds the gate from the runtime's ELF header; prints why and returns -1 when it cannot. */
static int find_gate(const char *runtime)
{
    Elf64_Ehdr eh;
    int fd = open(runtime, O_RDONLY);
    if (fd < 0 || read(fd, &eh, sizeof eh) != sizeof eh) {
        perror(runtime);
        return -1;
    }
    close(fd);
    gate = eh.e_entry + 16;
    return 0;
}

/* The gate runs `syscall`, then `mov rcx, [rsp]; mov rsp, [rsp + 8]; jmp rcx`: it returns to
 * the address at the stack pointer, with the stack pointer saved after it. r12 carries the
 * frame, since all six argument registers may be in use. Returns the raw result (-errno). */
__attribute__((noinline)) static long via_gate(long nr, long a, long b, long c, long d, long e)
{
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
