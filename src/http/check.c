/* check.c: token, Host, Origin, listen address and loggable URI (check.h). */
#include "http/check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool lp_http_token_equal(const char *expected, const char *given)
{
    size_t n = strlen(expected), m;
    unsigned char diff;

    if (given == NULL)
        return false;
    m = strnlen(given, n + 1);
    diff = m != n;
    /* Every byte of expected is looked at whatever given holds: the time
     * tells nothing of where a guess went wrong. */
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)expected[i] ^ (unsigned char)(i < m ? given[i] : 0);
    return diff == 0 && n > 0;
}

const char *lp_http_bearer(const char *authz)
{
    if (authz == NULL || strncasecmp(authz, "Bearer ", 7) != 0)
        return NULL;
    authz += 7;
    while (*authz == ' ')
        authz++;
    return *authz != '\0' ? authz : NULL;
}

static int parse_port(const char *s, unsigned *port)
{
    char *end;
    unsigned long v;

    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > 65535)
        return -EINVAL;
    *port = (unsigned)v;
    return 0;
}

int lp_http_addr_parse(const char *addr, lp_http_addr_t *a, char *msg, size_t msgsz)
{
    char host[64];
    const char *colon, *h = addr;
    size_t hlen;

    memset(a, 0, sizeof(*a));
    if (addr == NULL || *addr == '\0')
        goto bad;
    if (*addr == '[') { /* [v6]:port */
        const char *close = strchr(addr, ']');

        if (close == NULL || close[1] != ':')
            goto bad;
        h = addr + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
        a->ipv6 = true;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL)
            goto bad;
        hlen = (size_t)(colon - addr);
    }
    if (hlen == 0 || hlen >= sizeof(host) || parse_port(colon + 1, &a->port) != 0)
        goto bad;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (a->ipv6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;

        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            goto bad;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)a->port);
        a->len = sizeof(*s6);
        a->loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;

        if (strcasecmp(host, "localhost") == 0)
            strcpy(host, "127.0.0.1");
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            goto bad;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)a->port);
        a->len = sizeof(*s4);
        a->loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    }
    return 0;
bad:
    snprintf(msg, msgsz, "bad HTTP address '%s': give IPV4:PORT, [IPV6]:PORT or localhost:PORT",
             addr != NULL ? addr : "");
    return -EINVAL;
}

static int hosts_add(lp_http_hosts_t *h, const char *fmt_host, const char *port)
{
    char buf[300];

    if (h->n == LP_HTTP_HOSTS_MAX)
        return -E2BIG;
    if (snprintf(buf, sizeof(buf), "%s%s", fmt_host, port) >= (int)sizeof(buf))
        return -E2BIG;
    if ((h->v[h->n] = strdup(buf)) == NULL)
        return -ENOMEM;
    h->n++;
    return 0;
}

int lp_http_hosts_init(lp_http_hosts_t *h, const lp_http_addr_t *a, const char **extra)
{
    char port[8], ip[INET6_ADDRSTRLEN + 2];
    int rc;

    memset(h, 0, sizeof(*h));
    snprintf(port, sizeof(port), ":%u", a->port);
    if (a->ipv6) {
        ip[0] = '[';
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, ip + 1,
                  INET6_ADDRSTRLEN);
        strcat(ip, "]");
    } else {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->ss)->sin_addr, ip, sizeof(ip));
    }
    if ((rc = hosts_add(h, "localhost", port)) != 0 || (rc = hosts_add(h, "127.0.0.1", port)) != 0 ||
        (rc = hosts_add(h, "[::1]", port)) != 0 || (rc = hosts_add(h, ip, port)) != 0)
        goto fail;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        const char *e = extra[i];
        bool has_port = e[0] == '[' ? strstr(e, "]:") != NULL : strchr(e, ':') != NULL;

        if ((rc = hosts_add(h, e, "")) != 0 || (!has_port && (rc = hosts_add(h, e, port)) != 0))
            goto fail;
    }
    return 0;
fail:
    lp_http_hosts_free(h);
    return rc;
}

void lp_http_hosts_free(lp_http_hosts_t *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->v[i]);
    h->n = 0;
}

bool lp_http_host_ok(const lp_http_hosts_t *h, const char *host)
{
    if (host == NULL)
        return false;
    for (size_t i = 0; i < h->n; i++)
        if (strcasecmp(h->v[i], host) == 0)
            return true;
    return false;
}

bool lp_http_origin_ok(const char *origin, const char *host, bool tls)
{
    const char *scheme = tls ? "https://" : "http://";
    size_t n = strlen(scheme);

    if (origin == NULL)
        return true;
    return host != NULL && strncasecmp(origin, scheme, n) == 0 &&
           strcasecmp(origin + n, host) == 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* True when the name of the query argument arg[0..len) reads "token". */
static bool arg_is_token(const char *arg, size_t len)
{
    char name[8];
    size_t n = 0;

    for (size_t i = 0; i < len && arg[i] != '='; i++) {
        char c = arg[i];

        if (c == '%' && i + 2 < len && hexval(arg[i + 1]) >= 0 && hexval(arg[i + 2]) >= 0) {
            c = (char)(hexval(arg[i + 1]) * 16 + hexval(arg[i + 2]));
            i += 2;
        }
        if (n == sizeof(name) - 1)
            return false;
        name[n++] = c;
    }
    name[n] = '\0';
    return strcasecmp(name, "token") == 0;
}

void lp_http_uri_for_log(const char *uri, char *out, size_t outsz)
{
    const char *q = strchr(uri, '?');
    size_t o = 0;
    bool first = true;

    if (outsz == 0)
        return;
#define PUT(p, n)                                                                                 \
    do {                                                                                          \
        size_t k_ = (n) < outsz - 1 - o ? (n) : outsz - 1 - o;                                    \
        memcpy(out + o, (p), k_);                                                                 \
        o += k_;                                                                                  \
    } while (0)
    PUT(uri, q != NULL ? (size_t)(q - uri) : strlen(uri));
    while (q != NULL) {
        const char *arg = q + 1, *amp = strchr(arg, '&');
        size_t len = amp != NULL ? (size_t)(amp - arg) : strlen(arg);

        /* Dropped under any spelling MHD would read as "token": its name
         * percent-decoded, in any case. */
        if (len > 0 && !arg_is_token(arg, len)) {
            PUT(first ? "?" : "&", 1);
            PUT(arg, len);
            first = false;
        }
        q = amp;
    }
#undef PUT
    out[o] = '\0';
}
