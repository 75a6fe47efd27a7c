/* rt_overwrite: takes cloister-rt's place in its own process. It finds the runtime's mappings
 * in /proc/self/maps, makes a page of the runtime's code writable and writes a `syscall; ret`
 * of its own there (which the redirect filter then trusts, as it trusts everything in that
 * range), maps fresh code of its own over another page of it, and finally overwrites all of the
 * runtime's writable data. After each step it makes, from code it wrote, the calls the floor
 * exists to refuse:
 *
 *   rt_overwrite RUNTIME SECRET HOST_FILE
 *
 *   text=START-END data=N              the runtime's code range and how many data mappings
 *   STEP_trusted=yes|no                whether the host kernel answered the planted code (it
 *                                      names cloister-rt as /proc/self/exe) rather than the
 *                                      runtime (which names the program)
 *   mprotect_direct|mprotect_gate=E    making the code page writable, trapped and through the gate
 *   STEP_read=E|read:N:BYTES           openat + read of SECRET (a hidden file)
 *   STEP_write=E|done                  openat(HOST_FILE, O_WRONLY | O_CREAT) and a write
 *   STEP_packet=E|done                 socket(AF_PACKET, SOCK_RAW)
 *   STEP_mount=E|done                  mount of a tmpfs on /mnt
 *   STEP_unshare_mount=E|done          unshare(CLONE_NEWUSER | CLONE_NEWNS), then a tmpfs mount
 *   trapped_after_clobber=exit:N|signal:N   a child that makes a redirected call (it traps into
 *                                           the runtime whose data is overwritten)
 *
 * STEP is patched (code written into the runtime's page), remapped (code mapped over the
 * runtime's page) and clobbered (patched, after the runtime's data was overwritten). After the
 * first write into the runtime nothing here uses libc for a system call: everything goes
 * through the planted code, output included.
 *
 * Under --backend ptrace no cloister-rt is mapped (`text=none`) and there is nothing to take
 * over: the program plants its `syscall; ret` in a fresh page of its own instead and makes the
 * same attempts from there (STEP `fresh`), which the tracer stops like any other call. */
#include "escape.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/if_ether.h>
#include <arpa/inet.h>
#include <unistd.h>

static unsigned long text_start, text_end;
static unsigned long data_start[8], data_end[8];
static int n_data;
static unsigned long stub;

/* Calls the planted `syscall; ret` at `stub`: a system call made from the runtime's range. */
__attribute__((noinline)) static long planted(long nr, long a, long b, long c, long d, long e)
{
    register long rax __asm__("rax") = nr;
    register long rdi __asm__("rdi") = a;
    register long rsi __asm__("rsi") = b;
    register long rdx __asm__("rdx") = c;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = 0;
    register unsigned long rbx __asm__("rbx") = stub;
    /* The call pushes a return address: step over the red zone first, keep the stack aligned. */
    __asm__ volatile("sub $128, %%rsp\n"
                     "call *%%rbx\n"
                     "add $128, %%rsp\n"
                     : "+r"(rax), "+r"(rdi), "+r"(rsi), "+r"(rdx), "+r"(r10), "+r"(r8), "+r"(r9)
                     : "r"(rbx)
                     : "rcx", "r11", "memory");
    return rax;
}

/* printf through the planted code. */
static void say(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        planted(SYS_write, 1, (long)line, n < (int)sizeof line ? n : (int)sizeof line - 1, 0, 0);
}

static const char *secret, *host_file;

/* The calls the floor must refuse, made from the planted code. */
static void attempts(const char *step)
{
    /* Whether the host answers the planted code: it says the process runs cloister-rt, where
     * the in-process kernel would name the program. */
    char exe[512];
    long n = planted(SYS_readlinkat, AT_FDCWD, (long)"/proc/self/exe", (long)exe, sizeof exe - 1, 0);
    exe[n > 0 ? n : 0] = 0;
    say("%s_trusted=%s\n", step, strstr(exe, "cloister-rt") ? "yes" : "no");
    long fd = planted(SYS_openat, AT_FDCWD, (long)secret, O_RDONLY | O_CLOEXEC, 0, 0);
    if (fd < 0) {
        say("%s_read=%s\n", step, outcome(fd));
    } else {
        char buf[96];
        long n = planted(SYS_read, fd, (long)buf, sizeof buf - 1, 0, 0);
        planted(SYS_close, fd, 0, 0, 0, 0);
        for (long i = 0; i < n; i++)
            if (buf[i] < 0x20 || buf[i] > 0x7e)
                buf[i] = '.';
        buf[n > 0 ? n : 0] = 0;
        say("%s_read=read:%ld:%s\n", step, n, buf);
    }
    fd = planted(SYS_openat, AT_FDCWD, (long)host_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644, 0);
    long r = fd < 0 ? fd : planted(SYS_write, fd, (long)"ESCAPED\n", 8, 0, 0);
    if (fd >= 0)
        planted(SYS_close, fd, 0, 0, 0, 0);
    say("%s_write=%s\n", step, outcome(r));
    fd = planted(SYS_socket, AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL), 0, 0);
    if (fd >= 0)
        planted(SYS_close, fd, 0, 0, 0, 0);
    say("%s_packet=%s\n", step, outcome(fd));
    say("%s_mount=%s\n", step, outcome(planted(SYS_mount, (long)"none", (long)"/mnt", (long)"tmpfs", 0, 0)));
    /* In a child, so that the namespaces do not stay with the rest of the program. */
    long pid = planted(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) {
        long u = planted(SYS_unshare, CLONE_NEWUSER | CLONE_NEWNS, 0, 0, 0, 0);
        if (u == 0)
            u = planted(SYS_mount, (long)"none", (long)"/mnt", (long)"tmpfs", 0, 0);
        say("%s_unshare_mount=%s\n", step, outcome(u));
        planted(SYS_exit_group, 0, 0, 0, 0, 0);
    }
    int status = 0;
    planted(SYS_wait4, pid, (long)&status, 0, 0, 0);
}

/* Without a runtime in the process (ptrace): the same attempts from code planted in a fresh
 * page, the nearest a program comes to code of its own that something might trust. */
static int fresh_code(void)
{
    long at = direct(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1);
    printf("fresh=%s\n", outcome(at));
    fflush(stdout);
    if (at < 0 && at > -4096)
        return 0;
    stub = (unsigned long)at + 64;
    memcpy((void *)stub, "\x0f\x05\xc3", 3); /* syscall; ret */
    attempts("fresh");
    return 0;
}

/* Reads the runtime's mappings: its code (r-xp) and its writable data (rw-p). */
static int find_runtime(void)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps)
        return -1;
    char line[4096];
    while (fgets(line, sizeof line, maps)) {
        if (!strstr(line, "/cloister-rt"))
            continue;
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3)
            continue;
        if (strcmp(perms, "r-xp") == 0) {
            text_start = lo;
            text_end = hi;
        } else if (perms[1] == 'w' && n_data < 8) {
            data_start[n_data] = lo;
            data_end[n_data++] = hi;
        }
    }
    fclose(maps);
    return text_end > text_start + 3 * 4096 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: rt_overwrite RUNTIME SECRET HOST_FILE\n");
        return 2;
    }
    if (find_gate(argv[1]) != 0)
        return 2;
    secret = argv[2];
    host_file = argv[3];
    if (find_runtime() != 0) {
        printf("text=none\n");
        fflush(stdout);
        return gate ? 0 : fresh_code();
    }
    printf("text=%lx-%lx data=%d\n", text_start, text_end, n_data);
    fflush(stdout);

    /* Beside the gate: its page is surely in the range the redirect filter trusts. */
    unsigned long page = gate & ~4095UL;
    long r = direct(SYS_mprotect, page, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, 0, 0);
    printf("mprotect_direct=%s\n", outcome(r));
    if (r != 0)
        r = via_gate(SYS_mprotect, page, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, 0, 0);
    printf("mprotect_gate=%s\n", outcome(r));
    fflush(stdout);
    if (r != 0)
        return 0;
    stub = gate + 32;
    memcpy((void *)stub, "\x0f\x05\xc3", 3); /* syscall; ret */
    attempts("patched");

    /* Fresh code of its own, mapped over the next page of the runtime's (munmap + mmap
     * MAP_FIXED). */
    unsigned long other = page + 4096;
    long at = planted(SYS_mmap, other, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1);
    say("remap=%s\n", outcome(at));
    if (at == (long)other) {
        unsigned long patched = stub;
        stub = other + 64;
        memcpy((void *)stub, "\x0f\x05\xc3", 3);
        attempts("remapped");
        stub = patched;
    }

    /* Everything the runtime keeps (its allocator, its kernel's tables, the policy it was
     * handed) overwritten with junk, the planted code's page aside. */
    for (int i = 0; i < n_data; i++) {
        long p = planted(SYS_mprotect, data_start[i], data_end[i] - data_start[i], PROT_READ | PROT_WRITE, 0, 0);
        if (p == 0)
            memset((void *)data_start[i], 0xa5, data_end[i] - data_start[i]);
    }
    say("clobbered=%d\n", n_data);
    attempts("clobbered");

    /* A redirected call now traps into a runtime whose state is junk: whatever it does, it
     * does under the floor. In a child, since it may well crash. */
    long pid = planted(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) {
        long fd = direct(SYS_openat, AT_FDCWD, (long)secret, O_RDONLY, 0, 0);
        char buf[96];
        long n = fd < 0 ? fd : direct(SYS_read, fd, (long)buf, sizeof buf - 1, 0, 0);
        for (long i = 0; i < n; i++)
            if (buf[i] < 0x20 || buf[i] > 0x7e)
                buf[i] = '.';
        if (n >= 0) {
            buf[n] = 0;
            say("trapped_read=read:%ld:%s\n", n, buf);
        } else {
            say("trapped_read=%s\n", outcome(n));
        }
        planted(SYS_exit_group, 0, 0, 0, 0, 0);
    }
    int status = 0;
    planted(SYS_wait4, pid, (long)&status, 0, 0, 0);
    if (WIFSIGNALED(status))
        say("trapped_after_clobber=signal:%d\n", WTERMSIG(status));
    else
        say("trapped_after_clobber=exit:%d\n", WEXITSTATUS(status));
    planted(SYS_exit_group, 0, 0, 0, 0, 0);
    return 0;
}
