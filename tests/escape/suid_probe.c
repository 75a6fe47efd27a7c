/* suid_probe: what a setuid-root (or file-capability) program gets when it starts: its user
 * ids, and whether it can read a file only root may read and become root for good.
 *
 *   suid_probe FILE
 *
 *   ruid=N euid=N       its real and effective user ids
 *   read=E|read:N:BYTES  openat(FILE) and a read
 *   setuid=E|done       setuid(0)
 *
 * The test installs it setuid root and runs it as an unprivileged user, natively (where it
 * gains root: the control) and under cloister (where no_new_privs keeps the caller's ids). It
 * changes nothing: it only reads a file the test made. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: suid_probe FILE\n");
        return 2;
    }
    printf("ruid=%d\neuid=%d\n", (int)getuid(), (int)geteuid());
    int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        printf("read=%s\n", strerrorname_np(errno));
    } else {
        char buf[64];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = 0;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] < 0x20 || buf[i] > 0x7e)
                buf[i] = '.';
        printf("read=read:%zd:%s\n", n, buf);
        close(fd);
    }
    printf("setuid=%s\n", setuid(0) == 0 ? "done" : strerrorname_np(errno));
    return 0;
}
