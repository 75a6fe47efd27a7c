/* gate_escape: bypasses the filesystem view the way a hostile program could. It jumps into
 * cloister-rt's gate (the `syscall` the redirect filter trusts, at the runtime's entry point
 * plus 16) to make calls the filter would otherwise trap, and prints each result:
 *
 *   gate_escape RUNTIME WRITE_PATH READ_PATH
 *
 *   write=ERRNO_NAME|opened   openat(WRITE_PATH, O_WRONLY|O_CREAT) through the gate
 *   read=ERRNO_NAME|opened    openat(READ_PATH, O_RDONLY) through the gate
 *
 * Under the untrusted policy the Landlock floor must refuse both (EACCES): the view is not
 * what stops them here, the host kernel is. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static unsigned long gate;
static unsigned long frame[64];

/* The gate runs `syscall`, then `mov rcx, [rsp]; mov rsp, [rsp + 8]; jmp rcx`: it returns to
 * the address at the stack pointer, with the stack pointer saved after it. */
__attribute__((noinline)) static long via_gate(long nr, long a, long b, long c, long d)
{
    register long rax __asm__("rax") = nr;
    register long rdi __asm__("rdi") = a;
    register long rsi __asm__("rsi") = b;
    register long rdx __asm__("rdx") = c;
    register long r10 __asm__("r10") = d;
    register unsigned long r11 __asm__("r11") = gate;
    register unsigned long *r8 __asm__("r8") = &frame[32];
    __asm__ volatile("lea 1f(%%rip), %%rcx\n"
                     "mov %%rcx, (%%r8)\n"
                     "mov %%rsp, 8(%%r8)\n"
                     "mov %%r8, %%rsp\n"
                     "jmp *%%r11\n"
                     "1:\n"
                     : "+r"(rax), "+r"(rdi), "+r"(rsi), "+r"(rdx), "+r"(r10), "+r"(r11), "+r"(r8)
                     :
                     : "rcx", "memory");
    return rax;
}

static const char *outcome(long r)
{
    if (r >= 0)
        return "opened";
    return -r == EACCES ? "EACCES" : -r == EPERM ? "EPERM" : -r == ENOENT ? "ENOENT" : strerror((int)-r);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: gate_escape RUNTIME WRITE_PATH READ_PATH\n");
        return 2;
    }
    Elf64_Ehdr eh;
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0 || read(fd, &eh, sizeof eh) != sizeof eh) {
        perror(argv[1]);
        return 2;
    }
    close(fd);
    gate = eh.e_entry + 16;
    printf("write=%s\n", outcome(via_gate(SYS_openat, AT_FDCWD, (long)argv[2], O_WRONLY | O_CREAT, 0644)));
    printf("read=%s\n", outcome(via_gate(SYS_openat, AT_FDCWD, (long)argv[3], O_RDONLY, 0)));
    return 0;
}
