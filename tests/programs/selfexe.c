/* What a program can learn about its own image: /proc/self/exe (readlink, stat and open),
 * AT_EXECFN, argv[0], /proc/self/cmdline and the program break. Run with an absolute path.
 * Prints key=value lines; every check prints 1 when it holds. Compile with -DSTATIC_PIE for a
 * static-pie build: Linux itself puts a static-pie program's break far from its image. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

extern char end; /* first address past the program's bss (ld) */

int main(int argc, char **argv) {
    char *brk0 = sbrk(0); /* before stdio's buffers come from malloc */
    (void)argc;

    char link[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", link, sizeof link - 1);
    if (n < 0) {
        perror("readlink /proc/self/exe");
        return 1;
    }
    link[n] = 0;
    char real[PATH_MAX];
    if (!realpath(argv[0], real)) {
        perror("realpath argv[0]");
        return 1;
    }
    printf("exe=%s\n", link);
    printf("exe_is_argv0=%d\n", strcmp(link, real) == 0);

    struct stat by_path, by_link, by_fd;
    if (stat(argv[0], &by_path) || stat("/proc/self/exe", &by_link)) {
        perror("stat");
        return 1;
    }
    printf("stat_same_file=%d\n",
           by_path.st_dev == by_link.st_dev && by_path.st_ino == by_link.st_ino);

    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &by_fd)) {
        perror("open /proc/self/exe");
        return 1;
    }
    printf("open_same_file=%d\n",
           by_fd.st_dev == by_path.st_dev && by_fd.st_ino == by_path.st_ino);
    printf("open_same_size=%d\n", by_fd.st_size == by_path.st_size);
    char magic[4] = {0};
    printf("open_is_elf=%d\n", read(fd, magic, 4) == 4 && memcmp(magic, "\177ELF", 4) == 0);
    close(fd);

    const char *execfn = (const char *)getauxval(AT_EXECFN);
    printf("execfn=%s\n", execfn ? execfn : "(none)");
    printf("argv0=%s\n", argv[0]);

    char cmdline[4096];
    fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    ssize_t len = fd < 0 ? -1 : read(fd, cmdline, sizeof cmdline - 1);
    if (len < 0) {
        perror("/proc/self/cmdline");
        return 1;
    }
    close(fd);
    for (ssize_t i = 0; i < len; i++)
        if (cmdline[i] == 0)
            cmdline[i] = i == len - 1 ? 0 : ' ';
    cmdline[len] = 0;
    printf("cmdline=%s\n", cmdline);

#ifndef STATIC_PIE
    printf("brk_after_image=%d\n", brk0 >= &end && brk0 - &end < (1L << 30));
    printf("brk_gap=%ld\n", (long)(brk0 - &end));
#else
    (void)brk0;
#endif
    char *grown = sbrk(1 << 20);
    int grows = grown != (void *)-1;
    if (grows) {
        memset(grown, 0x5a, 1 << 20);
        grows = sbrk(-(1 << 20)) != (void *)-1;
    }
    printf("brk_grows=%d\n", grows);
    return 0;
}
