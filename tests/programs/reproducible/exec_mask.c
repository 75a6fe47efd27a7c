/* exec_mask: a thread execs while the main thread, with SIGUSR1 and SIGTERM blocked, sleeps
 * through an interval timer's alarms. The new image's mask is the exec'ing thread's (none
 * blocked), as on Linux: it prints its own SigBlk line from /proc/self/status. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void on_alarm(int sig)
{
    (void)sig;
}

static void *worker(void *arg)
{
    (void)arg;
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    struct timespec t = {0, 100000000};
    nanosleep(&t, NULL);
    execl("/bin/grep", "grep", "SigBlk", "/proc/self/status", (char *)NULL);
    return NULL;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGUSR1);
    sigaddset(&blocked, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &blocked, NULL);
    struct itimerval every = {{0, 30000}, {0, 30000}};
    setitimer(ITIMER_REAL, &every, NULL);
    pthread_t thread;
    pthread_create(&thread, NULL, worker, NULL);
    struct timespec t = {5, 0};
    while (nanosleep(&t, &t) != 0) {
    }
    return 0;
}
