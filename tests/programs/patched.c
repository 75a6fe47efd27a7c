// A call site in the shape libc's wrappers compile to (`mov eax, NR` then `syscall`), made hot
// so that the runtime patches it to enter the runtime without a trap (interposer/rt/src/
// patch.rs). Prints what a test compares with a native run:
//   patched     1 once the site's first byte is a jump (the runtime rewrote it); 0 natively
//   results_ok  every call at the site returned what libc's stat returns
//   regs_kept   the argument, vector and flag registers are as the call found them
//   threads_ok  four threads calling the site at once, while it is being patched
//   signals_ok  a timer's handler calling the site, on the thread's stack and on an
//               alternate stack, interrupting the loop
//   fork_ok     a child forked after the patch calls the site
//   mask_ok     a patched rt_sigprocmask site: a signal kept pending while blocked is handled
//               when the call unblocks it, before the call returns, as on Linux
//   cross_patched, cross_ok  the same where the `mov eax` straddles two 16-byte blocks: the
//               jump goes over the `mov r10d, 8` before it
//   at_patched  a newfstatat site, which the filter traps only for some arguments, patched
//   at_fd_ok    its calls on a descriptor (AT_EMPTY_PATH, not trapped) still reach the host
//   at_exe_ok   its calls on /proc/self/exe (trapped) still show the program, not the runtime
//   exec_patched, exec_ok  an execve site run by vfork children, as a shell's: patched (it
//               is trapped in every mode), each child ran /bin/true, and an exec of a missing
//               file came back to the child with ENOENT
//   wait_patched, wait_ok  a wait4 site waiting for those children: patched where wait4 is
//               trapped (reproducible mode), each wait reaped its child with its status, and
//               a wait a signal interrupts restarts (SA_RESTART) or fails with EINTR
// With the argument `spawns`, only the last two: the rest counts on timers that real time
// moves, which reproducible mode's clock does not.
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

// The body of a call site in libc's shape, `mov eax, NR; syscall`, at the 16-byte-aligned
// global label NAME, which a jump reaches so that the label starts the site.
#define SITE(name, nr)                                                                     \
    "jmp 2f\n.balign 16\n.globl " #name "\n" #name ":\n"                                   \
    "mov $" #nr ", %%eax\nsyscall\njmp 3f\n2:\njmp " #name "\n3:\n"

extern const unsigned char site_stat[];

static const char PATH[] = "/etc/passwd";
static ino_t want_ino;
static off_t want_size;

// stat(PATH) at the site; returns 1 when the result and every register it checks are right.
__attribute__((noinline)) static int call_site(void) {
    struct stat st;
    const char *path = PATH;
    void *buf = &st;
    long ret;
    register long dx __asm__("rdx") = 0x1111;
    register long r8 __asm__("r8") = 0x2222;
    register long r9 __asm__("r9") = 0x3333;
    register long r10 __asm__("r10") = 0x4444;
    register double x0 __asm__("xmm0") = 1.5;
    register double x7 __asm__("xmm7") = 2.5;
    register double x8 __asm__("xmm8") = 3.5;
    register double x15 __asm__("xmm15") = 4.5;
    unsigned long flags;
    __asm__ volatile(
        "jmp 2f\n"
        ".balign 16\n"
        ".globl site_stat\n"
        "site_stat:\n"
        "mov $4, %%eax\n"
        "syscall\n"
        "jmp 3f\n"
        "2:\n"
        "stc\n"
        "jmp site_stat\n"
        "3:\n"
        "pushfq\n"
        "pop %[flags]\n"
        : "=&a"(ret), "+D"(path), "+S"(buf), "+r"(dx), "+r"(r8), "+r"(r9), "+r"(r10), "+x"(x0),
          "+x"(x7), "+x"(x8), "+x"(x15), [flags] "=&r"(flags)
        :
        : "rcx", "r11", "memory", "cc");
    int kept = path == PATH && buf == &st && dx == 0x1111 && r8 == 0x2222 && r9 == 0x3333 &&
               r10 == 0x4444 && x0 == 1.5 && x7 == 2.5 && x8 == 3.5 && x15 == 4.5 && (flags & 1);
    if (!kept) {
        return 2;
    }
    return ret == 0 && st.st_ino == want_ino && st.st_size == want_size;
}

extern const unsigned char site_mask[];
extern const unsigned char site_at[];
extern const unsigned char site_exec[];
extern const unsigned char site_wait[];

// execve(path, argv, envp) at a site of libc's shape; returns the negated errno on failure.
__attribute__((noinline)) static long exec_site(const char *path, char *const argv[], char *const envp[]) {
    long ret;
    __asm__ volatile(
        SITE(site_exec, 59)
        : "=&a"(ret), "+D"(path), "+S"(argv), "+d"(envp)
        :
        : "rcx", "r11", "memory", "cc");
    return ret;
}

// wait4(pid, status, options, NULL) at a site of libc's shape.
__attribute__((noinline)) static long wait_site(long pid, int *status, long options) {
    long ret;
    register long r10 __asm__("r10") = 0;
    __asm__ volatile(
        SITE(site_wait, 61)
        : "=&a"(ret), "+D"(pid), "+S"(status), "+d"(options), "+r"(r10)
        :
        : "rcx", "r11", "memory", "cc");
    return ret;
}

extern char **environ;

// A vfork child that execs `argv` through the exec site (exit status 100 + errno if that
// fails), waited for through the wait site; returns the child's exit status and counts the
// waits a signal interrupted, or -1.
static int spawn_wait(char *const argv[], int *eintr) {
    pid_t pid = vfork();
    if (pid == 0) {
        long r = exec_site(argv[0], argv, environ);
        _exit(100 + (int)-r);
    }
    int status = 0;
    long r;
    while ((r = wait_site(pid, &status, 0)) == -4 /* EINTR */) {
        ++*eintr;
    }
    return r == pid && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static volatile sig_atomic_t pokes;
static void on_poke(int sig) {
    (void)sig;
    pokes++;
}

// The exec and wait sites, each called from vfork children as a shell would.
static void spawns(void) {
    int exec_ok = 1, eintr = 0;
    char *true_argv[] = {"/bin/true", NULL};
    char *missing_argv[] = {"/nonexistent/program", NULL};
    for (int i = 0; i < 12; i++) {
        exec_ok &= spawn_wait(true_argv, &eintr) == 0;
        exec_ok &= spawn_wait(missing_argv, &eintr) == 100 + 2 /* ENOENT */;
    }
    printf("exec_patched=%d\n", site_exec[0] == 0xe9);
    printf("exec_ok=%d\n", exec_ok && eintr == 0);
    // A child that signals this process 100 ms into its life and ends 100 ms later: with
    // SA_RESTART the wait restarts, without it the signal interrupts it once.
    int wait_ok = 1;
    for (int restart = 1; restart >= 0; restart--) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_poke;
        sa.sa_flags = restart ? SA_RESTART : 0;
        sigaction(SIGUSR2, &sa, NULL);
        char *argv[] = {"/bin/sh", "-c", "sleep 0.1; kill -USR2 $PPID; sleep 0.1", NULL};
        pokes = 0;
        eintr = 0;
        wait_ok &= spawn_wait(argv, &eintr) == 0 && pokes == 1 && eintr == (restart ? 0 : 1);
    }
    signal(SIGUSR2, SIG_DFL);
    printf("wait_patched=%d\n", site_wait[0] == 0xe9);
    printf("wait_ok=%d\n", wait_ok);
}

// newfstatat(dirfd, path, buf, flags) at a site of libc's shape.
__attribute__((noinline)) static long at_site(long dirfd, const char *path, void *buf, long flags) {
    long ret;
    register long r10 __asm__("r10") = flags;
    __asm__ volatile(
        SITE(site_at, 262)
        : "=&a"(ret), "+D"(dirfd), "+S"(path), "+d"(buf), "+r"(r10)
        :
        : "rcx", "r11", "memory", "cc");
    return ret;
}

// rt_sigprocmask(how, set, old, 8) at a site of libc's shape.
__attribute__((noinline)) static long mask_site(long how, const sigset_t *set, sigset_t *old) {
    long ret;
    register long r10 __asm__("r10") = 8;
    __asm__ volatile(
        SITE(site_mask, 14)
        : "=&a"(ret), "+D"(how), "+S"(set), "+d"(old), "+r"(r10)
        :
        : "rcx", "r11", "memory", "cc");
    return ret;
}

// The same call where the `mov eax` straddles two 16-byte blocks, after glibc's
// `mov r10d, 8` (as in its pthread_sigmask): the jump goes over the `mov r10d` instead, and
// the stub sets r10d itself.
extern const unsigned char site_cross[];
__attribute__((noinline)) static long cross_site(long how, const sigset_t *set, sigset_t *old) {
    long ret;
    __asm__ volatile(
        "jmp 2f\n"
        ".balign 16\n"
        ".skip 7, 0x90\n"
        ".globl site_cross\n"
        "site_cross:\n"
        "mov $8, %%r10d\n"
        "mov $14, %%eax\n"
        "syscall\n"
        "jmp 3f\n"
        "2:\n"
        "jmp site_cross\n"
        "3:\n"
        : "=&a"(ret), "+D"(how), "+S"(set), "+d"(old)
        :
        : "rcx", "r10", "r11", "memory", "cc");
    return ret;
}

static volatile sig_atomic_t usr1_seen;

static void on_usr1(int sig) {
    (void)sig;
    usr1_seen = 1;
}

// Blocks and unblocks SIGUSR1 50 times through the rt_sigprocmask `site`, raising it while
// blocked: 1 if every call did what it said and the signal came when unblocked, not before.
static int mask_check(long (*site)(long, const sigset_t *, sigset_t *)) {
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    int ok = 1;
    for (int i = 0; i < 50; i++) {
        usr1_seen = 0;
        sigset_t old;
        ok &= site(SIG_BLOCK, &usr1, &old) == 0 && !sigismember(&old, SIGUSR1);
        raise(SIGUSR1);
        ok &= !usr1_seen;
        ok &= site(SIG_UNBLOCK, &usr1, &old) == 0 && sigismember(&old, SIGUSR1);
        ok &= usr1_seen;
    }
    return ok;
}

static volatile sig_atomic_t handler_bad, handler_runs;

static void on_alarm(int sig) {
    (void)sig;
    handler_runs++;
    if (call_site() != 1) {
        handler_bad = 1;
    }
}

static void *worker(void *arg) {
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        if (call_site() != 1) {
            return (void *)1;
        }
    }
    return NULL;
}

// Calls the site n times; returns 1 if every call was right, 2 if registers were lost.
static int loop(int n) {
    for (int i = 0; i < n; i++) {
        int r = call_site();
        if (r != 1) {
            return r == 2 ? 2 : 0;
        }
    }
    return 1;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "spawns") == 0) {
        spawns();
        return 0;
    }
    const char *argv0 = argv[0];
    struct stat st;
    if (stat(PATH, &st) != 0) {
        perror("stat");
        return 1;
    }
    want_ino = st.st_ino;
    want_size = st.st_size;

    // Threads first, so that they race the patch itself.
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        pthread_create(&t[i], NULL, worker, NULL);
    }
    int threads_ok = 1;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        threads_ok &= r == NULL;
    }

    int r = loop(1000);
    printf("patched=%d\n", site_stat[0] == 0xe9);
    printf("results_ok=%d\n", r != 0);
    printf("regs_kept=%d\n", r != 2);
    printf("threads_ok=%d\n", threads_ok);

    // A timer whose handler calls the site, first on the thread's stack, then on an
    // alternate stack of the program's own.
    int signals_ok = 1;
    for (int onstack = 0; onstack < 2; onstack++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_alarm;
        sa.sa_flags = SA_RESTART | (onstack ? SA_ONSTACK : 0);
        sigaction(SIGALRM, &sa, NULL);
        if (onstack) {
            stack_t ss = {.ss_sp = malloc(1 << 16), .ss_size = 1 << 16};
            sigaltstack(&ss, NULL);
        }
        handler_runs = 0;
        struct itimerval it = {{0, 200}, {0, 200}};
        setitimer(ITIMER_REAL, &it, NULL);
        while (handler_runs < 200) {
            signals_ok &= loop(100) == 1;
        }
        struct itimerval off = {{0, 0}, {0, 0}};
        setitimer(ITIMER_REAL, &off, NULL);
    }
    printf("signals_ok=%d\n", signals_ok && !handler_bad);

    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        _exit(loop(100) == 1 ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("fork_ok=%d\n", WIFEXITED(status) && WEXITSTATUS(status) == 0);

    signal(SIGUSR1, on_usr1);
    int mask_ok = mask_check(mask_site);
    printf("mask_patched=%d\n", site_mask[0] == 0xe9);
    printf("mask_ok=%d\n", mask_ok);
    int cross_ok = mask_check(cross_site);
    printf("cross_patched=%d\n", site_cross[0] == 0xe9);
    printf("cross_ok=%d\n", cross_ok);

    int fd = open(PATH, O_RDONLY);
    int self = open(argv0, O_RDONLY);
    struct stat me;
    int at_fd_ok = fd >= 0, at_exe_ok = self >= 0 && fstat(self, &me) == 0;
    for (int i = 0; i < 40; i++) {
        struct stat by_fd, exe;
        at_fd_ok &= at_site(fd, "", &by_fd, AT_EMPTY_PATH) == 0 && by_fd.st_ino == want_ino;
        at_exe_ok &= at_site(AT_FDCWD, "/proc/self/exe", &exe, 0) == 0 && exe.st_size == me.st_size;
    }
    printf("at_patched=%d\n", site_at[0] == 0xe9);
    printf("at_fd_ok=%d\n", at_fd_ok);
    printf("at_exe_ok=%d\n", at_exe_ok);
    spawns();
    return 0;
}
