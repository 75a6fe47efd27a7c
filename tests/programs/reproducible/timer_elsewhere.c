/* Timers another thread takes, while the main thread waits for something else (issue 5,
 * --fast-sleep): the clock must still move to them, or the program waits for ever.
 *
 *   timer_elsewhere thread   a POSIX timer with SIGEV_THREAD (glibc's helper thread takes its
 *                            signal with sigwaitinfo); main waits in pause(); the callback
 *                            prints and exits
 *   timer_elsewhere handler  main blocks SIGALRM and waits for SIGUSR1 in sigwaitinfo; a
 *                            second thread, which lets SIGALRM through, sits in a pipe read;
 *                            alarm(1)'s handler runs there and sends main SIGUSR1
 *
 * Natively both end after one second, printing what they print here.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_t main_thread;
static int pipe_fds[2];

static void on_timer(union sigval v) {
    (void)v;
    printf("thread_timer=fired\n");
    fflush(stdout);
    _exit(0);
}

static void on_alarm(int sig) {
    (void)sig;
    pthread_kill(main_thread, SIGUSR1);
}

static void *reader(void *arg) {
    (void)arg;
    char c;
    (void)read(pipe_fds[0], &c, 1);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "thread") == 0) {
        struct sigevent ev = {.sigev_notify = SIGEV_THREAD, .sigev_notify_function = on_timer};
        timer_t timer;
        struct itimerspec spec = {.it_value = {1, 0}};
        if (timer_create(CLOCK_MONOTONIC, &ev, &timer) != 0 || timer_settime(timer, 0, &spec, NULL) != 0) {
            perror("timer");
            return 1;
        }
        pause();
        return 2;
    }
    main_thread = pthread_self();
    sigset_t both, usr1;
    sigemptyset(&both);
    sigaddset(&both, SIGALRM);
    sigaddset(&both, SIGUSR1);
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    signal(SIGALRM, on_alarm);
    if (pipe(pipe_fds) != 0) {
        return 1;
    }
    /* The reader is made before main blocks SIGALRM: it lets it through. */
    pthread_t t;
    pthread_create(&t, NULL, reader, NULL);
    sigprocmask(SIG_BLOCK, &both, NULL);
    alarm(1);
    int sig = sigwaitinfo(&usr1, NULL);
    printf("handler_elsewhere=%d\n", sig);
    return 0;
}
