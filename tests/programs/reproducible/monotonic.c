/* The virtual clock is one counter for the whole sandbox: readings race between threads and
 * processes, so this program prints no clock values, only whether every reader saw its clocks
 * move forward. Two processes (the parent and a forked child) with two threads each read
 * CLOCK_MONOTONIC, CLOCK_BOOTTIME and CLOCK_REALTIME in a tight loop; each checks that its own
 * readings never go back, and the parent checks that its clock after the child ended is later
 * than the child's last reading. Prints key=value lines. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READS 20000

static const clockid_t clocks[] = {CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME};
#define NCLOCKS (sizeof clocks / sizeof clocks[0])

static int64_t ns(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Reads every clock READS times; returns 1 if none went back. `last` gets the final
 * CLOCK_MONOTONIC reading. */
static void *reader(void *last) {
    int64_t prev[NCLOCKS] = {0};
    intptr_t ok = 1;
    for (int i = 0; i < READS; i++) {
        for (unsigned c = 0; c < NCLOCKS; c++) {
            int64_t now = ns(clocks[c]);
            if (now < prev[c])
                ok = 0;
            prev[c] = now;
        }
    }
    *(int64_t *)last = prev[0];
    return (void *)ok;
}

/* Runs two readers at once; returns 1 if both saw their clocks move forward only. */
static int two_readers(int64_t *last) {
    int64_t a = 0, b = 0;
    pthread_t th;
    void *ok_thread;
    if (pthread_create(&th, NULL, reader, &a) != 0)
        return 0;
    void *ok_main = reader(&b);
    pthread_join(th, &ok_thread);
    *last = a > b ? a : b;
    return ok_main && ok_thread;
}

int main(void) {
    int64_t *child_last = mmap(NULL, sizeof *child_last, PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (child_last == MAP_FAILED)
        return 1;
    int64_t start = ns(CLOCK_MONOTONIC);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(two_readers(child_last) ? 0 : 3);
    int64_t parent_last;
    int parent_ok = two_readers(&parent_last);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return 1;
    int64_t end = ns(CLOCK_MONOTONIC);
    printf("parent_monotonic_ok=%d\n", parent_ok);
    printf("child_monotonic_ok=%d\n", WEXITSTATUS(status) == 0);
    printf("after_child_is_later=%d\n", end > *child_last && end > parent_last);
    /* Every read moved the shared clock, the child's too: at least one step per read. */
    printf("all_reads_counted=%d\n", end - start >= (int64_t)(4 * READS * NCLOCKS) * 1000);
    return 0;
}
