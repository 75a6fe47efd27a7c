/* Timers on the virtual clock: every kind a program can arm, each checked against the clock it
 * runs on. Prints key=value lines; in reproducible mode two runs print the same bytes, because
 * timers fire at points of the virtual clock (clock reads and waits), not after host time.
 *
 *   itimer_*    setitimer(ITIMER_REAL, 10 ms interval), counted in a busy loop of clock reads,
 *               with the monotonic time each SIGALRM arrived at (relative to the arming)
 *   alarm_*     alarm(1) then pause()
 *   sleep_*     a 1 s nanosleep cut by a 30 ms POSIX timer (SIGUSR1): the time left (rem)
 *   posix_*     timer_create(CLOCK_MONOTONIC, SIGEV_SIGNAL), interval 20 ms, overrun, gettime
 *   tfd_*       timerfd(CLOCK_MONOTONIC) with a 50 ms interval, waited for with epoll and
 *               read; an absolute CLOCK_REALTIME timerfd read while blocking
 *   select_*    select() with no descriptors, ended by a SIGALRM from an itimer, and the
 *               time left it writes back; a select() that a ready descriptor ends at once,
 *               and one that times out, one with a descriptor that is not open (EBADF), and
 *               a raw ppoll, with the time left each writes back
 *   sigwait_*   a single thread waits to take its own timers' blocked signals: sigwait on an
 *               itimer's SIGALRM, sigwaitinfo on a POSIX timer's and on a child's SIGCHLD,
 *               sigtimedwait to its timeout (EAGAIN), sigwait in a thread while the main one
 *               joins it, a waited-for signal that has a handler (taken, not handled), and
 *               one cut by a handler's signal (EINTR)
 *   fork_*      a forked child has no timers of its parent's (but keeps the timer descriptor)
 *   thread_*    SIGEV_THREAD_ID to a thread that waits with sigwaitinfo
 *   stack_*     a timer's handler on an 8 KiB signal stack
 *   exec_*      alarm(2) survives execve
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t ns(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

#define MAX_HITS 8
static volatile sig_atomic_t hits;
static int64_t hit_at[MAX_HITS];

static void on_signal(int sig) {
    (void)sig;
    if (hits < MAX_HITS) {
        hit_at[hits] = ns(CLOCK_MONOTONIC);
    }
    hits++;
}

static void catch(int sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(sig, &sa, NULL);
}

static void itimer(void) {
    catch(SIGALRM);
    hits = 0;
    struct itimerval it = {.it_interval = {0, 10000}, .it_value = {0, 10000}};
    int64_t start = ns(CLOCK_MONOTONIC);
    setitimer(ITIMER_REAL, &it, NULL);
    long reads = 0;
    while (hits < 5) {
        ns(CLOCK_MONOTONIC);
        reads++;
    }
    struct itimerval off = {{0, 0}, {0, 0}}, old;
    setitimer(ITIMER_REAL, &off, &old);
    printf("itimer_reads=%ld\n", reads);
    for (int i = 0; i < 5; i++) {
        printf("itimer_hit%d=%lld\n", i, (long long)(hit_at[i] - start));
    }
    printf("itimer_old_interval_us=%ld\n", (long)old.it_interval.tv_usec);
    struct itimerval now;
    getitimer(ITIMER_REAL, &now);
    printf("itimer_after_disarm=%ld.%06ld\n", (long)now.it_value.tv_sec, (long)now.it_value.tv_usec);
}

static void alarm_pause(void) {
    catch(SIGALRM);
    hits = 0;
    int64_t start = ns(CLOCK_MONOTONIC);
    printf("alarm_previous=%u\n", alarm(1));
    printf("alarm_left=%u\n", alarm(1));
    int r = pause();
    printf("alarm_pause=%d errno=%s hits=%d\n", r, strerror(errno), (int)hits);
    printf("alarm_elapsed_ms=%lld\n", (long long)((ns(CLOCK_MONOTONIC) - start) / 1000000));
}

static void sleep_cut(void) {
    catch(SIGUSR1);
    hits = 0;
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR1;
    timer_t t;
    timer_create(CLOCK_MONOTONIC, &ev, &t);
    struct itimerspec spec = {.it_interval = {0, 0}, .it_value = {0, 30000000}};
    timer_settime(t, 0, &spec, NULL);
    struct timespec req = {1, 0}, rem = {0, 0};
    int r = nanosleep(&req, &rem);
    printf("sleep_result=%d errno=%s hits=%d\n", r, strerror(errno), (int)hits);
    printf("sleep_rem=%ld.%09ld\n", (long)rem.tv_sec, rem.tv_nsec);
    timer_delete(t);
}

static void posix(void) {
    catch(SIGUSR2);
    hits = 0;
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR2;
    timer_t t;
    printf("posix_create=%d\n", timer_create(CLOCK_MONOTONIC, &ev, &t));
    struct itimerspec spec = {.it_interval = {0, 20000000}, .it_value = {0, 20000000}};
    int64_t start = ns(CLOCK_MONOTONIC);
    timer_settime(t, 0, &spec, NULL);
    /* A sleep of 100 ms in 10 ms steps: a signal interrupts one, which is resumed. */
    for (int i = 0; i < 10; i++) {
        struct timespec req = {0, 10000000};
        while (nanosleep(&req, &req) != 0 && errno == EINTR) {
        }
    }
    printf("posix_hits=%d\n", (int)hits);
    for (int i = 0; i < 3; i++) {
        printf("posix_hit%d=%lld\n", i, (long long)(hit_at[i] - start));
    }
    /* Blocked, the signal stays pending while the timer keeps expiring: overruns. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, &old);
    struct timespec req = {0, 100000000};
    nanosleep(&req, NULL);
    int before = hits;
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("posix_blocked_hits=%d then=%d overrun=%d\n", before, (int)hits, timer_getoverrun(t));
    struct itimerspec cur;
    timer_gettime(t, &cur);
    printf("posix_gettime_interval=%ld\n", cur.it_interval.tv_nsec);
    timer_delete(t);
    printf("posix_delete_again=%d\n", timer_delete(t));
}

static void tfd(void) {
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    printf("tfd_fd_ok=%d\n", fd >= 0);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
    struct itimerspec spec = {.it_interval = {0, 50000000}, .it_value = {0, 50000000}};
    int64_t start = ns(CLOCK_MONOTONIC);
    timerfd_settime(fd, 0, &spec, NULL);
    uint64_t total = 0;
    for (int i = 0; i < 4; i++) {
        struct epoll_event got;
        int n = epoll_wait(ep, &got, 1, -1);
        uint64_t count = 0;
        if (n == 1 && read(fd, &count, sizeof count) != sizeof count) {
            count = 0;
        }
        total += count;
        printf("tfd_epoll%d=%d count=%llu at=%lld\n", i, n, (unsigned long long)count,
               (long long)(ns(CLOCK_MONOTONIC) - start));
    }
    /* A blocking read with the timer behind: the expirations pile up. */
    struct timespec req = {0, 175000000};
    nanosleep(&req, NULL);
    uint64_t count = 0;
    read(fd, &count, sizeof count);
    printf("tfd_piled=%llu total=%llu\n", (unsigned long long)count, (unsigned long long)total);
    struct itimerspec cur;
    timerfd_gettime(fd, &cur);
    printf("tfd_gettime=%ld.%09ld every %ld\n", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec,
           cur.it_interval.tv_nsec);
    close(ep);
    close(fd);

    /* An absolute deadline on the wall clock, 2 s ahead, waited for by a blocking read. */
    int abs = timerfd_create(CLOCK_REALTIME, 0);
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    struct itimerspec at = {.it_interval = {0, 0}, .it_value = {wall.tv_sec + 2, 0}};
    timerfd_settime(abs, TFD_TIMER_ABSTIME, &at, NULL);
    count = 0;
    ssize_t n = read(abs, &count, sizeof count);
    clock_gettime(CLOCK_REALTIME, &wall);
    printf("tfd_abs_read=%zd count=%llu wall=%ld.%09ld\n", n, (unsigned long long)count, (long)wall.tv_sec,
           wall.tv_nsec);
    close(abs);
}

static void select_cut(void) {
    catch(SIGALRM);
    hits = 0;
    struct itimerval it = {.it_interval = {0, 0}, .it_value = {0, 250000}};
    setitimer(ITIMER_REAL, &it, NULL);
    struct timeval tv = {5, 0};
    int r = select(0, NULL, NULL, NULL, &tv);
    printf("select_result=%d errno=%s hits=%d\n", r, strerror(errno), (int)hits);
    printf("select_left=%ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
}

static void select_uncut(void) {
    int p[2];
    if (pipe(p) != 0 || write(p[1], "x", 1) != 1) {
        perror("pipe");
        exit(1);
    }
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = {2, 0};
    int n = select(p[0] + 1, &r, NULL, NULL, &tv);
    printf("select_ready=%d left=%ld.%06ld\n", n, (long)tv.tv_sec, (long)tv.tv_usec);
    struct timeval out = {0, 30000};
    n = select(0, NULL, NULL, NULL, &out);
    printf("select_timeout=%d left=%ld.%06ld\n", n, (long)out.tv_sec, (long)out.tv_usec);
    struct timespec ts = {1, 0};
    n = pselect(p[0] + 1, &r, NULL, NULL, &ts, NULL);
    printf("pselect_ready=%d left=%ld.%09ld\n", n, (long)ts.tv_sec, ts.tv_nsec);
    /* A descriptor that is not open: EBADF, and Linux still writes the time left back. */
    fd_set bad;
    FD_ZERO(&bad);
    FD_SET(50, &bad);
    struct timeval tb = {5, 0};
    n = select(51, &bad, NULL, NULL, &tb);
    printf("select_ebadf=%d errno=%s left=%ld.%06ld\n", n, strerror(errno), (long)tb.tv_sec, (long)tb.tv_usec);
    /* The raw ppoll call writes it back too (glibc's wrapper passes a copy). */
    struct pollfd pfd = {p[0], POLLIN, 0};
    struct timespec pt = {3, 0};
    long m = syscall(SYS_ppoll, &pfd, 1, &pt, NULL, 8);
    printf("ppoll_ready=%ld left=%ld.%09ld\n", m, (long)pt.tv_sec, pt.tv_nsec);
    close(p[0]);
    close(p[1]);
}

static long long ms_since(int64_t start) {
    return (long long)((ns(CLOCK_MONOTONIC) - start) / 1000000);
}

/* Takes the process's SIGALRM in a thread other than the main one, which only joins it: the
 * timer fires from this thread, which Linux lets send no kernel's signal code. */
static void *alarm_taker(void *arg) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    int sig = 0;
    *(int *)arg = sigwait(&set, &sig) == 0 ? sig : -1;
    return NULL;
}

static void sigwait_cut(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct itimerval it = {.it_interval = {0, 0}, .it_value = {0, 100000}};
    int64_t start = ns(CLOCK_MONOTONIC);
    setitimer(ITIMER_REAL, &it, NULL);
    int sig = 0;
    int r = sigwait(&set, &sig);
    printf("sigwait_itimer=%d sig=%d after_ms=%lld\n", r, sig, ms_since(start));

    timer_t timer;
    struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR2};
    ev.sigev_value.sival_int = 7;
    timer_create(CLOCK_MONOTONIC, &ev, &timer);
    struct itimerspec spec = {.it_interval = {0, 0}, .it_value = {0, 50000000}};
    start = ns(CLOCK_MONOTONIC);
    timer_settime(timer, 0, &spec, NULL);
    siginfo_t info;
    r = sigwaitinfo(&set, &info);
    printf("sigwait_posix=%d value=%d after_ms=%lld\n", r, info.si_value.sival_int, ms_since(start));
    timer_delete(timer);

    start = ns(CLOCK_MONOTONIC);
    pid_t child = fork();
    if (child == 0) {
        struct timespec nap = {0, 100000000};
        nanosleep(&nap, NULL);
        _exit(3);
    }
    r = sigwaitinfo(&set, &info);
    printf("sigwait_child=%d status=%d after_ms=%lld\n", r, info.si_status, ms_since(start));
    waitpid(child, NULL, 0);

    struct timespec limit = {0, 50000000};
    start = ns(CLOCK_MONOTONIC);
    r = sigtimedwait(&set, &info, &limit);
    printf("sigwait_timeout=%d errno=%s after_ms=%lld\n", r, strerror(errno), ms_since(start));

    int taken = 0;
    pthread_t taker;
    start = ns(CLOCK_MONOTONIC);
    setitimer(ITIMER_REAL, &it, NULL);
    pthread_create(&taker, NULL, alarm_taker, &taken);
    pthread_join(taker, NULL);
    printf("sigwait_thread=%d after_ms=%lld\n", taken, ms_since(start));

    /* SIGUSR1 handled and not blocked, but waited for: the wait takes it, no handler runs. */
    catch(SIGUSR1);
    hits = 0;
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    ev.sigev_signo = SIGUSR1;
    ev.sigev_value.sival_int = 9;
    timer_create(CLOCK_MONOTONIC, &ev, &timer);
    struct timespec wait_limit = {3, 0};
    start = ns(CLOCK_MONOTONIC);
    timer_settime(timer, 0, &spec, NULL);
    r = sigtimedwait(&usr1, &info, &wait_limit);
    printf("sigwait_handled=%d value=%d hits=%d after_ms=%lld\n", r, info.si_value.sival_int, (int)hits,
           ms_since(start));
    timer_delete(timer);

    /* SIGALRM unblocked, with a handler: it ends a wait for SIGUSR2 alone. */
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    catch(SIGALRM);
    hits = 0;
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    sigprocmask(SIG_BLOCK, &usr2, NULL);
    struct timespec long_limit = {3, 0};
    start = ns(CLOCK_MONOTONIC);
    setitimer(ITIMER_REAL, &it, NULL);
    r = sigtimedwait(&usr2, &info, &long_limit);
    printf("sigwait_intr=%d errno=%s hits=%d after_ms=%lld\n", r, strerror(errno), (int)hits, ms_since(start));
    sigprocmask(SIG_UNBLOCK, &usr2, NULL);
}

static pthread_t waiting_main;

static void *rt_sender(void *arg) {
    (void)arg;
    struct timespec d = {0, 200000000};
    nanosleep(&d, NULL);
    union sigval v = {.sival_int = 5};
    pthread_sigqueue(waiting_main, SIGRTMIN, v);
    return NULL;
}

/* A wait for another thread's signal while an alarm far off is blocked and not waited for:
   the alarm cannot end the wait, so the clock must not jump to it (it moves by the sender's
   200 ms sleep alone). */
static void sigwait_other(void) {
    sigset_t set, blocked;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN);
    blocked = set;
    sigaddset(&blocked, SIGALRM);
    sigprocmask(SIG_BLOCK, &blocked, NULL);
    alarm(100);
    waiting_main = pthread_self();
    int64_t start = ns(CLOCK_MONOTONIC);
    pthread_t sender;
    pthread_create(&sender, NULL, rt_sender, NULL);
    siginfo_t info;
    int r = sigwaitinfo(&set, &info);
    long long after = ms_since(start);
    pthread_join(sender, NULL);
    printf("sigwait_other=%d value=%d after_ms=%lld alarm_left=%u\n", r - SIGRTMIN, info.si_value.sival_int, after,
           alarm(0));
    sigprocmask(SIG_UNBLOCK, &blocked, NULL);
}

static void forked(void) {
    alarm(100);
    int fd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec spec = {.it_interval = {0, 0}, .it_value = {0, 1000000}};
    timerfd_settime(fd, 0, &spec, NULL);
    pid_t child = fork();
    if (child == 0) {
        struct itimerval cur;
        getitimer(ITIMER_REAL, &cur);
        uint64_t count = 0;
        ssize_t n = read(fd, &count, sizeof count);
        printf("fork_child_alarm=%ld fork_child_tfd=%zd/%llu\n", (long)cur.it_value.tv_sec, n,
               (unsigned long long)count);
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    printf("fork_parent_alarm=%u\n", alarm(0));
    close(fd);
}

static volatile pid_t waiter_tid;

/* Waits for the timer's signal, which it blocks (as its creator did): it stays pending until
 * sigwaitinfo takes it, whenever it comes. */
static void *waiter(void *arg) {
    waiter_tid = (pid_t)syscall(SYS_gettid);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 3);
    siginfo_t info;
    int sig = sigwaitinfo(&set, &info);
    *(int *)arg = sig == SIGRTMIN + 3 && info.si_code == SI_TIMER ? info.si_value.sival_int : -1;
    return NULL;
}

static void thread_id(void) {
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 3);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    int got = 0;
    pthread_t th;
    pthread_create(&th, NULL, waiter, &got);
    while (waiter_tid == 0) {
        sched_yield();
    }
    pid_t tid = waiter_tid;
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGRTMIN + 3;
    ev.sigev_value.sival_int = 4242;
    ev._sigev_un._tid = tid;
    timer_t t;
    int r = timer_create(CLOCK_MONOTONIC, &ev, &t);
    struct itimerspec spec = {.it_interval = {0, 0}, .it_value = {0, 5000000}};
    timer_settime(t, 0, &spec, NULL);
    struct timespec req = {0, 10000000};
    nanosleep(&req, NULL);
    pthread_join(th, NULL);
    printf("thread_create=%d value=%d\n", r, got);
    timer_delete(t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* A handler that reads the clock, on an 8 KiB signal stack (as Rust gives every thread) with a
 * guard page below it, for a timer that cuts a sleep: the runtime's handler runs on that stack
 * too, and the program's must not be stacked on top of it. */
static void small_stack(void) {
    size_t size = 8192;
    char *guard = mmap(NULL, size + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(guard, 4096, PROT_NONE);
    stack_t ss = {.ss_sp = guard + 4096, .ss_size = size, .ss_flags = 0}, old;
    sigaltstack(&ss, &old);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGALRM, &sa, NULL);
    hits = 0;
    int64_t start = ns(CLOCK_MONOTONIC);
    struct itimerval it = {.it_interval = {0, 0}, .it_value = {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    struct timespec req = {1, 0};
    int r = nanosleep(&req, NULL);
    printf("stack_sleep=%d hits=%d at=%lld\n", r, (int)hits, (long long)(hit_at[0] - start));
    sigaltstack(&old, NULL);
}

/* After exec: the interval timer armed before it is still there, and fires. */
static int after_exec(void) {
    struct itimerval left;
    getitimer(ITIMER_REAL, &left);
    printf("exec_left=%ld.%06ld\n", (long)left.it_value.tv_sec, (long)left.it_value.tv_usec);
    catch(SIGALRM);
    int64_t start = ns(CLOCK_MONOTONIC);
    pause();
    printf("exec_fired_after_ms=%lld hits=%d\n", (long long)((ns(CLOCK_MONOTONIC) - start) / 1000000),
           (int)hits);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "exec") == 0) {
        return after_exec();
    }
    itimer();
    alarm_pause();
    sleep_cut();
    posix();
    tfd();
    select_cut();
    select_uncut();
    sigwait_cut();
    sigwait_other();
    forked();
    thread_id();
    small_stack();
    alarm(2);
    execl("/proc/self/exe", argv[0], "exec", (char *)NULL);
    perror("execl");
    return 1;
}
