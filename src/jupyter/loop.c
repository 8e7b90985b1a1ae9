/* loop.c: the kernel's one thread: binds the five Jupyter sockets, then
 * one zmq_poll over them, the limpet connection and a signalfd, until
 * shutdown. No hand-off to another thread anywhere on a request's path: a
 * hand-off costs as much as a libzmq hop here (docs/jupyter.md section 1). */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <zmq.h>

#include "io/io.h"
#include "jupyter/internal.h"
#include "wire/ops.h"

#define K_POLL_MAX_MS 1000 /* the longest a poll waits: timers are looked at after it */
#define K_LINGER_MS 1000   /* what libzmq may take to send the last messages at exit */
#define K_LOG_PER_S 10

void k_log(kernel_t *k, const char *fmt, ...)
{
    uint64_t now = lp_clock_ms();
    va_list ap;

    if (now - k->log_window_ms >= 1000) {
        k->log_window_ms = now;
        k->log_count = 0;
    }
    if (k->log_count++ >= K_LOG_PER_S)
        return;
    fputs("limpet kernel: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void k_send(kernel_t *k, int ch, const kreq_t *req, const json_t *parent, const char *type,
            json_t *metadata, json_t *content)
{
    void *s = k->sock[ch];
    const int more = ZMQ_SNDMORE | ZMQ_DONTWAIT;
    lp_jout_t out;

    if (lp_jmsg_encode(&k->enc, type, parent, metadata, content, &out) != 0) {
        k_log(k, "cannot encode a %s message (out of memory?): not sent", type);
        return;
    }
    if (ch == LP_JCH_IOPUB) {
        char topic[200];
        int n = snprintf(topic, sizeof(topic), "kernel.%s.%s", k->enc.session, type);

        zmq_send(s, topic, (size_t)n < sizeof(topic) ? (size_t)n : sizeof(topic) - 1, more);
    } else if (req != NULL) {
        const uint8_t *id = req->ids;

        for (size_t i = 0; i < req->n_ids; id += req->id_len[i++])
            zmq_send(s, id, req->id_len[i], more);
    }
    zmq_send(s, LP_JMSG_DELIM, strlen(LP_JMSG_DELIM), more);
    zmq_send(s, out.sig, strlen(out.sig), more);
    for (int i = 0; i < 4; i++)
        zmq_send(s, out.part[i], out.len[i], i < 3 ? more : ZMQ_DONTWAIT);
    lp_jout_clear(&out);
}

void k_status(kernel_t *k, const json_t *parent, const char *state)
{
    k_send(k, LP_JCH_IOPUB, NULL, parent, "status", NULL,
           json_pack("{s:s}", "execution_state", state));
}

void k_reply(kernel_t *k, const kreq_t *req, const char *type, json_t *content)
{
    k_stream_flush(k); /* every iopub message of a request before its reply */
    k_send(k, req->ch, req, req->header, type, NULL, content);
    k_status(k, req->header, "idle");
}

/* Reads one multipart message from s into parts (at most max; the rest of
 * a longer one is read and dropped): the number of parts, 0 when nothing
 * was there, -1 when it was too long. */
static int recv_parts(void *s, zmq_msg_t *parts, size_t max)
{
    size_t n = 0;
    int more = 1, too_long = 0;

    while (more) {
        zmq_msg_t *m = n < max ? &parts[n] : NULL, drop;

        if (m == NULL) {
            m = &drop;
            too_long = 1;
        }
        zmq_msg_init(m);
        if (zmq_msg_recv(m, s, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(m);
            break;
        }
        more = zmq_msg_more(m);
        if (m == &drop)
            zmq_msg_close(m);
        else
            n++;
    }
    if (too_long) {
        for (size_t i = 0; i < n; i++)
            zmq_msg_close(&parts[i]);
        return -1;
    }
    return (int)n;
}

static void close_parts(zmq_msg_t *parts, int n)
{
    for (int i = 0; i < n; i++)
        zmq_msg_close(&parts[i]);
}

/* A request on shell, control or stdin: decoded, checked, served. */
void k_on_request(kernel_t *k, int ch)
{
    zmq_msg_t parts[LP_JMSG_PARTS_MAX];
    lp_jpart_t views[LP_JMSG_PARTS_MAX];
    lp_jmsg_t m;
    lp_jwhy_t why = NULL;
    int n = recv_parts(k->sock[ch], parts, LP_JMSG_PARTS_MAX);

    if (n == 0)
        return;
    if (n < 0) {
        k_log(k, "%s: a message of more than %d parts: dropped", lp_jconn_channel_name(ch),
              LP_JMSG_PARTS_MAX);
        return;
    }
    for (int i = 0; i < n; i++)
        views[i] = (lp_jpart_t){zmq_msg_data(&parts[i]), zmq_msg_size(&parts[i])};
    if (lp_jmsg_decode(&m, views, (size_t)n, k->sign, k->replay, &why) != 0)
        k_log(k, "%s: message refused (%s): dropped", lp_jconn_channel_name(ch), why);
    else
        k_request(k, ch, &m); /* copies the identities it keeps */
    lp_jmsg_clear(&m);
    close_parts(parts, n);
}

/* The heartbeat: every message echoed, identity included, from this loop,
 * so a wedged loop shows as a dead kernel. */
static void on_heartbeat(kernel_t *k)
{
    zmq_msg_t parts[LP_JMSG_IDS_MAX + 2];
    int n;

    while ((n = recv_parts(k->sock[LP_JCH_HB], parts, LP_JMSG_IDS_MAX + 2)) > 0) {
        for (int i = 0; i < n; i++)
            zmq_msg_send(&parts[i], k->sock[LP_JCH_HB],
                         ZMQ_DONTWAIT | (i + 1 < n ? ZMQ_SNDMORE : 0));
        close_parts(parts, n);
    }
}

/* iopub subscriptions (XPUB): read so they do not queue; with
 * --iopub-welcome each new one gets JEP 65's iopub_welcome. */
static void on_subscription(kernel_t *k)
{
    zmq_msg_t m;

    for (;;) {
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, k->sock[LP_JCH_IOPUB], ZMQ_DONTWAIT) < 0)
            break;
        const uint8_t *d = zmq_msg_data(&m);
        size_t len = zmq_msg_size(&m);

        if (k->opts->iopub_welcome && len >= 1 && d[0] == 1)
            k_send(k, LP_JCH_IOPUB, NULL, NULL, "iopub_welcome", NULL,
                   json_pack("{s:s%}", "subscription", (const char *)d + 1, len - 1));
        zmq_msg_close(&m);
    }
    zmq_msg_close(&m);
}

static void on_signal(kernel_t *k)
{
    struct signalfd_siginfo si;

    while (read(k->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGINT) { /* a kernelspec with interrupt_mode signal, or kill -INT */
            if (k->exec.active)
                k_host_send(k, json_pack("{s:s,s:s}", "op", "interrupt", "session", k->session),
                            NULL, 0, K_IGNORE, NULL);
        } else {
            k_log(k, "signal %d: leaving", (int)si.ssi_signo);
            k->quit = true;
            k->exit_code = 0;
        }
    }
}

/* Drains every frame the host has sent, then sends the gathered output:
 * a burst of small writes becomes one stream message. */
static void on_host(kernel_t *k)
{
    lp_frame_t f = {0};
    int r;

    while (!k->quit && (r = lp_client_read(k->lc, &f, 0)) == 0) {
        k->last_rx_ms = lp_clock_ms();
        k_host_frame(k, &f);
        lp_frame_clear(&f);
    }
    k_stream_flush(k);
    if (!k->quit && r != -ETIMEDOUT)
        k_host_gone(k, r == -ECONNRESET ? "its server closed the connection"
                                        : lp_wire_strerror(r));
}

/* Pings an idle link; a ping not answered in time means the host is gone
 * (an ssh link can hang without closing). A shutdown's close that is not
 * answered in time ends the kernel anyway. */
static void on_timers(kernel_t *k)
{
    uint64_t now = lp_clock_ms();
    kpending_t *ping = k_pending_of(k, K_PING);

    if (ping != NULL && now - ping->since_ms > K_PING_WAIT_MS)
        k_host_gone(k, "it did not answer a ping in 5 s");
    else if (ping == NULL && !k->exec.active && now - k->last_rx_ms > K_PING_IDLE_MS)
        k_host_send(k, json_pack("{s:s}", "op", "ping"), NULL, 0, K_PING, NULL);
    if (k->quit_by_ms != 0 && now > k->quit_by_ms) {
        kpending_t *close = k_pending_of(k, K_CLOSE);

        if (close != NULL) {
            k_reply(k, &close->req, "shutdown_reply",
                    json_pack("{s:s,s:o}", "status", "ok", "restart",
                              k_restart(close->req.content)));
            k_pending_free(close);
        }
        k->quit = true;
    }
}

static int bind_sockets(kernel_t *k)
{
    static const int types[LP_JCH__COUNT] = {
        [LP_JCH_SHELL] = ZMQ_ROUTER, [LP_JCH_CONTROL] = ZMQ_ROUTER, [LP_JCH_STDIN] = ZMQ_ROUTER,
        [LP_JCH_IOPUB] = ZMQ_XPUB, [LP_JCH_HB] = ZMQ_ROUTER};
    const int64_t max_size = LP_JMSG_PART_MAX + 4096;
    const int linger = K_LINGER_MS, one = 1;

    if ((k->zctx = zmq_ctx_new()) == NULL)
        return fprintf(stderr, "limpet kernel: cannot start ZeroMQ: %s\n", zmq_strerror(errno)),
               -1;
    for (int ch = 0; ch < LP_JCH__COUNT; ch++) {
        void *s = k->sock[ch] = zmq_socket(k->zctx, types[ch]);

        if (s == NULL)
            return fprintf(stderr, "limpet kernel: cannot open a socket: %s\n",
                           zmq_strerror(errno)),
                   -1;
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max_size, sizeof(max_size));
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
        if (lp_jconn_ipv6(&k->conn))
            zmq_setsockopt(s, ZMQ_IPV6, &one, sizeof(one));
        if (ch == LP_JCH_IOPUB && k->opts->iopub_welcome)
            zmq_setsockopt(s, ZMQ_XPUB_VERBOSE, &one, sizeof(one));
        if (zmq_bind(s, k->conn.endpoint[ch]) != 0)
            return fprintf(stderr, "limpet kernel: cannot bind %s on %s: %s\n",
                           lp_jconn_channel_name(ch), k->conn.endpoint[ch], zmq_strerror(errno)),
                   -1;
    }
    return 0;
}

/* SIGINT, SIGTERM and SIGHUP come through a descriptor in the poll set:
 * no handler, no race with the poll. Blocked before libzmq starts its
 * threads, so they inherit the mask and never take the signal. */
static int open_signals(kernel_t *k)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGPIPE);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    sigdelset(&set, SIGPIPE);
    return (k->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ? -1 : 0;
}

static int poll_timeout(const kernel_t *k)
{
    return k->quit_by_ms != 0 ? 100 : K_POLL_MAX_MS;
}

static void serve(kernel_t *k)
{
    enum { P_SHELL, P_CONTROL, P_STDIN, P_IOPUB, P_HB, P_HOST, P_SIG, P__COUNT };

    while (!k->quit) {
        zmq_pollitem_t items[P__COUNT] = {
            [P_SHELL] = {k->sock[LP_JCH_SHELL], 0, k->shell_busy ? 0 : ZMQ_POLLIN, 0},
            [P_CONTROL] = {k->sock[LP_JCH_CONTROL], 0, ZMQ_POLLIN, 0},
            [P_STDIN] = {k->sock[LP_JCH_STDIN], 0, ZMQ_POLLIN, 0},
            [P_IOPUB] = {k->sock[LP_JCH_IOPUB], 0, ZMQ_POLLIN, 0},
            [P_HB] = {k->sock[LP_JCH_HB], 0, ZMQ_POLLIN, 0},
            [P_HOST] = {NULL, k->lc->fd, ZMQ_POLLIN, 0},
            [P_SIG] = {NULL, k->sigfd, ZMQ_POLLIN, 0},
        };
        /* frames already buffered by the client are not in the fd's state */
        int timeout = lp_buf_len(k->lc->in) > 0 ? 0 : poll_timeout(k);

        if (zmq_poll(items, P__COUNT, timeout) < 0 && errno != EINTR) {
            k_log(k, "poll: %s", zmq_strerror(errno));
            k->quit = true;
            k->exit_code = 1;
            break;
        }
        if (items[P_HB].revents & ZMQ_POLLIN)
            on_heartbeat(k);
        if (items[P_SIG].revents & ZMQ_POLLIN)
            on_signal(k);
        if ((items[P_HOST].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) || lp_buf_len(k->lc->in) > 0)
            on_host(k);
        if (items[P_CONTROL].revents & ZMQ_POLLIN)
            k_on_request(k, LP_JCH_CONTROL);
        if (items[P_STDIN].revents & ZMQ_POLLIN)
            k_on_request(k, LP_JCH_STDIN);
        if ((items[P_SHELL].revents & ZMQ_POLLIN) && !k->shell_busy && !k->quit)
            k_on_request(k, LP_JCH_SHELL);
        if (items[P_IOPUB].revents & ZMQ_POLLIN)
            on_subscription(k);
        on_timers(k);
    }
}

int lp_kernel_run(const lp_kernel_opts_t *o, lp_client_t *c)
{
    kernel_t *k = calloc(1, sizeof(*k));
    char why[512];
    int status = 1;

    if (k == NULL)
        return lp_client_close(c), 1;
    k->opts = o;
    k->lc = c;
    k->sigfd = -1;
    k->stream_name = -1;
    k->last_rx_ms = lp_clock_ms();
    snprintf(k->session, sizeof(k->session), "%s", c->welcome.session);
    for (size_t i = 0; i < json_array_size(c->welcome.caps); i++)
        k->caps |= lp_cap_bit(json_string_value(json_array_get(c->welcome.caps, i)));
    k->history = json_array();
    k->history_session = (int64_t)(lp_clock_wall_ms() / 1000);
    if (lp_jconn_load(&k->conn, o->conn_file, why, sizeof(why)) != 0) {
        fprintf(stderr, "limpet kernel: %s: %s\n", o->conn_file, why);
        status = 2;
        goto out;
    }
    if ((k->sign = lp_jsign_new(k->conn.key, k->conn.key_len)) == NULL ||
        (k->replay = lp_jreplay_new(LP_JREPLAY_DEFAULT)) == NULL ||
        lp_jenc_init(&k->enc, k->sign) != 0) {
        fprintf(stderr, "limpet kernel: cannot set up HMAC-SHA256 (OpenSSL)\n");
        goto out;
    }
    if (open_signals(k) != 0 || bind_sockets(k) != 0)
        goto out;
    k_status(k, NULL, "starting");
    serve(k);
    status = k->exit_code;
out:
    for (int ch = 0; ch < LP_JCH__COUNT; ch++)
        if (k->sock[ch] != NULL)
            zmq_close(k->sock[ch]);
    if (k->zctx != NULL)
        zmq_ctx_term(k->zctx);
    for (size_t i = 0; i < K_PENDING_MAX; i++)
        k_pending_free(&k->pending[i]);
    lp_client_close(c);
    if (k->sigfd >= 0)
        close(k->sigfd);
    json_decref(k->history);
    json_decref(k->last_parent);
    json_decref(k->exec.error);
    free(k->exec.page);
    free(k->exec.result);
    free(k->stream);
    lp_jreplay_free(k->replay);
    lp_jsign_free(k->sign);
    lp_jconn_clear(&k->conn);
    free(k);
    return status;
}
