// execve from places where the memory below the stack pointer is not the caller's to use, and
// with a loader that is not a file: each must run the program (or fail as Linux fails), and
// leave the caller's memory alone.
//   vfork_frame_ok  a musl-style spawn (clone(CLONE_VM|CLONE_VFORK) on a small stack inside
//                   the parent's frame, a 6 KB environment): the parent's frame is intact
//   vfork_status    the child's exit status (0: /bin/true ran)
//   clonevm_status  a clone(CLONE_VM) child (no vfork, no alternate stack yet) whose first
//                   call is execve
//   altstack_status execve from a signal handler running on the program's alternate stack
//   fifo_interp     execve of a program whose PT_INTERP names a FIFO: EACCES, without waiting
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char *env[3];
static char *true_argv[] = {"/bin/true", NULL};

static int exec_true(void *arg) {
    (void)arg;
    syscall(SYS_execve, "/bin/true", true_argv, env);
    _exit(127);
}

static int status_of(pid_t pid) {
    int st = 0;
    if (waitpid(pid, &st, __WALL) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static __attribute__((noinline)) void vfork_small_stack(void) {
    char stack[1024 + 4096];
    volatile unsigned long canary[64];
    for (int i = 0; i < 64; i++)
        canary[i] = 0x1122334455667788UL + i;
    pid_t pid = clone(exec_true, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
    int ok = pid > 0;
    for (int i = 0; i < 64; i++)
        ok &= canary[i] == 0x1122334455667788UL + i;
    printf("vfork_frame_ok=%d\n", ok);
    printf("vfork_status=%d\n", status_of(pid));
}

static void on_usr1(int sig) {
    (void)sig;
    syscall(SYS_execve, "/bin/true", true_argv, env);
    _exit(127);
}

int main(void) {
    char *big = malloc(6008);
    memcpy(big, "BIG=", 4);
    memset(big + 4, 'x', 6000);
    big[6004] = 0;
    env[0] = big;
    env[1] = "A=b";
    vfork_small_stack();

    size_t size = 1 << 20;
    char *stack = malloc(size);
    pid_t pid = clone(exec_true, stack + size, CLONE_VM | SIGCHLD, NULL);
    printf("clonevm_status=%d\n", status_of(pid));

    pid = fork();
    if (pid == 0) {
        stack_t ss = {.ss_sp = malloc(65536), .ss_size = 65536};
        sigaltstack(&ss, NULL);
        struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_ONSTACK};
        sigaction(SIGUSR1, &sa, NULL);
        raise(SIGUSR1);
        _exit(126);
    }
    printf("altstack_status=%d\n", status_of(pid));

    // A copy of /bin/true whose loader path, same length, names a FIFO.
    const char *loader = "/lib64/ld-linux-x86-64.so.2";
    char fifo[] = "/tmp/cloister-fifo-interp00";
    char copy[] = "/tmp/cloister-fifo-true";
    unlink(fifo);
    mkfifo(fifo, 0777);
    int in = open("/bin/true", O_RDONLY), out = open(copy, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    static char bytes[1 << 20];
    ssize_t n = read(in, bytes, sizeof bytes);
    char *at = n > 0 ? memmem(bytes, n, loader, strlen(loader)) : NULL;
    if (at)
        memcpy(at, fifo, strlen(fifo));
    if (write(out, bytes, n) != n)
        return 1;
    close(in);
    close(out);
    pid = fork();
    if (pid == 0) {
        alarm(5);
        char *argv[] = {copy, NULL};
        execv(copy, argv);
        printf("fifo_interp=%s\n", errno == EACCES ? "EACCES" : strerror(errno));
        fflush(stdout);
        _exit(0);
    }
    fflush(stdout);
    int st = status_of(pid);
    if (st != 0)
        printf("fifo_interp=status %d\n", st);
    unlink(copy);
    unlink(fifo);
    return 0;
}
