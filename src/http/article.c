/* article.c: the four form endpoints of the "IPython-like server" article
 * (Clay McLeod, 2016), with the shapes of its Flask code, so that its
 * clients work with the token added: POST /env/create, /env/delete and
 * /env/get with id=, and POST / with id= and code=. Their bodies are forms
 * (urlencoded or multipart, as Flask's request.form reads both), read by
 * libmicrohttpd's post processor. And GET /, the console page. */
#include "http/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/console_html.h"

#define FIELD_MAX ((size_t)1 << 20)

typedef struct form {
    char *id, *code;
    size_t id_len, code_len;
    bool failed;
} form_t;

static void append(form_t *f, char **dst, size_t *len, const char *data, size_t size)
{
    char *b;

    if (f->failed || size > FIELD_MAX - *len || (b = realloc(*dst, *len + size + 1)) == NULL) {
        f->failed = true;
        return;
    }
    memcpy(b + *len, data, size);
    *len += size;
    b[*len] = '\0';
    *dst = b;
}

static enum MHD_Result field(void *cls, enum MHD_ValueKind kind, const char *key,
                             const char *filename, const char *content_type,
                             const char *transfer_encoding, const char *data, uint64_t off,
                             size_t size)
{
    form_t *f = cls;

    if (strcmp(key, "id") == 0)
        append(f, &f->id, &f->id_len, data, size);
    else if (strcmp(key, "code") == 0)
        append(f, &f->code, &f->code_len, data, size);
    return f->failed ? MHD_NO : MHD_YES;
}

/* Reads the form; 0, or -1 having answered. */
static int read_form(lp_http_req_t *rq, struct MHD_Connection *c, form_t *f, enum MHD_Result *ret)
{
    struct MHD_PostProcessor *pp = MHD_create_post_processor(c, 65536, field, f);
    bool ok;

    if (pp == NULL) {
        *ret = lp_http_reply_json(rq, c, MHD_HTTP_BAD_REQUEST,
                                  json_pack("{ss}", "error", "a form is needed "
                                            "(application/x-www-form-urlencoded or "
                                            "multipart/form-data)"));
        return -1;
    }
    ok = MHD_post_process(pp, rq->body != NULL ? rq->body : "", rq->len) == MHD_YES;
    ok = MHD_destroy_post_processor(pp) == MHD_YES && ok;
    if (!ok || f->failed || f->id == NULL) {
        *ret = lp_http_reply_json(rq, c, MHD_HTTP_BAD_REQUEST,
                                  json_pack("{ss}", "error", "the form needs id=..."));
        return -1;
    }
    snprintf(rq->env, sizeof(rq->env), "%s", f->id);
    return 0;
}

/* {"envs": [names...]}, the article's answer to create and delete. */
static enum MHD_Result envs(lp_http_req_t *rq, struct MHD_Connection *c)
{
    json_t *list = lp_serve_env_list(rq->h->sv), *names = json_array(), *e;
    size_t i;

    json_array_foreach(list, i, e)
        json_array_append(names, json_object_get(e, "name"));
    json_decref(list);
    return lp_http_reply_json(rq, c, MHD_HTTP_OK, json_pack("{so}", "envs", names));
}

static enum MHD_Result create(lp_http_req_t *rq, struct MHD_Connection *c, const char *id)
{
    char msg[LP_SERVE_MSG_MAX] = "";
    int rc = lp_serve_env_create(rq->h->sv, id, NULL, NULL, NULL, NULL, msg);

    if (rc != 0 && rc != -EEXIST) /* the article's create keeps one that exists */
        return lp_http_reply_json(rq, c, rc == LP_WIRE_EFIELD ? MHD_HTTP_BAD_REQUEST
                                                             : MHD_HTTP_BAD_GATEWAY,
                                  json_pack("{ss}", "error", msg[0] != '\0' ? msg : "not created"));
    return envs(rq, c);
}

static enum MHD_Result getenv_names(lp_http_req_t *rq, struct MHD_Connection *c, const char *id)
{
    int err = 0;
    json_t *info = lp_serve_env_info(rq->h->sv, id, true, &err), *names, *n;
    size_t i;

    if (info == NULL)
        return lp_http_reply_json(rq, c, err == -EPIPE ? MHD_HTTP_GONE : MHD_HTTP_NOT_FOUND,
                                  json_pack("{ss}", "error", err == -EPIPE
                                                ? "Environment is dead: restart it"
                                                : "Environment does not exist!"));
    names = json_array();
    json_array_foreach(json_object_get(info, "names"), i, n)
        json_array_append(names, json_object_get(n, "name"));
    json_decref(info);
    return lp_http_reply_json(rq, c, MHD_HTTP_OK, json_pack("{so}", "env", names));
}

/* The article's kernel(): {"message": output} or {"error": output and
 * traceback}. Here a final expression's value is shown too, as the REPL
 * would print it. */
static enum MHD_Result kernel_done(lp_http_req_t *rq, struct MHD_Connection *c, lp_run_t *r,
                                   bool ended)
{
    json_t *ans, *out, *text;
    const char *value, *tb, *tail;
    bool ok;
    enum MHD_Result ret;

    if (!ended)
        return lp_http_reply_json(rq, c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                  json_pack("{ss}", "error", "the server is stopping"));
    rq->outcome = lp_run_status_name(lp_run_status(r));
    ans = lp_run_json(r, 0);
    if (ans == NULL)
        return MHD_NO;
    out = json_object_get(ans, "stdout");
    value = json_string_value(json_object_get(ans, "value"));
    tb = json_string_value(json_object_get(json_object_get(ans, "error"), "traceback"));
    ok = strcmp(rq->outcome, "ok") == 0;
    /* message: what it printed, then its value as the REPL shows it;
     * error: what it printed, then the traceback (or how it ended). */
    text = json_pack("{ss%}", ok ? "message" : "error", json_string_value(out),
                     json_string_length(out));
    tail = ok ? value : tb != NULL ? tb : rq->outcome;
    if (text != NULL && tail != NULL) {
        json_t *t = json_object_get(text, ok ? "message" : "error");
        size_t n = json_string_length(t), m = strlen(tail);
        char *buf = malloc(n + m + 2);

        if (buf != NULL) {
            memcpy(buf, json_string_value(t), n);
            memcpy(buf + n, tail, m);
            memcpy(buf + n + m, "\n", 2);
            json_string_setn(t, buf, n + m + (ok || tb == NULL ? 1 : 0));
            free(buf);
        }
    }
    ret = lp_http_reply_json(rq, c, MHD_HTTP_OK, text);
    json_decref(ans);
    return ret;
}

static enum MHD_Result kernel(lp_http_req_t *rq, struct MHD_Connection *c, const form_t *f)
{
    lp_run_req_t req = {.code = f->code != NULL ? f->code : "", .len = f->code_len,
                        .mode = LP_RUN_CELL, .who = rq->h->who};
    char msg[LP_SERVE_MSG_MAX] = "";
    lp_run_t *r = NULL;
    int rc = lp_serve_submit(rq->h->sv, f->id, &req, &r, msg);

    if (rc == -ENOENT)
        return lp_http_reply_json(rq, c, MHD_HTTP_NOT_FOUND,
                                  json_pack("{ss}", "error", "Kernel does not exist!"));
    if (rc != 0)
        return lp_http_reply_serve(rq, c, rc, f->id, msg);
    rq->run = lp_run_id(r);
    return lp_http_wait(rq, c, r, kernel_done);
}

enum MHD_Result lp_http_article(lp_http_req_t *rq, struct MHD_Connection *c,
                                const lp_http_route_t *rt)
{
    form_t f = {0};
    enum MHD_Result ret = MHD_NO;

    if (read_form(rq, c, &f, &ret) != 0)
        goto out;
    switch (rt->what) {
    case LP_HTTP_ARTICLE_CREATE:
        ret = create(rq, c, f.id);
        break;
    case LP_HTTP_ARTICLE_DELETE:
        lp_serve_env_delete(rq->h->sv, f.id); /* the article's delete: gone, or was not there */
        ret = envs(rq, c);
        break;
    case LP_HTTP_ARTICLE_GET:
        ret = getenv_names(rq, c, f.id);
        break;
    default:
        ret = kernel(rq, c, &f);
        break;
    }
out:
    free(f.id);
    free(f.code);
    return ret;
}

enum MHD_Result lp_http_console(lp_http_req_t *rq, struct MHD_Connection *c)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        lp_console_html_len, (void *)lp_console_html, MHD_RESPMEM_PERSISTENT);

    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
    /* The page is opened with ?token=: no Referer may carry it away, no
     * frame may hold the page, nothing but its own script (by its hash,
     * gen_console.py) may run. No cache: the page a binary serves is its own. */
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Content-Security-Policy", lp_console_csp);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return lp_http_reply(rq, c, rq->page_refused ? MHD_HTTP_UNAUTHORIZED : MHD_HTTP_OK, r);
}
