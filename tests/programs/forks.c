/* Usage: forks EXPECTED_HOSTNAME   (run with an absolute path: it re-executes argv[0])
 *        forks child EXPECTED_HOSTNAME
 * Creates children every way libc offers and has each check uname(): fork, vfork (the child
 * calls uname before _exit), vfork+execv, posix_spawn (of itself) and posix_spawnp of
 * `uname -n`, whose output goes to our stdout. Prints "MODE=ok" lines. */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int name_is(const char *expected) {
    struct utsname u;
    return uname(&u) == 0 && strcmp(u.nodename, expected) == 0;
}

static int reap(const char *mode, pid_t pid) {
    int status;
    if (pid < 0) {
        printf("%s=cannot-start\n", mode);
        return 0;
    }
    if (waitpid(pid, &status, 0) != pid) {
        printf("%s=waitpid-failed\n", mode);
        return 0;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("%s=failed status=0x%x\n", mode, status);
        return 0;
    }
    printf("%s=ok\n", mode);
    return 1;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "child") == 0)
        return name_is(argv[2]) ? 0 : 3;
    if (argc != 2) {
        fprintf(stderr, "usage: %s EXPECTED_HOSTNAME\n", argv[0]);
        return 2;
    }
    const char *expected = argv[1];
    char *child_argv[] = {argv[0], "child", argv[1], NULL};
    int ok = 1;
    pid_t pid;

    fflush(stdout);
    pid = fork();
    if (pid == 0)
        _exit(name_is(expected) ? 0 : 3);
    ok &= reap("fork", pid);

    fflush(stdout);
    pid = vfork();
    if (pid == 0)
        _exit(name_is(expected) ? 0 : 3);
    ok &= reap("vfork", pid);

    fflush(stdout);
    pid = vfork();
    if (pid == 0) {
        execv(argv[0], child_argv);
        _exit(127);
    }
    ok &= reap("vfork_exec", pid);

    fflush(stdout);
    int err = posix_spawn(&pid, argv[0], NULL, NULL, child_argv, environ);
    ok &= reap("posix_spawn", err ? -1 : pid);

    char *uname_argv[] = {"uname", "-n", NULL};
    fflush(stdout);
    err = posix_spawnp(&pid, "uname", NULL, NULL, uname_argv, environ);
    ok &= reap("posix_spawnp", err ? -1 : pid);
    return ok ? 0 : 1;
}
