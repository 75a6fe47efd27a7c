/* host_processes: reaches for processes outside the sandbox, both through the in-process kernel
 * (`direct`) and past it (`gate`). It reads two pids from its standard input, "SUPERVISOR HOST":
 * the `cloister run` that supervises it and a host process the test started, and prints:
 *
 *   kill_supervisor_WAY       kill(SUPERVISOR, SIGKILL)
 *   kill_group_WAY            kill(-SUPERVISOR, SIGKILL): the process group cloister leads
 *   tgkill_host_WAY           tgkill(HOST, HOST, SIGKILL)
 *   pidfd_open_WAY            pidfd_open(HOST), then, if it opened:
 *   pidfd_signal_WAY          pidfd_send_signal(SIGKILL)
 *   pidfd_getfd_WAY           pidfd_getfd(its descriptor 0): stealing a descriptor
 *   vm_read_WAY               process_vm_readv(HOST): reading its memory
 *   proc_mem_WAY              openat(/proc/HOST/mem, O_RDWR)
 *   proc_environ_WAY          openat(/proc/HOST/environ) and a read
 *   setpriority_WAY           setpriority(PRIO_PROCESS, HOST, 19)
 *   prlimit_WAY               prlimit64(HOST, RLIMIT_NOFILE, {16, 16})
 *   end=1                     the program got to its end (so its supervisor lived)
 *
 * The test checks from outside that both processes live and that HOST's nice value and limits
 * are what they were. */
#include "escape.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

int main(int argc, char **argv)
{
    long supervisor = 0, host = 0;
    if (argc != 2 || scanf("%ld %ld", &supervisor, &host) != 2 || supervisor <= 1 || host <= 1) {
        fprintf(stderr, "usage: echo SUPERVISOR HOST | host_processes RUNTIME\n");
        return 2;
    }
    if (find_gate(argv[1]) != 0)
        return 2;
    char path[64], byte = 0;
    for (unsigned w = 0; w < sizeof WAYS / sizeof WAYS[0]; w++) {
        const struct way *way = &WAYS[w];
        const char *how = way->name;
        report("kill_supervisor", how, way->call(SYS_kill, supervisor, SIGKILL, 0, 0, 0));
        report("kill_group", how, way->call(SYS_kill, -supervisor, SIGKILL, 0, 0, 0));
        report("tgkill_host", how, way->call(SYS_tgkill, host, host, SIGKILL, 0, 0));
        long pidfd = way->call(SYS_pidfd_open, host, 0, 0, 0, 0);
        report("pidfd_open", how, pidfd);
        if (pidfd >= 0) {
            report("pidfd_signal", how, way->call(SYS_pidfd_send_signal, pidfd, SIGKILL, 0, 0, 0));
            long fd = way->call(SYS_pidfd_getfd, pidfd, 0, 0, 0, 0);
            report("pidfd_getfd", how, fd);
            if (fd >= 0)
                way->call(SYS_close, fd, 0, 0, 0, 0);
            way->call(SYS_close, pidfd, 0, 0, 0, 0);
        }
        /* Any address: EFAULT or a byte would mean the kernel got past the access check. */
        struct iovec local = {&byte, 1}, remote = {(void *)0x7ffffffde000UL, 1};
        report("vm_read", how, way->call(SYS_process_vm_readv, host, (long)&local, 1, (long)&remote, 1));
        snprintf(path, sizeof path, "/proc/%ld/mem", host);
        long fd = way->call(SYS_openat, AT_FDCWD, (long)path, O_RDWR | O_CLOEXEC, 0, 0);
        report("proc_mem", how, fd);
        if (fd >= 0)
            way->call(SYS_close, fd, 0, 0, 0, 0);
        snprintf(path, sizeof path, "/proc/%ld/environ", host);
        fd = way->call(SYS_openat, AT_FDCWD, (long)path, O_RDONLY | O_CLOEXEC, 0, 0);
        long n = fd;
        if (fd >= 0) {
            char env[256];
            n = way->call(SYS_read, fd, (long)env, sizeof env, 0, 0);
            way->call(SYS_close, fd, 0, 0, 0, 0);
        }
        report("proc_environ", how, n);
        report("setpriority", how, way->call(SYS_setpriority, PRIO_PROCESS, host, 19, 0, 0));
        struct rlimit small = {16, 16};
        report("prlimit", how, way->call(SYS_prlimit64, host, RLIMIT_NOFILE, (long)&small, 0, 0));
    }
    printf("end=1\n");
    return 0;
}
