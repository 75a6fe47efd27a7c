/* escape.h: what every escape program shares. Each program tries ways out of the sandbox two
 * ways: through its own `syscall` instruction (`direct`, which the redirect filter traps, so the
 * in-process kernel answers for the calls it serves) and through cloister-rt's gate (`via_gate`,
 * gate.h: the `syscall` the filter trusts, so only the floor the host kernel enforces stands in
 * the way). Under --backend ptrace there is no gate and both ways are the program's own
 * `syscall`, which the tracer stops wherever it is: `gate` then names the same raw call made
 * where the gate way would make it, and the program's first line says `gate=none`. Each attempt
 * prints one `name=outcome` line, outcome being `done`, a number, or the errno's name.
 *
 * Never run these programs outside `cloister run`: as root they would do what they try (with no
 * gate in the process, gate.h makes every call with the program's own `syscall`). */
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
    return own_syscall(nr, a, b, c, d, e);
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

/* Whether the `gate` way skips the view: only through cloister-rt's gate. Without one (ptrace)
 * the tracer serves the call through the view, so it writes where the view lets it (/tmp), not
 * into the state directory on the host, which it cannot name. */
__attribute__((unused)) static int past_the_view(syscall_fn call)
{
    return call == via_gate && gate;
}

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
