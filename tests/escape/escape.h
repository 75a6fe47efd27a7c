/* escape.h: what every escape program shares. Each program tries ways out of the sandbox two
 * ways: through its own `syscall` instruction (`direct`, which the redirect filter traps, so the
 * in-process kernel answers for the calls it serves) and through cloister-rt's gate (`via_gate`,
 * gate.h: the `syscall` the filter trusts, so only the floor the host kernel enforces stands in
 * the way). Each attempt prints one `name=outcome` line, outcome being `done`, a number, or the
 * errno's name.
 *
 * Never run these programs outside `cloister run`: as root they would do what they try. They
 * cannot run natively anyway, since they jump into the runtime. */
#ifndef CLOISTER_ESCAPE_H
#define CLOISTER_ESCAPE_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "gate.h"

/* A system call made by this program's own `syscall` instruction, not libc's. */
static long direct(long nr, long a, long b, long c, long d, long e)
{
    register long rax __asm__("rax") = nr;
    register long rdi __asm__("rdi") = a;
    register long rsi __asm__("rsi") = b;
    register long rdx __asm__("rdx") = c;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = 0;
    __asm__ volatile("syscall"
                     : "+r"(rax)
                     : "r"(rdi), "r"(rsi), "r"(rdx), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return rax;
}

/* The sandbox's state directory on the host (where the overlay's upper layer and the private
 * /tmp live, and where Landlock lets the sandbox write), found from the shared page's mapping
 * in /proc/self/maps: STATE/shared. Empty when there is none. */
__attribute__((unused)) static void find_state_dir(char *out, size_t size)
{
    out[0] = 0;
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps)
        return;
    char line[4096];
    while (fgets(line, sizeof line, maps)) {
        char *path = strchr(line, '/');
        size_t n = path ? strlen(path) : 0;
        if (n > 8 && strcmp(path + n - 8, "/shared\n") == 0 && n - 8 < size) {
            memcpy(out, path, n - 8);
            out[n - 8] = 0;
            break;
        }
    }
    fclose(maps);
}

typedef long (*syscall_fn)(long, long, long, long, long, long);

/* The two ways, for loops over both. */
static const struct way {
    const char *name;
    syscall_fn call;
} WAYS[] = {{"direct", direct}, {"gate", via_gate}};

/* The errno's name of a raw result (-errno), or "done" for success. */
__attribute__((unused)) static const char *outcome(long r)
{
    if (r >= 0)
        return "done";
    const char *name = strerrorname_np((int)-r);
    return name ? name : "E?";
}

/* Prints `what_how=outcome`. */
__attribute__((unused)) static void report(const char *what, const char *how, long r)
{
    printf("%s_%s=%s\n", what, how, outcome(r));
    fflush(stdout);
}

#endif
