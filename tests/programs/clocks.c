/* Every way to read the realtime clock (libc through the vDSO when there is one, and raw
 * syscalls), then checks that the monotonic clocks never go backwards and that a sleep
 * advances the realtime clock. Prints key=value lines. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double ts(struct timespec t) { return (double)t.tv_sec + (double)t.tv_nsec / 1e9; }

int main(void) {
    struct timespec t;
    struct timeval tv;

    printf("time=%lld\n", (long long)time(NULL));
    gettimeofday(&tv, NULL);
    printf("gettimeofday=%lld\n", (long long)tv.tv_sec);
    clock_gettime(CLOCK_REALTIME, &t);
    printf("realtime=%lld\n", (long long)t.tv_sec);
    clock_gettime(CLOCK_REALTIME_COARSE, &t);
    printf("realtime_coarse=%lld\n", (long long)t.tv_sec);
    syscall(SYS_clock_gettime, CLOCK_REALTIME, &t);
    printf("realtime_syscall=%lld\n", (long long)t.tv_sec);
    syscall(SYS_gettimeofday, &tv, NULL);
    printf("gettimeofday_syscall=%lld\n", (long long)tv.tv_sec);
    printf("time_syscall=%lld\n", (long long)syscall(SYS_time, NULL));

    static const clockid_t monotonic[] = {CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW,
                                          CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME};
    int ok = 1;
    for (unsigned c = 0; c < sizeof monotonic / sizeof monotonic[0]; c++) {
        double last = 0;
        for (int i = 0; i < 20000; i++) {
            clock_gettime(monotonic[c], &t);
            if (ts(t) < last) {
                printf("clock %d went back: %.9f < %.9f\n", monotonic[c], ts(t), last);
                ok = 0;
            }
            last = ts(t);
        }
    }
    printf("monotonic_ok=%d\n", ok);

    struct timespec before, after, mono_before, mono_after;
    clock_gettime(CLOCK_REALTIME, &before);
    clock_gettime(CLOCK_MONOTONIC, &mono_before);
    struct timespec nap = {0, 20 * 1000 * 1000};
    nanosleep(&nap, NULL);
    clock_gettime(CLOCK_REALTIME, &after);
    clock_gettime(CLOCK_MONOTONIC, &mono_after);
    printf("realtime_advances=%d\n", ts(after) - ts(before) >= 0.019);
    printf("monotonic_advances=%d\n", ts(mono_after) - ts(mono_before) >= 0.019);
    return 0;
}
