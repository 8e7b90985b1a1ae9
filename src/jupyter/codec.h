/* codec.h: Jupyter wire messages (docs/jupyter.md section 4) <-> lp_jmsg_t.
 * Pure functions over buffers, no sockets, so they are unit tested and
 * fuzzed: [identities...] <IDS|MSG> signature header parent metadata
 * content [buffers...]. */
#ifndef LP_JUPYTER_CODEC_H
#define LP_JUPYTER_CODEC_H

#include <jansson.h>
#include <stdint.h>

#include "jupyter/sign.h"

#define LP_JMSG_IDS_MAX 16        /* identity frames before the delimiter */
#define LP_JMSG_ID_LEN_MAX 255    /* bytes in one identity (ZeroMQ's routing ids) */
#define LP_JMSG_PART_MAX (16u << 20) /* one JSON part */
#define LP_JMSG_BUFFERS_MAX 16    /* accepted and ignored */
#define LP_JMSG_PARTS_MAX (LP_JMSG_IDS_MAX + 6 + LP_JMSG_BUFFERS_MAX)
#define LP_JMSG_DELIM "<IDS|MSG>"
#define LP_JMSG_VERSION "5.3"

typedef struct lp_jmsg {
    size_t n_ids;
    lp_jpart_t ids[LP_JMSG_IDS_MAX]; /* borrowed from the parts decoded */
    json_t *header, *parent, *metadata, *content; /* owned: objects */
    const char *msg_type, *msg_id, *session, *username; /* borrowed from header */
    uint8_t digest[LP_JSIGN_DIGEST_LEN];
} lp_jmsg_t;

/* Why a message was refused, for the log: a static string. */
typedef const char *lp_jwhy_t;

/* Decodes parts[n] into *m (cleared first): splits off the identities,
 * checks the signature with sign, then replay (when replay is not NULL;
 * only a verified digest is added), then parses the four JSON parts
 * (objects, no duplicate keys, no NUL in strings) and checks the header
 * (msg_id, msg_type, session, username, version strings; version "5.x").
 * 0, or -1 with *why set and *m cleared. */
int lp_jmsg_decode(lp_jmsg_t *m, const lp_jpart_t *parts, size_t n, lp_jsign_t *sign,
                   lp_jreplay_t *replay, lp_jwhy_t *why);
void lp_jmsg_clear(lp_jmsg_t *m);

/* What the kernel writes: a header with msg_id (the session id, '_', a
 * counter), session, username "limpet", date (UTC, microseconds, 'Z'),
 * msg_type, version. */
typedef struct lp_jenc {
    lp_jsign_t *sign;            /* borrowed */
    char session[33];            /* 32 hex digits */
    uint64_t counter;
} lp_jenc_t;

/* Seeds enc->session from getrandom: 0, or -errno. */
int lp_jenc_init(lp_jenc_t *enc, lp_jsign_t *sign);

/* An encoded message's four JSON parts and signature, each NUL-terminated
 * (malloc'd); the sender adds identities (or a topic) and the delimiter. */
typedef struct lp_jout {
    char *part[4]; /* header, parent_header, metadata, content */
    size_t len[4];
    char sig[LP_JSIGN_HEX_LEN + 1]; /* "" when signing is off */
} lp_jout_t;

/* Encodes a message of msg_type answering parent (a header, or NULL for
 * {}), with metadata (NULL for {}) and content (NULL for {}); takes the
 * references of metadata and content. 0, or -1 (ENOMEM, or content not
 * encodable). */
int lp_jmsg_encode(lp_jenc_t *enc, const char *msg_type, const json_t *parent, json_t *metadata,
                   json_t *content, lp_jout_t *out);
void lp_jout_clear(lp_jout_t *out);

#endif
