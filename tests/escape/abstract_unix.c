/* abstract_unix: tries to reach a host daemon's abstract unix socket (a name in the abstract
 * namespace, `@NAME`, which no file guards: X11's, D-Bus's, containerd's shims listen on such
 * names), both through the in-process kernel (`direct`) and past it (`gate`):
 *
 *   abstract_unix RUNTIME NAME
 *
 *   stream_WAY=ERRNO|done     connect(2) of a SOCK_STREAM socket to @NAME, then a write
 *   dgram_WAY=ERRNO|done      connect(2) of a SOCK_DGRAM socket to @NAME, then a datagram
 *
 * Abstract names belong to a network namespace: the sandbox's own under --net none. The test
 * listens on @NAME on the host and checks that nothing arrived. */
#include "escape.h"

#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: abstract_unix RUNTIME NAME\n");
        return 2;
    }
    if (find_gate(argv[1]) != 0)
        return 2;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(argv[2]);
    if (len + 1 > sizeof addr.sun_path)
        return 2;
    memcpy(addr.sun_path + 1, argv[2], len); /* sun_path[0] = 0: the abstract namespace */
    long alen = (long)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
    for (unsigned w = 0; w < sizeof WAYS / sizeof WAYS[0]; w++) {
        const struct way *way = &WAYS[w];
        long fd = way->call(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, 0, 0);
        long r = fd < 0 ? fd : way->call(SYS_connect, fd, (long)&addr, alen, 0, 0);
        if (r == 0)
            r = way->call(SYS_write, fd, (long)"ESCAPED\n", 8, 0, 0);
        report("stream", way->name, r);
        if (fd >= 0)
            way->call(SYS_close, fd, 0, 0, 0, 0);
        fd = way->call(SYS_socket, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, 0, 0);
        r = fd < 0 ? fd : way->call(SYS_connect, fd, (long)&addr, alen, 0, 0);
        if (r == 0)
            r = way->call(SYS_write, fd, (long)"ESCAPED\n", 8, 0, 0);
        report("dgram", way->name, r);
        if (fd >= 0)
            way->call(SYS_close, fd, 0, 0, 0, 0);
    }
    return 0;
}
