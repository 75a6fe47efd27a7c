/* Clock reads once their call site is patched: the runtime's fast entry serves a read of a
 * realtime or monotonic clock itself while no timer could fire, and hands every other read to
 * the kernel. This program checks, in one thread, that the two roads agree:
 *   - steps:    20,000 reads of CLOCK_MONOTONIC, each exactly one step (1 µs) after the last,
 *               and CLOCK_REALTIME, CLOCK_BOOTTIME and CLOCK_MONOTONIC_RAW on the same count;
 *   - efault:   a `timespec` at an unmapped address or on a read-only page is EFAULT, every
 *               time, and the page is left as it was;
 *   - alarm:    with ITIMER_REAL armed for 5 ms, the read that reaches the expiry is the one
 *               after which SIGALRM arrives (the reads in between are checkpoints), and once it
 *               has fired the reads step on as before;
 *   - handler:  a read inside a signal handler that interrupted reads takes the next step.
 * Prints key=value lines, the same on every run. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>

static int64_t ns(clockid_t clock) {
    struct timespec t;
    if (clock_gettime(clock, &t) != 0)
        return -1;
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static volatile sig_atomic_t alarms;
static volatile int64_t in_handler;

static void on_alarm(int sig) {
    (void)sig;
    alarms++;
}

static void on_usr1(int sig) {
    (void)sig;
    in_handler = ns(CLOCK_MONOTONIC);
}

int main(void) {
    /* steps */
    int64_t prev = ns(CLOCK_MONOTONIC), first = prev;
    long uneven = 0;
    for (int i = 0; i < 20000; i++) {
        int64_t now = ns(CLOCK_MONOTONIC);
        if (now - prev != 1000)
            uneven++;
        prev = now;
    }
    printf("steps_uneven=%ld\nspan_us=%lld\n", uneven, (long long)((prev - first) / 1000));
    int64_t real = ns(CLOCK_REALTIME), boot = ns(CLOCK_BOOTTIME), raw = ns(CLOCK_MONOTONIC_RAW);
    printf("others=%lld %lld %lld\n", (long long)(real - prev), (long long)(boot - prev),
           (long long)(raw - prev));

    /* efault */
    long efaults = 0;
    for (int i = 0; i < 2000; i++) {
        errno = 0;
        if (clock_gettime(CLOCK_MONOTONIC, (struct timespec *)8) == -1 && errno == EFAULT)
            efaults++;
    }
    unsigned char *page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    long ro = 0;
    for (int i = 0; i < 2000; i++) {
        errno = 0;
        if (clock_gettime(CLOCK_REALTIME, (struct timespec *)page) == -1 && errno == EFAULT)
            ro++;
    }
    int untouched = page[0] == 0 && memcmp(page, page + 1, 15) == 0;
    printf("efault=%ld\nreadonly=%ld\nuntouched=%d\n", efaults, ro, untouched);

    /* alarm */
    signal(SIGALRM, on_alarm);
    struct itimerval t = {.it_value = {.tv_usec = 5000}};
    setitimer(ITIMER_REAL, &t, NULL);
    long reads = 0;
    while (!alarms && reads < 1000000) {
        ns(CLOCK_MONOTONIC);
        reads++;
    }
    int64_t a = ns(CLOCK_MONOTONIC), b = ns(CLOCK_MONOTONIC);
    printf("alarm_after_reads=%ld\nalarms=%d\nthen_step=%lld\n", reads, (int)alarms, (long long)(b - a));

    /* handler */
    signal(SIGUSR1, on_usr1);
    int64_t before = ns(CLOCK_MONOTONIC);
    raise(SIGUSR1);
    int64_t after = ns(CLOCK_MONOTONIC);
    printf("handler_read=%lld\nafter=%lld\n", (long long)(in_handler - before),
           (long long)(after - before));
    return 0;
}
