/* What reproducible mode makes deterministic in a C program, printed as key=value lines:
 * rdtsc/rdtscp, every clock_gettime clock, gettimeofday, time, getrandom, AT_RANDOM, the
 * process ids, and where the stack, the heap and an anonymous mapping landed; then the same
 * from a forked child (lines prefixed `child_`), and the parent's clocks after the child
 * ended. It starts with whether cpuid shows RDRAND and RDSEED (hidden where the host can
 * fault cpuid). Run twice with the same seed it must print the same bytes. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t rdtsc(void) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

static uint64_t rdtscp(void) {
    uint32_t lo, hi, aux;
    __asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
    return (uint64_t)hi << 32 | lo;
}

static void hex(const char *who, const char *key, const unsigned char *p, size_t n) {
    printf("%s%s=", who, key);
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("\n");
}

static void clock_line(const char *who, const char *key, clockid_t clock) {
    struct timespec t;
    if (clock_gettime(clock, &t) != 0) {
        printf("%s%s=error\n", who, key);
        return;
    }
    printf("%s%s=%lld.%09ld\n", who, key, (long long)t.tv_sec, t.tv_nsec);
}

/* Everything one process can observe; `who` prefixes the keys. */
static void report(const char *who) {
    uint64_t t1 = rdtsc(), t2 = rdtscp();
    printf("%srdtsc=%llu\n%srdtscp=%llu\n", who, (unsigned long long)t1, who, (unsigned long long)t2);
    printf("%stsc_increasing=%d\n", who, t1 < t2);
    clock_line(who, "realtime", CLOCK_REALTIME);
    clock_line(who, "realtime_coarse", CLOCK_REALTIME_COARSE);
    clock_line(who, "monotonic", CLOCK_MONOTONIC);
    clock_line(who, "monotonic_raw", CLOCK_MONOTONIC_RAW);
    clock_line(who, "boottime", CLOCK_BOOTTIME);
    clock_line(who, "process_cputime", CLOCK_PROCESS_CPUTIME_ID);
    clock_line(who, "thread_cputime", CLOCK_THREAD_CPUTIME_ID);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    printf("%sgettimeofday=%lld.%06ld\n", who, (long long)tv.tv_sec, (long)tv.tv_usec);
    printf("%stime=%lld\n", who, (long long)time(NULL));

    unsigned char buf[16];
    if (getrandom(buf, sizeof buf, 0) != (ssize_t)sizeof buf) {
        perror("getrandom");
        exit(1);
    }
    hex(who, "getrandom", buf, sizeof buf);
    hex(who, "at_random", (const unsigned char *)getauxval(AT_RANDOM), 16);
    printf("%spid=%d\n%sppid=%d\n", who, (int)getpid(), who, (int)getppid());

    int local = 0;
    void *heap = malloc(64);
    void *map = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("%sstack=%p\n%sheap=%p\n%smmap=%p\n", who, (void *)&local, who, heap, who, map);
    free(heap);
    munmap(map, 4096);
    fflush(stdout);
}

int main(void) {
    unsigned a, b, c, d;
    __cpuid(1, a, b, c, d);
    printf("rdrand_visible=%u\n", (c >> 30) & 1);
    b = 0;
    if (__get_cpuid_max(0, NULL) >= 7)
        __cpuid_count(7, 0, a, b, c, d);
    printf("rdseed_visible=%u\n", (b >> 18) & 1);
    report("");
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        report("child_");
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("child failed\n");
        return 1;
    }
    printf("fork_returned=%d\n", (int)pid);
    uint64_t after = rdtsc();
    printf("after_rdtsc=%llu\n", (unsigned long long)after);
    clock_line("after_", "monotonic", CLOCK_MONOTONIC);
    return 0;
}
