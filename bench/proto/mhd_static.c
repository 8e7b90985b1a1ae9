/* mhd_static PORT MODEL: libmicrohttpd answering a static 200 on
 * 127.0.0.1:PORT, the raw limit of limpet serve's HTTP rows (issue 12), in
 * the threading model docs/serve.md has to choose among:
 *   pool      internal epoll thread pool, one thread per core
 *   perconn   one thread per connection
 *   single    one internal polling thread (epoll)
 * Runs until killed; bench/http_models.py drives it with wrk. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char body[] = "{\"ok\":true}\n";

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **state)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    if (*state == NULL) { /* the headers: the body, if any, comes in later calls */
        *state = (void *)1;
        return MHD_YES;
    }
    if (*size != 0) { /* a body: taken and dropped */
        *size = 0;
        return MHD_YES;
    }
    r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body,
                                        MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

int main(int argc, char **argv)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
    unsigned threads = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    struct MHD_Daemon *d;
    struct sockaddr_in a;
    sigset_t set;
    int sig;

    if (argc != 3) {
        fprintf(stderr, "usage: mhd_static PORT pool|perconn|single\n");
        return 2;
    }
    if (strcmp(argv[2], "perconn") == 0) {
        flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                MHD_USE_POLL;
        threads = 0;
    } else if (strcmp(argv[2], "single") == 0) {
        threads = 0;
    } else if (strcmp(argv[2], "pool") != 0) {
        fprintf(stderr, "mhd_static: unknown model %s\n", argv[2]);
        return 2;
    }
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[1]));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = threads > 1 ? MHD_start_daemon(flags, 0, NULL, NULL, answer, NULL,
                                       MHD_OPTION_SOCK_ADDR, &a,
                                       MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_END)
                    : MHD_start_daemon(flags, 0, NULL, NULL, answer, NULL,
                                       MHD_OPTION_SOCK_ADDR, &a, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "mhd_static: could not listen on port %s\n", argv[1]);
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    return 0;
}
