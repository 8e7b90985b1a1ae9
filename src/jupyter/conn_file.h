/* conn_file.h: the connection file a Jupyter front end hands a kernel
 * (`-f FILE`): transport, ip, the five ports, the key and its scheme. */
#ifndef LP_JUPYTER_CONN_FILE_H
#define LP_JUPYTER_CONN_FILE_H

#include <stdbool.h>
#include <stddef.h>

enum { LP_JCH_SHELL, LP_JCH_CONTROL, LP_JCH_STDIN, LP_JCH_IOPUB, LP_JCH_HB, LP_JCH__COUNT };

typedef struct lp_jconn {
    char endpoint[LP_JCH__COUNT][300]; /* "tcp://127.0.0.1:5555", "ipc:///path-1" */
    unsigned char *key;                /* malloc'd, may be empty */
    size_t key_len;
    char kernel_name[128];             /* may be "" */
} lp_jconn_t;

/* The channel's name in the connection file ("shell_port" is "shell"). */
const char *lp_jconn_channel_name(int ch);

/* Reads and checks path into *c: 0, or -1 with a one-line reason in
 * why[size] naming the field ("signature_scheme: only hmac-sha256 is
 * supported, not 'hmac-md5'"). The caller clears c. */
int lp_jconn_load(lp_jconn_t *c, const char *path, char *why, size_t size);
void lp_jconn_clear(lp_jconn_t *c);
/* True when the endpoints are tcp://[IPv6]:PORT: libzmq then needs
 * ZMQ_IPV6 set on each socket before bind ("No such device" otherwise). */
bool lp_jconn_ipv6(const lp_jconn_t *c);

#endif
