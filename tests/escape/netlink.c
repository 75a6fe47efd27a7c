/* netlink: asks the kernel, over netlink sockets, about the host's network: its interfaces
 * (rtnetlink RTM_GETLINK) and its listening TCP sockets (sock_diag), both through the in-process
 * kernel (`direct`) and past it (`gate`):
 *
 *   netlink RUNTIME
 *
 *   links_WAY=NAME,NAME,...|ERRNO      every interface the dump lists
 *   listening_WAY=PORT,PORT,...|ERRNO  every listening IPv4 TCP port the dump lists
 *
 * Under --net none each answers for the sandbox's own network namespace: `lo` alone, none of
 * the host's sockets. The test compares with what the host has. (Nothing here changes an
 * interface: were the host's listed, that would be the escape, and the test fails on it.) */
#include "escape.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static char buf[1 << 16];

/* Sends one request and walks the multipart answer, calling EACH on every message; returns 0
 * or the raw error. */
static long dump(const struct way *way, int proto, void *req, size_t len, void (*each)(struct nlmsghdr *, char *),
                 char *out)
{
    long fd = way->call(SYS_socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto, 0, 0);
    if (fd < 0)
        return fd;
    long r = way->call(SYS_write, fd, (long)req, (long)len, 0, 0);
    while (r >= 0) {
        r = way->call(SYS_read, fd, (long)buf, sizeof buf, 0, 0);
        if (r <= 0)
            break;
        int done = 0;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)r); h = NLMSG_NEXT(h, r)) {
            if (h->nlmsg_type == NLMSG_DONE) {
                done = 1;
                break;
            }
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *e = NLMSG_DATA(h);
                way->call(SYS_close, fd, 0, 0, 0, 0);
                return e->error;
            }
            each(h, out);
        }
        if (done) {
            r = 0;
            break;
        }
    }
    way->call(SYS_close, fd, 0, 0, 0, 0);
    return r < 0 ? r : 0;
}

static void link_name(struct nlmsghdr *h, char *out)
{
    struct ifinfomsg *ifi = NLMSG_DATA(h);
    int len = h->nlmsg_len - NLMSG_LENGTH(sizeof *ifi);
    for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == IFLA_IFNAME) {
            if (*out)
                strcat(out, ",");
            strncat(out, RTA_DATA(a), 64);
        }
    }
}

static void listening_port(struct nlmsghdr *h, char *out)
{
    struct inet_diag_msg *m = NLMSG_DATA(h);
    char port[16];
    snprintf(port, sizeof port, "%s%u", *out ? "," : "", ntohs(m->id.idiag_sport));
    if (strlen(out) < 4000)
        strcat(out, port);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: netlink RUNTIME\n");
        return 2;
    }
    if (find_gate(argv[1]) != 0)
        return 2;
    static char out[8192];
    for (unsigned w = 0; w < sizeof WAYS / sizeof WAYS[0]; w++) {
        const struct way *way = &WAYS[w];
        struct {
            struct nlmsghdr h;
            struct ifinfomsg i;
        } links = {{NLMSG_LENGTH(sizeof(struct ifinfomsg)), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, 0},
                   {.ifi_family = AF_UNSPEC}};
        out[0] = 0;
        long r = dump(way, NETLINK_ROUTE, &links, sizeof links, link_name, out);
        printf("links_%s=%s\n", way->name, r < 0 ? outcome(r) : out);

        struct {
            struct nlmsghdr h;
            struct inet_diag_req_v2 r;
        } diag = {{NLMSG_LENGTH(sizeof(struct inet_diag_req_v2)), SOCK_DIAG_BY_FAMILY,
                   NLM_F_REQUEST | NLM_F_DUMP, 2, 0},
                  {.sdiag_family = AF_INET, .sdiag_protocol = IPPROTO_TCP, .idiag_states = 1 << 10 /* LISTEN */}};
        out[0] = 0;
        r = dump(way, NETLINK_SOCK_DIAG, &diag, sizeof diag, listening_port, out);
        printf("listening_%s=%s\n", way->name, r < 0 ? outcome(r) : out);

        fflush(stdout);
    }
    return 0;
}
