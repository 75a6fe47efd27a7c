/* disk_fill: writes until the disk says no, both through the in-process kernel (`direct`, into
 * its private /tmp) and past it (`gate`, straight into the state directory's upper tree on the
 * host, where Landlock lets the sandbox write; without a gate, under ptrace, into its /tmp by a
 * raw call the tracer serves):
 *
 *   disk_fill RUNTIME MOST
 *
 *   WAY_bytes=N          how many bytes went in (at most MOST, in pieces of 1 MiB)
 *   WAY_stop=E|most      the errno of the write that failed, or `most`
 *
 * Each way's file is removed before the next way writes. Under `--limit overlay_bytes` both
 * must stop with ENOSPC at the limit; the test watches the host's disk meanwhile. */
#include "escape.h"

#include <fcntl.h>
#include <unistd.h>

static char piece[1 << 20];

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: disk_fill RUNTIME MOST\n");
        return 2;
    }
    if (find_gate(argv[1]) != 0)
        return 2;
    long most = atol(argv[2]);
    char state[4096], path[4200];
    find_state_dir(state, sizeof state);
    memset(piece, 'x', sizeof piece);
    for (unsigned w = 0; w < sizeof WAYS / sizeof WAYS[0]; w++) {
        const struct way *way = &WAYS[w];
        if (!past_the_view(way->call))
            snprintf(path, sizeof path, "/tmp/fill");
        else
            snprintf(path, sizeof path, "%s/upper/fill", state[0] ? state : "/nonexistent");
        long fd = way->call(SYS_openat, AT_FDCWD, (long)path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644, 0);
        long total = 0, r = 0;
        while (fd >= 0 && total < most) {
            r = way->call(SYS_write, fd, (long)piece, sizeof piece, 0, 0);
            if (r <= 0)
                break;
            total += r;
        }
        printf("%s_bytes=%ld\n%s_stop=%s\n", way->name, total, way->name,
               fd < 0 ? outcome(fd) : r < 0 ? outcome(r) : r == 0 ? "zero" : "most");
        fflush(stdout);
        sleep(1); /* the test looks at the host's disk meanwhile */
        /* Room again for the next way, so that each meets the limit on its own. */
        way->call(SYS_unlinkat, AT_FDCWD, (long)path, 0, 0, 0);
        if (fd >= 0)
            way->call(SYS_close, fd, 0, 0, 0, 0);
    }
    return 0;
}
