/* http.h: the HTTP/JSON front end of `limpet serve` (docs/http.md), on
 * libmicrohttpd: the API over the kernel server's core (serve/serve.h),
 * server-sent events for output as it comes, the article's four form
 * endpoints and the console page. Security as issue 12 asks: a token on
 * every request, Host and Origin checked, bounded bodies, headers and
 * connections, loopback unless told otherwise. */
#ifndef LP_HTTP_HTTP_H
#define LP_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "serve/serve.h"

typedef struct lp_http lp_http_t;

typedef struct lp_http_config {
    const char *addr;         /* "127.0.0.1:8700", "[::1]:8700"; port 0: any free one */
    const char *token;        /* required on every request */
    bool allow_remote;        /* a non-loopback addr needs it */
    const char *tls_cert, *tls_key; /* PEM paths, or NULL */
    bool insecure_http;       /* non-loopback without TLS */
    const char **hosts;       /* extra Host names allowed (NULL-terminated, or NULL) */
    size_t body_max;          /* 0: 1 MiB  -> 413 */
    size_t header_max;        /* 0: 16 KiB -> 431 */
    unsigned max_connections; /* 0: 256 -> 503 */
    void (*log)(void *arg, const char *line); /* one line per request (no token in it) */
    void *log_arg;
} lp_http_config_t;

/* Starts listening; the server's threads call into sv, which must outlive
 * the returned handle. 0, or a negative code with a sentence in msg. */
int lp_http_start(const lp_http_config_t *cfg, lp_serve_t *sv, lp_http_t **out, char msg[512]);
/* The port it listens on (the one chosen when addr asked for port 0). */
unsigned lp_http_port(const lp_http_t *h);
/* Stops listening, ends the connections (a request waiting for its run
 * gets a 503, a stream ends; the runs go on) and frees. NULL is fine. */
void lp_http_stop(lp_http_t *h);

#endif
