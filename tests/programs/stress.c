/* Usage: stress EXPECTED_HOSTNAME
 * One thread forks 200 times (each child calls uname(), checks it and _exits) while eight
 * threads hammer uname(). Neither the parent nor any child may deadlock: a lock held by a
 * hammering thread at fork time must not be inherited locked by the child.
 * Prints "forks=200 failed_children=0 bad_calls=0 calls=N". */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define HAMMERS 8
#define FORKS 200

static const char *expected;
static atomic_int stop;
static atomic_long calls, bad_calls;

static int name_ok(void) {
    struct utsname u;
    return uname(&u) == 0 && strcmp(u.nodename, expected) == 0;
}

static void *hammer(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        if (!name_ok())
            atomic_fetch_add(&bad_calls, 1);
        atomic_fetch_add(&calls, 1);
    }
    return NULL;
}

static void *forker(void *arg) {
    long failed = 0;
    (void)arg;
    for (int i = 0; i < FORKS; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(name_ok() ? 0 : 1);
        int status;
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0)
            failed++;
    }
    return (void *)failed;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s EXPECTED_HOSTNAME\n", argv[0]);
        return 2;
    }
    expected = argv[1];
    fflush(stdout);
    pthread_t hammers[HAMMERS], f;
    for (int i = 0; i < HAMMERS; i++)
        pthread_create(&hammers[i], NULL, hammer, NULL);
    while (atomic_load(&calls) < HAMMERS)
        sched_yield();
    pthread_create(&f, NULL, forker, NULL);
    void *failed;
    pthread_join(f, &failed);
    atomic_store(&stop, 1);
    for (int i = 0; i < HAMMERS; i++)
        pthread_join(hammers[i], NULL);
    printf("forks=%d failed_children=%ld bad_calls=%ld calls=%ld\n", FORKS, (long)failed,
           atomic_load(&bad_calls), atomic_load(&calls));
    return failed || atomic_load(&bad_calls) ? 1 : 0;
}
