/* gate_floor: tries the ways out that the seccomp floor, the pid namespace and Landlock's scopes
 * close, each with a raw system call made through cloister-rt's own gate (so that nothing of the
 * in-process kernel stands in the way, only what the host kernel enforces), and prints one line
 * per attempt: `name=done` or `name=ERRNO`.
 *
 *   gate_floor RUNTIME HOST_PID SCRATCH_DIR
 *
 * HOST_PID is a process outside the sandbox, owned by the caller, that the program tries to
 * trace, to write into, and to kill; SCRATCH_DIR is where it tries to mount. Every attempt is
 * made harmless should it get through (a scratch mount point, an invalid time, a key in the
 * process's own keyring): never run this outside a sandbox, where as root it would do what it
 * tries (with no gate in the process, gate.h makes each call from the program's own `syscall`,
 * as under --backend ptrace, where the tracer stops them and the floor is the same). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include "gate.h"

static long call(long nr, long a, long b, long c, long d, long e)
{
    return via_gate(nr, a, b, c, d, e);
}

static void report(const char *name, long r)
{
    if (r >= 0) {
        printf("%s=done\n", name);
        return;
    }
    const char *e = strerrorname_np((int)-r);
    printf("%s=%s\n", name, e ? e : "E?");
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: gate_floor RUNTIME HOST_PID SCRATCH_DIR\n");
        return 2;
    }
    if (find_gate(argv[1]) != 0)
        return 2;
    long host = atol(argv[2]);
    const char *scratch = argv[3];
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    char byte = 0;
    struct iovec local = {&byte, 1}, remote = {&byte, 1};
    struct timespec invalid = {0, -1};

    report("io_uring_setup", call(SYS_io_uring_setup, 1, (long)&params, 0, 0, 0));
    report("bpf", call(SYS_bpf, 0, 0, 0, 0, 0));
    report("perf_event_open", call(SYS_perf_event_open, 0, 0, -1, -1, 0));
    report("keyctl", call(SYS_keyctl, 0, 0, 0, 0, 0));
    report("add_key", call(SYS_add_key, (long)"user", (long)"cloister-test", (long)"v", 1, -2 /* own process keyring */));
    report("userfaultfd", call(SYS_userfaultfd, 0, 0, 0, 0, 0));
    report("kexec_load", call(SYS_kexec_load, 0, 0, 0, 0, 0));
    report("init_module", call(SYS_init_module, 0, 0, (long)"", 0, 0));
    report("reboot", call(SYS_reboot, 0, 0, 0, 0, 0));
    report("swapon", call(SYS_swapon, (long)"/nonexistent", 0, 0, 0, 0));
    report("acct", call(SYS_acct, 0, 0, 0, 0, 0));
    report("clock_settime", call(SYS_clock_settime, CLOCK_REALTIME, (long)&invalid, 0, 0, 0));
    report("mount", call(SYS_mount, (long)"none", (long)scratch, (long)"tmpfs", 0, 0));
    report("umount2", call(SYS_umount2, (long)scratch, 0, 0, 0, 0));
    report("setns", call(SYS_setns, 0, 0, 0, 0, 0));
    report("personality", call(SYS_personality, 0x0040000 /* ADDR_NO_RANDOMIZE */, 0, 0, 0, 0));
    report("ptrace_attach", call(SYS_ptrace, PTRACE_ATTACH, host, 0, 0, 0));
    report("process_vm_writev", call(SYS_process_vm_writev, host, (long)&local, 1, (long)&remote, 1));
    report("kill_host", call(SYS_kill, host, SIGKILL, 0, 0, 0));
    report("socket_packet", call(SYS_socket, AF_PACKET, SOCK_RAW, 0, 0, 0));
    report("socket_raw", call(SYS_socket, AF_INET, SOCK_RAW, 1 /* ICMP */, 0, 0));
    return 0;
}
