/* Usage: unhook EXPECTED_HOSTNAME
 * Everything a program can do by ordinary means that would unhook an in-process runtime:
 * its own SIGSYS handler, every signal blocked (libc and raw rt_sigprocmask), close_range(3,
 * ~0U), dup2 over every descriptor number, and a seccomp filter of its own. Afterwards the
 * program must see what it asked for, and uname() (in the main thread, a new thread and a
 * forked child) must still report EXPECTED_HOSTNAME. Prints key=value lines. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *expected;
static volatile sig_atomic_t program_sigsys;

static void on_sigsys(int sig) {
    (void)sig;
    program_sigsys++;
}

static int name_ok(void) {
    struct utsname u;
    return uname(&u) == 0 && strcmp(u.nodename, expected) == 0;
}

static void *thread_check(void *arg) {
    (void)arg;
    return (void *)(long)name_ok();
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s EXPECTED_HOSTNAME\n", argv[0]);
        return 2;
    }
    expected = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    memset(&old, 0, sizeof old);
    sa.sa_handler = on_sigsys;
    sigemptyset(&sa.sa_mask);
    printf("sigaction_set=%d\n", sigaction(SIGSYS, &sa, NULL) == 0);
    sigaction(SIGSYS, NULL, &old);
    printf("sigaction_seen=%d\n", old.sa_handler == on_sigsys);

    sigset_t all, cur;
    sigfillset(&all);
    printf("sigprocmask_set=%d\n", sigprocmask(SIG_BLOCK, &all, NULL) == 0);
    unsigned long raw_all = ~0UL;
    printf("rt_sigprocmask_set=%d\n",
           syscall(SYS_rt_sigprocmask, SIG_BLOCK, &raw_all, NULL, sizeof raw_all) == 0);
    sigemptyset(&cur);
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("sigsys_blocked_seen=%d\n", sigismember(&cur, SIGSYS) == 1);

    printf("close_range=%ld\n", syscall(SYS_close_range, 3, ~0U, 0));
    int still_open = 0;
    for (int fd = 3; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            still_open++;
    printf("open_fds_above_2=%d\n", still_open);
    int devnull = open("/dev/null", O_RDONLY);
    printf("lowest_free_fd=%d\n", devnull);

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    long limit = rl.rlim_cur > 4096 ? 4096 : (long)rl.rlim_cur;
    long dup_failures = 0;
    for (long fd = devnull + 1; fd < limit; fd++)
        if (dup2(devnull, (int)fd) != fd)
            dup_failures++;
    printf("dup2_everywhere=%d\n", dup_failures == 0);
    printf("close_range_again=%ld\n", syscall(SYS_close_range, 3, ~0U, 0));

    struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog prog = {1, allow};
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    printf("own_seccomp_filter=%d\n",
           syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0);

    printf("uname_ok=%d\n", name_ok());
    pthread_t t;
    void *r = NULL;
    if (pthread_create(&t, NULL, thread_check, NULL) == 0)
        pthread_join(t, &r);
    printf("thread_uname_ok=%ld\n", (long)r);
    pid_t pid = fork();
    if (pid == 0)
        _exit(name_ok() ? 0 : 1);
    int status = -1;
    waitpid(pid, &status, 0);
    printf("fork_uname_ok=%d\n", WIFEXITED(status) && WEXITSTATUS(status) == 0);

    memset(&old, 0, sizeof old);
    sigaction(SIGSYS, NULL, &old);
    printf("sigaction_still_seen=%d\n", old.sa_handler == on_sigsys);
    sigemptyset(&cur);
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("sigsys_still_blocked=%d\n", sigismember(&cur, SIGSYS) == 1);
    printf("program_sigsys=%d\n", (int)program_sigsys);
    return 0;
}
