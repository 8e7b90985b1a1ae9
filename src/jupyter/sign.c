/* sign.c: HMAC-SHA256 of Jupyter messages (docs/jupyter.md section 4) and
 * the set of digests already seen. */
#include "jupyter/sign.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

struct lp_jsign {
    EVP_MAC *mac;
    EVP_MAC_CTX *ctx; /* keyed once; NULL when signing is off */
};

lp_jsign_t *lp_jsign_new(const uint8_t *key, size_t len)
{
    lp_jsign_t *s = calloc(1, sizeof(*s));
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };

    if (s == NULL || len == 0)
        return s;
    s->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    s->ctx = s->mac != NULL ? EVP_MAC_CTX_new(s->mac) : NULL;
    if (s->ctx == NULL || EVP_MAC_init(s->ctx, key, len, params) != 1) {
        lp_jsign_free(s);
        return NULL;
    }
    return s;
}

void lp_jsign_free(lp_jsign_t *s)
{
    if (s == NULL)
        return;
    EVP_MAC_CTX_free(s->ctx);
    EVP_MAC_free(s->mac);
    free(s);
}

bool lp_jsign_enabled(const lp_jsign_t *s)
{
    return s->ctx != NULL;
}

int lp_jsign_digest(lp_jsign_t *s, const lp_jpart_t parts[4], uint8_t digest[LP_JSIGN_DIGEST_LEN])
{
    size_t out = 0;

    if (s->ctx == NULL)
        return -1;
    /* NULL key: the same key, without a new key schedule */
    if (EVP_MAC_init(s->ctx, NULL, 0, NULL) != 1)
        return -1;
    for (int i = 0; i < 4; i++)
        if (EVP_MAC_update(s->ctx, parts[i].data, parts[i].len) != 1)
            return -1;
    if (EVP_MAC_final(s->ctx, digest, &out, LP_JSIGN_DIGEST_LEN) != 1 || out != LP_JSIGN_DIGEST_LEN)
        return -1;
    return 0;
}

void lp_jsign_hex(const uint8_t digest[LP_JSIGN_DIGEST_LEN], char hex[LP_JSIGN_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < LP_JSIGN_DIGEST_LEN; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[LP_JSIGN_HEX_LEN] = '\0';
}

/* A lowercase hex digit's value, or -1: jupyter_client writes lowercase
 * (hexdigest), so anything else is not a signature it made. */
static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int lp_jsign_verify(lp_jsign_t *s, const lp_jpart_t *sig, const lp_jpart_t parts[4],
                    uint8_t digest[LP_JSIGN_DIGEST_LEN])
{
    uint8_t want[LP_JSIGN_DIGEST_LEN];

    memset(digest, 0, LP_JSIGN_DIGEST_LEN);
    if (s->ctx == NULL)
        return sig->len == 0 ? 0 : -1;
    if (sig->len != LP_JSIGN_HEX_LEN)
        return -1;
    for (size_t i = 0; i < LP_JSIGN_DIGEST_LEN; i++) {
        int hi = hexval(sig->data[2 * i]), lo = hexval(sig->data[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return -1;
        want[i] = (uint8_t)(hi << 4 | lo);
    }
    if (lp_jsign_digest(s, parts, digest) != 0)
        return -1;
    if (CRYPTO_memcmp(want, digest, LP_JSIGN_DIGEST_LEN) != 0) {
        memset(digest, 0, LP_JSIGN_DIGEST_LEN);
        return -1;
    }
    return 0;
}

/* The replay set: a ring of the last cap digests, oldest at head once
 * full, and a linear-probing table of ring indices (+1; 0 is empty) twice
 * the ring's size. A digest is uniformly random, so its first 8 bytes are
 * the hash. The oldest is removed by backward-shift deletion: no
 * tombstones, so probes stay short however long the kernel runs. */
struct lp_jreplay {
    size_t cap, n, head, mask; /* mask: table size - 1 */
    uint8_t (*ring)[LP_JSIGN_DIGEST_LEN];
    uint32_t *table;
};

lp_jreplay_t *lp_jreplay_new(size_t cap)
{
    lp_jreplay_t *r;

    if (cap < 16 || (cap & (cap - 1)) != 0 || cap > (1u << 30))
        return NULL;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->cap = cap;
    r->mask = 2 * cap - 1;
    r->ring = malloc(cap * sizeof(*r->ring));
    r->table = calloc(2 * cap, sizeof(*r->table));
    if (r->ring == NULL || r->table == NULL) {
        lp_jreplay_free(r);
        return NULL;
    }
    return r;
}

void lp_jreplay_free(lp_jreplay_t *r)
{
    if (r == NULL)
        return;
    free(r->ring);
    free(r->table);
    free(r);
}

static size_t home(const lp_jreplay_t *r, const uint8_t *digest)
{
    uint64_t h;

    memcpy(&h, digest, sizeof(h));
    return (size_t)h & r->mask;
}

/* Removes ring entry idx from the table, shifting back the entries after
 * it in its probe run that may move into the hole. */
static void table_remove(lp_jreplay_t *r, size_t idx)
{
    size_t hole = home(r, r->ring[idx]);

    while (r->table[hole] != idx + 1)
        hole = (hole + 1) & r->mask;
    for (size_t k = (hole + 1) & r->mask; r->table[k] != 0; k = (k + 1) & r->mask) {
        size_t h = home(r, r->ring[r->table[k] - 1]);
        /* k stays when its home is cyclically in (hole, k] */
        bool stays = hole <= k ? (hole < h && h <= k) : (hole < h || h <= k);

        if (!stays) {
            r->table[hole] = r->table[k];
            hole = k;
        }
    }
    r->table[hole] = 0;
}

bool lp_jreplay_check_add(lp_jreplay_t *r, const uint8_t digest[LP_JSIGN_DIGEST_LEN])
{
    size_t k = home(r, digest);

    for (; r->table[k] != 0; k = (k + 1) & r->mask)
        if (memcmp(r->ring[r->table[k] - 1], digest, LP_JSIGN_DIGEST_LEN) == 0)
            return true;
    if (r->n == r->cap) {
        table_remove(r, r->head);
        /* the hole may be on digest's probe path: look for a free slot again */
        for (k = home(r, digest); r->table[k] != 0; k = (k + 1) & r->mask)
            ;
    } else {
        r->n++;
    }
    memcpy(r->ring[r->head], digest, LP_JSIGN_DIGEST_LEN);
    r->table[k] = (uint32_t)(r->head + 1);
    r->head = (r->head + 1) & (r->cap - 1);
    return false;
}
