// A raw `syscall` whose arguments the runtime rewrites (the path of /proc/self/exe, a
// sigaction's mask) must leave the argument registers as the kernel would: unchanged.
#include <signal.h>
#include <stdio.h>
#include <string.h>

static long raw4(long nr, long a, long b, long c, long d, long out[4]) {
    register long r10 __asm__("r10") = d;
    long ret;
    long di = a, si = b, dx = c;
    __asm__ volatile("syscall"
                     : "=a"(ret), "+D"(di), "+S"(si), "+d"(dx), "+r"(r10)
                     : "a"(nr)
                     : "rcx", "r11", "memory");
    out[0] = di, out[1] = si, out[2] = dx, out[3] = r10;
    return ret;
}

static void handler(int sig) { (void)sig; }

int main(void) {
    static const char path[] = "/proc/self/exe";
    long regs[4];
    long fd = raw4(257 /* openat */, -100, (long)path, 0 /* O_RDONLY */, 0, regs);
    int kept = regs[0] == -100 && regs[1] == (long)path && regs[2] == 0 && regs[3] == 0;
    printf("openat_ok=%d\nopenat_regs_kept=%d\n", fd >= 0, kept);

    struct { void *handler; unsigned long flags; void *restorer; unsigned long mask; } act;
    memset(&act, 0, sizeof act);
    act.handler = (void *)handler;
    act.mask = ~0UL;
    long r = raw4(13 /* rt_sigaction */, SIGUSR1, (long)&act, 0, 8, regs);
    kept = regs[0] == SIGUSR1 && regs[1] == (long)&act && regs[2] == 0 && regs[3] == 8;
    printf("sigaction_ok=%d\nsigaction_regs_kept=%d\n", r == 0, kept);
    return 0;
}
