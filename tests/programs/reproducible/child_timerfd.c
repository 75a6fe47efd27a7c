/* A forked child fires the timer descriptor it shares with its parent. The parent arms a
 * timerfd (100 ms), forks, and blocks in a read of a pipe, a wait no virtual timer cuts; the
 * child sleeps 200 ms and reads the descriptor, whose expiry the clock has passed, then tells
 * the parent through the pipe. Natively and under cloister the child reads one expiration;
 * a child that could not fire its parent's timer would wait forever.
 *
 *   child_read   the child's count
 *   parent_left  what is left to read in the descriptor afterwards (nothing)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec at = {.it_value = {0, 100000000}};
    timerfd_settime(tfd, 0, &at, NULL);
    int p[2];
    if (pipe(p) != 0) {
        return 1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec nap = {0, 200000000};
        nanosleep(&nap, NULL);
        uint64_t count = 0;
        ssize_t n = read(tfd, &count, sizeof count);
        char line[64];
        int len = snprintf(line, sizeof line, "child_read=%lld\n", n == 8 ? (long long)count : -1LL);
        write(p[1], line, (size_t)len);
        _exit(0);
    }
    close(p[1]);
    char line[64];
    ssize_t n = read(p[0], line, sizeof line);
    if (n > 0) {
        fwrite(line, 1, (size_t)n, stdout);
    }
    waitpid(pid, NULL, 0);
    fcntl(tfd, F_SETFL, O_NONBLOCK);
    uint64_t left = 0;
    n = read(tfd, &left, sizeof left);
    printf("parent_left=%s\n", n < 0 && errno == EAGAIN ? "none" : "some");
    return 0;
}
