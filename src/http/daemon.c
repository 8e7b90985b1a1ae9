/* daemon.c: libmicrohttpd started and stopped (http.h); the gate every
 * request passes before it is routed (connections, header size, Host,
 * Origin, token, body size, in that order: the cheap and the
 * unauthenticated first); one log line per request. */
#include "http/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "io/io.h"

#define BODY_MAX_DEFAULT ((size_t)1 << 20)
#define HEADER_MAX_DEFAULT ((size_t)16 << 10)
#define CONNECTIONS_DEFAULT 256
/* libmicrohttpd answers headers past its connection memory itself, in
 * HTML: it is given 4 times header_max, so that ours (JSON) is what a
 * client sees for any header a client really sends. No more: the memory
 * is cleared at every request (256 KiB cost 11% of the CPU under load). */
#define MHD_MEMORY_MIN ((size_t)64 << 10)
/* libmicrohttpd drops connections past this many over max_connections:
 * the ones between get a 503 in JSON. */
#define CONNECTIONS_SLACK 64
#define IDLE_TIMEOUT_S 300
#define DROP_MAX 16 /* a body over the limit is read up to this many times it */

static void *uri_cb(void *cls, const char *uri, struct MHD_Connection *c)
{
    lp_http_req_t *rq = calloc(1, sizeof(*rq));

    if (rq == NULL)
        return NULL;
    rq->h = cls;
    rq->start_us = lp_clock_us();
    rq->uri_len = strlen(uri);
    lp_http_uri_for_log(uri, rq->uri, sizeof(rq->uri));
    return rq;
}

static void log_line(lp_http_req_t *rq, struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char peer[INET6_ADDRSTRLEN] = "?", line[512], run[48] = "";
    const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;

    if (sa != NULL && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, peer, sizeof(peer));
    else if (sa != NULL && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, peer, sizeof(peer));
    if (rq->run != 0)
        snprintf(run, sizeof(run), " run=%llu%s%s", (unsigned long long)rq->run,
                 rq->outcome != NULL ? " " : "", rq->outcome != NULL ? rq->outcome : "");
    snprintf(line, sizeof(line), "http %s %s %s %u%s%s%s %.1fms", peer, rq->method[0] != '\0' ? rq->method : "-",
             rq->uri, rq->status, rq->env[0] != '\0' ? " env=" : "", rq->env, run,
             (double)(lp_clock_us() - rq->start_us) / 1000.0);
    rq->h->log(rq->h->log_arg, line);
}

static void completed_cb(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode why)
{
    lp_http_req_t *rq = *con_cls;

    if (rq == NULL)
        return;
    lp_http_wait_drop(rq); /* closed while it waited (by the client, or at a stop) */
    if (rq->h->log != NULL)
        log_line(rq, c);
    free(rq->body);
    free(rq);
    *con_cls = NULL;
}

static void connection_cb(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    lp_http_t *h = cls;

    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&h->conns, 1);
    else
        atomic_fetch_sub(&h->conns, 1);
}

static enum MHD_Result add_size(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    *(size_t *)cls += strlen(key) + (value != NULL ? strlen(value) : 0) + 4;
    return MHD_YES;
}

/* The checks on a request's headers, before its body is read. Returns
 * -1 when it may go on, else what to return having answered. page: the
 * request is for the console page. Without the right token it is still
 * sent, but as a 401: it holds nothing (every call it makes needs the
 * token), it must load again after it took ?token= out of the address bar
 * (it keeps the token in sessionStorage), and say so when a token is wrong;
 * the status says to any other client that the token is needed. */
static int gate(lp_http_req_t *rq, struct MHD_Connection *c, bool page)
{
    lp_http_t *h = rq->h;
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ORIGIN);
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *token;
    size_t hsize = rq->uri_len;

    if (atomic_load(&h->stopping))
        return (int)lp_http_reply_error(rq, c, MHD_HTTP_SERVICE_UNAVAILABLE, "busy",
                                        "the server is stopping");
    if (atomic_load(&h->conns) > h->max_connections)
        return (int)lp_http_reply_error(rq, c, MHD_HTTP_SERVICE_UNAVAILABLE, "busy",
                                        "too many connections (at most %u)", h->max_connections);
    MHD_get_connection_values(c, MHD_HEADER_KIND, add_size, &hsize);
    if (hsize > h->header_max)
        return (int)lp_http_reply_error(rq, c, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE,
                                        "headers-too-large",
                                        "the request's headers are over %zu bytes", h->header_max);
    if (!lp_http_host_ok(&h->hosts, host))
        return (int)lp_http_reply_error(rq, c, MHD_HTTP_FORBIDDEN, "forbidden-host",
                                        "the Host header does not name this server");
    if (!lp_http_origin_ok(origin, host, h->tls))
        return (int)lp_http_reply_error(rq, c, MHD_HTTP_FORBIDDEN, "forbidden-origin",
                                        "a request from another origin");
    token = lp_http_bearer(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                       MHD_HTTP_HEADER_AUTHORIZATION));
    if (token == NULL)
        token = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
    if (page && !lp_http_token_equal(h->token, token))
        rq->page_refused = true;
    else if (!lp_http_token_equal(h->token, token))
        return (int)lp_http_reply_error(rq, c, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                                        "a token is needed: 'Authorization: Bearer TOKEN' or "
                                        "?token=TOKEN (limpet serve --print-token)");
    /* A length over the limit: the body is read and dropped as a chunked
     * one is, then answered (libmicrohttpd's epoll threads close at once
     * a connection answered before its body was read: the client, still
     * sending, gets a reset, not the 413); far over, answered now. */
    if (cl != NULL && strtoull(cl, NULL, 10) > h->body_max) {
        rq->too_large = true;
        if (strtoull(cl, NULL, 10) / DROP_MAX > h->body_max)
            return (int)lp_http_reply_error(rq, c, MHD_HTTP_CONTENT_TOO_LARGE, "too-large",
                                            "the request's body is over %zu bytes", h->body_max);
    }
    return -1;
}

/* Keeps a piece of the body; past body_max it is read and dropped, and the
 * answer will be a 413 (a chunked body has no length to refuse up front;
 * a 413 sent before the body is read is lost on most clients, which read
 * no answer until they have sent it all). Past DROP_MAX times body_max,
 * the connection is closed. */
static bool take_body(lp_http_req_t *rq, const char *data, size_t size)
{
    size_t max = rq->h->body_max;

    if (rq->too_large || size > max - rq->len) {
        rq->too_large = true;
        rq->dropped += size;
        return rq->dropped / DROP_MAX <= max;
    }
    if (rq->len + size + 1 > rq->cap) {
        size_t cap = rq->cap != 0 ? rq->cap : 4096;
        char *b;

        while (cap < rq->len + size + 1)
            cap *= 2;
        if ((b = realloc(rq->body, cap)) == NULL)
            return false;
        rq->body = b;
        rq->cap = cap;
    }
    memcpy(rq->body + rq->len, data, size);
    rq->len += size;
    rq->body[rq->len] = '\0';
    return true;
}

static enum MHD_Result route(lp_http_req_t *rq, struct MHD_Connection *c, const char *url,
                             const char *method)
{
    lp_http_route_t rt;
    int rc = lp_http_route(method, url, &rt);

    switch (rc) {
    case 0:
        break;
    case LP_HTTP_EMETHOD: {
        struct MHD_Response *r;
        char *body;
        json_t *j = json_pack("{s{ssss}}", "error", "code", "method-not-allowed", "message",
                              "this path does not take that method");

        body = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (body == NULL)
            return MHD_NO;
        r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
        if (r == NULL) {
            free(body);
            return MHD_NO;
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, lp_http_route_allow(url));
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, LP_HTTP_JSON_TYPE);
        return lp_http_reply(rq, c, MHD_HTTP_METHOD_NOT_ALLOWED, r);
    }
    case LP_HTTP_EBADNAME:
        return lp_http_reply_error(rq, c, MHD_HTTP_BAD_REQUEST, "bad-request",
                                   "an environment's name is at most %d bytes", LP_HTTP_NAME_MAX);
    case LP_HTTP_EBADRUN:
        return lp_http_reply_error(rq, c, MHD_HTTP_NOT_FOUND, "no-such-run",
                                   "a run is named by its number");
    default:
        return lp_http_reply_error(rq, c, MHD_HTTP_NOT_FOUND, "not-found", "no such path: %s", url);
    }
    if (rt.env[0] != '\0')
        memcpy(rq->env, rt.env, sizeof(rq->env));
    if (rt.run != 0)
        rq->run = rt.run;
    switch (rt.what) {
    case LP_HTTP_CONSOLE:
        return lp_http_console(rq, c);
    case LP_HTTP_ARTICLE_EXEC:
    case LP_HTTP_ARTICLE_CREATE:
    case LP_HTTP_ARTICLE_DELETE:
    case LP_HTTP_ARTICLE_GET:
        return lp_http_article(rq, c, &rt);
    default:
        return lp_http_api(rq, c, &rt);
    }
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **con_cls)
{
    lp_http_req_t *rq = *con_cls;
    int rc;

    if (rq == NULL)
        return MHD_NO;
    if (rq->waiting != NULL) /* resumed: its run ended, or the server stops */
        return lp_http_wait_again(rq, c);
    if (!rq->gated) {
        lp_http_route_t rt;

        rq->gated = true;
        snprintf(rq->method, sizeof(rq->method), "%s", method);
        if ((rc = gate(rq, c, lp_http_route(method, url, &rt) == 0 &&
                                  rt.what == LP_HTTP_CONSOLE)) >= 0)
            return (enum MHD_Result)rc;
        return MHD_YES;
    }
    if (rq->status != 0) { /* answered at the gate: the body is not wanted */
        *size = 0;
        return MHD_YES;
    }
    if (*size != 0) {
        if (!take_body(rq, data, *size))
            return MHD_NO;
        *size = 0;
        return MHD_YES;
    }
    if (rq->too_large)
        return lp_http_reply_error(rq, c, MHD_HTTP_CONTENT_TOO_LARGE, "too-large",
                                   "the request's body is over %zu bytes", rq->h->body_max);
    return route(rq, c, url, method);
}

#define PEM_MAX ((size_t)1 << 20)

/* Reads a PEM file whole, for libmicrohttpd's in-memory TLS options. */
static char *read_pem(const char *path, char *msg)
{
    FILE *f = fopen(path, "r");
    char *buf = malloc(PEM_MAX + 1);
    size_t len = 0, n = 1;

    if (f == NULL || buf == NULL) {
        snprintf(msg, 512, "cannot read %s: %s", path, strerror(errno));
        goto fail;
    }
    while (n > 0 && len < PEM_MAX)
        len += n = fread(buf + len, 1, PEM_MAX - len, f);
    if (ferror(f) || len == PEM_MAX) {
        snprintf(msg, 512, "cannot read %s: %s", path, ferror(f) ? "read error" : "too large");
        goto fail;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
fail:
    if (f != NULL)
        fclose(f);
    free(buf);
    return NULL;
}

/* The listening socket, made here so that its port (any free one for port
 * 0) is known before the first request is checked against it. */
static int listen_on(lp_http_addr_t *a, char *msg, const char *addr)
{
    int one = 1, fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_storage got;
    socklen_t len = sizeof(got);

    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&a->ss, a->len) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&got, &len) != 0) {
        int e = errno;

        snprintf(msg, 512, "cannot listen on %s for HTTP: %s", addr, strerror(e));
        if (fd >= 0)
            close(fd);
        return -e;
    }
    a->port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                              : ((struct sockaddr_in *)&got)->sin_port);
    return fd;
}

/* The sentence that refuses an address, or NULL when it may be used. */
static const char *refuse(const lp_http_config_t *cfg, const lp_http_addr_t *a, bool tls)
{
    if (a->loopback)
        return NULL;
    if (!cfg->allow_remote)
        return "is not a loopback address: listening there needs --allow-remote";
    if (!tls && !cfg->insecure_http)
        return "is not a loopback address: it needs TLS (a certificate and key) or "
               "--insecure-http";
    return NULL;
}

static void token_who(lp_http_t *h)
{
    uint64_t x = 0xcbf29ce484222325ull; /* FNV-1a: a name for the token that tells nothing of it */

    for (const char *p = h->token; *p != '\0'; p++)
        x = (x ^ (unsigned char)*p) * 0x100000001b3ull;
    snprintf(h->who, sizeof(h->who), "token:%06llx", (unsigned long long)(x >> 40));
}

static int setup(lp_http_t *h, const lp_http_config_t *cfg, lp_http_addr_t *a, char *msg)
{
    const char *why;
    int rc;

    if (cfg->token == NULL || cfg->token[0] == '\0') {
        snprintf(msg, 512, "HTTP needs a token");
        return -EINVAL;
    }
    if ((rc = lp_http_addr_parse(cfg->addr, a, msg, 512)) != 0)
        return rc;
    h->tls = cfg->tls_cert != NULL || cfg->tls_key != NULL;
    if (h->tls && (cfg->tls_cert == NULL || cfg->tls_key == NULL)) {
        snprintf(msg, 512, "TLS needs both a certificate and a key");
        return -EINVAL;
    }
    if (h->tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(msg, 512, "this libmicrohttpd was built without TLS");
        return -ENOTSUP;
    }
    if ((why = refuse(cfg, a, h->tls)) != NULL) {
        snprintf(msg, 512, "refusing to listen on %s, which %s", cfg->addr, why);
        return -EPERM;
    }
    if (h->tls && ((h->cert = read_pem(cfg->tls_cert, msg)) == NULL ||
                   (h->key = read_pem(cfg->tls_key, msg)) == NULL))
        return -EINVAL;
    if ((h->token = strdup(cfg->token)) == NULL) {
        snprintf(msg, 512, "out of memory");
        return -ENOMEM;
    }
    token_who(h);
    h->body_max = cfg->body_max != 0 ? cfg->body_max : BODY_MAX_DEFAULT;
    h->header_max = cfg->header_max != 0 ? cfg->header_max : HEADER_MAX_DEFAULT;
    h->max_connections = cfg->max_connections != 0 ? cfg->max_connections : CONNECTIONS_DEFAULT;
    h->log = cfg->log;
    h->log_arg = cfg->log_arg;
    return 0;
}

int lp_http_start(const lp_http_config_t *cfg, lp_serve_t *sv, lp_http_t **out, char msg[512])
{
    /* libmicrohttpd's epoll threads, one per core; a request waiting for
     * its run, and a stream for output, park their connection instead of
     * blocking one (park.c; docs/serve.md, "Threads"). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t memory;
    lp_http_addr_t a;
    lp_http_t *h;
    int rc, fd;

    *out = NULL;
    msg[0] = '\0';
    if ((h = calloc(1, sizeof(*h))) == NULL) {
        snprintf(msg, 512, "out of memory");
        return -ENOMEM;
    }
    h->sv = sv;
    if ((rc = setup(h, cfg, &a, msg)) != 0 || (rc = fd = listen_on(&a, msg, cfg->addr)) < 0)
        goto fail;
    h->port = a.port;
    if ((rc = lp_http_hosts_init(&h->hosts, &a, cfg->hosts)) != 0) {
        snprintf(msg, 512, "too many Host names for HTTP (at most %d)", LP_HTTP_HOSTS_MAX - 4);
        close(fd);
        goto fail;
    }
    if ((rc = lp_http_park_start(h)) != 0) {
        snprintf(msg, 512, "cannot start the HTTP timer: %s", strerror(-rc));
        close(fd);
        goto fail;
    }
    if (a.ipv6)
        flags |= MHD_USE_IPv6;
    if (h->tls)
        flags |= MHD_USE_TLS;
    memory = h->header_max * 4 > MHD_MEMORY_MIN ? h->header_max * 4 : MHD_MEMORY_MIN;
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, answer, h,
        MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_URI_LOG_CALLBACK, uri_cb, h,
        MHD_OPTION_NOTIFY_COMPLETED, completed_cb, h,
        MHD_OPTION_NOTIFY_CONNECTION, connection_cb, h,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, memory,
        MHD_OPTION_CONNECTION_LIMIT, h->max_connections + CONNECTIONS_SLACK,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cpus > 1 ? cpus : 1),
        h->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, h->cert,
        MHD_OPTION_HTTPS_MEM_KEY, h->key,
        MHD_OPTION_END);
    if (h->d == NULL) {
        snprintf(msg, 512, "cannot serve HTTP on %s%s", cfg->addr,
                 h->tls ? " (is the certificate or key bad?)" : "");
        close(fd);
        rc = -EINVAL;
        goto fail;
    }
    *out = h;
    return 0;
fail:
    lp_http_stop(h);
    return rc;
}

unsigned lp_http_port(const lp_http_t *h)
{
    return h->port;
}

void lp_http_stop(lp_http_t *h)
{
    if (h == NULL)
        return;
    /* Parked requests are resumed and let go: 503, or the stream ends. */
    atomic_store(&h->stopping, true);
    lp_http_park_close(h);
    if (h->d != NULL)
        MHD_stop_daemon(h->d);
    lp_http_park_free(h);
    lp_http_hosts_free(&h->hosts);
    free(h->token);
    free(h->cert);
    free(h->key);
    free(h);
}
