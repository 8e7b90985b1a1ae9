/* rtt.c: round trips of a trivial evaluation against a running limpet
 * server, measured by a C client (the limpet command's own, src/cli/
 * client.c) so that the figure is the server's and the wire's, not a
 * Python client's.
 *
 *   rtt [--setup CODE0] [--max-s S] TARGET [N] [CODE]
 *                            N evals of CODE (default 20000 of "1+1",
 *                            interactive) in one session; prints the median
 *                            and p99 round trip in microseconds, as JSON.
 *                            CODE0 runs once first, untimed (the 10 MB
 *                            that a bulk run prints is made there); with
 *                            --max-s the warm-up and the timed evals stop
 *                            after S seconds each, and n says how many ran
 *                            (an eval that waits 40 ms must not take
 *                            minutes).
 *   rtt --hello TARGET [N]   N new connections whose hello opens a session
 *                            (what `limpet connect` does before its prompt),
 *                            timed from connect() to the welcome.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "client/target.h"
#include "timing.h"

/* Sends h and waits for its final reply; exits on any failure. */
static json_t *request(lp_client_t *c, json_t *h, const char *payload)
{
    int64_t id = lp_client_send(c, h, payload, payload != NULL ? strlen(payload) : 0);

    for (;;) {
        lp_frame_t f = {0};
        const char *op;

        if (id < 0 || lp_client_read(c, &f, -1) != 0) {
            fprintf(stderr, "rtt: the server closed the connection\n");
            exit(1);
        }
        op = json_string_value(json_object_get(f.header, "op"));
        if (json_integer_value(json_object_get(f.header, "re")) == id &&
            (strcmp(op, "done") == 0 || strcmp(op, "error") == 0)) {
            json_t *r = json_incref(f.header);

            lp_frame_clear(&f);
            return r;
        }
        lp_frame_clear(&f);
    }
}

/* N connections with a session each, timed; prints median and p99. */
static int hellos(const char *target, int n)
{
    uint64_t *ns = calloc((size_t)n, sizeof(*ns));
    lp_target_t t;

    if (ns == NULL)
        return 1;
    if (lp_target_resolve(&t, target, NULL) != 0) {
        fprintf(stderr, "rtt: %s\n", t.message);
        return 1;
    }
    for (int i = -n / 10 - 5; i < n; i++) {
        uint64_t t0 = now_ns();
        lp_client_t c;

        if (lp_client_open(&c, t.address, t.token, true, 0) != 0) {
            fprintf(stderr, "rtt: %s\n", c.message);
            return 1;
        }
        if (i >= 0)
            ns[i] = now_ns() - t0;
        lp_client_close(&c);
    }
    printf("{\"n\": %d, \"median_us\": %.2f, ", n, quantile_us(ns, (size_t)n, 0.5));
    printf("\"p99_us\": %.2f}\n", quantile_us(ns, (size_t)n, 0.99));
    free(ns);
    return 0;
}

/* One interactive eval of code in session, to its done. */
static void eval(lp_client_t *c, const char *session, const char *code)
{
    json_decref(request(c, json_pack("{s:s,s:s,s:b}", "op", "eval", "session", session,
                                     "interactive", 1), code));
}

int main(int argc, char **argv)
{
    const char *setup = NULL;
    double max_s = 0;
    int a = 1;

    if (argc > 2 && strcmp(argv[1], "--hello") == 0)
        return hellos(argv[2], argc > 3 ? atoi(argv[3]) : 1000);
    for (; a + 1 < argc; a += 2) {
        if (strcmp(argv[a], "--setup") == 0)
            setup = argv[a + 1];
        else if (strcmp(argv[a], "--max-s") == 0)
            max_s = atof(argv[a + 1]);
        else
            break;
    }
    argc -= a - 1;
    argv += a - 1;

    int n = argc > 2 ? atoi(argv[2]) : 20000, warm = n / 10 + 100;
    const char *code = argc > 3 ? argv[3] : "1+1";
    uint64_t *rtt = calloc((size_t)n, sizeof(*rtt)), start, budget = (uint64_t)(max_s * 1e9);
    char session[80];
    lp_target_t t;
    lp_client_t c;
    json_t *r;

    if (argc < 2 || n <= 0) {
        fprintf(stderr, "usage: rtt [--setup CODE0] [--max-s S] TARGET [N] [CODE]\n");
        return 2;
    }
    if (lp_target_resolve(&t, argv[1], NULL) != 0) {
        fprintf(stderr, "rtt: %s\n", t.message);
        return 1;
    }
    if (lp_client_open(&c, t.address, t.token, false, 0) != 0) {
        fprintf(stderr, "rtt: %s\n", c.message);
        return 1;
    }
    r = request(&c, json_pack("{s:s}", "op", "clone"), NULL);
    snprintf(session, sizeof(session), "%s", json_string_value(json_object_get(r, "session")));
    json_decref(r);
    if (setup != NULL)
        eval(&c, session, setup);
    start = now_ns();
    for (int i = 0; i < warm && (budget == 0 || now_ns() - start < budget); i++)
        eval(&c, session, code);
    start = now_ns();
    for (int i = 0; i < n; i++) {
        uint64_t t0 = now_ns();

        eval(&c, session, code);
        rtt[i] = now_ns() - t0;
        if (budget != 0 && now_ns() - start >= budget) {
            n = i + 1;
            break;
        }
    }
    printf("{\"n\": %d, \"median_us\": %.2f, ", n, quantile_us(rtt, (size_t)n, 0.5));
    printf("\"p99_us\": %.2f}\n", quantile_us(rtt, (size_t)n, 0.99));
    lp_client_close(&c);
    free(rtt);
    return 0;
}
