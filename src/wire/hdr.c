/* hdr.c: the one header builder (hdr.h). */
#include "hdr.h"

#include <string.h>

#include "frame.h"

/* Appends n bytes, or records that they did not fit. */
static void put(lp_hdr_t *h, const char *s, size_t n)
{
    if (h->err != 0)
        return;
    if (n > h->cap - h->len) {
        h->err = LP_WIRE_ETOOLARGE;
        return;
    }
    memcpy(h->buf + h->len, s, n);
    h->len += n;
}

/* ,"key": */
static void key(lp_hdr_t *h, const char *k)
{
    put(h, ",\"", 2);
    put(h, k, strlen(k));
    put(h, "\":", 2);
}

void lp_hdr_begin(lp_hdr_t *h, char *buf, size_t cap, const char *op)
{
    h->buf = buf;
    h->cap = cap;
    h->len = 0;
    h->err = 0;
    put(h, "{\"op\":\"", 7);
    put(h, op, strlen(op));
    put(h, "\"", 1);
}

void lp_hdr_int(lp_hdr_t *h, const char *k, int64_t v)
{
    /* by hand: snprintf cost ten times more, on every reply's "re" */
    char num[24], *p = num + sizeof(num);
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        *--p = '-';
    key(h, k);
    put(h, p, (size_t)(num + sizeof(num) - p));
}

void lp_hdr_str(lp_hdr_t *h, const char *k, const char *v)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(v), run = 0;

    if (h->err == 0 && lp_utf8_check_text((const uint8_t *)v, n) != 0)
        h->err = LP_WIRE_ETEXT;
    key(h, k);
    put(h, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

        if (c >= 0x20 && c != '"' && c != '\\')
            continue; /* most strings: copied in runs, below */
        put(h, v + run, i - run);
        run = i + 1;
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
            put(h, esc, 2);
        } else if (c == '\n') {
            put(h, "\\n", 2);
        } else {
            put(h, esc, sizeof(esc));
        }
    }
    put(h, v + run, n - run);
    put(h, "\"", 1);
}

void lp_hdr_bool(lp_hdr_t *h, const char *k, bool v)
{
    key(h, k);
    put(h, v ? "true" : "false", v ? 4 : 5);
}

void lp_hdr_json(lp_hdr_t *h, const char *k, const json_t *v)
{
    size_t n;

    if (lp_header_check_value(v) != 0) {
        h->err = h->err != 0 ? h->err : LP_WIRE_EHEADER;
        return;
    }
    key(h, k);
    if (h->err != 0)
        return;
    n = json_dumpb(v, h->buf + h->len, h->cap - h->len, JSON_COMPACT | JSON_ENCODE_ANY);
    if (n == 0)
        h->err = LP_WIRE_EHEADER;
    else if (n > h->cap - h->len)
        h->err = LP_WIRE_ETOOLARGE;
    else
        h->len += n;
}

int lp_hdr_end(lp_hdr_t *h, size_t *len)
{
    put(h, "}", 1);
    if (h->err == 0)
        *len = h->len;
    return h->err;
}
