/* Timers across fork, as Linux has them: interval and POSIX timers stay the parent's, a timer
 * descriptor is one file (one timer, one expiration count) that parent and child share. And a
 * parent blocked in waitpid is interrupted by its own timers' signals while its child runs.
 * Prints key=value lines; the same lines natively and under cloister (with or without
 * --fast-sleep), where they must also repeat run after run.
 *
 * The parent arms a timer descriptor (first expiry at 100 ms, then every 400 ms: 100, 500,
 * 900...), an interval timer (SIGALRM at 300 ms) and a POSIX timer (SIGUSR1 at 200 ms), then
 * forks. The child reads the descriptor (the 100 ms expiry: count 1), sleeps 600 ms, checks it
 * got none of its parent's signals nor timers, and reads the descriptor again (the 500 ms
 * expiry alone, counted once although two processes hold the descriptor). The parent waits for
 * the child with handlers that do not restart: the POSIX timer's signal, then the interval
 * timer's, interrupt the wait (EINTR) before the child ends.
 *
 *   child_tfd        count, count of the child's two reads
 *   child_signals    SIGALRM and SIGUSR1 the child received (none)
 *   child_itimer     what getitimer(ITIMER_REAL) shows in the child (nothing)
 *   parent_waits     what each waitpid returned, in order (EINTR twice, then the child)
 *   parent_signals   signals the parent's handlers ran for, in order
 *   parent_tfd_left  what is left to read in the descriptor after the child ended (nothing)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char seen[16];
static volatile sig_atomic_t nseen;

static void on_signal(int sig) {
    if (nseen < (sig_atomic_t)sizeof seen - 1) {
        seen[nseen++] = sig == SIGALRM ? 'A' : sig == SIGUSR1 ? 'U' : '?';
    }
}

static void catch(int sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: a signal interrupts waitpid */
    sigaction(sig, &sa, NULL);
}

static uint64_t read_count(int fd) {
    uint64_t count = 0;
    if (read(fd, &count, sizeof count) != sizeof count) {
        return 0;
    }
    return count;
}

static int child(int tfd) {
    uint64_t first = read_count(tfd);
    struct timespec req = {0, 600000000};
    while (nanosleep(&req, &req) != 0 && errno == EINTR) {
    }
    struct itimerval it;
    getitimer(ITIMER_REAL, &it);
    uint64_t second = read_count(tfd);
    printf("child_tfd=%llu,%llu\n", (unsigned long long)first, (unsigned long long)second);
    printf("child_signals=%s\n", nseen ? seen : "none");
    printf("child_itimer=%ld.%06ld\n", (long)it.it_value.tv_sec, (long)it.it_value.tv_usec);
    return 0;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    catch(SIGALRM);
    catch(SIGUSR1);
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec every = {.it_interval = {0, 400000000}, .it_value = {0, 100000000}};
    timerfd_settime(tfd, 0, &every, NULL);
    struct itimerval alarm_at = {.it_interval = {0, 0}, .it_value = {0, 300000}};
    setitimer(ITIMER_REAL, &alarm_at, NULL);
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR1;
    timer_t posix;
    timer_create(CLOCK_MONOTONIC, &ev, &posix);
    struct itimerspec usr1_at = {.it_interval = {0, 0}, .it_value = {0, 200000000}};
    timer_settime(posix, 0, &usr1_at, NULL);

    pid_t pid = fork();
    if (pid == 0) {
        _exit(child(tfd));
    }
    char waits[64] = "";
    int status = 0;
    for (int i = 0; i < 4; i++) {
        pid_t r = waitpid(pid, &status, 0);
        strcat(waits, i ? "," : "");
        strcat(waits, r == pid ? "child" : r < 0 && errno == EINTR ? "EINTR" : "other");
        if (r == pid) {
            break;
        }
    }
    printf("parent_waits=%s\n", waits);
    printf("parent_signals=%s\n", nseen ? seen : "none");
    printf("child_status=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    /* The child ended at about 700 ms, after it read the 500 ms expiry; the next is at 900 ms. */
    fcntl(tfd, F_SETFL, O_NONBLOCK);
    uint64_t left = 0;
    ssize_t n = read(tfd, &left, sizeof left);
    printf("parent_tfd_left=%s\n", n < 0 && errno == EAGAIN ? "none" : "some");
    return 0;
}
