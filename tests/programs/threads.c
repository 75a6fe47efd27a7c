/* Usage: threads EXPECTED_HOSTNAME
 * Eight pthreads each call uname() 10000 times (and gethostname() every 100th time) and check
 * the name every time. Prints "ok threads=8 calls=N" or the first mismatch (exit status 1). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#define THREADS 8
#define CALLS 10000

static const char *expected;
static pthread_barrier_t start;

static void *worker(void *arg) {
    long bad = 0;
    pthread_barrier_wait(&start);
    for (int i = 0; i < CALLS; i++) {
        struct utsname u;
        if (uname(&u) != 0 || strcmp(u.nodename, expected) != 0) {
            fprintf(stderr, "thread %ld call %d: uname says %s\n", (long)arg, i, u.nodename);
            bad++;
        }
        if (i % 100 == 0) {
            char host[256];
            if (gethostname(host, sizeof host) != 0 || strcmp(host, expected) != 0) {
                fprintf(stderr, "thread %ld: gethostname says %s\n", (long)arg, host);
                bad++;
            }
        }
        if (bad > 5)
            break;
    }
    return (void *)bad;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s EXPECTED_HOSTNAME\n", argv[0]);
        return 2;
    }
    expected = argv[1];
    pthread_t t[THREADS];
    pthread_barrier_init(&start, NULL, THREADS);
    for (long i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i) != 0) {
            perror("pthread_create");
            return 1;
        }
    long bad = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (long)r;
    }
    if (bad) {
        printf("mismatches=%ld\n", bad);
        return 1;
    }
    printf("ok threads=%d calls=%d\n", THREADS, THREADS * CALLS);
    return 0;
}
