/* client.c: connect, handshake, requests, frames (client.h). */
#include "client/client.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/ssh.h"
#include "io/io.h"
#include "limpet.h"
#include "net/net.h"
#include "wire/msg.h"

#define SSH_LEAVE_MS 2000 /* how long ssh may take to leave before it is asked to */
#define SSH_POLL_MS 10    /* how often a leaving ssh is looked at */

/* Sets c->message; returns err, for `return say(c, err, ...)`. */
__attribute__((format(printf, 3, 4)))
static int say(lp_client_t *c, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->message, sizeof(c->message), fmt, ap);
    va_end(ap);
    return err;
}

int lp_client_dial(const char *address, int *fd, char *message, size_t size)
{
    int r = lp_net_dial(address, fd);

    if (r != 0)
        snprintf(message, size, "cannot connect to '%s': %s", address, strerror(-r));
    return r;
}

/* c->fd for address, which may be ssh://: 0 or a negative code, said. */
static int dial(lp_client_t *c, const char *address)
{
    lp_ssh_url_t u;
    const char *why;
    int r;

    if (!lp_ssh_is_url(address))
        return lp_client_dial(address, &c->fd, c->message, sizeof(c->message));
    if (lp_ssh_parse(address, &u, &why) != 0)
        return say(c, LP_WIRE_EINVAL, "bad address '%s': %s (ssh://[USER@]HOST[:PORT][/TARGET])",
                   address, why);
    if ((r = lp_ssh_dial(&u, &c->fd, &c->ssh_pid)) != 0)
        return say(c, r, "cannot start ssh: %s", strerror(-r));
    return 0;
}

/* Waits up to timeout_ms for ssh to leave, then asks it to (SIGTERM),
 * then makes it (SIGKILL): a dead link must never hang us. Its status. */
static int reap_ssh(lp_client_t *c, int timeout_ms)
{
    int status = 0;

    for (int waited = 0; c->ssh_pid > 0; waited += SSH_POLL_MS) {
        pid_t r = waitpid(c->ssh_pid, &status, WNOHANG);

        if (r == c->ssh_pid || (r < 0 && errno != EINTR))
            break;
        if (waited == timeout_ms)
            kill(c->ssh_pid, SIGTERM);
        else if (waited == timeout_ms + 500)
            kill(c->ssh_pid, SIGKILL);
        usleep(SSH_POLL_MS * 1000);
    }
    c->ssh_pid = 0;
    return status;
}

/* Says why the conversation ended before it began: ssh's exit status, or
 * the server closing. Returns err. */
static int say_closed(lp_client_t *c, const char *address, int err)
{
    int status;

    if (c->ssh_pid > 0) {
        close(c->fd); /* ssh sees the end of its input */
        c->fd = -1;
        status = reap_ssh(c, SSH_LEAVE_MS);
        return say(c, err, "ssh for '%s' ended (%s %d) before a limpet server answered",
                   address, WIFEXITED(status) ? "exit status" : "signal",
                   WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    }
    return say(c, err, "'%s' closed the connection during the handshake", address);
}

/* Sends the hello and reads the welcome: 0 or a negative code, said. */
static int handshake(lp_client_t *c, const char *address, const char *token, bool want_session,
                     unsigned caps)
{
    lp_reader_t rd = {.fd = c->fd, .in = c->in};
    lp_buf_t *out = lp_buf_new(LP_WIRE_HELLO_HEADER_MAX + LP_WIRE_PREAMBLE_LEN + LP_WIRE_PREFIX_LEN);
    lp_hs_t hs = {0};
    int r;

    if (out == NULL)
        return say(c, LP_WIRE_ENOMEM, "out of memory");
    if ((r = lp_hs_client_hello(out, "limpet-cli/" LIMPET_VERSION, 0, token[0] ? token : NULL,
                                want_session, caps)) != 0 ||
        (r = lp_net_write_all(c->fd, lp_buf_data(out), lp_buf_len(out))) != 0) {
        say(c, r, "cannot talk to '%s'", address);
        goto out;
    }
    while ((r = lp_hs_client_read(&hs, c->in, &c->welcome)) == LP_WIRE_EAGAIN)
        if ((r = lp_reader_fill(&rd, -1)) != 0) {
            say_closed(c, address, r);
            goto out;
        }
    if (r != 0)
        say(c, r, "'%s' refused: %s", address,
            c->welcome.message[0] ? c->welcome.message : lp_wire_strerror(r));
out:
    lp_buf_free(out);
    return r;
}

int lp_client_open(lp_client_t *c, const char *address, const char *token, bool want_session,
                   unsigned caps)
{
    int r;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->next_id = 1;
    if ((c->in = lp_buf_new(LP_CLIENT_FRAME_MAX)) == NULL)
        return say(c, LP_WIRE_ENOMEM, "out of memory");
    if ((r = dial(c, address)) != 0 ||
        (r = handshake(c, address, token, want_session, caps)) != 0) {
        lp_client_close(c);
        return r;
    }
    c->limits = (lp_limits_t){LP_WIRE_HEADER_MAX, c->welcome.max_payload};
    return 0;
}

void lp_client_close(lp_client_t *c)
{
    if (c->fd >= 0)
        close(c->fd); /* first: ssh sees the end of its input and leaves */
    lp_buf_free(c->in);
    lp_welcome_clear(&c->welcome);
    reap_ssh(c, SSH_LEAVE_MS);
    c->fd = -1;
    c->in = NULL;
}

int64_t lp_client_send(lp_client_t *c, json_t *h, const void *payload, size_t len)
{
    lp_buf_t *out = lp_buf_new(SIZE_MAX);
    int64_t id = c->next_id++;
    int r = out == NULL || h == NULL ? LP_WIRE_ENOMEM : lp_msg_set_int(h, "id", id);

    if (r == 0)
        r = lp_frame_encode(out, h, payload, len, &c->limits);
    if (r == 0)
        r = lp_net_write_all(c->fd, lp_buf_data(out), lp_buf_len(out));
    lp_buf_free(out);
    json_decref(h);
    return r == 0 ? id : r;
}

bool lp_client_is_broken(int64_t r)
{
    return r < 0 && r > LP_ERR_BASE; /* -errno; LP_WIRE_E* are ours, not the connection's */
}

int lp_client_read(lp_client_t *c, lp_frame_t *f, int timeout_ms)
{
    const lp_limits_t lim = LP_LIMITS_DEFAULT;
    lp_reader_t rd = {.fd = c->fd, .in = c->in};

    return lp_reader_next(&rd, &lim, f, timeout_ms);
}
