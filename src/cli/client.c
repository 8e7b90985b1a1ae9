/* client.c: the limpet command's protocol client (client.h). */
#include "cli/client.h"

#include "cli/cli.h"
#include "cli/ssh.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/discovery.h"
#include "net/net.h"
#include "limpet.h"
#include "wire/msg.h"

/* Reads dir/<pid>.token into token ("" when there is none). */
static void read_token(const char *dir, long pid, char *token, size_t size)
{
    char path[4096];
    FILE *f;

    token[0] = 0;
    if (lp_discovery_path(path, sizeof(path), dir, (pid_t)pid, "token") != 0 ||
        (f = fopen(path, "r")) == NULL)
        return;
    if (fgets(token, (int)size, f) == NULL)
        token[0] = 0;
    token[strcspn(token, "\n")] = 0;
    fclose(f);
}

/* The string field key of rec, or "". */
static const char *field(const json_t *rec, const char *key)
{
    const char *v = json_string_value(json_object_get(rec, key));

    return v != NULL ? v : "";
}

/* The live records in dir whose name, pid or address is target (all when
 * target is NULL), as a new JSON array. */
static json_t *matching(const char *dir, const char *target)
{
    json_t *all = lp_cli_records(dir), *found = json_array(), *rec;
    size_t i;

    json_array_foreach(all, i, rec) {
        char pid[32];

        snprintf(pid, sizeof(pid), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(rec, "pid")));
        if (target == NULL || strcmp(target, pid) == 0 || strcmp(target, field(rec, "name")) == 0 ||
            strcmp(target, field(rec, "address")) == 0)
            json_array_append(found, rec);
    }
    json_decref(all);
    return found;
}

int lp_client_resolve(const char *target, char *address, size_t size, char *token, size_t tsize)
{
    char dir[4096];
    json_t *found = NULL, *rec;
    int r = -1;

    token[0] = 0;
    if (lp_ssh_is_url(target) || (target != NULL && strchr(target, '/') != NULL &&
                                  strchr(target, ':') == NULL)) {
        /* ssh: resolved on the far side, by the bridge; a socket path is
         * its own address and needs no token: no records to read */
        snprintf(address, size, "%s", target);
        return 0;
    }
    if (lp_net_runtime_dir(dir, sizeof(dir)) == 0)
        found = matching(dir, target);
    if (found != NULL && json_array_size(found) == 1) {
        rec = json_array_get(found, 0);
        snprintf(address, size, "%s", field(rec, "address"));
        read_token(dir, (long)json_integer_value(json_object_get(rec, "pid")), token, tsize);
        r = 0;
    } else if (target != NULL && (strchr(target, '/') != NULL || strchr(target, ':') != NULL)) {
        snprintf(address, size, "%s", target); /* a path or HOST:PORT of its own */
        r = 0;
    } else if (found != NULL && json_array_size(found) > 1) {
        fprintf(stderr, "limpet: %zu servers %s%s%s; choose one by pid or name:\n",
                json_array_size(found), target ? "match '" : "are running", target ? target : "",
                target ? "'" : "");
        lp_cli_print_records(stderr, found);
    } else if (target != NULL) {
        fprintf(stderr, "limpet: no server named '%s' (see 'limpet list')\n", target);
    } else {
        fprintf(stderr, "limpet: no server is running for this user\n");
    }
    json_decref(found);
    return r;
}

int lp_client_dial(const char *address)
{
    int fd, r = lp_net_dial(address, &fd);

    if (r != 0) {
        fprintf(stderr, "limpet: cannot connect to '%s': %s\n", address, strerror(-r));
        return -1;
    }
    return fd;
}

/* c->fd for address, which may be ssh://; prints why on failure. */
static int dial(lp_client_t *c, const char *address)
{
    lp_ssh_url_t u;
    const char *why;

    if (!lp_ssh_is_url(address))
        return (c->fd = lp_client_dial(address)) < 0 ? -1 : 0;
    if (lp_ssh_parse(address, &u, &why) != 0) {
        fprintf(stderr, "limpet: bad address '%s': %s (ssh://[USER@]HOST[:PORT][/TARGET])\n",
                address, why);
        return -1;
    }
    if ((c->fd = lp_ssh_dial(&u, &c->ssh_pid)) < 0)
        fprintf(stderr, "limpet: cannot start ssh: %s\n", strerror(errno));
    return c->fd < 0 ? -1 : 0;
}

/* Waits up to timeout_ms for ssh to leave, then asks it to (SIGTERM),
 * then makes it (SIGKILL): a dead link must never hang us. Its status. */
static int reap_ssh(lp_client_t *c, int timeout_ms)
{
    int status = 0;

    for (int waited = 0; c->ssh_pid > 0; waited += 10) {
        pid_t r = waitpid(c->ssh_pid, &status, WNOHANG);

        if (r == c->ssh_pid || (r < 0 && errno != EINTR))
            break;
        if (waited == timeout_ms)
            kill(c->ssh_pid, SIGTERM);
        else if (waited == timeout_ms + 500)
            kill(c->ssh_pid, SIGKILL);
        usleep(10000);
    }
    c->ssh_pid = 0;
    return status;
}

/* Why the conversation ended before it began: ssh's exit status, or the
 * server closing. */
static void say_closed(lp_client_t *c, const char *address)
{
    int status;

    if (c->ssh_pid > 0) {
        close(c->fd); /* ssh sees the end of its input */
        c->fd = -1;
        status = reap_ssh(c, 2000);
        fprintf(stderr, "limpet: ssh for '%s' ended (%s %d) before a limpet server answered\n",
                address, WIFEXITED(status) ? "exit status" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return;
    }
    fprintf(stderr, "limpet: '%s' closed the connection during the handshake\n", address);
}

int lp_client_open(lp_client_t *c, const char *address, const char *token, bool want_session,
                   unsigned caps)
{
    lp_buf_t *out = lp_buf_new(SIZE_MAX);
    lp_hs_t hs = {0};
    int r = -1;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->in = lp_buf_new(SIZE_MAX);
    c->next_id = 1;
    if (dial(c, address) != 0)
        goto fail;
    if (lp_hs_client_hello(out, "limpet-cli/" LIMPET_VERSION, 0, token[0] ? token : NULL,
                           want_session, caps) != 0 ||
        lp_net_write_all(c->fd, lp_buf_data(out), lp_buf_len(out)) != 0) {
        fprintf(stderr, "limpet: cannot talk to '%s'\n", address);
        goto fail;
    }
    while ((r = lp_hs_client_read(&hs, c->in, &c->welcome)) == LP_WIRE_EAGAIN) {
        uint8_t *dst;
        ssize_t n;

        if (lp_buf_reserve(c->in, 65536, &dst) != 0 ||
            (n = recv(c->fd, dst, 65536, 0)) <= 0) {
            say_closed(c, address);
            goto fail;
        }
        lp_buf_commit(c->in, (size_t)n);
    }
    if (r != 0) {
        fprintf(stderr, "limpet: '%s' refused: %s\n", address,
                c->welcome.message[0] ? c->welcome.message : lp_wire_strerror(r));
        goto fail;
    }
    lp_buf_free(out);
    c->limits = (lp_limits_t){LP_WIRE_HEADER_MAX, c->welcome.max_payload};
    return 0;
fail:
    lp_buf_free(out);
    lp_client_close(c);
    return -1;
}

void lp_client_close(lp_client_t *c)
{
    if (c->fd >= 0)
        close(c->fd); /* first: ssh sees the end of its input and leaves */
    lp_buf_free(c->in);
    lp_welcome_clear(&c->welcome);
    reap_ssh(c, 2000);
    c->fd = -1;
    c->in = NULL;
}

int64_t lp_client_send(lp_client_t *c, json_t *h, const void *payload, size_t len)
{
    lp_buf_t *out = lp_buf_new(SIZE_MAX);
    int64_t id = c->next_id++;
    int r = lp_msg_set_int(h, "id", id);

    if (r == 0)
        r = lp_frame_encode(out, h, payload, len, &c->limits);
    if (r != 0) { /* ours, not the connection's: too large, out of memory */
        lp_buf_free(out);
        json_decref(h);
        return LP_CLIENT_EENCODE;
    }
    r = lp_net_write_all(c->fd, lp_buf_data(out), lp_buf_len(out));
    lp_buf_free(out);
    json_decref(h);
    return r == 0 ? id : -1;
}

int lp_client_read(lp_client_t *c, lp_frame_t *f, int timeout_ms)
{
    const lp_limits_t lim = LP_LIMITS_DEFAULT;
    int r;

    while ((r = lp_frame_decode(c->in, &lim, f)) == LP_WIRE_EAGAIN) {
        uint8_t *dst;
        ssize_t n;
        int w;

        if (timeout_ms >= 0 && (w = lp_net_wait_readable(c->fd, timeout_ms)) <= 0)
            return w == 0 ? 1 : -1;
        if (lp_buf_reserve(c->in, 65536, &dst) != 0)
            return -1;
        do
            n = recv(c->fd, dst, 65536, 0);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
            return -1;
        lp_buf_commit(c->in, (size_t)n);
    }
    return r == 0 ? 0 : -1;
}
