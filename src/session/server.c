/* server.c: starting and stopping the server; the acceptor thread. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/discovery.h"
#include "session/internal.h"
#include "wire/handshake.h"
#include "wire/ops.h"

const char *const lp_server_caps[] = {"repl", "input", "complete", "interrupt", "jobs", "page",
                                      "cell", "check", "inspect", NULL};
/* ...and with "env", for an engine that has environments of its own (env_op) */
static const char *const caps_env[] = {"repl", "input", "complete", "interrupt", "jobs", "page",
                                       "cell", "check", "inspect", "env", NULL};

const char *lp_server_address(const lp_server_t *srv) { return srv->path; }

struct refusal {
    lp_server_t *srv;  /* for the thread count */
    int fd;            /* the refused connection */
    lp_buf_t *out;     /* what to tell it */
};

/* Delivers a refusal and closes so that the peer can read it. */
static void *refusal_main(void *arg)
{
    struct refusal *r = arg;
    lp_server_t *srv = r->srv;

    send(r->fd, lp_buf_data(r->out), lp_buf_len(r->out), MSG_NOSIGNAL | MSG_DONTWAIT);
    lp_net_linger_close(r->fd, LP_LINGER_MS);
    lp_buf_free(r->out);
    free(r);
    pthread_mutex_lock(&srv->mu);
    srv->refusing--;
    srv->threads--;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
    return NULL;
}

/* Refuses a connection in words a person with nc and a protocol client both
 * understand: a text line, then our preamble and an error frame (a client
 * skips text before the preamble). Delivered by a short-lived thread, so
 * that the acceptor never waits on a peer. */
static void refuse(lp_server_t *srv, int fd, int err, const char *message)
{
    struct refusal *r = calloc(1, sizeof(*r));
    char line[256];
    int n = snprintf(line, sizeof(line), "limpet: %s\n", message);
    bool room;

    pthread_mutex_lock(&srv->mu);
    room = srv->refusing < LP_MAX_REFUSING;
    if (room) {
        srv->refusing++;
        srv->threads++;
    }
    pthread_mutex_unlock(&srv->mu);
    if (!room || r == NULL || (r->out = lp_buf_new(SIZE_MAX)) == NULL || n <= 0 ||
        lp_buf_put(r->out, line, (size_t)n) != 0 ||
        lp_hs_server_refuse(r->out, err, NULL, message, NULL) != 0)
        goto fail;
    r->srv = srv;
    r->fd = fd;
    if (lp_thread_spawn(NULL, refusal_main, r, LP_CONN_STACK) == 0)
        return;
fail:
    /* no room to say why: a flood of refused peers just gets closed */
    close(fd);
    if (r != NULL)
        lp_buf_free(r->out);
    free(r);
    if (room) {
        pthread_mutex_lock(&srv->mu);
        srv->refusing--;
        srv->threads--;
        pthread_mutex_unlock(&srv->mu);
    }
}

/* Starts the thread of an accepted connection; authed: its peer is known to
 * be us or root (else it must show the token, and it counts against the
 * pre-authentication pool, already reserved by the caller). */
static void start_conn(lp_server_t *srv, int fd, uid_t uid, bool authed)
{
    lp_conn_t *c = calloc(1, sizeof(*c));

    if (c == NULL || (c->in = lp_buf_new(LP_WIRE_PREAMBLE_LEN + LP_WIRE_PREFIX_LEN +
                                         LP_WIRE_HELLO_HEADER_MAX)) == NULL ||
        lp_writer_init(&c->out, fd, LP_CONN_PENDING_MAX, LP_SEND_TIMEOUT_MS) != 0) {
        if (c != NULL)
            lp_buf_free(c->in);
        free(c);
        pthread_mutex_lock(&srv->mu);
        if (authed)
            srv->nconns--;
        else
            srv->npreauth--;
        pthread_mutex_unlock(&srv->mu);
        refuse(srv, fd, LP_WIRE_EINTERNAL, "out of memory");
        return;
    }
    c->fd = fd;
    c->authed = authed;
    c->preauth = !authed;
    c->preauth_deadline = authed ? 0 : lp_clock_ms() + LP_PREAUTH_TIMEOUT_MS;
    c->srv = srv;
    lp_conn_init_port(c);
    c->deferred_tail = &c->deferred;
    if (srv->tcp)
        lp_net_tcp_nodelay(fd); /* output then done: no 40 ms wait for a delayed ACK */
    pthread_mutex_lock(&srv->mu);
    c->next = srv->conns;
    srv->conns = c;
    srv->threads++;
    pthread_mutex_unlock(&srv->mu);
    if (lp_thread_spawn(NULL, lp_conn_main, c, LP_CONN_STACK) != 0) {
        shutdown(fd, SHUT_RDWR);
        lp_conn_finish(c);
    }
}

/* Takes a place for a new connection: among the server's connections when
 * its peer is known to be us, else in the small pre-authentication pool,
 * so that strangers (who must show the token) can fill only their own
 * queue and never lock the owner out. 0, or the refusal's message. */
static int reserve(lp_server_t *srv, bool authed, char *msg, size_t size)
{
    int r = 0;

    pthread_mutex_lock(&srv->mu);
    if (authed && srv->nconns >= srv->max_connections) {
        snprintf(msg, size, "too many connections (%u)", srv->max_connections);
        r = LP_WIRE_ETOOMANY;
    } else if (!authed && srv->npreauth >= LP_MAX_PREAUTH) {
        snprintf(msg, size, "too many connections waiting to show the token (%u)",
                 (unsigned)LP_MAX_PREAUTH);
        r = LP_WIRE_ETOOMANY;
    } else if (authed) {
        srv->nconns++;
    } else {
        srv->npreauth++;
    }
    pthread_mutex_unlock(&srv->mu);
    return r;
}

/* Accepts one connection and decides whether it may stay. */
static void accept_one(lp_server_t *srv)
{
    char msg[128];
    uid_t uid = (uid_t)-1;
    bool authed;
    int r, fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);

    if (fd < 0)
        return;
    if (srv->tcp) {
        /* a peer the kernel does not show as us may still bring the token */
        authed = lp_net_tcp_peer_uid(fd, &uid) == 0 && lp_net_uid_allowed(uid);
    } else if (lp_net_peer_uid(fd, &uid) != 0 || !lp_net_uid_allowed(uid)) {
        snprintf(msg, sizeof(msg), "forbidden: uid %u may not use this server", (unsigned)uid);
        fprintf(stderr, "limpet: refused a connection from uid %u on '%s'\n", (unsigned)uid,
                srv->path);
        refuse(srv, fd, LP_WIRE_EFORBIDDEN, msg);
        return;
    } else {
        authed = true;
    }
    if ((r = reserve(srv, authed, msg, sizeof(msg))) != 0) {
        refuse(srv, fd, r, msg);
        return;
    }
    start_conn(srv, fd, uid, authed);
}

static void *acceptor_main(void *arg)
{
    lp_server_t *srv = arg;
    struct pollfd p[2] = {{srv->listen_fd, POLLIN, 0}, {srv->wake_fd, POLLIN, 0}};

    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents != 0)
            break;
        if (p[0].revents & POLLIN)
            accept_one(srv);
    }
    return NULL;
}

/* Writes the discovery record: the identity plus the address; for TCP,
 * the token goes into a connection file of its own, <pid>.token, 0600. */
static void write_record(lp_server_t *srv)
{
    json_t *rec = json_deep_copy(srv->identity);

    if (rec != NULL && json_object_set_new(rec, "address", json_string(srv->path)) == 0 &&
        (!srv->tcp || lp_discovery_write_text(srv->dir, getpid(), "token", srv->token) == 0) &&
        lp_discovery_write(srv->dir, getpid(), rec) != 0)
        srv->dir[0] = 0; /* nothing to remove at stop */
    json_decref(rec);
}

/* Fills srv->dir and srv->path (the default path when cfg gives none). */
static int choose_path(lp_server_t *srv, const char *path)
{
    int r = lp_net_runtime_dir(srv->dir, sizeof(srv->dir));

    if (path != NULL) {
        if (strlen(path) >= sizeof(srv->path))
            return -ENAMETOOLONG;
        snprintf(srv->path, sizeof(srv->path), "%s", path);
        if (r != 0)
            srv->dir[0] = 0; /* no runtime dir: no record, but the socket still works */
        return 0;
    }
    if (r != 0)
        return r;
    return lp_discovery_path(srv->path, sizeof(srv->path), srv->dir, getpid(), "sock");
}

/* The watcher's epoll set, its wake-up eventfd (data.ptr NULL), its thread. */
static int start_watcher(lp_server_t *srv)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

    if ((srv->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (srv->wwake_fd = eventfd(0, EFD_CLOEXEC)) < 0 ||
        epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->wwake_fd, &ev) != 0)
        return -errno;
    return lp_thread_spawn(&srv->watcher, lp_watcher_main, srv, 0);
}

static void stop_watcher(lp_server_t *srv)
{
    uint64_t one = 1;

    pthread_mutex_lock(&srv->mu);
    srv->stopping = true; /* the watcher checks it when woken */
    pthread_mutex_unlock(&srv->mu);
    if (write(srv->wwake_fd, &one, sizeof(one)) == sizeof(one))
        pthread_join(srv->watcher, NULL);
}

/* Listens where cfg says: a Unix socket, or TCP (loopback unless
 * allow_remote; a token then guards peers the kernel cannot vouch for). */
static int open_listener(lp_server_t *srv, const lp_server_config_t *cfg)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int r;

    if (cfg->tcp == NULL) {
        if ((r = choose_path(srv, cfg->path)) != 0)
            return r;
        return lp_net_listen_unix(srv->path, &srv->listen_fd);
    }
    if (cfg->token == NULL || strlen(cfg->token) < 16 || strlen(cfg->token) > LP_WIRE_TOKEN_MAX)
        return -EINVAL;
    if ((r = lp_net_parse_tcp(cfg->tcp, &ss, &len)) != 0)
        return r;
    if (!lp_net_is_loopback(&ss) && !cfg->allow_remote)
        return -EPERM;
    srv->tcp = true;
    snprintf(srv->token, sizeof(srv->token), "%s", cfg->token);
    if (lp_net_runtime_dir(srv->dir, sizeof(srv->dir)) != 0)
        srv->dir[0] = 0;
    return lp_net_listen_tcp(cfg->tcp, &srv->listen_fd, srv->path, sizeof(srv->path));
}

/* Frees srv; its threads must all be gone. */
static void destroy(lp_server_t *srv)
{
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    if (srv->wake_fd >= 0)
        close(srv->wake_fd);
    if (srv->epfd >= 0)
        close(srv->epfd);
    if (srv->wwake_fd >= 0)
        close(srv->wwake_fd);
    pthread_mutex_destroy(&srv->wmu);
    pthread_cond_destroy(&srv->wcv);
    json_decref(srv->identity);
    lp_env_free_all(srv);
    pthread_mutex_destroy(&srv->mu);
    pthread_cond_destroy(&srv->cv);
    free(srv);
}

int lp_server_start(const lp_server_config_t *cfg, const lp_engine_t *engine, lp_server_t **out)
{
    lp_server_t *srv = calloc(1, sizeof(*srv));
    int r;

    if (srv == NULL)
        return -ENOMEM;
    srv->engine = *engine;
    srv->identity = json_incref(cfg->identity);
    srv->caps = engine->env_op != NULL ? caps_env : lp_server_caps;
    srv->cap_bits = (engine->env_op != NULL ? LP_CAP_ENV : 0) | LP_CAPS_NEGOTIATED;
    srv->listen_fd = srv->wake_fd = srv->epfd = srv->wwake_fd = -1;
    pthread_mutex_init(&srv->wmu, NULL);
    pthread_cond_init(&srv->wcv, NULL);
    srv->max_connections = cfg->max_connections ? cfg->max_connections : LP_MAX_CONNECTIONS;
    srv->max_sessions = cfg->max_sessions ? cfg->max_sessions : LP_MAX_SESSIONS;
    srv->grace_ms = cfg->grace_ms > 0 ? cfg->grace_ms : LP_GRACE_MS;
    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->cv, NULL);
    if ((r = lp_env_add(srv, LP_ENV_MAIN, cfg->main_env)) != 0 ||
        (r = open_listener(srv, cfg)) != 0)
        goto fail;
    if ((srv->wake_fd = eventfd(0, EFD_CLOEXEC)) < 0) {
        r = -errno;
        goto fail;
    }
    if ((r = start_watcher(srv)) != 0)
        goto fail;
    if ((r = lp_thread_spawn(&srv->flusher, lp_flusher_main, srv, 0)) != 0) {
        stop_watcher(srv);
        goto fail;
    }
    if ((r = lp_thread_spawn(&srv->acceptor, acceptor_main, srv, 0)) != 0) {
        pthread_mutex_lock(&srv->mu);
        srv->stopping = true;
        pthread_cond_broadcast(&srv->cv);
        pthread_mutex_unlock(&srv->mu);
        pthread_join(srv->flusher, NULL);
        stop_watcher(srv);
        goto fail;
    }
    if (srv->dir[0] != 0)
        write_record(srv);
    *out = srv;
    return 0;
fail:
    if (srv->listen_fd >= 0 && !srv->tcp)
        unlink(srv->path);
    destroy(srv);
    return r;
}

/* Says bye to every client and shuts their sockets, which ends their
 * threads once any running evaluation returns. */
static void disconnect_all(lp_server_t *srv)
{
    uint8_t frame[LP_WIRE_PREFIX_LEN + 128];
    size_t hlen = 0;
    lp_hdr_t h;

    lp_hdr_begin(&h, (char *)frame + LP_WIRE_PREFIX_LEN, sizeof(frame) - LP_WIRE_PREFIX_LEN, "bye");
    lp_hdr_str(&h, "code", "shutdown");
    lp_hdr_str(&h, "message", "the server is stopping");
    lp_hdr_end(&h, &hlen); /* fits: ours, fixed */
    lp_frame_prefix(frame, (uint32_t)hlen, 0);
    pthread_mutex_lock(&srv->mu);
    for (lp_conn_t *c = srv->conns; c != NULL; c = c->next) {
        /* best effort, never blocking: a client that does not read misses it */
        if (c->handshaken)
            lp_writer_write(&c->out, frame, LP_WIRE_PREFIX_LEN + hlen, false);
        lp_writer_kill(&c->out);
    }
    pthread_mutex_unlock(&srv->mu);
}

/* Waits until every connection thread is gone, at most timeout_ms. */
static int wait_threads(lp_server_t *srv, int timeout_ms)
{
    struct timespec until;
    int r = 0;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&srv->mu);
    while (srv->threads > 0 && r == 0)
        r = pthread_cond_timedwait(&srv->cv, &srv->mu, &until);
    r = srv->threads > 0 ? -ETIMEDOUT : 0;
    pthread_mutex_unlock(&srv->mu);
    return r;
}

int lp_server_stop(lp_server_t *srv, int timeout_ms)
{
    uint64_t one = 1;
    int r;

    pthread_mutex_lock(&srv->mu);
    srv->stopping = true;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
    if (write(srv->wake_fd, &one, sizeof(one)) != sizeof(one))
        return -errno;
    pthread_join(srv->acceptor, NULL);
    close(srv->listen_fd);
    srv->listen_fd = -1;
    if (!srv->tcp)
        unlink(srv->path);
    if (srv->dir[0] != 0)
        lp_discovery_remove(srv->dir, getpid());
    disconnect_all(srv);
    if ((r = wait_threads(srv, timeout_ms)) != 0)
        return r; /* threads still use srv: leave it to them */
    pthread_join(srv->flusher, NULL);
    stop_watcher(srv);
    destroy(srv);
    return 0;
}

void lp_server_forget_after_fork(lp_server_t *srv)
{
    /* The parent's threads do not exist here and its locks may be held
     * forever: touch neither, only give back the descriptors. */
    close(srv->listen_fd);
    close(srv->wake_fd);
    close(srv->epfd);
    close(srv->wwake_fd);
    for (lp_conn_t *c = srv->conns; c != NULL; c = c->next)
        close(c->fd);
}
