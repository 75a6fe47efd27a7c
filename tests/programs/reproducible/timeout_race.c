/* coreutils `timeout`, as its two generations wait, with the race that made it flaky in
 * reproducible mode opened wide: after forking its command and arming its timer, the parent
 * spins in user space (no system call, so no time passes on the virtual clock) long enough for
 * the child to sleep and end first on the host (the child spins a quarter as long before it
 * sleeps, as `timeout` takes a while to exec `sleep`). On the virtual clock, and natively, the timer
 * still expires first: `timeout 1 sleep 5` must say 124 whatever the host ran first.
 *
 *   nohang        timeout 9.x: SIGALRM blocked, waitpid(WNOHANG), sigsuspend to wait
 *   blocking      timeout 8.x: SIGALRM caught (SA_RESTART), a blocking waitpid
 *   child_first   the command ends before the timer (timeout 5 sleep 1): 0, not 124
 *
 * Each prints the status `timeout` would exit with. Usage: timeout_race [spins]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t timed_out;
static pid_t monitored;
static long spins = 300000000;

static void cleanup(int sig) {
    if (sig == SIGALRM) {
        timed_out = 1;
    }
    if (monitored > 0) {
        kill(monitored, SIGTERM);
    }
}

static void spin(long n) {
    for (volatile long i = 0; i < n; i++) {
    }
}

static void on(int sig, void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    sigaction(sig, &sa, NULL);
}

static void nothing(int sig) {
    (void)sig;
}

/* Runs `sleep` for `sleep_s` seconds under a timer of `limit_s`, and returns the status. */
static int run(int limit_s, int sleep_s, int nohang) {
    timed_out = 0;
    on(SIGALRM, cleanup);
    on(SIGCHLD, nothing);
    monitored = fork();
    if (monitored == 0) {
        /* Long enough for the parent to arm its timer first (as exec'ing `sleep` takes). */
        spin(spins / 4);
        struct timespec req = {sleep_s, 0};
        nanosleep(&req, NULL);
        _exit(0);
    }
    timer_t t;
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGALRM;
    timer_create(CLOCK_REALTIME, &ev, &t);
    struct itimerspec spec = {.it_interval = {0, 0}, .it_value = {limit_s, 0}};
    timer_settime(t, 0, &spec, NULL);
    int status = 0;
    sigset_t block, orig;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    sigaddset(&block, SIGCHLD);
    if (nohang) {
        sigprocmask(SIG_BLOCK, &block, &orig);
        spin(spins);
        while (waitpid(monitored, &status, WNOHANG) == 0) {
            sigsuspend(&orig);
        }
    } else {
        spin(spins);
        while (waitpid(monitored, &status, 0) < 0 && errno == EINTR) {
        }
        sigprocmask(SIG_BLOCK, &block, &orig);
    }
    /* As timeout decides, before a signal still pending could change its mind. */
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    code = timed_out ? 124 : code;
    timer_delete(t);
    monitored = 0;
    sigprocmask(SIG_SETMASK, &orig, NULL);
    return code;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1) {
        spins = atol(argv[1]);
    }
    printf("nohang=%d\n", run(1, 5, 1));
    printf("blocking=%d\n", run(1, 5, 0));
    printf("child_first=%d\n", run(5, 1, 1));
    return 0;
}
