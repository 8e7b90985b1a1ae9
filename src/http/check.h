/* check.h: the pure checks of the HTTP front end, each on plain strings so
 * that a unit test drives it without a socket: the token, Host and Origin,
 * the listen address, and the URI as it may be logged. */
#ifndef LP_HTTP_CHECK_H
#define LP_HTTP_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define LP_HTTP_HOSTS_MAX 16 /* Host values accepted: ours, plus what --allow-remote names */

/* True when given equals expected, in a time that depends on expected's
 * length only (never on where they first differ). NULL given: false. */
bool lp_http_token_equal(const char *expected, const char *given);
/* The token of an Authorization header value "Bearer TOKEN" (the scheme
 * in any case, spaces after it skipped), or NULL. Points into authz. */
const char *lp_http_bearer(const char *authz);

/* A listen address parsed: "127.0.0.1:8700", "[::1]:8700",
 * "localhost:8700" (IPv4 loopback), "0.0.0.0:8700". */
typedef struct lp_http_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    bool ipv6;
    bool loopback;
    unsigned port;
} lp_http_addr_t;

/* 0, or -EINVAL with a sentence in msg. */
int lp_http_addr_parse(const char *addr, lp_http_addr_t *a, char *msg, size_t msgsz);

/* The Host values that name this server: "localhost:PORT",
 * "127.0.0.1:PORT", "[::1]:PORT", the listen address's own, and each
 * extra name (as given, and with ":PORT" when it has no port). */
typedef struct lp_http_hosts {
    char *v[LP_HTTP_HOSTS_MAX];
    size_t n;
} lp_http_hosts_t;

/* 0, -ENOMEM, or -E2BIG when extra names too many. */
int lp_http_hosts_init(lp_http_hosts_t *h, const lp_http_addr_t *a, const char **extra);
void lp_http_hosts_free(lp_http_hosts_t *h);
/* True when host (the Host header, NULL when absent) is one of them; names
 * compare without regard to case, as DNS does. */
bool lp_http_host_ok(const lp_http_hosts_t *h, const char *host);
/* True when origin (the Origin header) is absent or is this server's own:
 * "http://HOST" ("https://HOST" under TLS), HOST the request's Host. */
bool lp_http_origin_ok(const char *origin, const char *host, bool tls);

/* uri as a log may show it: every token=... argument of its query cut out
 * (the token is never written to a log). Truncated to fit out. */
void lp_http_uri_for_log(const char *uri, char *out, size_t outsz);

#endif
