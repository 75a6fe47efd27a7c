/* sent_faults: SIGSEGV and SIGBUS sent (tgkill) from a second thread, in bursts, to the main
 * thread while it makes `stat` calls (which a sandbox with a filesystem view serves) must reach
 * the program's handlers, as natively, however often they land in the runtime's code.
 * Usage: sent_faults [sends]. Prints sent=, handled= (fewer than sent: a signal sent while one
 * of its kind is pending merges with it) and calls_ok= (every `stat` succeeded). */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile sig_atomic_t handled;
static volatile int done;
static pid_t main_tid;
static long sends = 20000;

static void on_signal(int sig) {
    (void)sig;
    handled++;
}

static void *sender(void *arg) {
    (void)arg;
    for (long i = 0; i < sends; i++) {
        syscall(SYS_tgkill, getpid(), main_tid, i % 2 ? SIGBUS : SIGSEGV);
        if (i % 64 == 0)
            usleep(10);
    }
    done = 1;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1)
        sends = atol(argv[1]);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    main_tid = gettid();
    pthread_t t;
    pthread_create(&t, NULL, sender, NULL);
    long ok = 0, calls = 0;
    struct stat st;
    while (!done) {
        calls++;
        if (stat("/etc/hostname", &st) == 0)
            ok++;
    }
    pthread_join(t, NULL);
    /* A signal still in flight when the sender ended. */
    for (int i = 0; i < 100 && handled < sends; i++)
        usleep(1000);
    printf("sent=%ld\nhandled=%d\ncalls_ok=%d\n", sends, (int)handled, ok == calls);
    return 0;
}
