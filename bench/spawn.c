/* spawn: wall time and peak RSS of whole program runs, several commands interleaved.
 *
 *   spawn [-f] REPS WARMUP LABEL PROG [ARGS...] [::: LABEL PROG [ARGS...]]...
 *
 * Runs each command WARMUP times untimed, then REPS rounds in which every command runs once,
 * in turn, so drift on a shared machine hits all of them alike. Each run is posix_spawn (or
 * fork + execvp with -f) + wait4, timed with CLOCK_MONOTONIC; stdin and stdout are /dev/null,
 * stderr is kept. Prints, per command:
 *   LABEL MEDIAN_MS MEAN_MS MIN_MS MAXRSS_KIB FAILURES
 * MAXRSS_KIB is the median over runs of wait4's ru_maxrss: the peak RSS of the child (and of
 * any descendant it waited for, whichever is larger). Note that the kernel folds the child's
 * pre-exec memory into it too: with posix_spawn (CLONE_VM) that is this process's own peak,
 * with -f it is the small forked copy of this process.
 * Then one last line with this process's own memory at the end:
 *   self VMRSS_KIB VMHWM_KIB
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct cmd {
    const char *label;
    char **argv;
    double *ms;
    long *rss;
    int fails;
};

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int use_fork;

static pid_t fork_exec(char **argv)
{
    pid_t pid = fork();
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY), out = open("/dev/null", O_WRONLY);
        if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0)
            _exit(126);
        execvp(argv[0], argv);
        fprintf(stderr, "spawn: %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

static int run(struct cmd *c, double *ms, long *rss)
{
    pid_t pid;
    double t0;
    if (use_fork) {
        t0 = now_ms();
        pid = fork_exec(c->argv);
        if (pid < 0) {
            perror("fork");
            return -1;
        }
        goto wait;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    t0 = now_ms();
    int err = posix_spawnp(&pid, c->argv[0], &fa, NULL, c->argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err != 0) {
        fprintf(stderr, "spawn: %s: %s\n", c->argv[0], strerror(err));
        return -1;
    }
wait:;
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) != pid) {
        perror("wait4");
        return -1;
    }
    *ms = now_ms() - t0;
    *rss = ru.ru_maxrss;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_l(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static void print_self(void)
{
    char line[256];
    long vmrss = -1, vmhwm = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            vmrss = atol(line + 6);
        else if (strncmp(line, "VmHWM:", 6) == 0)
            vmhwm = atol(line + 6);
    }
    if (f)
        fclose(f);
    printf("self %ld %ld\n", vmrss, vmhwm);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "-f") == 0) {
        use_fork = 1;
        argv++;
        argc--;
    }
    if (argc < 5) {
        fprintf(stderr, "usage: %s [-f] REPS WARMUP LABEL PROG [ARGS...] [::: LABEL PROG ...]...\n",
                argv[0]);
        return 2;
    }
    int reps = atoi(argv[1]), warmup = atoi(argv[2]);
    if (reps < 1 || warmup < 0) {
        fprintf(stderr, "spawn: bad REPS or WARMUP\n");
        return 2;
    }
    struct cmd cmds[16];
    int ncmd = 0;
    for (int i = 3; i < argc;) {
        if (ncmd == 16 || i + 1 >= argc) {
            fprintf(stderr, "spawn: each command needs a LABEL and a PROG (at most 16)\n");
            return 2;
        }
        struct cmd *c = &cmds[ncmd++];
        c->label = argv[i];
        c->argv = &argv[i + 1];
        int j = i + 1;
        while (j < argc && strcmp(argv[j], ":::") != 0)
            j++;
        argv[j < argc ? j : argc] = NULL; /* terminates this command's argv */
        c->ms = calloc((size_t)reps, sizeof(double));
        c->rss = calloc((size_t)reps, sizeof(long));
        c->fails = 0;
        i = j + 1;
    }
    double ms;
    long rss;
    for (int w = 0; w < warmup; w++)
        for (int k = 0; k < ncmd; k++)
            if (run(&cmds[k], &ms, &rss) != 0)
                cmds[k].fails++;
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < ncmd; k++) {
            if (run(&cmds[k], &cmds[k].ms[r], &cmds[k].rss[r]) != 0)
                cmds[k].fails++;
        }
    for (int k = 0; k < ncmd; k++) {
        struct cmd *c = &cmds[k];
        double sum = 0;
        for (int r = 0; r < reps; r++)
            sum += c->ms[r];
        qsort(c->ms, (size_t)reps, sizeof(double), cmp_d);
        qsort(c->rss, (size_t)reps, sizeof(long), cmp_l);
        printf("%s %.3f %.3f %.3f %ld %d\n", c->label, c->ms[reps / 2], sum / reps, c->ms[0],
               c->rss[reps / 2], c->fails);
    }
    print_self();
    return 0;
}
