/* A fork bomb that keeps what it made: forks until fork fails, every child waiting forever,
 * then prints how many forks succeeded and why the next one failed. Run with a `processes`
 * limit, it must stop at that limit with EAGAIN (and the sandbox's end must kill the children,
 * which a test checks by their argv[1]). argv[1]: the most forks to try (a safety net natively). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long most = argc > 1 ? atol(argv[1]) : 100000;
    long made = 0;
    int err = 0;
    while (made < most) {
        pid_t pid = fork();
        if (pid < 0) {
            err = errno;
            break;
        }
        if (pid == 0) {
            for (;;)
                pause();
        }
        made++;
    }
    printf("forks=%ld\nerror=%s\n", made, err == EAGAIN ? "EAGAIN" : err ? strerror(err) : "none");
    return 0;
}
