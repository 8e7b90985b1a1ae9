/* tcp.c: TCP listeners (loopback by default) and the uid behind a loopback
 * peer, asked of the kernel with one NETLINK_SOCK_DIAG lookup (net.h). */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int lp_net_parse_tcp(const char *address, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[64];
    const char *colon, *h = address;
    size_t hlen;
    char *end;
    long port;

    if (address[0] == '[') { /* [V6]:PORT */
        const char *close = strchr(address, ']');

        if (close == NULL || close[1] != ':')
            return -EINVAL;
        h = address + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        if ((colon = strrchr(address, ':')) == NULL)
            return -EINVAL;
        hlen = (size_t)(colon - address);
    }
    port = strtol(colon + 1, &end, 10);
    if (hlen == 0 || hlen >= sizeof(host) || *end != 0 || end == colon + 1 || port < 0 ||
        port > 65535)
        return -EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = 0;
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
        *len = sizeof(struct sockaddr_in);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
        *len = sizeof(struct sockaddr_in6);
        return 0;
    }
    return -EINVAL; /* numeric addresses only: no resolver behind a security check */
}

bool lp_net_is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;

        return IN6_IS_ADDR_LOOPBACK(a) ||
               (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

int lp_net_listen_tcp(const char *address, int *fd, char *bound, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char host[INET6_ADDRSTRLEN];
    int s, one = 1, r;

    if ((r = lp_net_parse_tcp(address, &ss, &len)) != 0)
        return r;
    if ((s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s, (struct sockaddr *)&ss, len) != 0 || listen(s, 128) != 0 ||
        getsockname(s, (struct sockaddr *)&ss, &len) != 0) {
        r = -errno;
        close(s);
        return r;
    }
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
        snprintf(bound, size, "%s:%u", host, ntohs(((struct sockaddr_in *)&ss)->sin_port));
    } else {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
        snprintf(bound, size, "[%s]:%u", host, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
    }
    *fd = s;
    return 0;
}

int lp_net_tcp_nodelay(int fd)
{
    int one = 1;

    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0 ? 0 : -errno;
}

int lp_net_dial(const char *address, int *fd)
{
    struct sockaddr_storage ss;
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    socklen_t len;
    bool tcp = lp_net_parse_tcp(address, &ss, &len) == 0;
    int s, r;

    if (!tcp) {
        if (strlen(address) >= sizeof(un.sun_path))
            return -ENAMETOOLONG;
        memcpy(un.sun_path, address, strlen(address) + 1);
        memcpy(&ss, &un, sizeof(un));
        len = sizeof(un);
    }
    if ((s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    /* before connect: no moment in which the socket is connected without it */
    if ((tcp && lp_net_tcp_nodelay(s) != 0) || connect(s, (struct sockaddr *)&ss, len) != 0) {
        r = -errno;
        close(s);
        return r;
    }
    *fd = s;
    return 0;
}

/* Fills the diag id's address and port from sa (a v4-mapped v6 address
 * as plain v4: that is how the kernel files a v4 client). */
static void fill_end(const struct sockaddr_storage *sa, uint8_t *family, __be16 *port,
                     __be32 addr[4])
{
    if (sa->ss_family == AF_INET) {
        *family = AF_INET;
        *port = ((const struct sockaddr_in *)sa)->sin_port;
        addr[0] = ((const struct sockaddr_in *)sa)->sin_addr.s_addr;
        return;
    }
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

    *port = ((const struct sockaddr_in6 *)sa)->sin6_port;
    if (IN6_IS_ADDR_V4MAPPED(a)) {
        *family = AF_INET;
        memcpy(&addr[0], &a->s6_addr[12], 4);
    } else {
        *family = AF_INET6;
        memcpy(addr, a, 16);
    }
}

int lp_net_tcp_peer_uid(int fd, uid_t *uid)
{
    struct sockaddr_storage local, peer;
    socklen_t llen = sizeof(local), plen = sizeof(peer);
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 req;
    } q;
    struct sockaddr_nl nl = {.nl_family = AF_NETLINK};
    char buf[8192];
    uint8_t family;
    ssize_t n;
    int s, r = -ENOENT;

    if (getsockname(fd, (struct sockaddr *)&local, &llen) != 0 ||
        getpeername(fd, (struct sockaddr *)&peer, &plen) != 0)
        return -errno;
    memset(&q, 0, sizeof(q));
    q.nlh.nlmsg_len = sizeof(q);
    q.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    q.nlh.nlmsg_flags = NLM_F_REQUEST;
    q.req.sdiag_protocol = IPPROTO_TCP;
    q.req.idiag_states = 1u << TCP_ESTABLISHED;
    /* the peer's socket: its source is the peer, its destination is us */
    fill_end(&peer, &family, &q.req.id.idiag_sport, q.req.id.idiag_src);
    fill_end(&local, &q.req.sdiag_family, &q.req.id.idiag_dport, q.req.id.idiag_dst);
    q.req.sdiag_family = family;
    q.req.id.idiag_cookie[0] = q.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    if ((s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)) < 0)
        return -errno;
    if (sendto(s, &q, sizeof(q), 0, (struct sockaddr *)&nl, sizeof(nl)) < 0) {
        r = -errno;
        goto out;
    }
    if ((n = recv(s, buf, sizeof(buf), 0)) < 0) {
        r = -errno;
        goto out;
    }
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
         h = NLMSG_NEXT(h, n)) {
        const struct inet_diag_msg *m = NLMSG_DATA(h);

        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
            break;
        /* after the peer closes, its entry reads uid 0 with inode 0: trust
         * only a live, established socket */
        if (m->idiag_state == TCP_ESTABLISHED && m->idiag_inode != 0) {
            *uid = m->idiag_uid;
            r = 0;
        }
        break;
    }
out:
    close(s);
    return r;
}
