/* hidden_paths: tries to read a file the policy hides, by every path that could lead to it, both
 * through the in-process kernel (`direct`) and past it (`gate`), and prints each outcome:
 *
 *   hidden_paths RUNTIME SECRET LINK_ABS LINK_REL ITERATIONS
 *
 * SECRET is the hidden file's absolute path; LINK_ABS and LINK_REL are symlinks to it that the
 * test made on the host in a visible directory (one absolute, one relative). For each way:
 *
 *   NAME_WAY=ERRNO | read:N:BYTES    what openat + read gave: the errno, or N bytes read and the
 *                                    first of them (printable ones only)
 *
 * NAME is plain (SECRET itself), proc_self_root, proc_1_root, proc_ppid_root (SECRET under
 * /proc/PID/root), dotdot (SECRET behind a chain of `..` from /tmp), proc_cwd_dotdot (from
 * /proc/self/cwd), relative (openat on a descriptor of / with SECRET relative to it),
 * link_abs, link_rel, own_link (a symlink the program makes in a place it may write: its /tmp
 * directly and without a gate, the state directory through the gate), hardlink (a hard link it tries to make
 * there). Then a race: one thread swaps a symlink between a harmless file and SECRET while
 * another opens and reads it, ITERATIONS times:
 *
 *   race_WAY=tries:N harmless:H empty:E failed:F other:O
 *   race_WAY_sample=BYTES            the first bytes of an `other` read, if there was one
 *
 * The test that runs this checks that the secret's bytes appear nowhere in the output. */
#include "escape.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

static char state[4096];
static const char *secret_path;

/* Prints what reading PATH (relative to DIRFD) gave. */
static void try_read(const char *name, const struct way *way, long dirfd, const char *path)
{
    long fd = way->call(SYS_openat, dirfd, (long)path, O_RDONLY | O_CLOEXEC, 0, 0);
    if (fd < 0) {
        report(name, way->name, fd);
        return;
    }
    char buf[96];
    long n = way->call(SYS_read, fd, (long)buf, sizeof buf - 1, 0, 0);
    way->call(SYS_close, fd, 0, 0, 0, 0);
    if (n < 0) {
        report(name, way->name, n);
        return;
    }
    for (long i = 0; i < n; i++)
        if (buf[i] < 0x20 || buf[i] > 0x7e)
            buf[i] = '.';
    buf[n] = 0;
    printf("%s_%s=read:%ld:%s\n", name, way->name, n, buf);
    fflush(stdout);
}

/* Where a way may write: the view's /tmp for calls the view serves (direct ones, and the gate way
 * under ptrace, which has no gate), the state directory on the host through the gate (its
 * private /tmp, `tmp/0`, would do too). */
static void writable_path(const struct way *way, const char *leaf, char *out, size_t size)
{
    if (!past_the_view(way->call))
        snprintf(out, size, "/tmp/%s", leaf);
    else
        snprintf(out, size, "%s/upper/%s", state, leaf);
}

struct race {
    syscall_fn call;
    const char *link, *tmp, *harmless, *secret;
    atomic_int stop;
};

static void *swapper(void *arg)
{
    struct race *r = arg;
    for (unsigned long i = 0; !atomic_load(&r->stop); i++) {
        r->call(SYS_unlinkat, AT_FDCWD, (long)r->tmp, 0, 0, 0);
        r->call(SYS_symlinkat, (long)(i % 2 ? r->secret : r->harmless), AT_FDCWD, (long)r->tmp, 0, 0);
        r->call(SYS_renameat, AT_FDCWD, (long)r->tmp, AT_FDCWD, (long)r->link, 0);
    }
    return NULL;
}

/* One thread swaps LINK between the harmless file and the secret; this one opens it. */
static void race(const struct way *way, long iterations)
{
    char link[4200], tmp[4200], harmless[4200];
    writable_path(way, "race", link, sizeof link);
    writable_path(way, "race.new", tmp, sizeof tmp);
    writable_path(way, "harmless", harmless, sizeof harmless);
    /* The gate's calls come from two threads at once: gate.h gives each thread its frame. */
    syscall_fn call = way->call;
    long fd = call(SYS_openat, AT_FDCWD, (long)harmless, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644, 0);
    if (fd < 0) {
        printf("race_%s=setup:%s\n", way->name, outcome(fd));
        return;
    }
    call(SYS_write, fd, (long)"harmless", 8, 0, 0);
    call(SYS_close, fd, 0, 0, 0, 0);
    struct race r = {call, link, tmp, harmless, secret_path, 0};
    pthread_t thread;
    pthread_create(&thread, NULL, swapper, &r);
    long good = 0, empty = 0, failed = 0, other = 0;
    char sample[96] = "";
    for (long i = 0; i < iterations; i++) {
        long f = call(SYS_openat, AT_FDCWD, (long)link, O_RDONLY | O_CLOEXEC, 0, 0);
        if (f < 0) {
            failed++;
            continue;
        }
        char buf[96];
        long n = call(SYS_read, f, (long)buf, sizeof buf - 1, 0, 0);
        call(SYS_close, f, 0, 0, 0, 0);
        if (n == 8 && memcmp(buf, "harmless", 8) == 0) {
            good++;
        } else if (n <= 0) {
            empty++;
        } else {
            if (other++ == 0) {
                for (long j = 0; j < n; j++)
                    sample[j] = buf[j] < 0x20 || buf[j] > 0x7e ? '.' : buf[j];
                sample[n] = 0;
            }
        }
    }
    atomic_store(&r.stop, 1);
    pthread_join(thread, NULL);
    printf("race_%s=tries:%ld harmless:%ld empty:%ld failed:%ld other:%ld\n", way->name, iterations, good, empty,
           failed, other);
    if (other)
        printf("race_%s_sample=%s\n", way->name, sample);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: hidden_paths RUNTIME SECRET LINK_ABS LINK_REL ITERATIONS\n");
        return 2;
    }
    if (find_gate(argv[1]) != 0)
        return 2;
    const char *secret = secret_path = argv[2];
    long iterations = atol(argv[5]);
    find_state_dir(state, sizeof state);
    printf("state=%s\n", state[0] ? "found" : "none");

    char path[8192];
    for (unsigned w = 0; w < sizeof WAYS / sizeof WAYS[0]; w++) {
        const struct way *way = &WAYS[w];
        try_read("plain", way, AT_FDCWD, secret);
        snprintf(path, sizeof path, "/proc/self/root%s", secret);
        try_read("proc_self_root", way, AT_FDCWD, path);
        snprintf(path, sizeof path, "/proc/1/root%s", secret);
        try_read("proc_1_root", way, AT_FDCWD, path);
        snprintf(path, sizeof path, "/proc/%d/root%s", getppid(), secret);
        try_read("proc_ppid_root", way, AT_FDCWD, path);
        snprintf(path, sizeof path, "/tmp/../../../../../../..%s", secret);
        try_read("dotdot", way, AT_FDCWD, path);
        snprintf(path, sizeof path, "/proc/self/cwd/../../../../../../../../..%s", secret);
        try_read("proc_cwd_dotdot", way, AT_FDCWD, path);
        long root = way->call(SYS_openat, AT_FDCWD, (long)"/", O_PATH | O_DIRECTORY | O_CLOEXEC, 0, 0);
        try_read("relative", way, root, secret + 1);
        way->call(SYS_close, root, 0, 0, 0, 0);
        try_read("link_abs", way, AT_FDCWD, argv[3]);
        try_read("link_rel", way, AT_FDCWD, argv[4]);

        if (past_the_view(way->call) && !state[0]) {
            printf("own_link_gate=nostate\nhardlink_gate=nostate\n");
            continue;
        }
        writable_path(way, "own-link", path, sizeof path);
        way->call(SYS_unlinkat, AT_FDCWD, (long)path, 0, 0, 0);
        long r = way->call(SYS_symlinkat, (long)secret, AT_FDCWD, (long)path, 0, 0);
        if (r < 0)
            printf("own_link_%s=symlink:%s\n", way->name, outcome(r));
        else
            try_read("own_link", way, AT_FDCWD, path);
        writable_path(way, "hard-link", path, sizeof path);
        r = way->call(SYS_linkat, AT_FDCWD, (long)secret, AT_FDCWD, (long)path, 0);
        if (r < 0)
            printf("hardlink_%s=link:%s\n", way->name, outcome(r));
        else
            try_read("hardlink", way, AT_FDCWD, path);
    }
    race(&WAYS[0], iterations);
    if (state[0] || !gate)
        race(&WAYS[1], iterations);
    return 0;
}
