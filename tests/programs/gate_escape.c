/* gate_escape: bypasses the filesystem view the way a hostile program could. It jumps into
 * cloister-rt's gate (the `syscall` the redirect filter trusts, at the runtime's entry point
 * plus 16) to make calls the filter would otherwise trap, and prints each result:
 *
 *   gate_escape RUNTIME WRITE_PATH READ_PATH
 *
 *   write=ERRNO_NAME|opened   openat(WRITE_PATH, O_WRONLY|O_CREAT) through the gate
 *   read=ERRNO_NAME|opened    openat(READ_PATH, O_RDONLY) through the gate
 *
 * Under the untrusted policy the Landlock floor must refuse both (EACCES): the view is not
 * what stops them here, the host kernel is. Under --backend ptrace there is no gate (gate.h):
 * the calls are the program's own, which the tracer serves through the view. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gate.h"

static const char *outcome(long r)
{
    if (r >= 0)
        return "opened";
    return -r == EACCES ? "EACCES" : -r == EPERM ? "EPERM" : -r == ENOENT ? "ENOENT" : strerror((int)-r);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: gate_escape RUNTIME WRITE_PATH READ_PATH\n");
        return 2;
    }
    if (find_gate(argv[1]) != 0)
        return 2;
    printf("write=%s\n", outcome(via_gate(SYS_openat, AT_FDCWD, (long)argv[2], O_WRONLY | O_CREAT, 0644, 0)));
    printf("read=%s\n", outcome(via_gate(SYS_openat, AT_FDCWD, (long)argv[3], O_RDONLY, 0, 0)));
    return 0;
}
