/* tarcalls: the calls tar makes to extract one file, timed per call.
 *
 *   tarcalls DIR N
 *
 * Makes DIR/a/b, then N files in it as GNU tar does: openat(dirfd, "a/b/NAME",
 * O_CREAT|O_EXCL), write 100 bytes, futimens, fchown, fchmod, close. Prints the mean time of
 * each call and of a whole file, in ns. Any failing call ends it with exit 1, so that a call
 * the sandbox refused cannot pass for a fast one. docs/benchmarks.md (row c) quotes it for a
 * file's cost beside native; run it on a tmpfs so that the disk is not what it measures. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long long now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void check(int ok, const char *what, const char *name)
{
    if (!ok) {
        perror(what);
        fprintf(stderr, "tarcalls: %s failed on %s\n", what, name);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3 || atoi(argv[2]) <= 0) {
        fprintf(stderr, "usage: tarcalls DIR N\n");
        return 2;
    }
    int n = atoi(argv[2]);
    check(mkdir(argv[1], 0755) == 0, "mkdir", argv[1]);
    int dir = open(argv[1], O_RDONLY | O_DIRECTORY);
    check(dir >= 0, "open", argv[1]);
    check(mkdirat(dir, "a", 0755) == 0 && mkdirat(dir, "a/b", 0755) == 0, "mkdirat", "a/b");
    const char *names[] = {"openat", "write", "futimens", "fchown", "fchmod", "close"};
    long long spent[6] = {0};
    char path[64], data[100] = {0};
    struct timespec times[2] = {{0, UTIME_OMIT}, {1700000000, 0}};
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "a/b/file%06d.txt", i);
        long long t[7];
        t[0] = now();
        int fd = openat(dir, path, O_WRONLY | O_CREAT | O_EXCL | O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0600);
        t[1] = now();
        check(fd >= 0, "openat", path);
        check(write(fd, data, sizeof data) == (ssize_t)sizeof data, "write", path);
        t[2] = now();
        check(futimens(fd, times) == 0, "futimens", path);
        t[3] = now();
        check(fchown(fd, getuid(), getgid()) == 0, "fchown", path);
        t[4] = now();
        check(fchmod(fd, 0644) == 0, "fchmod", path);
        t[5] = now();
        check(close(fd) == 0, "close", path);
        t[6] = now();
        for (int c = 0; c < 6; c++)
            spent[c] += t[c + 1] - t[c];
    }
    long long total = 0;
    for (int c = 0; c < 6; c++) {
        printf("%s %lld ", names[c], spent[c] / n);
        total += spent[c];
    }
    printf("file %lld ns\n", total / n);
    return 0;
}
