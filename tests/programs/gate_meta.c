/* gate_meta: changes a host file's metadata and looks at hidden paths the way a hostile
 * program could, past the filesystem view: it jumps into cloister-rt's gate (the `syscall` the
 * redirect filter trusts, at the runtime's entry point plus 16) and prints each result:
 *
 *   gate_meta RUNTIME HOST_FILE HIDDEN_FILE HOST_DIR SOCKET UID GID
 *
 *   chmod=E|done        fchmodat(HOST_FILE, 0600)
 *   chown=E|done        fchownat(HOST_FILE, UID, GID)
 *   utime=E|done        utimensat(HOST_FILE, {0, 0}): both times to the epoch
 *   setxattr=E|done     setxattr(HOST_FILE, "user.cloister", "x")
 *   mkdir=E|done        mkdirat(HOST_DIR/gate-meta-dir)
 *   hidden_size=N|E     newfstatat(HIDDEN_FILE).st_size
 *   connect=E|done      connect() to the unix socket SOCKET
 *   proc_root_chmod=E|done
 *                       fchmodat(/proc/PPID/root + HOST_FILE, 0600): the parent's root, which
 *                       outside a pid namespace is the supervisor's, in the host's mounts
 *   proc_entry_chmod=E|done
 *                       fchmodat(/proc/version, the mode it has): a procfs entry's mode is the
 *                       kernel's, the same in every /proc of the host (the same mode, so that
 *                       nothing changes where it is allowed)
 *
 * E is an errno name. Under the untrusted policy every change must fail and the hidden file
 * must not show its size: the view is not what stops them here, the host kernel is (the
 * sandbox's read-only mount namespace and its stand-ins, and Landlock). Under --backend ptrace
 * there is no gate (gate.h): the calls are the program's own, which the tracer serves through
 * the view, so the changes land in the private overlay and the hidden file is not there. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "gate.h"

static const char *name(long r)
{
    switch (-r) {
    case EROFS: return "EROFS";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENOTDIR: return "ENOTDIR";
    case EXDEV: return "EXDEV";
    default: return strerror((int)-r);
    }
}

static const char *outcome(long r)
{
    return r >= 0 ? "done" : name(r);
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: gate_meta RUNTIME HOST_FILE HIDDEN_FILE HOST_DIR SOCKET UID GID\n");
        return 2;
    }
    const char *file = argv[2], *hidden = argv[3], *dir = argv[4], *sock = argv[5];
    long uid = atol(argv[6]), gid = atol(argv[7]);
    if (find_gate(argv[1]) != 0)
        return 2;

    printf("chmod=%s\n", outcome(via_gate(SYS_fchmodat, AT_FDCWD, (long)file, 0600, 0, 0)));
    printf("chown=%s\n", outcome(via_gate(SYS_fchownat, AT_FDCWD, (long)file, uid, gid, 0)));
    struct timespec epoch[2] = {{0, 0}, {0, 0}};
    printf("utime=%s\n", outcome(via_gate(SYS_utimensat, AT_FDCWD, (long)file, (long)epoch, 0, 0)));
    printf("setxattr=%s\n", outcome(via_gate(SYS_setxattr, (long)file, (long)"user.cloister", (long)"x", 1, 0)));

    char path[4096];
    snprintf(path, sizeof path, "%s/gate-meta-dir", dir);
    printf("mkdir=%s\n", outcome(via_gate(SYS_mkdirat, AT_FDCWD, (long)path, 0755, 0, 0)));

    struct stat st;
    long r = via_gate(SYS_newfstatat, AT_FDCWD, (long)hidden, (long)&st, 0, 0);
    if (r < 0)
        printf("hidden_size=%s\n", name(r));
    else
        printf("hidden_size=%lld\n", (long long)st.st_size);

    long s = via_gate(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, 0, 0);
    if (s < 0) {
        printf("connect=socket:%s\n", name(s));
    } else {
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock);
        printf("connect=%s\n", outcome(via_gate(SYS_connect, s, (long)&addr, sizeof addr, 0, 0)));
        close((int)s);
    }

    long ppid = via_gate(SYS_getppid, 0, 0, 0, 0, 0);
    snprintf(path, sizeof path, "/proc/%ld/root%s", ppid, file);
    printf("proc_root_chmod=%s\n", outcome(via_gate(SYS_fchmodat, AT_FDCWD, (long)path, 0600, 0, 0)));
    struct stat version;
    if (stat("/proc/version", &version) != 0) {
        perror("/proc/version");
        return 1;
    }
    long mode = version.st_mode & 07777;
    printf("proc_entry_chmod=%s\n", outcome(via_gate(SYS_fchmodat, AT_FDCWD, (long)"/proc/version", mode, 0, 0)));
    return 0;
}
