/* fuzz_jupyter.c: the Jupyter message layer (src/jupyter/codec.c, sign.c,
 * text.c) on hostile multipart messages (docs/jupyter.md section 10).
 *
 * Input: a flags byte, then parts, each a 2-byte big-endian length and
 * that many bytes (the last one cut short by the end of the input). Flag
 * bit 0: the harness signs the four JSON parts after the first delimiter
 * with the right key, so the fuzzer gets past the HMAC into the JSON and
 * header checks; bit 1: signing off (the empty key). Properties: no crash,
 * no leak; what decodes is refused when replayed; a decoded message
 * re-encoded decodes again to the same parent, metadata and content; and
 * the stream decoder gives the same text however its input is cut. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jupyter/codec.h"
#include "jupyter/text.h"
#include "wire/wire.h"

#define MAXP (LP_JMSG_PARTS_MAX + 2)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[] = "fuzz-key";
static lp_jsign_t *signer[2]; /* keyed, off */
static lp_jenc_t enc[2];

static void setup(void)
{
    if (signer[0] != NULL)
        return;
    signer[0] = lp_jsign_new(key, sizeof(key) - 1);
    signer[1] = lp_jsign_new(NULL, 0);
    if (signer[0] == NULL || signer[1] == NULL || lp_jenc_init(&enc[0], signer[0]) != 0 ||
        lp_jenc_init(&enc[1], signer[1]) != 0)
        abort();
}

/* The parts of the input; n is their count. */
static size_t split(const uint8_t *data, size_t size, lp_jpart_t *p)
{
    size_t n = 0, at = 1;

    while (at + 2 <= size && n < MAXP) {
        size_t len = (size_t)data[at] << 8 | data[at + 1];

        at += 2;
        if (len > size - at)
            len = size - at;
        p[n++] = (lp_jpart_t){data + at, len};
        at += len;
    }
    return n;
}

/* Signs the four parts after the first delimiter into hex, pointed to by
 * that message's signature part. */
static void sign(lp_jsign_t *s, lp_jpart_t *p, size_t n, char hex[LP_JSIGN_HEX_LEN + 1])
{
    uint8_t digest[LP_JSIGN_DIGEST_LEN];
    size_t d = 0;

    while (d < n && !(p[d].len == 9 && memcmp(p[d].data, LP_JMSG_DELIM, 9) == 0))
        d++;
    if (d + 6 > n)
        return;
    if (!lp_jsign_enabled(s)) {
        p[d + 1].len = 0;
        return;
    }
    if (lp_jsign_digest(s, &p[d + 2], digest) != 0)
        abort();
    lp_jsign_hex(digest, hex);
    p[d + 1] = (lp_jpart_t){(const uint8_t *)hex, LP_JSIGN_HEX_LEN};
}

/* Re-encodes m as a reply to itself: it must decode to the same objects. */
static void round_trip(int off, const lp_jmsg_t *m)
{
    lp_jout_t out;
    lp_jpart_t p[LP_JMSG_IDS_MAX + 6];
    lp_jmsg_t back;
    lp_jwhy_t why;
    size_t n = 0;

    if (lp_jmsg_encode(&enc[off], m->msg_type, m->header, json_incref(m->metadata),
                       json_incref(m->content), &out) != 0)
        abort();
    for (; n < m->n_ids; n++)
        p[n] = m->ids[n];
    p[n++] = (lp_jpart_t){(const uint8_t *)LP_JMSG_DELIM, 9};
    p[n++] = (lp_jpart_t){(const uint8_t *)out.sig, strlen(out.sig)};
    for (int i = 0; i < 4; i++)
        p[n++] = (lp_jpart_t){(const uint8_t *)out.part[i], out.len[i]};
    if (lp_jmsg_decode(&back, p, n, signer[off], NULL, &why) != 0)
        abort();
    if (strcmp(back.msg_type, m->msg_type) != 0 || back.n_ids != m->n_ids ||
        !json_equal(back.parent, m->header) || !json_equal(back.metadata, m->metadata) ||
        !json_equal(back.content, m->content))
        abort();
    lp_jmsg_clear(&back);
    lp_jout_clear(&out);
}

static void decode(int flags, const uint8_t *data, size_t size)
{
    lp_jpart_t p[MAXP];
    char hex[LP_JSIGN_HEX_LEN + 1];
    int off = (flags & 2) != 0;
    size_t n = split(data, size, p);
    lp_jreplay_t *replay = lp_jreplay_new(16);
    lp_jmsg_t m;
    lp_jwhy_t why = NULL;

    if (replay == NULL)
        abort();
    if (flags & 1)
        sign(signer[off], p, n, hex);
    if (lp_jmsg_decode(&m, p, n, signer[off], replay, &why) != 0) {
        if (why == NULL || m.header != NULL || m.n_ids != 0)
            abort();
    } else {
        if (m.msg_id == NULL || m.msg_type == NULL || m.session == NULL || m.username == NULL ||
            m.n_ids > LP_JMSG_IDS_MAX || !json_is_object(m.content))
            abort();
        for (size_t i = 0; i < m.n_ids; i++)
            if (m.ids[i].len > LP_JMSG_ID_LEN_MAX)
                abort();
        round_trip(off, &m);
        lp_jmsg_clear(&m);
        /* the same message again: a replay (when there is a signature) */
        if ((lp_jmsg_decode(&m, p, n, signer[off], replay, &why) == 0) != off)
            abort();
        lp_jmsg_clear(&m);
    }
    lp_jreplay_free(replay);
}

/* The stream decoder: two chunks cut at any point give the text of one;
 * the text is valid UTF-8 (NUL aside); offsets convert both ways. */
static void text(const uint8_t *data, size_t size)
{
    lp_jstream_t d1 = {0}, d2 = {0};
    char *a, *b, *c;
    size_t la, lb, lc, cut = size > 0 ? data[0] % (size + 1) : 0;

    if (lp_jstream_decode(&d1, data, size, 1, &a, &la) != 0 ||
        lp_jstream_decode(&d2, data, cut, 0, &b, &lb) != 0 ||
        lp_jstream_decode(&d2, data + cut, size - cut, 1, &c, &lc) != 0)
        abort();
    if (d1.n_held != 0 || d2.n_held != 0 || la != lb + lc || memcmp(a, b, lb) != 0 ||
        memcmp(a + lb, c, lc) != 0 || a[la] != '\0')
        abort();
    for (size_t i = 0, k; i < la; i += k)
        if ((k = lp_utf8_seq((const uint8_t *)a + i, la - i)) == 0)
            abort();
    /* a few offsets, not all: all is quadratic in the input */
    for (size_t k = 0; k < 4; k++) {
        size_t off = (size_t[]){cut, size, size / 2, cut * 7 % (size + 1)}[k];
        size_t cp = lp_jtext_byte_to_cp(data, size, off);

        if (cp != SIZE_MAX && lp_jtext_cp_to_byte(data, size, cp) != off)
            abort();
    }
    free(a);
    free(b);
    free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    setup();
    decode(data[0], data, size);
    text(data + 1, size - 1);
    return 0;
}
