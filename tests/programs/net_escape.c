/* net_escape: tries to reach the host's network the way a hostile program could, with raw
 * `syscall` instructions of its own and through cloister-rt's gate (the `syscall` the redirect
 * filter trusts, see gate.h), and prints each outcome:
 *
 *   net_escape RUNTIME PORT
 *
 *   inet_{direct,gate}=connected|ERRNO_NAME     AF_INET stream socket, connect to 127.0.0.1:PORT
 *   inet6_{direct,gate}=connected|ERRNO_NAME    AF_INET6, connect to ::ffff:127.0.0.1 port PORT
 *   packet_{direct,gate}=opened|ERRNO_NAME      AF_PACKET raw socket (every frame of a device)
 *   raw_{direct,gate}=opened|ERRNO_NAME         AF_INET SOCK_RAW ICMP socket
 *   vsock_{direct,gate}=opened|ERRNO_NAME       AF_VSOCK stream socket (the hypervisor)
 *   netlink_{direct,gate}=opened|ERRNO_NAME     AF_NETLINK route socket
 *
 * Under --net none no connect may succeed and no packet, raw or vsock socket may open; the test
 * starts a server on the host's 127.0.0.1:PORT, which --net host reaches. Nothing is sent
 * anywhere but to that port. */
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "gate.h"

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

typedef long (*syscall_fn)(long, long, long, long, long, long);

static const char *errno_name(long r)
{
    switch (-r) {
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENETUNREACH: return "ENETUNREACH";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    default: return strerror((int)-r);
    }
}

/* Opens a socket and closes it again; prints opened or the error. */
static void try_open(const char *what, const char *how, syscall_fn call, int family, int type, int proto)
{
    long fd = call(SYS_socket, family, type | SOCK_CLOEXEC, proto, 0, 0);
    printf("%s_%s=%s\n", what, how, fd >= 0 ? "opened" : errno_name(fd));
    if (fd >= 0)
        call(SYS_close, fd, 0, 0, 0, 0);
}

/* Opens a stream socket of `family` and connects it to `addr`; prints connected or the error. */
static void try_connect(const char *what, const char *how, syscall_fn call, int family, const void *addr,
                        socklen_t len)
{
    long fd = call(SYS_socket, family, SOCK_STREAM | SOCK_CLOEXEC, 0, 0, 0);
    if (fd < 0) {
        printf("%s_%s=%s\n", what, how, errno_name(fd));
        return;
    }
    long r = call(SYS_connect, fd, (long)addr, len, 0, 0);
    printf("%s_%s=%s\n", what, how, r == 0 ? "connected" : errno_name(r));
    call(SYS_close, fd, 0, 0, 0, 0);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: net_escape RUNTIME PORT\n");
        return 2;
    }
    if (find_gate(argv[1]) != 0)
        return 2;
    int port = atoi(argv[2]);
    struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    v6.sin6_addr.s6_addr[10] = 0xff;
    v6.sin6_addr.s6_addr[11] = 0xff;
    memcpy(&v6.sin6_addr.s6_addr[12], &v4.sin_addr, 4);

    const struct {
        const char *how;
        syscall_fn call;
    } ways[] = {{"direct", own_syscall}, {"gate", via_gate}};
    for (unsigned i = 0; i < sizeof ways / sizeof ways[0]; i++) {
        const char *how = ways[i].how;
        syscall_fn call = ways[i].call;
        try_connect("inet", how, call, AF_INET, &v4, sizeof v4);
        try_connect("inet6", how, call, AF_INET6, &v6, sizeof v6);
        try_open("packet", how, call, AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
        try_open("raw", how, call, AF_INET, SOCK_RAW, IPPROTO_ICMP);
        try_open("vsock", how, call, AF_VSOCK, SOCK_STREAM, 0);
        try_open("netlink", how, call, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    }
    return 0;
}
