/* handshake.h: both sides of the handshake (docs/protocol.md section 5),
 * as pure functions over buffers: the caller does the I/O and the policy
 * (who may connect), this code does the bytes. */
#ifndef LP_WIRE_HANDSHAKE_H
#define LP_WIRE_HANDSHAKE_H

#include "frame.h"

/* Progress of one side's reading of the handshake. Zero-initialise. */
typedef struct lp_hs {
    bool preamble_seen; /* the peer's preamble has been consumed */
    size_t skipped;     /* text bytes a client skipped before the preamble */
} lp_hs_t;

/* What a client asked for in its hello. */
typedef struct lp_hello {
    int64_t id;                                 /* the hello's request id */
    uint32_t version;                           /* the version chosen */
    uint32_t max_payload;                       /* the largest payload the client takes */
    bool want_session;                          /* open a first session */
    unsigned caps;                              /* LP_CAP_* bits the client listed */
    char client[LP_WIRE_CLIENT_NAME_MAX + 1];   /* client program, NUL-terminated */
    char token[LP_WIRE_TOKEN_MAX + 1];          /* "" when none was sent */
} lp_hello_t;

/* What the server answered. */
typedef struct lp_welcome {
    uint32_t version;                           /* the version chosen */
    uint32_t max_payload;                       /* the largest payload the server takes */
    json_t *server;                             /* owned: identity object */
    json_t *caps;                               /* owned: array of capability strings */
    char session[LP_WIRE_SESSION_ID_MAX + 1];   /* "" when none was opened */
    char code[65];                              /* on refusal: the error code */
    char message[256];                          /* on refusal: the server's message */
} lp_welcome_t;

/* Server: reads the client's preamble and hello from in. 0 when a valid
 * hello was consumed and *hello is filled; LP_WIRE_EAGAIN; or the error to
 * refuse with (LP_WIRE_EPREAMBLE, LP_WIRE_ETOOLARGE, LP_WIRE_EHEADER,
 * LP_WIRE_EHANDSHAKE, LP_WIRE_EFIELD with *bad_field set, LP_WIRE_EVERSION),
 * or LP_WIRE_ENOMEM. In every case the connection closes after a refusal. */
int lp_hs_server_read(lp_hs_t *hs, lp_buf_t *in, lp_hello_t *hello, const char **bad_field);

/* Server: appends its preamble and the done reply accepting hello. server:
 * identity object (borrowed); caps: NULL-terminated names; session: the
 * first session's id or NULL; max_payload: what the server accepts. */
int lp_hs_server_accept(lp_buf_t *out, const lp_hello_t *hello, json_t *server,
                        const char *const *caps, uint32_t max_payload, const char *session);

/* Server: appends its preamble and an error frame refusing the connection.
 * hello may be NULL (nothing usable was read); field may be NULL. */
int lp_hs_server_refuse(lp_buf_t *out, int err, const lp_hello_t *hello, const char *message,
                        const char *field);

/* Client: appends the preamble and a hello (id 0, version 1). token may be
 * NULL; max_payload 0 means the default; caps: the LP_CAP_* bits we use. */
int lp_hs_client_hello(lp_buf_t *out, const char *client, uint32_t max_payload,
                       const char *token, bool want_session, unsigned caps);

/* Client: reads the server's preamble and reply. 0 when accepted (*w
 * filled; lp_welcome_clear frees it); LP_WIRE_EAGAIN; the server's refusal
 * as its negative code (w->code and w->message set); LP_WIRE_EPREAMBLE,
 * LP_WIRE_ETOOLARGE, LP_WIRE_EHEADER or LP_WIRE_EFIELD for a reply that is
 * not a limpet server's. */
int lp_hs_client_read(lp_hs_t *hs, lp_buf_t *in, lp_welcome_t *w);
/* Frees what w owns; NULL is accepted. */
void lp_welcome_clear(lp_welcome_t *w);

#endif
