/* ns_tricks: tries to get out from under the sandbox's mounts, or past them, with namespaces,
 * chroot and file handles, both through the in-process kernel (`direct`) and past it (`gate`):
 *
 *   ns_tricks RUNTIME SECRET HOST_FILE HANDLE_TYPE HANDLE_HEX
 *
 * SECRET is a hidden file (its directory has an empty stand-in mounted over it); HOST_FILE a
 * host file to create; HANDLE_TYPE and HANDLE_HEX the file handle the test got for SECRET on
 * the host with name_to_handle_at(2). Each attempt runs in a child of its own (the namespaces
 * and the root it changes must not stay) and prints:
 *
 *   userns_WAY=E|done         unshare(CLONE_NEWUSER | CLONE_NEWNS), then
 *   userns_umount_WAY=E|done    umount2 of the stand-in (MNT_DETACH), then
 *   userns_read_WAY=E|read:N:BYTES   reading SECRET
 *   mountns_WAY, mountns_umount_WAY, mountns_read_WAY: the same with CLONE_NEWNS alone
 *   chroot_WAY=E|done         mkdir + chroot into a directory it may write (the state
 *                             directory through the gate, /tmp otherwise), then `..` up
 *                             64 times and chroot("."): the classic way out of a chroot
 *   chroot_read_WAY, chroot_write_WAY   then reading SECRET and creating HOST_FILE
 *   handle_WAY=E|read:N:BYTES open_by_handle_at(/, HANDLE): a file by its handle, past every
 *                             path (the "shocker" escape from containers)
 *   open_tree_WAY=E|read:N:BYTES  open_tree(/, OPEN_TREE_CLONE): a copy of the root mount
 *                             without the stand-ins on it, then SECRET read through it */
#include "escape.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif

static const char *secret, *host_file;
static char state[4096];

/* Reads PATH (relative to DIRFD); prints NAME_WAY=E or read:N:BYTES. */
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

/* Runs FN(WAY) in a child and waits for it. */
static void in_child(void (*fn)(const struct way *), const struct way *way)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        fn(way);
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
}

/* The directory the stand-in covers: SECRET's parent. */
static void parent_of(const char *path, char *out, size_t size)
{
    snprintf(out, size, "%s", path);
    char *slash = strrchr(out, '/');
    if (slash && slash != out)
        *slash = 0;
}

static void userns(const struct way *way)
{
    char dir[4096];
    parent_of(secret, dir, sizeof dir);
    long r = way->call(SYS_unshare, CLONE_NEWUSER | CLONE_NEWNS, 0, 0, 0, 0);
    report("userns", way->name, r);
    report("userns_umount", way->name, way->call(SYS_umount2, (long)dir, MNT_DETACH, 0, 0, 0));
    try_read("userns_read", way, AT_FDCWD, secret);
}

static void mountns(const struct way *way)
{
    char dir[4096];
    parent_of(secret, dir, sizeof dir);
    report("mountns", way->name, way->call(SYS_unshare, CLONE_NEWNS, 0, 0, 0, 0));
    report("mountns_umount", way->name, way->call(SYS_umount2, (long)dir, MNT_DETACH, 0, 0, 0));
    try_read("mountns_read", way, AT_FDCWD, secret);
}

static void chroot_out(const struct way *way)
{
    char jail[4200];
    if (!past_the_view(way->call))
        snprintf(jail, sizeof jail, "/tmp/jail");
    else
        snprintf(jail, sizeof jail, "%s/upper/jail", state[0] ? state : "/nonexistent");
    way->call(SYS_mkdirat, AT_FDCWD, (long)jail, 0755, 0, 0);
    long r = way->call(SYS_chroot, (long)jail, 0, 0, 0, 0);
    if (r == 0) {
        /* The working directory stayed outside the new root: climb from there. */
        for (int i = 0; i < 64; i++)
            way->call(SYS_chdir, (long)"..", 0, 0, 0, 0);
        r = way->call(SYS_chroot, (long)".", 0, 0, 0, 0);
    }
    report("chroot", way->name, r);
    try_read("chroot_read", way, AT_FDCWD, secret);
    long fd = way->call(SYS_openat, AT_FDCWD, (long)host_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644, 0);
    long w = fd < 0 ? fd : way->call(SYS_write, fd, (long)"ESCAPED\n", 8, 0, 0);
    report("chroot_write", way->name, w);
}

static int handle_type;
static unsigned char handle_bytes[128];
static unsigned handle_len;

static void by_handle(const struct way *way)
{
    struct {
        unsigned int handle_bytes;
        int handle_type;
        unsigned char f_handle[128];
    } h = {handle_len, handle_type, {0}};
    memcpy(h.f_handle, handle_bytes, handle_len);
    long root = way->call(SYS_openat, AT_FDCWD, (long)"/", O_PATH | O_DIRECTORY | O_CLOEXEC, 0, 0);
    long fd = way->call(SYS_open_by_handle_at, root, (long)&h, O_RDONLY | O_CLOEXEC, 0, 0);
    if (fd < 0) {
        report("handle", way->name, fd);
        return;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%ld", fd);
    try_read("handle", way, AT_FDCWD, path);
}

static void tree(const struct way *way)
{
    long fd = way->call(SYS_open_tree, AT_FDCWD, (long)"/", OPEN_TREE_CLONE | O_CLOEXEC, 0, 0);
    if (fd < 0) {
        report("open_tree", way->name, fd);
        return;
    }
    try_read("open_tree", way, fd, secret + 1);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: ns_tricks RUNTIME SECRET HOST_FILE HANDLE_TYPE HANDLE_HEX\n");
        return 2;
    }
    if (find_gate(argv[1]) != 0)
        return 2;
    secret = argv[2];
    host_file = argv[3];
    handle_type = atoi(argv[4]);
    for (const char *hex = argv[5]; hex[0] && hex[1] && handle_len < sizeof handle_bytes; hex += 2) {
        unsigned v;
        sscanf(hex, "%2x", &v);
        handle_bytes[handle_len++] = (unsigned char)v;
    }
    find_state_dir(state, sizeof state);
    for (unsigned w = 0; w < sizeof WAYS / sizeof WAYS[0]; w++) {
        in_child(userns, &WAYS[w]);
        in_child(mountns, &WAYS[w]);
        in_child(chroot_out, &WAYS[w]);
        in_child(by_handle, &WAYS[w]);
        in_child(tree, &WAYS[w]);
    }
    return 0;
}
