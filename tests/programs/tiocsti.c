/* Tries to push a character into the terminal on standard input with TIOCSTI, and to change
 * the virtual console with TIOCLINUX; prints what each said: "ok" or the errno's name. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const char *name(int e) {
    switch (e) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EIO: return "EIO";
    case ENOTTY: return "ENOTTY";
    case EINVAL: return "EINVAL";
    default: return strerror(e);
    }
}

int main(void) {
    char c = 'x';
    int r = ioctl(0, TIOCSTI, &c);
    printf("isatty=%d\ntiocsti=%s\n", isatty(0), r == 0 ? "ok" : name(errno));
    char sub = 0; /* TIOCL_... 0 is not a valid subcode, but the filter looks at the request */
    r = ioctl(0, TIOCLINUX, &sub);
    printf("tioclinux=%s\n", r == 0 ? "ok" : name(errno));
    return 0;
}
