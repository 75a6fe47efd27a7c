/* What a program can learn from the processor without a system call: rdtsc and rdtscp (in
 * this thread, in a second thread, in a forked child, and after an exec of itself with the
 * argument `again`), and whether cpuid says RDRAND and RDSEED exist. With the argument `own`
 * it makes rdtsc fault itself (prctl PR_SET_TSC) and catches the SIGSEGV in its own handler.
 * Prints key=value lines. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <ucontext.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t rdtsc(void) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

static uint64_t rdtscp(uint32_t *aux) {
    uint32_t lo, hi;
    __asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(*aux));
    return (uint64_t)hi << 32 | lo;
}

static volatile sig_atomic_t faults, fault_code;

static void on_segv(int sig, siginfo_t *info, void *ucv) {
    (void)sig;
    ucontext_t *uc = ucv;
    const unsigned char *ip = (const unsigned char *)uc->uc_mcontext.gregs[REG_RIP];
    faults++;
    fault_code = info->si_code;
    if (ip[0] != 0x0f || ip[1] != 0x31)
        _exit(2);
    uc->uc_mcontext.gregs[REG_RAX] = 7;
    uc->uc_mcontext.gregs[REG_RDX] = 0;
    uc->uc_mcontext.gregs[REG_RIP] += 2;
}

/* rdtsc made to fault by the program itself: its own handler answers 7. */
static int own_fault(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    if (sigaction(SIGSEGV, &sa, NULL) != 0 || prctl(PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0) != 0)
        return 1;
    int mode = 0;
    prctl(PR_GET_TSC, &mode, 0, 0, 0);
    uint64_t t = rdtsc();
    printf("own_tsc=%llu\nown_faults=%d\nown_si_code=%d\nown_mode=%d\n", (unsigned long long)t,
           (int)faults, (int)fault_code, mode);
    return 0;
}

static void *thread_main(void *out) {
    *(uint64_t *)out = rdtsc();
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "own") == 0)
        return own_fault();
    if (argc > 1 && strcmp(argv[1], "again") == 0) {
        printf("exec_tsc=%llu\n", (unsigned long long)rdtsc());
        return 0;
    }
    uint64_t t1 = rdtsc();
    uint64_t t2 = rdtsc();
    uint32_t aux = 0;
    uint64_t t3 = rdtscp(&aux);
    printf("tsc1=%llu\ntsc2=%llu\nrdtscp=%llu\n", (unsigned long long)t1, (unsigned long long)t2,
           (unsigned long long)t3);
    printf("increasing=%d\n", t1 < t2 && t2 < t3);
    printf("tsc_aux_cpu=%u\n", aux & 0xfff);

    unsigned a, b, c, d;
    __cpuid(1, a, b, c, d);
    printf("rdrand=%u\n", (c >> 30) & 1);
    unsigned max = __get_cpuid_max(0, NULL);
    b = 0;
    if (max >= 7)
        __cpuid_count(7, 0, a, b, c, d);
    printf("rdseed=%u\n", (b >> 18) & 1);

    uint64_t in_thread = 0;
    pthread_t th;
    if (pthread_create(&th, NULL, thread_main, &in_thread) != 0 || pthread_join(th, NULL) != 0)
        return 1;
    printf("thread_tsc=%llu\n", (unsigned long long)in_thread);

    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        printf("child_tsc=%llu\n", (unsigned long long)rdtsc());
        fflush(stdout);
        execl(argv[0], argv[0], "again", (char *)NULL);
        perror("execl");
        _exit(1);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 1;
    printf("after_child_tsc=%llu\n", (unsigned long long)rdtsc());
    return 0;
}
