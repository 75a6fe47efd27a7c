/* Usage: execthread EXPECTED_HOSTNAME
 * exec from a multi-threaded process: one thread sleeps, another keeps calling uname(), and
 * the main thread then execs `uname -n` (found on PATH). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static const char *expected;
static volatile int hammering;

static void *sleeper(void *arg) {
    (void)arg;
    for (;;) {
        struct timespec t = {10, 0};
        nanosleep(&t, NULL);
    }
    return NULL;
}

static void *hammer(void *arg) {
    (void)arg;
    for (;;) {
        struct utsname u;
        if (uname(&u) != 0 || strcmp(u.nodename, expected) != 0) {
            fprintf(stderr, "hammer: uname says %s\n", u.nodename);
            _exit(1);
        }
        hammering = 1;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s EXPECTED_HOSTNAME\n", argv[0]);
        return 2;
    }
    expected = argv[1];
    pthread_t a, b;
    if (pthread_create(&a, NULL, sleeper, NULL) || pthread_create(&b, NULL, hammer, NULL)) {
        perror("pthread_create");
        return 1;
    }
    while (!hammering)
        sched_yield();
    struct timespec t = {0, 20 * 1000 * 1000};
    nanosleep(&t, NULL);
    printf("threads=running\n");
    fflush(stdout);
    execlp("uname", "uname", "-n", (char *)NULL);
    perror("execlp uname");
    return 1;
}
