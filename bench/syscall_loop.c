/* syscall_loop: ns per system call, best and median of several timed batches.
 *
 *   syscall_loop MODE BATCH_MS BATCHES
 *
 * MODE is one of
 *   getppid  raw syscall(SYS_getppid): never redirected by cloister
 *   uname    raw syscall(SYS_uname): redirected by cloister under --hostname
 *   trap     installs its own seccomp filter that returns SECCOMP_RET_TRAP for getppid and an
 *            empty SIGSYS handler, then loops on getppid: the bare cost of a trap + SIGSYS
 *            delivery + rt_sigreturn on this machine, with no work in the handler.
 *   filtered the same filter and handler, but trapping uname, then loops on getppid: what any
 *            seccomp filter costs a call it lets through (the kernel's own share of row 1).
 *   stat     stat(STAT_PATH): resolved by cloister's filesystem view
 *   open     open(STAT_PATH, O_RDONLY) + close: the open resolved by the view
 *            (either exits with status 1 if any call failed)
 *
 * The batch size is calibrated so one batch takes about BATCH_MS, which keeps the same
 * run time whether a call costs 50 ns (native) or 50 us (under strace).
 * Prints one line: "MIN_NS MEDIAN_NS NODENAME" (NODENAME is what uname returned, "-" otherwise,
 * so the caller can check the redirect was really in effect).
 */
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/audit.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

enum mode { GETPPID, UNAME, TRAP, FILTERED, STAT, OPEN };

/* A file every Debian system has, three directories deep, reached without a symlink. */
#define STAT_PATH "/usr/lib/os-release"


static struct utsname uts;
static volatile long sink;
static long failed; /* stat or open calls that returned an error: the row would be meaningless */

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static double run(enum mode m, long n)
{
    double t0 = now_ns();
    struct stat st;
    if (m == UNAME)
        for (long i = 0; i < n; i++)
            sink = syscall(SYS_uname, &uts);
    else if (m == STAT)
        for (long i = 0; i < n; i++)
            failed += stat(STAT_PATH, &st) != 0;
    else if (m == OPEN)
        for (long i = 0; i < n; i++) {
            int fd = open(STAT_PATH, O_RDONLY | O_CLOEXEC);
            failed += fd < 0;
            sink = close(fd);
        }
    else
        for (long i = 0; i < n; i++)
            sink = syscall(SYS_getppid);
    return now_ns() - t0;
}

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    (void)uc;
}

static void install_trap(int nr)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    if (sigaction(SIGSYS, &sa, NULL) != 0) {
        perror("sigaction");
        exit(1);
    }
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        perror("seccomp");
        exit(1);
    }
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s getppid|uname|trap|filtered|stat|open BATCH_MS BATCHES\n", argv[0]);
        return 2;
    }
    enum mode m;
    if (strcmp(argv[1], "getppid") == 0)
        m = GETPPID;
    else if (strcmp(argv[1], "uname") == 0)
        m = UNAME;
    else if (strcmp(argv[1], "trap") == 0)
        m = TRAP;
    else if (strcmp(argv[1], "filtered") == 0)
        m = FILTERED;
    else if (strcmp(argv[1], "stat") == 0)
        m = STAT;
    else if (strcmp(argv[1], "open") == 0)
        m = OPEN;
    else {
        fprintf(stderr, "syscall_loop: unknown mode %s\n", argv[1]);
        return 2;
    }
    double batch_ns = atof(argv[2]) * 1e6;
    int batches = atoi(argv[3]);
    if (batches < 1 || batches > 1000 || batch_ns <= 0) {
        fprintf(stderr, "syscall_loop: bad BATCH_MS or BATCHES\n");
        return 2;
    }
    if (m == TRAP)
        install_trap(SYS_getppid);
    else if (m == FILTERED)
        install_trap(SYS_uname);

    /* Calibrate (this also warms caches and the CPU's frequency). */
    long n = 64;
    double t;
    while ((t = run(m, n)) < batch_ns / 8 && n < (1L << 30))
        n *= 2;
    long iters = (long)((double)n * batch_ns / t);
    if (iters < 1)
        iters = 1;

    double per[1000];
    for (int b = 0; b < batches; b++)
        per[b] = run(m, iters) / (double)iters;
    if (failed) {
        fprintf(stderr, "syscall_loop: %ld of the %s calls on %s failed\n", failed, argv[1], STAT_PATH);
        return 1;
    }
    qsort(per, (size_t)batches, sizeof per[0], cmp);
    printf("%.1f %.1f %s\n", per[0], per[batches / 2], m == UNAME ? uts.nodename : "-");
    return 0;
}
