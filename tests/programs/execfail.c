// An execve the host refuses (E2BIG: arguments over the stack limit's share) returns to the
// caller as it would natively, and leaves no descriptor behind in the caller or in the image
// its next exec starts: the runtime hands the checked program to the next image as open
// descriptors, which must not outlive a failed exec.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        perror("opendir");
        exit(1);
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
            n++;
    closedir(d);
    return n;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "count") == 0) {
        printf("fds_in_next_image=%d\n", open_fds());
        return 0;
    }
    int before = open_fds();
    // Linux allows arguments up to a quarter of the stack limit, but never less than 128 KiB:
    // three 60 KiB arguments under a 256 KiB stack limit are too many for the host, while
    // each is short enough for the runtime's own checks.
    struct rlimit old, small = {256 * 1024, 256 * 1024};
    getrlimit(RLIMIT_STACK, &old);
    small.rlim_max = old.rlim_max;
    if (setrlimit(RLIMIT_STACK, &small) != 0) {
        perror("setrlimit");
        return 1;
    }
    static char big[3][60 * 1024];
    char *args[5] = {argv[0], big[0], big[1], big[2], NULL};
    for (int i = 0; i < 3; i++)
        memset(big[i], 'a' + i, sizeof big[i] - 1);
    for (int round = 0; round < 3; round++) {
        execv(argv[0], args);
        printf("round%d_errno=%s\n", round, errno == E2BIG ? "E2BIG" : strerror(errno));
    }
    printf("fds_before=%d\nfds_after_failures=%d\n", before, open_fds());
    setrlimit(RLIMIT_STACK, &old);
    fflush(stdout);
    char *count[] = {argv[0], "count", NULL};
    execv(argv[0], count);
    perror("execv");
    return 1;
}
