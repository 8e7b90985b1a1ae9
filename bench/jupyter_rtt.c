/* jupyter_rtt.c: the minimal raw Jupyter client, in C, so that a kernel's
 * own cost shows without a Python client's: N execute_requests of CODE on
 * shell (DEALER), each timed to its execute_reply ("reply") and to iopub's
 * status idle under it ("idle", SUB), signed and checked with limpet's own
 * codec (src/jupyter). Prints one JSON line: medians and p90 in us.
 *
 *   jupyter_rtt CONNECTION_FILE [N] [CODE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "jupyter/codec.h"
#include "jupyter/conn_file.h"
#include "timing.h"

static void send_out(void *s, const lp_jout_t *o)
{
    zmq_send(s, LP_JMSG_DELIM, strlen(LP_JMSG_DELIM), ZMQ_SNDMORE);
    zmq_send(s, o->sig, strlen(o->sig), ZMQ_SNDMORE);
    for (int i = 0; i < 4; i++)
        zmq_send(s, o->part[i], o->len[i], i < 3 ? ZMQ_SNDMORE : 0);
}

/* Reads messages from s until one of type under parent msg_id (and, for
 * status, with execution_state idle); 0, or -1 on a bad message. */
static int wait_for(void *s, lp_jsign_t *sign, const char *type, const char *msg_id)
{
    for (;;) {
        zmq_msg_t parts[LP_JMSG_PARTS_MAX];
        lp_jpart_t views[LP_JMSG_PARTS_MAX];
        size_t n = 0;
        int more = 1, found = 0;
        lp_jmsg_t m;
        lp_jwhy_t why;

        while (more && n < LP_JMSG_PARTS_MAX) {
            zmq_msg_init(&parts[n]);
            zmq_msg_recv(&parts[n], s, 0);
            more = zmq_msg_more(&parts[n]);
            views[n] = (lp_jpart_t){zmq_msg_data(&parts[n]), zmq_msg_size(&parts[n])};
            n++;
        }
        if (lp_jmsg_decode(&m, views, n, sign, NULL, &why) != 0) {
            fprintf(stderr, "jupyter_rtt: a bad message: %s\n", why);
            return -1;
        }
        const char *parent = json_string_value(json_object_get(m.parent, "msg_id"));
        const char *state = json_string_value(json_object_get(m.content, "execution_state"));

        found = strcmp(m.msg_type, type) == 0 && parent != NULL && strcmp(parent, msg_id) == 0 &&
                (strcmp(type, "status") != 0 || (state != NULL && strcmp(state, "idle") == 0));
        lp_jmsg_clear(&m);
        for (size_t i = 0; i < n; i++)
            zmq_msg_close(&parts[i]);
        if (found)
            return 0;
    }
}

int main(int argc, char **argv)
{
    lp_jconn_t conn = {0};
    char why[512];
    size_t n = argc > 2 ? (size_t)atol(argv[2]) : 1000, warm = 100;
    const char *code = argc > 3 ? argv[3] : "1+1";
    uint64_t *reply, *idle;

    if (argc < 2 || n == 0) {
        fputs("usage: jupyter_rtt CONNECTION_FILE [N] [CODE]\n", stderr);
        return 2;
    }
    if (lp_jconn_load(&conn, argv[1], why, sizeof(why)) != 0) {
        fprintf(stderr, "jupyter_rtt: %s\n", why);
        return 1;
    }
    lp_jsign_t *sign = lp_jsign_new(conn.key, conn.key_len);
    lp_jenc_t enc;
    void *ctx = zmq_ctx_new(), *shell = zmq_socket(ctx, ZMQ_DEALER),
         *iopub = zmq_socket(ctx, ZMQ_SUB);

    lp_jenc_init(&enc, sign);
    zmq_setsockopt(iopub, ZMQ_SUBSCRIBE, "", 0);
    zmq_connect(shell, conn.endpoint[LP_JCH_SHELL]);
    zmq_connect(iopub, conn.endpoint[LP_JCH_IOPUB]);
    usleep(300 * 1000); /* the subscription must reach the kernel before the first idle */
    reply = calloc(n, sizeof(*reply));
    idle = calloc(n, sizeof(*idle));
    for (size_t i = 0; i < n + warm; i++) {
        lp_jout_t o;
        uint64_t t0 = now_ns(), t1;
        char msg_id[64];

        lp_jmsg_encode(&enc, "execute_request", NULL, NULL,
                       json_pack("{s:s,s:b,s:b,s:{},s:b,s:b}", "code", code, "silent", 0,
                                 "store_history", 1, "user_expressions", "allow_stdin", 0,
                                 "stop_on_error", 1),
                       &o);
        json_t *h = json_loads(o.part[0], 0, NULL);

        snprintf(msg_id, sizeof(msg_id), "%s", json_string_value(json_object_get(h, "msg_id")));
        json_decref(h);
        send_out(shell, &o);
        lp_jout_clear(&o);
        if (wait_for(shell, sign, "execute_reply", msg_id) != 0)
            return 1;
        t1 = now_ns();
        if (wait_for(iopub, sign, "status", msg_id) != 0)
            return 1;
        if (i >= warm) {
            reply[i - warm] = t1 - t0;
            idle[i - warm] = now_ns() - t0;
        }
    }
    double r50 = quantile_us(reply, n, 0.5), r90 = quantile_us(reply, n, 0.9);
    double i50 = quantile_us(idle, n, 0.5), i90 = quantile_us(idle, n, 0.9);

    printf("{\"n\": %zu, \"reply_median_us\": %.1f, \"reply_p90_us\": %.1f, "
           "\"idle_median_us\": %.1f, \"idle_p90_us\": %.1f}\n", n, r50, r90, i50, i90);
    zmq_close(shell);
    zmq_close(iopub);
    zmq_ctx_term(ctx);
    lp_jsign_free(sign);
    lp_jconn_clear(&conn);
    free(reply);
    free(idle);
    return 0;
}
