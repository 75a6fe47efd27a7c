/* Usage: signals EXPECTED_HOSTNAME
 * The program's own signal handlers keep working: SIGINT (raise, kill), SIGCHLD (from a
 * child's exit, waited for with sigsuspend), SIGALRM from a 1 ms interval timer arriving while
 * the program hammers uname() (the handler calls uname() too), EINTR from a blocking read and
 * from nanosleep, and a blocked, pending SIGUSR1 collected by sigtimedwait.
 * Prints key=value lines; every check prints 1 when it holds. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *expected;
static volatile sig_atomic_t n_int, n_chld, n_alrm, handler_bad;

static void on_int(int sig) {
    (void)sig;
    n_int++;
}

static void on_chld(int sig) {
    (void)sig;
    n_chld++;
}

static void on_alrm_calling_uname(int sig) {
    (void)sig;
    int saved = errno;
    struct utsname u;
    if (uname(&u) != 0 || strcmp(u.nodename, expected) != 0)
        handler_bad = 1;
    n_alrm++;
    errno = saved;
}

static void on_alrm(int sig) {
    (void)sig;
    n_alrm++;
}

static void install(int sig, void (*handler)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = flags;
    if (sigaction(sig, &sa, NULL) != 0)
        perror("sigaction");
}

static void timer(long first_us, long every_us) {
    struct itimerval it = {{0, every_us}, {0, first_us}};
    if (setitimer(ITIMER_REAL, &it, NULL) != 0)
        perror("setitimer");
}

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s EXPECTED_HOSTNAME\n", argv[0]);
        return 2;
    }
    expected = argv[1];

    install(SIGINT, on_int, 0);
    raise(SIGINT);
    kill(getpid(), SIGINT);
    printf("sigint=%d\n", (int)n_int);

    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    install(SIGCHLD, on_chld, SA_RESTART | SA_NOCLDSTOP);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(7);
    while (!n_chld)
        sigsuspend(&old);
    int status = 0;
    waitpid(pid, &status, 0);
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("sigchld=%d\n", (int)n_chld);
    printf("child_status=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);

    install(SIGALRM, on_alrm_calling_uname, SA_RESTART);
    timer(10000, 1000);
    long calls = 0, bad = 0;
    double start = seconds();
    while (seconds() - start < 0.3 || (n_alrm < 5 && seconds() - start < 20)) {
        struct utsname u;
        if (uname(&u) != 0 || strcmp(u.nodename, expected) != 0)
            bad++;
        calls++;
    }
    timer(0, 0);
    printf("sigalrm_during_calls=%d\n", n_alrm >= 5);
    printf("uname_ok=%d\n", bad == 0 && calls > 0);
    printf("handler_uname_ok=%d\n", !handler_bad);

    install(SIGALRM, on_alrm, 0); /* no SA_RESTART */
    int p[2];
    if (pipe(p) != 0)
        perror("pipe");
    char c;
    timer(10000, 0);
    ssize_t r = read(p[0], &c, 1);
    printf("read_eintr=%d\n", r == -1 && errno == EINTR);

    timer(10000, 0);
    struct timespec nap = {5, 0}, rem = {0, 0};
    int rc = nanosleep(&nap, &rem);
    printf("nanosleep_eintr=%d\n", rc == -1 && errno == EINTR && rem.tv_sec >= 3);

    sigset_t usr1, pending;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    raise(SIGUSR1);
    sigpending(&pending);
    printf("sigusr1_pending=%d\n", sigismember(&pending, SIGUSR1) == 1);
    struct timespec zero = {0, 0};
    printf("sigtimedwait=%d\n", sigtimedwait(&usr1, NULL, &zero) == SIGUSR1);
    return 0;
}
