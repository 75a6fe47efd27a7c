/* host_write: tries to change a host file that the view shows read-only (the overlay's lower
 * layer) or to replace it, both through the in-process kernel (`direct`) and past it (`gate`),
 * and prints each outcome:
 *
 *   host_write RUNTIME FILE GATE_FILE
 *
 * The direct way works on FILE, the gate way on GATE_FILE (another host file the view shows
 * read-only): without a gate (ptrace) both ways go through the view, where the first way's
 * unlink would leave the second nothing to try.
 *
 *   open_rdwr_WAY      openat(FILE, O_RDWR) and a write of "ESCAPED" at offset 0
 *   open_trunc_WAY     openat(FILE, O_WRONLY | O_TRUNC)
 *   append_WAY         openat(FILE, O_WRONLY | O_APPEND) and a write
 *   truncate_WAY       truncate(FILE, 0)
 *   proc_root_WAY      openat(/proc/self/root + FILE, O_RDWR) and a write
 *   rename_WAY         renameat(a file of its own, FILE): replacing the file
 *   unlink_WAY         unlinkat(FILE)
 *   mmap_WAY           a shared writable mapping of a read-only descriptor of FILE
 *   sysctl_WAY         openat(/proc/sys/kernel/hostname, O_WRONLY): the host's settings (closed
 *                      at once, nothing written)
 *   sysfs_WAY          openat(/sys/kernel/mm/transparent_hugepage/enabled, O_WRONLY), likewise
 *
 * Through the in-process kernel the writes may succeed: they land in the sandbox's copy (the
 * overlay). The test checks the host's file byte for byte after the run, from outside. */
#include "escape.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

static char state[4096];

/* Opens FILE with FLAGS and writes to it; reports the first failure or done. */
static void open_write(const char *name, const struct way *way, const char *file, int flags)
{
    long fd = way->call(SYS_openat, AT_FDCWD, (long)file, flags | O_CLOEXEC, 0, 0);
    if (fd < 0 || (flags & O_TRUNC)) {
        report(name, way->name, fd);
        if (fd >= 0)
            way->call(SYS_close, fd, 0, 0, 0, 0);
        return;
    }
    long n = way->call(SYS_pwrite64, fd, (long)"ESCAPED", 7, 0, 0);
    if (flags & O_APPEND)
        n = way->call(SYS_write, fd, (long)"ESCAPED", 7, 0, 0);
    way->call(SYS_close, fd, 0, 0, 0, 0);
    report(name, way->name, n);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: host_write RUNTIME FILE GATE_FILE\n");
        return 2;
    }
    if (find_gate(argv[1]) != 0)
        return 2;
    find_state_dir(state, sizeof state);
    char path[8192];
    for (unsigned w = 0; w < sizeof WAYS / sizeof WAYS[0]; w++) {
        const struct way *way = &WAYS[w];
        const char *file = argv[2 + w];
        open_write("open_rdwr", way, file, O_RDWR);
        open_write("open_trunc", way, file, O_WRONLY | O_TRUNC);
        open_write("append", way, file, O_WRONLY | O_APPEND);
        report("truncate", way->name, way->call(SYS_truncate, (long)file, 0, 0, 0, 0));
        snprintf(path, sizeof path, "/proc/self/root%s", file);
        open_write("proc_root", way, path, O_RDWR);

        /* A file of its own, where this way may write (the state directory through the gate, the
         * view's /tmp otherwise), renamed over the host's. */
        if (!past_the_view(way->call))
            snprintf(path, sizeof path, "/tmp/replacement");
        else
            snprintf(path, sizeof path, "%s/upper/replacement", state[0] ? state : "/nonexistent");
        long fd = way->call(SYS_openat, AT_FDCWD, (long)path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644, 0);
        if (fd >= 0) {
            way->call(SYS_write, fd, (long)"ESCAPED", 7, 0, 0);
            way->call(SYS_close, fd, 0, 0, 0, 0);
        }
        report("rename", way->name, way->call(SYS_renameat, AT_FDCWD, (long)path, AT_FDCWD, (long)file, 0));
        report("unlink", way->name, way->call(SYS_unlinkat, AT_FDCWD, (long)file, 0, 0, 0));

        /* A shared mapping writes through to the file it maps, if the kernel allows it. */
        fd = way->call(SYS_openat, AT_FDCWD, (long)file, O_RDONLY | O_CLOEXEC, 0, 0);
        long at = fd < 0 ? fd
                         : way->call(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
        if (fd >= 0 && at >= 0 && (unsigned long)at < -4096UL) {
            memcpy((void *)at, "ESCAPED", 7);
            way->call(SYS_msync, at, 4096, MS_SYNC, 0, 0);
            way->call(SYS_munmap, at, 4096, 0, 0, 0);
        }
        report("mmap", way->name, at);
        if (fd >= 0)
            way->call(SYS_close, fd, 0, 0, 0, 0);

        static const char *const knobs[][2] = {{"sysctl", "/proc/sys/kernel/hostname"},
                                               {"sysfs", "/sys/kernel/mm/transparent_hugepage/enabled"}};
        for (unsigned k = 0; k < 2; k++) {
            fd = way->call(SYS_openat, AT_FDCWD, (long)knobs[k][1], O_WRONLY | O_CLOEXEC, 0, 0);
            report(knobs[k][0], way->name, fd);
            if (fd >= 0)
                way->call(SYS_close, fd, 0, 0, 0, 0);
        }
    }
    return 0;
}
