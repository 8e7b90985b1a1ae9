/* fuzz_http.c: the HTTP front end's own parsing (src/http/check.c,
 * route.c) on hostile strings: a request line's method and path, the
 * Authorization, Host and Origin headers, a listen address, a URI as it is
 * logged. libmicrohttpd parses HTTP itself; these are what we parse from
 * what it hands us. Properties: no crash, no overread, the token never in
 * logged URI's query, and a route's {name} always fits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/check.h"
#include "http/route.h"

#define FIELDS 5

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + FIELDS + 1), *f[FIELDS], *p, log[512], msg[256];
    lp_http_route_t rt;
    lp_http_addr_t a;
    lp_http_hosts_t hosts;
    size_t n = 0;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    memset(buf + size, 0, FIELDS + 1);
    /* the input is up to five NUL-separated strings */
    for (p = buf; n < FIELDS; n++) {
        f[n] = p;
        p += strlen(p) + 1;
        if (p > buf + size)
            p = buf + size;
    }
    if (lp_http_route(f[0], f[1], &rt) == 0 && strlen(rt.env) > LP_HTTP_NAME_MAX)
        abort();
    (void)lp_http_route_allow(f[1]);
    (void)lp_http_token_equal("0123456789abcdef", lp_http_bearer(f[2]));
    (void)lp_http_origin_ok(f[3], f[4], f[0][0] & 1);
    lp_http_uri_for_log(f[1], log, sizeof(log));
    if ((p = strchr(log, '?')) != NULL &&
        (strncmp(p, "?token=", 7) == 0 || strstr(p, "&token=") != NULL))
        abort(); /* no token= argument of a query reaches the log */
    if (lp_http_addr_parse(f[2], &a, msg, sizeof(msg)) == 0 &&
        lp_http_hosts_init(&hosts, &a, NULL) == 0) {
        (void)lp_http_host_ok(&hosts, f[4]);
        lp_http_hosts_free(&hosts);
    }
    free(buf);
    return 0;
}
