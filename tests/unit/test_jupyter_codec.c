/* test_jupyter_codec.c: the Jupyter message layer (src/jupyter/sign.c,
 * codec.c, conn_file.c) against messages signed by jupyter_client's own
 * Session (tests/vectors/jupyter_sign.json, gen_jupyter_vectors.py), and
 * malformed messages case by case. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "jupyter/codec.h"
#include "jupyter/conn_file.h"
#include "jupyter/sign.h"

#include "unhex.h"

static const char *vector_dir; /* from argv[1] */
static json_t *vectors;

#define MAXP (LP_JMSG_PARTS_MAX + 4)

/* A message as parts with their own bytes, so a test can change one. */
typedef struct msg {
    size_t n;
    lp_jpart_t p[MAXP];
    uint8_t *own[MAXP];
} msg_t;

static void msg_free(msg_t *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->own[i]);
    m->n = 0;
}

static void msg_add(msg_t *m, const void *data, size_t len)
{
    assert_true(m->n < MAXP);
    m->own[m->n] = malloc(len + 1);
    memcpy(m->own[m->n], data, len);
    m->own[m->n][len] = 0;
    m->p[m->n] = (lp_jpart_t){m->own[m->n], len};
    m->n++;
}

static void msg_adds(msg_t *m, const char *s)
{
    msg_add(m, s, strlen(s));
}

/* Inserts a part at index i. */
static void msg_insert(msg_t *m, size_t i, const void *data, size_t len)
{
    assert_true(m->n < MAXP);
    memmove(&m->p[i + 1], &m->p[i], (m->n - i) * sizeof(m->p[0]));
    memmove(&m->own[i + 1], &m->own[i], (m->n - i) * sizeof(m->own[0]));
    m->own[i] = malloc(len + 1);
    memcpy(m->own[i], data, len);
    m->own[i][len] = 0;
    m->p[i] = (lp_jpart_t){m->own[i], len};
    m->n++;
}

static json_t *vec(const char *name)
{
    size_t i;
    json_t *v;

    json_array_foreach(vectors, i, v)
        if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
            return v;
    fail_msg("no vector %s", name);
    return NULL;
}

static void vec_msg(json_t *v, msg_t *m)
{
    size_t i, len;
    json_t *p;

    memset(m, 0, sizeof(*m));
    json_array_foreach(json_object_get(v, "parts"), i, p) {
        uint8_t *b = unhex(json_string_value(p), &len);

        msg_add(m, b, len);
        free(b);
    }
}

static lp_jsign_t *vec_signer(json_t *v)
{
    size_t len;
    uint8_t *key = unhex(json_string_value(json_object_get(v, "key")), &len);
    lp_jsign_t *s = lp_jsign_new(key, len);

    free(key);
    assert_non_null(s);
    return s;
}

static const uint8_t test_key[] = "a-test-key";

/* A message [ids] <IDS|MSG> sig header parent metadata content, signed
 * with s (or unsigned when s is off). */
static void make_msg(msg_t *m, lp_jsign_t *s, const char *h, const char *parent, const char *meta,
                     const char *content)
{
    const char *json[4] = {h, parent, meta, content};
    lp_jpart_t parts[4];
    uint8_t digest[LP_JSIGN_DIGEST_LEN];
    char hex[LP_JSIGN_HEX_LEN + 1] = "";

    memset(m, 0, sizeof(*m));
    for (int i = 0; i < 4; i++)
        parts[i] = (lp_jpart_t){(const uint8_t *)json[i], strlen(json[i])};
    if (lp_jsign_enabled(s)) {
        assert_int_equal(lp_jsign_digest(s, parts, digest), 0);
        lp_jsign_hex(digest, hex);
    }
    msg_adds(m, "id0");
    msg_adds(m, LP_JMSG_DELIM);
    msg_adds(m, hex);
    for (int i = 0; i < 4; i++)
        msg_adds(m, json[i]);
}

#define GOOD_HEADER                                                                                \
    "{\"msg_id\":\"m1\",\"msg_type\":\"execute_request\",\"session\":\"s1\",\"username\":\"u\","   \
    "\"version\":\"5.3\",\"date\":\"2026-11-30T21:00:00.000000Z\"}"

/* Decodes m: 0 or -1, checking that a refusal leaves *out cleared. */
static int decode(msg_t *m, lp_jsign_t *s, lp_jreplay_t *r, lp_jmsg_t *out, lp_jwhy_t *why)
{
    int rc;

    *why = NULL;
    rc = lp_jmsg_decode(out, m->p, m->n, s, r, why);
    if (rc != 0) {
        assert_non_null(*why);
        assert_null(out->header);
        assert_null(out->content);
        assert_int_equal(out->n_ids, 0);
    }
    return rc;
}

/* Refused with a reason containing want. */
static void refused(msg_t *m, lp_jsign_t *s, const char *want)
{
    lp_jmsg_t out;
    lp_jwhy_t why;

    assert_int_equal(decode(m, s, NULL, &out, &why), -1);
    if (strstr(why, want) == NULL)
        fail_msg("refused for '%s', not '%s'", why, want);
}

static void vectors_decode(void **state)
{
    size_t i;
    json_t *v;

    json_array_foreach(vectors, i, v) {
        msg_t m;
        lp_jmsg_t out;
        lp_jwhy_t why;
        lp_jsign_t *s = vec_signer(v);
        size_t n_ids = (size_t)json_integer_value(json_object_get(v, "n_ids"));
        lp_jpart_t *sig = &m.p[n_ids + 1];
        char hex[LP_JSIGN_HEX_LEN + 1];
        uint8_t digest[LP_JSIGN_DIGEST_LEN];

        vec_msg(v, &m);
        if (decode(&m, s, NULL, &out, &why) != 0)
            fail_msg("%s: %s", json_string_value(json_object_get(v, "name")), why);
        assert_string_equal(out.msg_type, json_string_value(json_object_get(v, "msg_type")));
        assert_string_equal(out.msg_id, json_string_value(json_object_get(v, "msg_id")));
        assert_string_equal(out.session, json_string_value(json_object_get(v, "session")));
        assert_string_equal(out.username, "alice");
        /* identities: the very bytes received, NUL and 0xff included */
        assert_int_equal(out.n_ids, n_ids);
        for (size_t k = 0; k < n_ids; k++) {
            assert_ptr_equal(out.ids[k].data, m.p[k].data);
            assert_int_equal(out.ids[k].len, m.p[k].len);
        }
        if (lp_jsign_enabled(s)) {
            lp_jsign_hex(out.digest, hex);
            assert_int_equal(sig->len, LP_JSIGN_HEX_LEN);
            assert_memory_equal(hex, sig->data, LP_JSIGN_HEX_LEN);
            assert_int_equal(lp_jsign_digest(s, &m.p[n_ids + 2], digest), 0);
            assert_memory_equal(digest, out.digest, LP_JSIGN_DIGEST_LEN);
        } else {
            assert_int_equal(sig->len, 0);
        }
        lp_jmsg_clear(&out);
        lp_jsign_free(s);
        msg_free(&m);
    }
}

static void identities(void **state)
{
    lp_jsign_t *s = lp_jsign_new(test_key, sizeof(test_key) - 1);
    msg_t m;
    lp_jmsg_t out;
    lp_jwhy_t why;
    uint8_t id[256];

    for (size_t i = 0; i < sizeof(id); i++)
        id[i] = (uint8_t)i;
    make_msg(&m, s, GOOD_HEADER, "{}", "{}", "{}");
    /* 16 identities (one from make_msg), one of 255 bytes from NUL to 0xfe */
    msg_insert(&m, 0, id, 255);
    for (int k = 0; k < 14; k++)
        msg_insert(&m, 0, "\0", 1);
    assert_int_equal(decode(&m, s, NULL, &out, &why), 0);
    assert_int_equal(out.n_ids, 16);
    assert_int_equal(out.ids[14].len, 255);
    assert_memory_equal(out.ids[14].data, id, 255);
    assert_memory_equal(out.ids[15].data, "id0", 3);
    lp_jmsg_clear(&out);
    /* a 17th */
    msg_insert(&m, 0, "x", 1);
    refused(&m, s, "more than 16 identities");
    msg_free(&m);
    /* 256 bytes */
    make_msg(&m, s, GOOD_HEADER, "{}", "{}", "{}");
    msg_insert(&m, 0, id, 256);
    refused(&m, s, "longer than 255");
    msg_free(&m);
    /* no identity at all is fine (a DEALER with none, as a test client) */
    make_msg(&m, s, GOOD_HEADER, "{}", "{}", "{}");
    free(m.own[0]);
    memmove(&m.p[0], &m.p[1], (m.n - 1) * sizeof(m.p[0]));
    memmove(&m.own[0], &m.own[1], (m.n - 1) * sizeof(m.own[0]));
    m.n--;
    assert_int_equal(decode(&m, s, NULL, &out, &why), 0);
    assert_int_equal(out.n_ids, 0);
    lp_jmsg_clear(&out);
    msg_free(&m);
    lp_jsign_free(s);
}

static void framing(void **state)
{
    lp_jsign_t *s = lp_jsign_new(test_key, sizeof(test_key) - 1);
    msg_t m;
    lp_jmsg_t out;
    lp_jwhy_t why;

    /* no delimiter: the bytes of one, but not the whole part */
    make_msg(&m, s, GOOD_HEADER, "{}", "{}", "{}");
    m.p[1].len = 8;
    refused(&m, s, "no <IDS|MSG>");
    m.n = 0 + 1; /* only the identity */
    m.p[1].len = 9;
    refused(&m, s, "no <IDS|MSG>");
    m.n = 7;
    msg_free(&m);
    assert_int_equal(lp_jmsg_decode(&out, NULL, 0, s, NULL, &why), -1);
    /* a short list: one JSON part missing */
    make_msg(&m, s, GOOD_HEADER, "{}", "{}", "{}");
    m.n--;
    refused(&m, s, "fewer than");
    m.n++;
    /* 16 buffers are accepted and ignored, 17 are not */
    for (int k = 0; k < 16; k++)
        msg_adds(&m, "buffer");
    assert_int_equal(decode(&m, s, NULL, &out, &why), 0);
    lp_jmsg_clear(&out);
    msg_adds(&m, "buffer");
    refused(&m, s, "more than 16 buffers");
    msg_free(&m);
    lp_jsign_free(s);
}

static void part_too_large(void **state)
{
    lp_jsign_t *s = lp_jsign_new(test_key, sizeof(test_key) - 1);
    msg_t m;

    make_msg(&m, s, GOOD_HEADER, "{}", "{}", "{}");
    /* the length alone decides: the bytes are never read */
    m.p[6].len = LP_JMSG_PART_MAX + 1;
    refused(&m, s, "larger than 16 MiB");
    m.p[6].len = 2;
    msg_free(&m);
    lp_jsign_free(s);
}

static void bad_signature(void **state)
{
    json_t *v = vec("execute");
    lp_jsign_t *s = vec_signer(v);
    msg_t m;
    lp_jmsg_t out;
    lp_jwhy_t why;

    vec_msg(v, &m);
    /* one bit in each signed part, and in the signature (a hex digit
     * becomes another hex digit: '0'..'9' ^ 1 stay digits) */
    for (size_t i = 2; i < 7; i++) {
        size_t at = i == 2 ? strcspn((const char *)m.own[i], "0123456789") : m.p[i].len / 2;
        uint8_t keep = m.own[i][at];

        m.own[i][at] ^= 1;
        refused(&m, s, "bad signature");
        m.own[i][at] = keep;
        assert_int_equal(decode(&m, s, NULL, &out, &why), 0);
        lp_jmsg_clear(&out);
    }
    /* the same signature in uppercase: jupyter_client never writes that */
    for (size_t k = 0; k < m.p[2].len; k++)
        if (m.own[2][k] >= 'a' && m.own[2][k] <= 'f')
            m.own[2][k] = (uint8_t)(m.own[2][k] - 'a' + 'A');
    refused(&m, s, "bad signature");
    msg_free(&m);
    /* short, long, empty, not hex */
    vec_msg(v, &m);
    m.p[2].len = 63;
    refused(&m, s, "bad signature");
    m.p[2].len = 0;
    refused(&m, s, "bad signature");
    m.p[2].len = 64;
    m.own[2][5] = 'g';
    refused(&m, s, "bad signature");
    msg_free(&m);
    /* another key */
    vec_msg(v, &m);
    lp_jsign_free(s);
    s = lp_jsign_new((const uint8_t *)"other", 5);
    refused(&m, s, "bad signature");
    msg_free(&m);
    lp_jsign_free(s);
}

static void empty_key(void **state)
{
    json_t *v = vec("empty-key");
    lp_jsign_t *off = vec_signer(v), *on = lp_jsign_new(test_key, sizeof(test_key) - 1);
    msg_t m;
    lp_jmsg_t out;
    lp_jwhy_t why;
    lp_jreplay_t *r = lp_jreplay_new(16);
    lp_jenc_t enc;
    lp_jout_t o;
    uint8_t digest[LP_JSIGN_DIGEST_LEN];

    assert_false(lp_jsign_enabled(off));
    assert_true(lp_jsign_enabled(on));
    assert_int_equal(lp_jsign_digest(off, NULL, digest), -1);
    vec_msg(v, &m);
    /* signing off: the empty signature, and no replay check (all equal) */
    assert_int_equal(decode(&m, off, r, &out, &why), 0);
    lp_jmsg_clear(&out);
    assert_int_equal(decode(&m, off, r, &out, &why), 0);
    lp_jmsg_clear(&out);
    /* a keyed kernel refuses the unsigned message */
    refused(&m, on, "bad signature");
    msg_free(&m);
    /* and a kernel without a key refuses a signature */
    vec_msg(vec("kernel_info"), &m);
    refused(&m, off, "bad signature");
    msg_free(&m);
    /* the encoder writes an empty signature */
    assert_int_equal(lp_jenc_init(&enc, off), 0);
    assert_int_equal(lp_jmsg_encode(&enc, "status", NULL, NULL, json_pack("{s:s}", "execution_state", "idle"), &o), 0);
    assert_string_equal(o.sig, "");
    lp_jout_clear(&o);
    lp_jreplay_free(r);
    lp_jsign_free(off);
    lp_jsign_free(on);
}

static void replay(void **state)
{
    json_t *v = vec("kernel_info");
    lp_jsign_t *s = vec_signer(v);
    lp_jreplay_t *r = lp_jreplay_new(16);
    msg_t m;
    lp_jmsg_t out;
    lp_jwhy_t why;
    uint8_t digest[LP_JSIGN_DIGEST_LEN];

    vec_msg(v, &m);
    assert_int_equal(decode(&m, s, r, &out, &why), 0);
    lp_jmsg_clear(&out);
    assert_int_equal(decode(&m, s, r, &out, &why), -1);
    assert_non_null(strstr(why, "replayed"));
    msg_free(&m);
    /* only a verified message enters the set: a forged signature over
     * these parts is refused, and its digest is still new */
    vec_msg(vec("execute"), &m);
    assert_int_equal(lp_jsign_digest(s, &m.p[3], digest), 0);
    m.own[2][0] ^= 1;
    refused(&m, s, "bad signature");
    assert_int_equal(decode(&m, s, r, &out, &why), -1);
    assert_false(lp_jreplay_check_add(r, digest));
    assert_true(lp_jreplay_check_add(r, digest));
    /* a message that verifies but is bad JSON is remembered: replaying it
     * is refused as a replay, before its JSON is read again */
    msg_free(&m);
    make_msg(&m, s, GOOD_HEADER, "{}", "{}", "[]");
    assert_int_equal(decode(&m, s, r, &out, &why), -1);
    assert_non_null(strstr(why, "content"));
    assert_int_equal(decode(&m, s, r, &out, &why), -1);
    assert_non_null(strstr(why, "replayed"));
    msg_free(&m);
    lp_jreplay_free(r);
    lp_jsign_free(s);
}

/* A digest whose hash (first 8 bytes) is h, and the rest k. */
static void digest_of(uint8_t d[LP_JSIGN_DIGEST_LEN], uint64_t h, uint32_t k)
{
    memset(d, 0, LP_JSIGN_DIGEST_LEN);
    memcpy(d, &h, sizeof(h));
    memcpy(d + 8, &k, sizeof(k));
}

static void replay_eviction(void **state)
{
    lp_jreplay_t *r = lp_jreplay_new(16);
    uint8_t d[LP_JSIGN_DIGEST_LEN];

    assert_null(lp_jreplay_new(8));
    assert_null(lp_jreplay_new(24));
    for (uint32_t k = 0; k < 16; k++) {
        digest_of(d, k, k);
        assert_false(lp_jreplay_check_add(r, d));
    }
    for (uint32_t k = 0; k < 16; k++) {
        digest_of(d, k, k);
        assert_true(lp_jreplay_check_add(r, d));
    }
    /* the 17th forgets the oldest (0), and only it */
    digest_of(d, 16, 16);
    assert_false(lp_jreplay_check_add(r, d));
    for (uint32_t k = 1; k <= 16; k++) {
        digest_of(d, k, k);
        assert_true(lp_jreplay_check_add(r, d));
    }
    digest_of(d, 0, 0);
    assert_false(lp_jreplay_check_add(r, d)); /* forgotten: new again, 1 goes */
    digest_of(d, 1, 1);
    assert_false(lp_jreplay_check_add(r, d));
    lp_jreplay_free(r);
}

/* The set against a plain model (the last 16 added), with hashes forced
 * into a few slots so probe runs wrap and deletions shift entries back. */
static void replay_model(void **state)
{
    lp_jreplay_t *r = lp_jreplay_new(16);
    uint64_t model[16];
    size_t n = 0, head = 0;
    uint32_t seed = 12345;

    for (int op = 0; op < 200000; op++) {
        uint8_t d[LP_JSIGN_DIGEST_LEN];
        uint64_t key;
        bool in = false;

        seed = seed * 1103515245u + 12345u;
        key = (seed >> 8) % 48; /* a small universe: many repeats */
        /* homes: 31, 0, 1 and 30 only (the table has 32 slots) */
        digest_of(d, (uint64_t[]){31, 0, 1, 30}[key % 4] + 32 * (key / 4), (uint32_t)key);
        for (size_t i = 0; i < n; i++)
            in |= model[i] == key;
        assert_int_equal(lp_jreplay_check_add(r, d), in);
        if (!in) {
            model[head] = key;
            head = (head + 1) % 16;
            n += n < 16;
        }
    }
    lp_jreplay_free(r);
}

static void header_checks(void **state)
{
    lp_jsign_t *s = lp_jsign_new(test_key, sizeof(test_key) - 1);
    static const char *const fields[] = {"msg_id", "msg_type", "session", "username", "version"};
    msg_t m;
    lp_jmsg_t out;
    lp_jwhy_t why;

    for (size_t f = 0; f < 5; f++) {
        json_t *h = json_loads(GOOD_HEADER, 0, NULL);
        char *text;

        json_object_del(h, fields[f]);
        text = json_dumps(h, JSON_COMPACT);
        make_msg(&m, s, text, "{}", "{}", "{}");
        refused(&m, s, f < 4 ? fields[f] : "version");
        msg_free(&m);
        free(text);
        json_object_set_new(h, fields[f], json_integer(5));
        text = json_dumps(h, JSON_COMPACT);
        make_msg(&m, s, text, "{}", "{}", "{}");
        refused(&m, s, f < 4 ? fields[f] : "version");
        msg_free(&m);
        free(text);
        json_decref(h);
    }
    static const char *const versions[] = {"4.0", "5", "5.", "5.x", "6.0", "5.3 ", "15.0", ""};
    for (size_t k = 0; k < sizeof(versions) / sizeof(versions[0]); k++) {
        char h[512];

        snprintf(h, sizeof(h), "{\"msg_id\":\"a\",\"msg_type\":\"t\",\"session\":\"s\","
                 "\"username\":\"u\",\"version\":\"%s\"}", versions[k]);
        make_msg(&m, s, h, "{}", "{}", "{}");
        refused(&m, s, "version");
        msg_free(&m);
    }
    make_msg(&m, s, "{\"msg_id\":\"a\",\"msg_type\":\"t\",\"session\":\"s\",\"username\":\"\","
             "\"version\":\"5.10\"}", "{}", "{}", "{}");
    assert_int_equal(decode(&m, s, NULL, &out, &why), 0);
    assert_string_equal(out.username, "");
    lp_jmsg_clear(&out);
    msg_free(&m);
    lp_jsign_free(s);
}

static void json_checks(void **state)
{
    lp_jsign_t *s = lp_jsign_new(test_key, sizeof(test_key) - 1);
    static const struct {
        int part;
        const char *json, *why;
    } bad[] = {
        {0, "[]", "header: not a JSON object"},
        {0, "not json", "header: not a JSON object"},
        {1, "null", "parent_header: not a JSON object"},
        {2, "\"x\"", "metadata: not a JSON object"},
        {3, "[]", "content: not a JSON object"},
        {3, "", "content: not a JSON object"},
        {3, "{\"a\":1,\"a\":2}", "content"},             /* duplicate keys */
        {3, "{\"a\":{\"b\":1,\"b\":1}}", "content"},     /* nested too */
        {3, "{\"code\":\"a\\u0000b\"}", "content"},      /* NUL escaped */
        {3, "{\"code\":\"a\0b\"}", "content"},           /* NUL raw: see len below */
        {3, "{\"code\":\"\xff\"}", "content"},           /* invalid UTF-8 */
        {3, "{\"code\":\"\\ud800\"}", "content"},        /* lone surrogate */
        {3, "{} {}", "content"},                         /* two values */
        {2, "{\"a\":1}x", "metadata"},                   /* trailing garbage */
    };
    msg_t m;
    lp_jmsg_t out;
    lp_jwhy_t why;

    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        const char *p[4] = {GOOD_HEADER, "{}", "{}", "{}"};

        p[bad[k].part] = bad[k].json;
        make_msg(&m, s, p[0], p[1], p[2], p[3]);
        if (strcmp(bad[k].json, "{\"code\":\"a") == 0) { /* the raw NUL: re-sign with it */
            static const char raw[] = "{\"code\":\"a\0b\"}";
            lp_jpart_t parts[4];
            uint8_t digest[LP_JSIGN_DIGEST_LEN];
            char hex[LP_JSIGN_HEX_LEN + 1];

            free(m.own[6]);
            m.own[6] = malloc(sizeof(raw));
            memcpy(m.own[6], raw, sizeof(raw));
            m.p[6] = (lp_jpart_t){m.own[6], sizeof(raw) - 1};
            memcpy(parts, &m.p[3], sizeof(parts));
            assert_int_equal(lp_jsign_digest(s, parts, digest), 0);
            lp_jsign_hex(digest, hex);
            memcpy(m.own[2], hex, 64);
        }
        refused(&m, s, bad[k].why);
        msg_free(&m);
    }
    /* what is fine: unknown fields, nesting, non-ASCII, escapes */
    make_msg(&m, s, GOOD_HEADER, "{}", "{\"x\":[1,2,{\"y\":null}]}",
             "{\"code\":\"h\\u00e9 \xe4\xb8\x96 \\ud83d\\ude00\"}");
    assert_int_equal(decode(&m, s, NULL, &out, &why), 0);
    assert_string_equal(json_string_value(json_object_get(out.content, "code")),
                        "h\xc3\xa9 \xe4\xb8\x96 \xf0\x9f\x98\x80");
    lp_jmsg_clear(&out);
    msg_free(&m);
    lp_jsign_free(s);
}

/* 2026-11-30T21:00:00.123456Z */
static void check_date(const char *d)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";

    assert_non_null(d);
    assert_int_equal(strlen(d), sizeof(shape) - 1);
    for (size_t i = 0; shape[i] != '\0'; i++)
        if (shape[i] == 'd')
            assert_true(d[i] >= '0' && d[i] <= '9');
        else
            assert_int_equal(d[i], shape[i]);
}

static void round_trip(void **state)
{
    json_t *v = vec("execute");
    lp_jsign_t *s = vec_signer(v);
    lp_jreplay_t *r = lp_jreplay_new(16);
    msg_t m, back;
    lp_jmsg_t req, rep;
    lp_jwhy_t why;
    lp_jenc_t enc, enc2;
    lp_jout_t o;
    char want_id[64];

    vec_msg(v, &m);
    assert_int_equal(decode(&m, s, r, &req, &why), 0);
    assert_int_equal(lp_jenc_init(&enc, s), 0);
    assert_int_equal(lp_jenc_init(&enc2, s), 0);
    assert_int_equal(strlen(enc.session), 32);
    assert_int_equal(strspn(enc.session, "0123456789abcdef"), 32);
    assert_string_not_equal(enc.session, enc2.session);
    for (int k = 1; k <= 2; k++) {
        assert_int_equal(lp_jmsg_encode(&enc, "execute_reply", req.header,
                                        json_pack("{s:b}", "started", 1),
                                        json_pack("{s:s, s:i, s:s}", "status", "ok",
                                                  "execution_count", k, "text", "\xc3\xa9\xf0\x9f\x98\x80"),
                                        &o), 0);
        assert_int_equal(strlen(o.sig), 64);
        /* back through the decoder, with the request's identities */
        memset(&back, 0, sizeof(back));
        msg_add(&back, req.ids[0].data, req.ids[0].len);
        msg_adds(&back, LP_JMSG_DELIM);
        msg_adds(&back, o.sig);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(strlen(o.part[i]), o.len[i]);
            assert_null(strchr(o.part[i], '\n')); /* compact */
            msg_add(&back, o.part[i], o.len[i]);
        }
        assert_int_equal(decode(&back, s, r, &rep, &why), 0);
        snprintf(want_id, sizeof(want_id), "%s_%d", enc.session, k);
        assert_string_equal(rep.msg_id, want_id);
        assert_string_equal(rep.msg_type, "execute_reply");
        assert_string_equal(rep.session, enc.session);
        assert_string_equal(rep.username, "limpet");
        assert_string_equal(json_string_value(json_object_get(rep.header, "version")), "5.3");
        check_date(json_string_value(json_object_get(rep.header, "date")));
        assert_true(json_equal(rep.parent, req.header));
        assert_true(json_is_true(json_object_get(rep.metadata, "started")));
        assert_int_equal(json_integer_value(json_object_get(rep.content, "execution_count")), k);
        assert_string_equal(json_string_value(json_object_get(rep.content, "text")),
                            "\xc3\xa9\xf0\x9f\x98\x80");
        assert_memory_equal(rep.ids[0].data, m.p[0].data, m.p[0].len);
        lp_jmsg_clear(&rep);
        msg_free(&back);
        lp_jout_clear(&o);
    }
    /* defaults: {} for parent, metadata and content */
    assert_int_equal(lp_jmsg_encode(&enc, "status", NULL, NULL, NULL, &o), 0);
    assert_string_equal(o.part[1], "{}");
    assert_string_equal(o.part[2], "{}");
    assert_string_equal(o.part[3], "{}");
    lp_jout_clear(&o);
    /* content that is not an object: refused, its reference still taken */
    errno = 0;
    assert_int_equal(lp_jmsg_encode(&enc, "status", NULL, json_object(), json_array(), &o), -1);
    assert_int_equal(errno, EINVAL);
    assert_null(o.part[0]);
    lp_jmsg_clear(&req);
    msg_free(&m);
    lp_jreplay_free(r);
    lp_jsign_free(s);
}

/* What we encode, jupyter_client's Session reads: it checks the signature
 * itself and parses the date; the script exits 0 only when all agree. */
static void jupyter_client_reads_ours(void **state)
{
    static const char script[] =
        "import sys\n"
        "try:\n"
        "    from jupyter_client.session import Session\n"
        "except ImportError:\n"
        "    sys.exit(77)\n"
        "parts = [bytes.fromhex(l) for l in open(sys.argv[1]).read().split()]\n"
        "m = Session(key=b'a-test-key', signature_scheme='hmac-sha256').deserialize(parts)\n"
        "assert m['header']['username'] == 'limpet' and m['header']['version'] == '5.3'\n"
        "assert m['header']['date'].tzinfo is not None and m['header']['date'].microsecond > 0\n"
        "assert m['parent_header']['msg_id'] == 'm1', m['parent_header']\n"
        "assert m['content'] == {'name': 'stdout', 'text': 'h\\u00e9 \\U0001F600'}, m['content']\n";
    lp_jsign_t *s = lp_jsign_new(test_key, sizeof(test_key) - 1);
    json_t *parent = json_loads(GOOD_HEADER, 0, NULL);
    lp_jenc_t enc;
    lp_jout_t o;
    char path[] = "/tmp/limpet-test-jmsg-XXXXXX", spath[] = "/tmp/limpet-test-jpy-XXXXXX", cmd[256];
    FILE *f;
    int fd, sfd, status;

    assert_int_equal(lp_jenc_init(&enc, s), 0);
    /* the date's microseconds must not be zero for the check below: one retry */
    assert_int_equal(lp_jmsg_encode(&enc, "stream", parent, NULL,
                                    json_pack("{s:s, s:s}", "name", "stdout", "text",
                                              "h\xc3\xa9 \xf0\x9f\x98\x80"), &o), 0);
    if (strstr(o.part[0], ".000000Z") != NULL) {
        lp_jout_clear(&o);
        assert_int_equal(lp_jmsg_encode(&enc, "stream", parent, NULL,
                                        json_pack("{s:s, s:s}", "name", "stdout", "text",
                                                  "h\xc3\xa9 \xf0\x9f\x98\x80"), &o), 0);
    }
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    for (size_t k = 0; k < strlen(o.sig); k++)
        fprintf(f, "%02x", (unsigned char)o.sig[k]);
    for (int i = 0; i < 4; i++) {
        fputc('\n', f);
        for (size_t k = 0; k < o.len[i]; k++)
            fprintf(f, "%02x", (unsigned char)o.part[i][k]);
    }
    fclose(f);
    /* the script through a file too: no shell quoting of Python */
    sfd = mkstemp(spath);
    assert_true(sfd >= 0);
    assert_int_equal(write(sfd, script, sizeof(script) - 1), (ssize_t)(sizeof(script) - 1));
    close(sfd);
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s %s", spath, path);
    status = system(cmd);
    unlink(spath);
    unlink(path);
    lp_jout_clear(&o);
    json_decref(parent);
    lp_jsign_free(s);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77)
        skip(); /* no jupyter_client: the kernel's e2e tests need it anyway */
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Writes text to a new temporary file: its path (static). */
static const char *conn_file(const char *text)
{
    static char path[64];
    int fd;

    strcpy(path, "/tmp/limpet-test-conn-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

#define PORTS "\"shell_port\":5001,\"iopub_port\":5002,\"stdin_port\":5003,\"control_port\":5004,\"hb_port\":5005"

static void conn_good(void **state)
{
    lp_jconn_t c;
    char why[256] = "";
    const char *p;

    p = conn_file("{\"transport\":\"tcp\",\"ip\":\"127.0.0.1\"," PORTS ",\"key\":\"k-1\","
                  "\"signature_scheme\":\"hmac-sha256\",\"kernel_name\":\"limpet-app\"}");
    assert_int_equal(lp_jconn_load(&c, p, why, sizeof(why)), 0);
    unlink(p);
    assert_string_equal(c.endpoint[LP_JCH_SHELL], "tcp://127.0.0.1:5001");
    assert_string_equal(c.endpoint[LP_JCH_IOPUB], "tcp://127.0.0.1:5002");
    assert_string_equal(c.endpoint[LP_JCH_STDIN], "tcp://127.0.0.1:5003");
    assert_string_equal(c.endpoint[LP_JCH_CONTROL], "tcp://127.0.0.1:5004");
    assert_string_equal(c.endpoint[LP_JCH_HB], "tcp://127.0.0.1:5005");
    assert_false(lp_jconn_ipv6(&c));
    assert_int_equal(c.key_len, 3);
    assert_memory_equal(c.key, "k-1", 3);
    assert_string_equal(c.kernel_name, "limpet-app");
    lp_jconn_clear(&c);
    assert_null(c.key);

    /* ipc as jupyter_client names it; the empty key; no kernel_name */
    p = conn_file("{\"transport\":\"ipc\",\"ip\":\"/tmp/kernel-x\"," PORTS ",\"key\":\"\","
                  "\"signature_scheme\":\"hmac-sha256\"}");
    assert_int_equal(lp_jconn_load(&c, p, why, sizeof(why)), 0);
    unlink(p);
    assert_string_equal(c.endpoint[LP_JCH_SHELL], "ipc:///tmp/kernel-x-5001");
    assert_string_equal(c.endpoint[LP_JCH_HB], "ipc:///tmp/kernel-x-5005");
    assert_int_equal(c.key_len, 0);
    assert_string_equal(c.kernel_name, "");
    lp_jconn_clear(&c);

    /* IPv6 in brackets, as libzmq's tcp:// wants it; no signature_scheme: the
     * default of jupyter_client's Session, hmac-sha256 */
    p = conn_file("{\"transport\":\"tcp\",\"ip\":\"::1\"," PORTS ",\"key\":\"k\"}");
    assert_int_equal(lp_jconn_load(&c, p, why, sizeof(why)), 0);
    unlink(p);
    assert_string_equal(c.endpoint[LP_JCH_CONTROL], "tcp://[::1]:5004");
    assert_true(lp_jconn_ipv6(&c));
    lp_jconn_clear(&c);

    assert_string_equal(lp_jconn_channel_name(LP_JCH_SHELL), "shell");
    assert_string_equal(lp_jconn_channel_name(LP_JCH_IOPUB), "iopub");
    assert_string_equal(lp_jconn_channel_name(LP_JCH_HB), "hb");
}

static void conn_bad(void **state)
{
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"{\"transport\":\"udp\",\"ip\":\"127.0.0.1\"," PORTS ",\"key\":\"k\"}",
         "transport: 'udp' is neither"},
        {"{\"ip\":\"127.0.0.1\"," PORTS ",\"key\":\"k\"}", "transport: missing"},
        {"{\"transport\":\"tcp\"," PORTS ",\"key\":\"k\"}", "ip: missing"},
        {"{\"transport\":\"tcp\",\"ip\":\"\"," PORTS ",\"key\":\"k\"}", "ip: '' is not"},
        {"{\"transport\":\"tcp\",\"ip\":\"127.0.0.1\",\"shell_port\":5001,\"iopub_port\":5002,"
         "\"stdin_port\":5003,\"control_port\":5004,\"key\":\"k\"}", "hb_port: missing"},
        {"{\"transport\":\"tcp\",\"ip\":\"127.0.0.1\",\"shell_port\":0,\"iopub_port\":5002,"
         "\"stdin_port\":5003,\"control_port\":5004,\"hb_port\":5005,\"key\":\"k\"}",
         "shell_port: 0 is not a port"},
        {"{\"transport\":\"tcp\",\"ip\":\"127.0.0.1\",\"shell_port\":5001,\"iopub_port\":65536,"
         "\"stdin_port\":5003,\"control_port\":5004,\"hb_port\":5005,\"key\":\"k\"}",
         "iopub_port: 65536 is not a port"},
        {"{\"transport\":\"tcp\",\"ip\":\"127.0.0.1\",\"shell_port\":\"5001\",\"iopub_port\":5002,"
         "\"stdin_port\":5003,\"control_port\":5004,\"hb_port\":5005,\"key\":\"k\"}",
         "shell_port: missing or not an integer"},
        {"{\"transport\":\"tcp\",\"ip\":\"127.0.0.1\"," PORTS "}", "key: missing"},
        {"{\"transport\":\"tcp\",\"ip\":\"127.0.0.1\"," PORTS ",\"key\":null}", "key: missing"},
        {"{\"transport\":\"tcp\",\"ip\":\"127.0.0.1\"," PORTS ",\"key\":\"k\","
         "\"signature_scheme\":\"hmac-md5\"}",
         "signature_scheme: only hmac-sha256 is supported, not 'hmac-md5'"},
        {"{\"transport\":\"tcp\",\"ip\":\"127.0.0.1\"," PORTS ",\"key\":\"k\","
         "\"signature_scheme\":1}", "signature_scheme: missing or not a string"},
        {"{\"transport\":\"tcp\",\"ip\":\"127.0.0.1\"," PORTS ",\"key\":\"k\",\"kernel_name\":3}",
         "kernel_name: missing or not a string"},
        {"{\"transport\":\"tcp\",\"ip\":\"127.0.0.1\"," PORTS ",\"key\":\"a\",\"key\":\"b\"}",
         "duplicate"},
        {"[]", "not a JSON object"},
        {"{\"transport\":", "line 1"},
    };
    lp_jconn_t c;
    char why[256];

    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        const char *p = conn_file(bad[k].text);

        why[0] = '\0';
        assert_int_equal(lp_jconn_load(&c, p, why, sizeof(why)), -1);
        unlink(p);
        if (strstr(why, bad[k].why) == NULL)
            fail_msg("case %zu: '%s', not '%s'", k, why, bad[k].why);
        assert_null(strchr(why, '\n'));
        assert_null(c.key);
    }
    assert_int_equal(lp_jconn_load(&c, "/nonexistent/conn.json", why, sizeof(why)), -1);
    assert_non_null(strstr(why, "/nonexistent/conn.json"));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vectors_decode), cmocka_unit_test(identities),
        cmocka_unit_test(framing),        cmocka_unit_test(part_too_large),
        cmocka_unit_test(bad_signature),  cmocka_unit_test(empty_key),
        cmocka_unit_test(replay),         cmocka_unit_test(replay_eviction),
        cmocka_unit_test(replay_model),   cmocka_unit_test(header_checks),
        cmocka_unit_test(json_checks),    cmocka_unit_test(round_trip),
        cmocka_unit_test(conn_good),      cmocka_unit_test(conn_bad),
        cmocka_unit_test(jupyter_client_reads_ours),
    };
    char path[4096];
    json_error_t err;
    int failed;

    if (argc < 2) {
        fprintf(stderr, "usage: test_jupyter_codec VECTOR_DIR\n");
        return 2;
    }
    vector_dir = argv[1];
    snprintf(path, sizeof(path), "%s/jupyter_sign.json", vector_dir);
    if ((vectors = json_load_file(path, 0, &err)) == NULL) {
        fprintf(stderr, "%s: %s\n", path, err.text);
        return 2;
    }
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    json_decref(vectors);
    return failed;
}
