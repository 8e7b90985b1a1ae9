/* client.h: the protocol client under the limpet command: find a server
 * (TARGET), connect, handshake, send requests, read frames. */
#ifndef LP_CLI_CLIENT_H
#define LP_CLI_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wire/frame.h"
#include "wire/handshake.h"

typedef struct lp_client {
    int fd;                 /* the connection */
    lp_buf_t *in;           /* bytes read, not yet decoded */
    lp_welcome_t welcome;   /* the server's answer to hello */
    lp_limits_t limits;     /* what the server accepts */
    int64_t next_id;        /* for requests */
    pid_t ssh_pid;          /* ssh carrying an ssh:// connection, or 0 */
} lp_client_t;

/* Resolves TARGET (a name or pid from the discovery records, a socket path,
 * HOST:PORT or [V6]:PORT, ssh://[USER@]HOST[:PORT][/TARGET]; NULL: the
 * only running server) into address and, when a record knows it, the
 * token file's contents. On failure prints
 * why ("limpet: no server named 'x'") and returns -1. */
int lp_client_resolve(const char *target, char *address, size_t size, char *token, size_t tsize);

/* A socket connected to a local address (a path, HOST:PORT), with no
 * handshake; prints why and returns -1 on failure. */
int lp_client_dial(const char *address);

/* Connects to address and says hello, asking for a first session (its id
 * is then in c->welcome.session) and the LP_CAP_* bits caps; prints why on
 * failure and returns -1. token may be "" (none). */
int lp_client_open(lp_client_t *c, const char *address, const char *token, bool want_session,
                   unsigned caps);
void lp_client_close(lp_client_t *c);

#define LP_CLIENT_EENCODE (-2) /* lp_client_send: the request could not be encoded */

/* Sends a request; returns its id, -1 when the connection is broken, or
 * LP_CLIENT_EENCODE (too large for the server, out of memory). */
int64_t lp_client_send(lp_client_t *c, json_t *header, const void *payload, size_t len);
/* Reads the next frame into *f (caller clears it): 0, or -1 when the
 * server closed or broke the protocol. timeout_ms < 0 waits forever;
 * returns 1 on timeout. */
int lp_client_read(lp_client_t *c, lp_frame_t *f, int timeout_ms);

#endif
