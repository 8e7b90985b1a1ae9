/* sign.h: Jupyter message signing (docs/jupyter.md section 4): HMAC-SHA256
 * through OpenSSL 3's EVP_MAC over header, parent_header, metadata and
 * content; hex; constant-time checks; and the set of digests already seen,
 * which refuses a replayed message. */
#ifndef LP_JUPYTER_SIGN_H
#define LP_JUPYTER_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LP_JSIGN_DIGEST_LEN 32
#define LP_JSIGN_HEX_LEN 64
#define LP_JREPLAY_DEFAULT 65536 /* digests remembered (4 MiB with the table) */

typedef struct lp_jpart {
    const uint8_t *data;
    size_t len;
} lp_jpart_t;

typedef struct lp_jsign lp_jsign_t;

/* A signer keyed with key[len]; len 0 means "no signing" (the empty key
 * jupyter_client allows: signatures are then empty). NULL on ENOMEM or
 * when OpenSSL has no HMAC. */
lp_jsign_t *lp_jsign_new(const uint8_t *key, size_t len);
void lp_jsign_free(lp_jsign_t *s);
/* True when the key is not empty. */
bool lp_jsign_enabled(const lp_jsign_t *s);
/* The MAC of the four parts in order into digest: 0, or -1 (OpenSSL failed). */
int lp_jsign_digest(lp_jsign_t *s, const lp_jpart_t parts[4], uint8_t digest[LP_JSIGN_DIGEST_LEN]);
/* digest as 64 lowercase hex digits and a NUL. */
void lp_jsign_hex(const uint8_t digest[LP_JSIGN_DIGEST_LEN], char hex[LP_JSIGN_HEX_LEN + 1]);
/* Checks sig (as received) against the parts, in constant time: 0 and the
 * digest in *digest; -1 when sig is wrong (a bad length, a non-hex or
 * uppercase digit, another MAC; or not empty when signing is off). */
int lp_jsign_verify(lp_jsign_t *s, const lp_jpart_t *sig, const lp_jpart_t parts[4],
                    uint8_t digest[LP_JSIGN_DIGEST_LEN]);

typedef struct lp_jreplay lp_jreplay_t;

/* A set of the last cap digests (cap a power of two, at least 16). */
lp_jreplay_t *lp_jreplay_new(size_t cap);
void lp_jreplay_free(lp_jreplay_t *r);
/* True when digest is in the set (a replay); otherwise adds it (forgetting
 * the oldest when full) and returns false. */
bool lp_jreplay_check_add(lp_jreplay_t *r, const uint8_t digest[LP_JSIGN_DIGEST_LEN]);

#endif
