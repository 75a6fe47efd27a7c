/* getcpu: which processors sched_getcpu reports from four busy threads, as a bit mask.
 * glibc answers it from the rseq area the host kernel fills when rseq is registered; in
 * reproducible mode cloister refuses rseq, so the answer comes from getcpu: processor 0. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>

static void *spin(void *arg)
{
    (void)arg;
    long seen = 0;
    for (int i = 0; i < 200000; i++)
        seen |= 1L << (sched_getcpu() & 63);
    return (void *)seen;
}

int main(void)
{
    pthread_t threads[4];
    long seen = 0;
    for (int i = 0; i < 4; i++)
        pthread_create(&threads[i], NULL, spin, NULL);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(threads[i], &r);
        seen |= (long)r;
    }
    printf("cpus_seen=%ld\n", seen);
    return 0;
}
