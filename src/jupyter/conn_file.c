/* conn_file.c: the connection file (`-f FILE`) a front end writes for its
 * kernel, as jupyter_client's connect.py writes it. */
#include "jupyter/conn_file.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static const char *const names[LP_JCH__COUNT] = {"shell", "control", "stdin", "iopub", "hb"};

const char *lp_jconn_channel_name(int ch)
{
    return ch >= 0 && ch < LP_JCH__COUNT ? names[ch] : "?";
}

__attribute__((format(printf, 3, 4))) static int fail(char *why, size_t size, const char *fmt,
                                                       ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
    return -1;
}

/* A string field, or NULL with why set (missing or another type). */
static const char *string_field(json_t *root, const char *key, char *why, size_t size)
{
    const char *s = json_string_value(json_object_get(root, key));

    if (s == NULL)
        fail(why, size, "%s: missing or not a string", key);
    return s;
}

/* The endpoints: tcp://IP:PORT (IPv6 in brackets, as libzmq wants it, with
 * ZMQ_IPV6 set on the socket), or ipc://IP-PORT as jupyter_client. */
static int endpoints(lp_jconn_t *c, json_t *root, bool tcp, const char *ip, char *why, size_t size)
{
    for (int ch = 0; ch < LP_JCH__COUNT; ch++) {
        char key[32];
        json_t *v;
        json_int_t port;

        snprintf(key, sizeof(key), "%s_port", names[ch]);
        v = json_object_get(root, key);
        if (!json_is_integer(v))
            return fail(why, size, "%s: missing or not an integer", key);
        port = json_integer_value(v);
        if (tcp && (port < 1 || port > 65535))
            return fail(why, size, "%s: %lld is not a port (1 to 65535)", key, (long long)port);
        if (!tcp && (port < 0 || port > 1000000000))
            return fail(why, size, "%s: %lld is not an ipc suffix (0 or more)", key,
                        (long long)port);
        if (!tcp)
            snprintf(c->endpoint[ch], sizeof(c->endpoint[ch]), "ipc://%s-%lld", ip,
                     (long long)port);
        else if (strchr(ip, ':') != NULL)
            snprintf(c->endpoint[ch], sizeof(c->endpoint[ch]), "tcp://[%s]:%lld", ip,
                     (long long)port);
        else
            snprintf(c->endpoint[ch], sizeof(c->endpoint[ch]), "tcp://%s:%lld", ip, (long long)port);
    }
    return 0;
}

static int load(lp_jconn_t *c, json_t *root, char *why, size_t size)
{
    const char *transport, *ip, *key, *scheme = "hmac-sha256", *name = "";
    json_t *v;
    bool tcp;

    if (!json_is_object(root))
        return fail(why, size, "not a JSON object");
    if ((transport = string_field(root, "transport", why, size)) == NULL)
        return -1;
    tcp = strcmp(transport, "tcp") == 0;
    if (!tcp && strcmp(transport, "ipc") != 0)
        return fail(why, size, "transport: '%.64s' is neither 'tcp' nor 'ipc'", transport);
    if ((ip = string_field(root, "ip", why, size)) == NULL)
        return -1;
    /* room for the scheme, brackets and port in an endpoint */
    if (ip[0] == '\0' || strlen(ip) > 255 || strpbrk(ip, " \t\r\n[]") != NULL)
        return fail(why, size, "ip: '%.64s' is not an address (or a path for ipc)", ip);
    if (endpoints(c, root, tcp, ip, why, size) != 0)
        return -1;
    /* absent: jupyter_client's Session default, which is the one we have */
    if ((v = json_object_get(root, "signature_scheme")) != NULL &&
        (scheme = string_field(root, "signature_scheme", why, size)) == NULL)
        return -1;
    if (strcmp(scheme, "hmac-sha256") != 0)
        return fail(why, size, "signature_scheme: only hmac-sha256 is supported, not '%.64s'",
                    scheme);
    if ((key = string_field(root, "key", why, size)) == NULL)
        return -1;
    if ((v = json_object_get(root, "kernel_name")) != NULL && !json_is_null(v) &&
        (name = string_field(root, "kernel_name", why, size)) == NULL)
        return -1;
    if (strlen(name) >= sizeof(c->kernel_name))
        return fail(why, size, "kernel_name: longer than %zu bytes", sizeof(c->kernel_name) - 1);
    strcpy(c->kernel_name, name);
    c->key_len = json_string_length(json_object_get(root, "key"));
    if ((c->key = malloc(c->key_len + 1)) == NULL)
        return fail(why, size, "key: out of memory");
    memcpy(c->key, key, c->key_len + 1);
    return 0;
}

int lp_jconn_load(lp_jconn_t *c, const char *path, char *why, size_t size)
{
    json_error_t err;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    int rc;

    memset(c, 0, sizeof(*c));
    if (root == NULL) {
        if (err.line > 0)
            return fail(why, size, "%s: line %d: %s", path, err.line, err.text);
        return fail(why, size, "%s: %s", path, err.text);
    }
    rc = load(c, root, why, size);
    json_decref(root);
    if (rc != 0)
        lp_jconn_clear(c);
    return rc;
}

void lp_jconn_clear(lp_jconn_t *c)
{
    free(c->key);
    memset(c, 0, sizeof(*c));
}

bool lp_jconn_ipv6(const lp_jconn_t *c)
{
    return strncmp(c->endpoint[LP_JCH_SHELL], "tcp://[", 7) == 0;
}
