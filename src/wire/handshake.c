/* handshake.c: both sides of the handshake (handshake.h). */
#include "handshake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hdr.h"
#include "msg.h"
#include "ops.h"

/* The server's limits for what the client sends before the handshake, and
 * the client's for the server's reply (whose header carries argv). */
static const lp_limits_t hello_limits = LP_LIMITS_HELLO;
static const lp_limits_t reply_limits = {LP_WIRE_HEADER_MAX, 0};

/* Copies the string field key of h into dst[size], "" when absent. */
static void copy_str(const json_t *h, const char *key, char *dst, size_t size)
{
    const char *s = json_string_value(json_object_get(h, key));

    snprintf(dst, size, "%s", s != NULL ? s : "");
}

/* The highest version in the checked array that we speak, or 0. */
static uint32_t choose_version(const json_t *versions)
{
    const json_t *v;
    size_t i;
    uint32_t best = 0;

    json_array_foreach(versions, i, v) {
        if (json_integer_value(v) == LP_WIRE_VERSION)
            best = LP_WIRE_VERSION;
    }
    return best;
}

/* Fills hello (whose id is already set) from a frame that lp_msg_check
 * accepted as a hello. */
static int hello_from(const json_t *h, lp_hello_t *hello)
{
    const json_t *mp = json_object_get(h, "max_payload"), *cap;
    size_t i;

    hello->version = choose_version(json_object_get(h, "protocol"));
    hello->max_payload = mp != NULL ? (uint32_t)json_integer_value(mp) : LP_WIRE_PAYLOAD_DEFAULT;
    hello->want_session = json_is_true(json_object_get(h, "session"));
    json_array_foreach(json_object_get(h, "caps"), i, cap)
        hello->caps |= lp_cap_bit(json_string_value(cap));
    copy_str(h, "client", hello->client, sizeof(hello->client));
    copy_str(h, "token", hello->token, sizeof(hello->token));
    return hello->version == 0 ? LP_WIRE_EVERSION : 0;
}

int lp_hs_server_read(lp_hs_t *hs, lp_buf_t *in, lp_hello_t *hello, const char **bad_field)
{
    const lp_op_spec_t *spec;
    const json_t *op;
    lp_frame_t f = {0};
    int r;

    *bad_field = NULL;
    memset(hello, 0, sizeof(*hello));
    hello->id = -1;
    if (!hs->preamble_seen) {
        if ((r = lp_preamble_decode(in)) != 0)
            return r;
        hs->preamble_seen = true;
    }
    if ((r = lp_frame_decode(in, &hello_limits, &f)) != 0)
        return r;
    op = json_object_get(f.header, "op");
    if (!json_is_string(op) || strcmp(json_string_value(op), "hello") != 0) {
        r = LP_WIRE_EHANDSHAKE;
        goto out;
    }
    if (lp_msg_get_id(f.header, "id", &hello->id) != 0)
        hello->id = -1;
    if ((r = lp_msg_check(f.header, f.payload, f.payload_len, LP_DIR_C2S, 0, &spec,
                          bad_field)) == 0)
        r = hello_from(f.header, hello);
out:
    lp_frame_clear(&f);
    return r;
}

/* Appends our preamble and the frame of header h (ended here) within lim,
 * or nothing at all. */
static int send_first(lp_buf_t *out, lp_hdr_t *h, const lp_limits_t *lim)
{
    size_t before = lp_buf_len(out), hlen;
    int r;

    if ((r = lp_hdr_end(h, &hlen)) == 0 && (r = lp_preamble_encode(out)) == 0 &&
        (r = lp_frame_put(out, h->buf, hlen, NULL, 0, lim)) != 0)
        lp_buf_truncate(out, before);
    return r;
}

/* A JSON array of the NULL-terminated strings names; NULL on ENOMEM. */
static json_t *str_array(const char *const *names)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && names != NULL && names[i] != NULL; i++) {
        if (json_array_append_new(a, json_string(names[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* Adds key = v (consumed; NULL: out of memory) to h. */
static void put_json(lp_hdr_t *h, const char *key, json_t *v)
{
    if (v == NULL && h->err == 0)
        h->err = LP_WIRE_ENOMEM;
    if (v != NULL)
        lp_hdr_json(h, key, v);
    json_decref(v);
}

int lp_hs_server_accept(lp_buf_t *out, const lp_hello_t *hello, json_t *server,
                        const char *const *caps, uint32_t max_payload, const char *session)
{
    char *buf;
    lp_hdr_t h;
    int r;

    if (!json_is_object(server) || hello->id < 0)
        return LP_WIRE_EINVAL;
    if ((buf = malloc(reply_limits.header_max)) == NULL) /* the identity holds the argv */
        return LP_WIRE_ENOMEM;
    lp_hdr_begin(&h, buf, reply_limits.header_max, "done");
    lp_hdr_int(&h, "re", hello->id);
    lp_hdr_str(&h, "status", "ok");
    lp_hdr_int(&h, "protocol", hello->version);
    lp_hdr_json(&h, "server", server);
    put_json(&h, "caps", str_array(caps));
    lp_hdr_int(&h, "max_payload", max_payload);
    if (session != NULL)
        lp_hdr_str(&h, "session", session);
    r = send_first(out, &h, &reply_limits);
    free(buf);
    return r;
}

int lp_hs_server_refuse(lp_buf_t *out, int err, const lp_hello_t *hello, const char *message,
                        const char *field)
{
    const int64_t *re = hello != NULL && hello->id >= 0 ? &hello->id : NULL;
    size_t before = lp_buf_len(out);
    int r;

    if (lp_wire_err_code(err) == NULL)
        return LP_WIRE_EINVAL;
    if ((r = lp_preamble_encode(out)) == 0 &&
        (r = lp_msg_error_encode(out, err, re, message, field, &reply_limits)) != 0)
        lp_buf_truncate(out, before);
    return r;
}

int lp_hs_client_hello(lp_buf_t *out, const char *client, uint32_t max_payload,
                       const char *token, bool want_session, unsigned caps)
{
    char buf[LP_WIRE_HELLO_HEADER_MAX];
    lp_hdr_t h;

    if (client == NULL)
        return LP_WIRE_EINVAL;
    lp_hdr_begin(&h, buf, sizeof(buf), "hello");
    lp_hdr_int(&h, "id", 0);
    put_json(&h, "protocol", json_pack("[i]", LP_WIRE_VERSION));
    lp_hdr_str(&h, "client", client);
    lp_hdr_int(&h, "max_payload", max_payload ? max_payload : LP_WIRE_PAYLOAD_DEFAULT);
    if (token != NULL)
        lp_hdr_str(&h, "token", token);
    if (want_session)
        lp_hdr_bool(&h, "session", true);
    if (caps != 0)
        put_json(&h, "caps", lp_cap_names(caps));
    return send_first(out, &h, &hello_limits);
}
/* Client: consumes text before the server's preamble (a server that took
 * us for a person), at most LP_WIRE_TEXT_SKIP_MAX bytes. */
static int skip_text(lp_hs_t *hs, lp_buf_t *in)
{
    const uint8_t *p = lp_buf_data(in);
    size_t n = lp_buf_len(in), i = 0;

    while (i < n && p[i] != 0)
        i++;
    if (i > LP_WIRE_TEXT_SKIP_MAX || hs->skipped > LP_WIRE_TEXT_SKIP_MAX - i)
        return LP_WIRE_EPREAMBLE;
    hs->skipped += i;
    lp_buf_consume(in, i);
    return 0;
}

/* Fills w from an error frame's header: returns the server's code. */
static int refusal(const json_t *h, lp_welcome_t *w)
{
    int err;

    copy_str(h, "code", w->code, sizeof(w->code));
    copy_str(h, "message", w->message, sizeof(w->message));
    err = lp_wire_err_from_code(w->code);
    return err != 0 ? err : LP_WIRE_EINTERNAL;
}

/* Fills w from a done frame that accepted our hello. */
static int welcome_from(const json_t *h, lp_welcome_t *w)
{
    const json_t *ver = json_object_get(h, "protocol");
    const json_t *mp = json_object_get(h, "max_payload");
    const json_t *server = json_object_get(h, "server");
    const json_t *caps = json_object_get(h, "caps");
    const json_t *sess = json_object_get(h, "session");

    if (json_integer_value(ver) != LP_WIRE_VERSION || !json_is_object(server) ||
        !json_is_array(caps) || !json_is_integer(mp) ||
        json_integer_value(mp) < LP_WIRE_PAYLOAD_MIN ||
        json_integer_value(mp) > LP_WIRE_PAYLOAD_CEILING ||
        (sess != NULL && (!json_is_string(sess) || json_string_length(sess) == 0 ||
                          json_string_length(sess) > LP_WIRE_SESSION_ID_MAX)))
        return LP_WIRE_EFIELD;
    w->version = LP_WIRE_VERSION;
    w->max_payload = (uint32_t)json_integer_value(mp);
    w->server = json_incref((json_t *)server);
    w->caps = json_incref((json_t *)caps);
    copy_str(h, "session", w->session, sizeof(w->session));
    return 0;
}

int lp_hs_client_read(lp_hs_t *hs, lp_buf_t *in, lp_welcome_t *w)
{
    const lp_op_spec_t *spec;
    const char *bad;
    lp_frame_t f = {0};
    int64_t re;
    int r;

    memset(w, 0, sizeof(*w));
    if (!hs->preamble_seen) {
        if ((r = skip_text(hs, in)) != 0 || (r = lp_preamble_decode(in)) != 0)
            return r;
        hs->preamble_seen = true;
    }
    if ((r = lp_frame_decode(in, &reply_limits, &f)) != 0)
        return r;
    if ((r = lp_msg_check(f.header, f.payload, f.payload_len, LP_DIR_S2C, 0, &spec, &bad)) != 0)
        r = LP_WIRE_EFIELD;
    else if (spec->op == LP_OP_ERROR)
        r = refusal(f.header, w);
    else if (spec->op != LP_OP_DONE || lp_msg_get_id(f.header, "re", &re) != 0 || re != 0)
        r = LP_WIRE_EFIELD;
    else
        r = welcome_from(f.header, w);
    lp_frame_clear(&f);
    return r;
}

void lp_welcome_clear(lp_welcome_t *w)
{
    if (w == NULL)
        return;
    json_decref(w->server);
    json_decref(w->caps);
    memset(w, 0, sizeof(*w));
}
