/* Usage: segv EXPECTED_HOSTNAME
 * What managed runtimes do with SIGSEGV: a handler on the program's own alternate signal stack
 * (SA_ONSTACK) that calls uname() and siglongjmps out of a NULL dereference, three times.
 * Prints key=value lines; every check prints 1 when it holds. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#define ALT_SIZE (64 * 1024)

static const char *expected;
static sigjmp_buf env;
static char *alt;
static volatile int on_alt = 1, handler_uname_ok = 1, fault_at_null = 1;
static int *volatile nowhere; /* NULL, but the compiler may not assume so */

static int name_ok(void) {
    struct utsname u;
    return uname(&u) == 0 && strcmp(u.nodename, expected) == 0;
}

static void on_segv(int sig, siginfo_t *si, void *ucontext) {
    (void)sig;
    (void)ucontext;
    char here;
    if (!(&here >= alt && &here < alt + ALT_SIZE))
        on_alt = 0;
    if (si->si_addr != NULL)
        fault_at_null = 0;
    if (!name_ok())
        handler_uname_ok = 0;
    siglongjmp(env, 1);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s EXPECTED_HOSTNAME\n", argv[0]);
        return 2;
    }
    expected = argv[1];
    alt = malloc(ALT_SIZE);
    stack_t ss = {.ss_sp = alt, .ss_size = ALT_SIZE, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        perror("sigaltstack");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0) {
        perror("sigaction");
        return 1;
    }

    int recovered = 0;
    for (int i = 0; i < 3; i++) {
        if (sigsetjmp(env, 1) == 0) {
            *nowhere = i;
            printf("the NULL store did not fault\n");
            return 1;
        }
        recovered++;
    }
    printf("recovered=%d\n", recovered);
    printf("handler_on_altstack=%d\n", on_alt);
    printf("fault_at_null=%d\n", fault_at_null);
    printf("handler_uname_ok=%d\n", handler_uname_ok);
    stack_t now;
    sigaltstack(NULL, &now);
    printf("altstack_kept=%d\n", now.ss_sp == alt && now.ss_size == ALT_SIZE);
    printf("uname_ok=%d\n", name_ok());
    return 0;
}
