/* Bad pointers and bad arguments to calls that cloister serves: each must fail with the errno
 * Linux gives (EFAULT, EINVAL) and the program must keep running. Raw syscall() throughout,
 * so that libc (and the vDSO) never touch the pointer itself.
 * Prints "CALL=ERRNO_NAME" lines (or "CALL=returned N"), then uname=NODENAME and
 * still_running=1. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static const struct utsname readonly_uts = {.sysname = "ro"}; /* lives in .rodata */

static void report(const char *call, long rc) {
    if (rc != -1) {
        printf("%s=returned %ld\n", call, rc);
        return;
    }
    switch (errno) {
    case EFAULT:
        printf("%s=EFAULT\n", call);
        break;
    case EINVAL:
        printf("%s=EINVAL\n", call);
        break;
    default:
        printf("%s=errno %d\n", call, errno);
    }
}

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    char *two = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (two == MAP_FAILED || munmap(two + page, page) != 0) {
        perror("mmap");
        return 1;
    }
    struct timespec ts;
    char buf[16];

    report("uname_addr_1", syscall(SYS_uname, (void *)1));
    report("uname_readonly", syscall(SYS_uname, (void *)&readonly_uts));
    report("uname_into_unmapped", syscall(SYS_uname, two + page - 100));
    report("getrandom_addr_8", syscall(SYS_getrandom, (void *)8, 16, 0));
    report("getrandom_readonly", syscall(SYS_getrandom, (void *)&readonly_uts, 16, 0));
    report("getrandom_bad_flags", syscall(SYS_getrandom, buf, sizeof buf, 0x1000));
    report("clock_gettime_addr_1", syscall(SYS_clock_gettime, CLOCK_REALTIME, (void *)1));
    report("clock_gettime_bad_clock", syscall(SYS_clock_gettime, 12345, &ts));
    report("gettimeofday_addr_1", syscall(SYS_gettimeofday, (void *)1, NULL));
    report("time_addr_1", syscall(SYS_time, (void *)1));

    struct utsname u;
    if (uname(&u) != 0) {
        perror("uname");
        return 1;
    }
    printf("uname=%s\n", u.nodename);
    printf("still_running=1\n");
    return 0;
}
