/* client.h: the one client library: connect to a server (a local address
 * or ssh://), handshake, send requests, read frames. Used by the limpet
 * command and linkable into the extension (PIC). It never prints: every
 * function returns 0 (or an id) or a negative code of the one error space
 * (wire/wire.h: -errno, LP_WIRE_E*), and lp_client_open leaves a human
 * message in c->message for the caller to show. Target resolution is
 * target.h; ssh:// addresses ssh.h. */
#ifndef LP_CLIENT_CLIENT_H
#define LP_CLIENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wire/frame.h"
#include "wire/handshake.h"

#define LP_CLIENT_MESSAGE_MAX 4608 /* room for a 4096-byte address and the words around it */
/* The largest frame we take: what our hello announces (the default). */
#define LP_CLIENT_FRAME_MAX (LP_WIRE_PREFIX_LEN + LP_WIRE_HEADER_MAX + LP_WIRE_PAYLOAD_DEFAULT)

typedef struct lp_client {
    int fd;                 /* the connection; -1 once closed */
    lp_buf_t *in;           /* bytes read, not yet decoded; bounded by LP_CLIENT_FRAME_MAX */
    lp_welcome_t welcome;   /* the server's answer to hello */
    lp_limits_t limits;     /* what the server accepts */
    int64_t next_id;        /* for requests */
    pid_t ssh_pid;          /* ssh carrying an ssh:// connection, or 0 */
    char message[LP_CLIENT_MESSAGE_MAX]; /* why lp_client_open failed, lowercase, no
                                            "limpet: " (the caller adds its own) */
} lp_client_t;

/* A socket connected to a local address (a socket path, HOST:PORT,
 * [V6]:PORT; not ssh://), with no handshake (a bridge relays bytes over
 * it): 0 with *fd (close-on-exec; the caller closes it), or -errno with
 * the why in message[size]. */
int lp_client_dial(const char *address, int *fd, char *message, size_t size);

/* Connects to address (a socket path, HOST:PORT, [V6]:PORT, or
 * ssh://[USER@]HOST[:PORT][/TARGET]) and says hello, asking for a first
 * session (its id is then in c->welcome.session) and the LP_CAP_* bits
 * caps; token may be "" (none). 0, or a negative code with c->message set
 * and c closed: -errno (dial, ssh), -ECONNRESET (closed during the
 * handshake), LP_WIRE_EINVAL (a bad ssh:// address), the server's refusal
 * (LP_WIRE_EFORBIDDEN, ...) or the codec's error for a reply that is not a
 * limpet server's. */
int lp_client_open(lp_client_t *c, const char *address, const char *token, bool want_session,
                   unsigned caps);
/* Closes the connection and reaps its ssh (asking, then making it leave
 * within 2.5 s); keeps c->message. Safe to call twice. */
void lp_client_close(lp_client_t *c);

/* Sends a request (takes header's reference, sets its "id"): the id (> 0),
 * or a negative code: LP_WIRE_ETOOLARGE, LP_WIRE_EHEADER or LP_WIRE_ENOMEM
 * when it could not be encoded (nothing sent; the connection is fine), or
 * -errno when the connection is broken (lp_client_is_broken). */
int64_t lp_client_send(lp_client_t *c, json_t *header, const void *payload, size_t len);
/* True when r, a result of lp_client_send, says the connection is broken,
 * not that one request could not be encoded. */
bool lp_client_is_broken(int64_t r);

/* Reads the next frame into *f (the caller clears it), waiting up to
 * timeout_ms (-1 forever, 0 only what is there): 0, -ETIMEDOUT,
 * -ECONNRESET (the server closed), or the decoder's protocol error. */
int lp_client_read(lp_client_t *c, lp_frame_t *f, int timeout_ms);

#endif
