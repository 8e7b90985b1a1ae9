/* codec.c: Jupyter multipart messages <-> lp_jmsg_t (docs/jupyter.md
 * section 4). Limits first, then the signature, then replay, and only then
 * the JSON: an unsigned stranger reaches no parser. */
#include "jupyter/codec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

void lp_jmsg_clear(lp_jmsg_t *m)
{
    json_decref(m->header);
    json_decref(m->parent);
    json_decref(m->metadata);
    json_decref(m->content);
    memset(m, 0, sizeof(*m));
}

/* Splits off the identities and checks the framing limits: the index of
 * the delimiter, or -1 with *why. */
static long split(lp_jmsg_t *m, const lp_jpart_t *parts, size_t n, lp_jwhy_t *why)
{
    size_t d = 0, dlen = sizeof(LP_JMSG_DELIM) - 1;

    while (d < n && !(parts[d].len == dlen && memcmp(parts[d].data, LP_JMSG_DELIM, dlen) == 0)) {
        if (d == LP_JMSG_IDS_MAX) {
            *why = "more than 16 identities, or no delimiter";
            return -1;
        }
        if (parts[d].len > LP_JMSG_ID_LEN_MAX) {
            *why = "an identity longer than 255 bytes";
            return -1;
        }
        m->ids[d] = parts[d];
        d++;
    }
    if (d == n) {
        *why = "no <IDS|MSG> delimiter";
        return -1;
    }
    m->n_ids = d;
    if (n - d < 6) {
        *why = "fewer than the signature and four JSON parts";
        return -1;
    }
    if (n - d - 6 > LP_JMSG_BUFFERS_MAX) {
        *why = "more than 16 buffers";
        return -1;
    }
    for (size_t i = d + 2; i < d + 6; i++)
        if (parts[i].len > LP_JMSG_PART_MAX) {
            *why = "a JSON part larger than 16 MiB";
            return -1;
        }
    return (long)d;
}

/* One JSON part, which must be an object. Without JSON_ALLOW_NUL jansson
 * refuses "\u0000" in a string; it also refuses invalid UTF-8. */
static json_t *parse_object(const lp_jpart_t *p, lp_jwhy_t *why, lp_jwhy_t what)
{
    json_error_t err;
    json_t *v = json_loadb((const char *)p->data, p->len, JSON_REJECT_DUPLICATES, &err);

    if (v == NULL || !json_is_object(v)) {
        json_decref(v);
        *why = what;
        return NULL;
    }
    return v;
}

/* A string field of the header, or NULL. */
static const char *field(json_t *header, const char *key)
{
    return json_string_value(json_object_get(header, key));
}

/* "5." and digits: every 5.x client; a 4.x message has another shape. */
static bool version_ok(const char *v)
{
    if (v == NULL || strncmp(v, "5.", 2) != 0 || v[2] == '\0')
        return false;
    for (v += 2; *v != '\0'; v++)
        if (*v < '0' || *v > '9')
            return false;
    return true;
}

static int check_header(lp_jmsg_t *m, lp_jwhy_t *why)
{
    m->msg_id = field(m->header, "msg_id");
    m->msg_type = field(m->header, "msg_type");
    m->session = field(m->header, "session");
    m->username = field(m->header, "username");
    if (m->msg_id == NULL || m->msg_type == NULL || m->session == NULL || m->username == NULL) {
        *why = "header: msg_id, msg_type, session and username must be strings";
        return -1;
    }
    if (!version_ok(field(m->header, "version"))) {
        *why = "header: version must be a string \"5.x\"";
        return -1;
    }
    return 0;
}

int lp_jmsg_decode(lp_jmsg_t *m, const lp_jpart_t *parts, size_t n, lp_jsign_t *sign,
                   lp_jreplay_t *replay, lp_jwhy_t *why)
{
    const lp_jpart_t *json;
    long d;

    memset(m, 0, sizeof(*m));
    if ((d = split(m, parts, n, why)) < 0)
        goto fail;
    json = parts + d + 2;
    if (lp_jsign_verify(sign, &parts[d + 1], json, m->digest) != 0) {
        *why = "bad signature";
        goto fail;
    }
    /* signing off: every digest is zero, there is nothing to remember */
    if (replay != NULL && lp_jsign_enabled(sign) && lp_jreplay_check_add(replay, m->digest)) {
        *why = "replayed message (its signature was seen before)";
        goto fail;
    }
    if ((m->header = parse_object(&json[0], why, "header: not a JSON object")) == NULL ||
        (m->parent = parse_object(&json[1], why, "parent_header: not a JSON object")) == NULL ||
        (m->metadata = parse_object(&json[2], why, "metadata: not a JSON object")) == NULL ||
        (m->content = parse_object(&json[3], why, "content: not a JSON object")) == NULL ||
        check_header(m, why) != 0)
        goto fail;
    return 0;
fail:
    lp_jmsg_clear(m);
    return -1;
}

int lp_jenc_init(lp_jenc_t *enc, lp_jsign_t *sign)
{
    uint8_t seed[16];
    size_t got = 0;
    char hex[LP_JSIGN_HEX_LEN + 1];
    uint8_t wide[LP_JSIGN_DIGEST_LEN] = {0};

    while (got < sizeof(seed)) {
        ssize_t r = getrandom(seed + got, sizeof(seed) - got, 0);

        if (r < 0 && errno != EINTR)
            return -errno;
        if (r > 0)
            got += (size_t)r;
    }
    memcpy(wide, seed, sizeof(seed)); /* lp_jsign_hex's hex; the first 32 digits */
    lp_jsign_hex(wide, hex);
    memset(enc, 0, sizeof(*enc));
    enc->sign = sign;
    memcpy(enc->session, hex, 32);
    enc->session[32] = '\0';
    return 0;
}

void lp_jout_clear(lp_jout_t *out)
{
    for (int i = 0; i < 4; i++)
        free(out->part[i]);
    memset(out, 0, sizeof(*out));
}

/* UTC now as ISO 8601 with microseconds and 'Z', as jupyter_client writes. */
static void utc_now(char buf[40])
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(buf, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + strlen(buf), 40 - strlen(buf), ".%06ldZ", ts.tv_nsec / 1000);
}

static json_t *new_header(lp_jenc_t *enc, const char *msg_type)
{
    char id[64], date[40];

    snprintf(id, sizeof(id), "%s_%" PRIu64, enc->session, ++enc->counter);
    utc_now(date);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "msg_id", id, "session", enc->session,
                     "username", "limpet", "date", date, "msg_type", msg_type, "version",
                     LP_JMSG_VERSION);
}

int lp_jmsg_encode(lp_jenc_t *enc, const char *msg_type, const json_t *parent, json_t *metadata,
                   json_t *content, lp_jout_t *out)
{
    json_t *header = new_header(enc, msg_type);
    const json_t *obj[4] = {header, parent, metadata, content};
    lp_jpart_t parts[4];
    uint8_t digest[LP_JSIGN_DIGEST_LEN];
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (header == NULL) {
        errno = ENOMEM;
        goto done;
    }
    for (int i = 0; i < 4; i++) {
        if (obj[i] != NULL && !json_is_object(obj[i])) {
            errno = EINVAL;
            goto done;
        }
        out->part[i] = obj[i] != NULL ? json_dumps(obj[i], JSON_COMPACT) : strdup("{}");
        if (out->part[i] == NULL) {
            errno = obj[i] != NULL ? EINVAL : ENOMEM; /* not encodable, or strdup */
            goto done;
        }
        out->len[i] = strlen(out->part[i]);
        parts[i] = (lp_jpart_t){(const uint8_t *)out->part[i], out->len[i]};
    }
    if (lp_jsign_enabled(enc->sign)) {
        if (lp_jsign_digest(enc->sign, parts, digest) != 0) {
            errno = ENOMEM;
            goto done;
        }
        lp_jsign_hex(digest, out->sig);
    }
    rc = 0;
done:
    if (rc != 0)
        lp_jout_clear(out);
    json_decref(header);
    json_decref(metadata);
    json_decref(content);
    return rc;
}
