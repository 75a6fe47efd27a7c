// Redirected calls made by a thread whose signal stack is small (8 KiB, as Rust gives every
// thread) with a guard page below it: the runtime's handler runs on that stack and must fit.
#define _GNU_SOURCE
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int main(void) {
    size_t size = 8192;
    char *guard = mmap(NULL, size + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (guard == MAP_FAILED || mprotect(guard, 4096, PROT_NONE) != 0) {
        perror("mmap");
        return 1;
    }
    stack_t ss = {.ss_sp = guard + 4096, .ss_size = size, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        perror("sigaltstack");
        return 1;
    }
    struct utsname u;
    uname(&u);
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf);
    unsigned char r[16];
    getrandom(r, sizeof r, 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pid_t pid;
    char *argv[] = {"sh", "-c", "echo spawned=yes", NULL};
    int err = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ);
    int status = -1;
    if (err == 0) {
        waitpid(pid, &status, 0);
    }
    printf("uname=%s\nexe=%d\nspawn=%d\n", u.nodename, n > 0, err == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    fflush(stdout);
    execl("/bin/sh", "sh", "-c", "echo exec=yes", (char *)NULL);
    perror("execl");
    return 1;
}
