/* load.c: a closed-loop load generator that is not the bottleneck it
 * measures. CONNS connections are spread over a few worker processes (one
 * per CPU by default); each worker drives all of its connections from one
 * epoll loop, every connection with one request in flight: when its reply
 * is complete the next request goes out at once. After a warm-up, the
 * evaluations completed during a fixed window are counted and their
 * latencies (send to the end of the reply) kept. A worker that carries a
 * single connection blocks in recv instead: on the development VM an
 * epoll_wait per reply added about 20 us to a 40 us round trip.
 *
 *   load [MODE] [-j PROCS] [-w WARM_S] [-d SECONDS] [--pid PID] [--code CODE]
 *        TARGET CONNS
 *
 * MODE: (default) the framed protocol, each connection with its own session
 * opened by its hello, interactive evals of CODE (default 1+1);
 * --text: plain-text mode (what nc sees), one line of CODE, the reply is
 * complete at the next ">>> "; --http: POST /exec with the body print(CODE)
 * to TARGET=HOST:PORT over HTTP/1.1 (bench/peers.py's Flask baseline; a
 * connection the server closes after a reply is opened again, inside the
 * next request's time).
 *
 * Prints JSON: evals_per_s, median_us, p99_us over all connections, and
 * the CPU used during the window by the load generator and (--pid) by the
 * server, in CPUs (1.0: one core busy the whole window). A load generator
 * that uses less CPU than the server, and a server near its limit, means
 * the figure is the server's. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/client.h"
#include "client/target.h"
#include "timing.h"

enum mode { FRAMED, TEXT, HTTP };

typedef struct conn {
    int fd;
    char session[80];
    uint8_t *in;     /* reply bytes read so far */
    size_t len, cap;
    uint64_t sent;   /* when the request in flight went out */
    int64_t id;
    bool closing;    /* HTTP: the server closes after this reply */
} conn_t;

typedef struct shared {  /* one per worker, in memory the parent sees */
    uint64_t t0, t1;     /* the window, written by the parent before go */
    uint64_t evals, errors;
    double cpu_s;        /* the worker's CPU time inside the window */
    uint64_t nsamples;
} __attribute__((aligned(64))) shared_t; /* a cache line each: workers never share one */

static enum mode mode = FRAMED;
static int ep = -1;  /* the worker's epoll */
static bool single;  /* the worker's one connection: blocking recv, no epoll */

static void die(const char *what)
{
    fprintf(stderr, "load: %s: %s\n", what, errno ? strerror(errno) : "failed");
    exit(1);
}

/* A connection ready for the worker's loop: in its epoll set, or (single)
 * blocking with a timeout, to see the end of the window. */
static void arm(int fd, void *ptr)
{
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = ptr};
    struct timeval tv = {0, 100000};

    if (single) {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    } else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0 ||
               epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) != 0) {
        die("epoll_ctl");
    }
}
static const char *code = "1+1";
static char address[4096], token[512];


static double cpu_now(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void append(conn_t *c, const void *p, size_t n)
{
    if (c->len + n > c->cap) {
        c->cap = (c->len + n) * 2;
        if ((c->in = realloc(c->in, c->cap)) == NULL)
            die("out of memory");
    }
    memcpy(c->in + c->len, p, n);
    c->len += n;
}

static bool ends_with(const conn_t *c, const char *s)
{
    size_t n = strlen(s);

    return c->len >= n && memcmp(c->in + c->len - n, s, n) == 0;
}

/* Blocking reads until the buffer ends with the prompt (text mode setup). */
static void read_prompt(conn_t *c)
{
    uint8_t b[4096];

    while (!ends_with(c, ">>> ")) {
        ssize_t n = recv(c->fd, b, sizeof(b), 0);

        if (n <= 0)
            die("the server closed the connection before its prompt");
        append(c, b, (size_t)n);
        if (ends_with(c, "token: ")) {
            errno = 0;
            die("the server asks for a token (plain-text mode)");
        }
    }
    c->len = 0;
}

/* c->fd connected to address, with no handshake; exits on failure. */
static void dial(conn_t *c)
{
    char message[LP_CLIENT_MESSAGE_MAX];

    if (lp_client_dial(address, &c->fd, message, sizeof(message)) != 0) {
        fprintf(stderr, "load: %s\n", message);
        exit(1);
    }
}

static void open_conn(conn_t *c)
{
    memset(c, 0, sizeof(*c));
    if (mode == FRAMED) {
        lp_client_t lc;

        if (lp_client_open(&lc, address, token, true, 0) != 0) {
            fprintf(stderr, "load: %s\n", lc.message);
            exit(1);
        }
        snprintf(c->session, sizeof(c->session), "%s", lc.welcome.session);
        if (lp_buf_len(lc.in) != 0)
            append(c, lp_buf_data(lc.in), lp_buf_len(lc.in));
        c->fd = dup(lc.fd);
        lp_client_close(&lc);
    } else {
        dial(c);
    }
    if (mode == TEXT)
        read_prompt(c);
    arm(c->fd, c);
}

/* One request, in one write. A connection that the server closed after
 * its last reply (Werkzeug answers every request with Connection: close)
 * is opened again first, inside the timed request, as http.client does. */
static void send_request(conn_t *c)
{
    char buf[8192];
    size_t n, clen = strlen(code);

    c->sent = now_ns();
    if (c->closing) {
        close(c->fd); /* also leaves the epoll set */
        dial(c);
        arm(c->fd, c);
        c->closing = false;
    }
    c->len = 0;
    c->id++;
    if (mode == FRAMED) {
        int h = snprintf(buf + 8, sizeof(buf) - 8,
                         "{\"op\":\"eval\",\"id\":%lld,\"session\":\"%s\",\"interactive\":true}",
                         (long long)c->id, c->session);

        for (int i = 0; i < 4; i++) {
            buf[i] = (char)((uint32_t)h >> (24 - 8 * i));
            buf[4 + i] = (char)((uint32_t)clen >> (24 - 8 * i));
        }
        n = 8 + (size_t)h;
    } else if (mode == TEXT) {
        n = 0;
    } else {
        n = (size_t)snprintf(buf, sizeof(buf),
                             "POST /exec HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %zu\r\n\r\n"
                             "print(", clen + 7);
    }
    if (n + clen + 8 > sizeof(buf)) {
        errno = 0;
        die("CODE too long");
    }
    memcpy(buf + n, code, clen);
    n += clen;
    if (mode == TEXT)
        buf[n++] = '\n';
    else if (mode == HTTP)
        buf[n++] = ')';
    if (send(c->fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n) /* small: the socket takes it whole */
        die("send");
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* 1 when the reply in c->in is complete, 0 when more is needed; counts an
 * error reply in *errors. */
static int reply_done(conn_t *c, uint64_t *errors)
{
    if (mode == TEXT)
        return ends_with(c, ">>> ");
    if (mode == HTTP) {
        uint8_t *end = memmem(c->in, c->len, "\r\n\r\n", 4);
        const char *cl;

        if (end == NULL)
            return 0;
        *end = 0;
        cl = strcasestr((char *)c->in, "Content-Length:");
        c->closing = strcasestr((char *)c->in, "Connection: close") != NULL;
        *end = '\r';
        if (cl == NULL) {
            errno = 0;
            die("an HTTP reply without Content-Length");
        }
        if (c->len < (size_t)(end + 4 - c->in) + strtoul(cl + 15, NULL, 10))
            return 0;
        if (memcmp(c->in, "HTTP/1.1 200", 12) != 0)
            (*errors)++;
        return 1;
    }
    for (size_t at = 0; at + 8 <= c->len;) { /* frames: done or error ends the reply */
        size_t h = be32(c->in + at), p = be32(c->in + at + 4);

        if (at + 8 + h + p > c->len)
            return 0;
        if (memmem(c->in + at + 8, h, "\"op\":\"error\"", 12) != NULL) {
            (*errors)++;
            return 1;
        }
        if (memmem(c->in + at + 8, h, "\"op\":\"done\"", 11) != NULL)
            return 1;
        at += 8 + h + p;
    }
    return 0;
}

static void worker(int nconns, int ready_fd, int go_fd, shared_t *sh, uint64_t *samples,
                   uint64_t cap)
{
    conn_t *conns = calloc((size_t)nconns, sizeof(*conns));
    struct epoll_event ev[256];
    uint8_t b[65536];
    double cpu0 = 0;
    bool in_window = false;
    char x = 0;

    if (conns == NULL || (ep = epoll_create1(0)) < 0)
        die("setup");
    single = nconns == 1;
    for (int i = 0; i < nconns; i++)
        open_conn(&conns[i]);
    if (write(ready_fd, &x, 1) != 1)
        die("the start signal");
    close(ready_fd); /* so that the parent sees the end if another worker dies */
    if (read(go_fd, &x, 1) != 0) /* go: the parent closes it */
        die("the start signal");
    for (int i = 0; i < nconns; i++)
        send_request(&conns[i]);
    for (;;) {
        uint64_t t = now_ns();
        int n;

        if (!in_window && t >= sh->t0) {
            in_window = true;
            cpu0 = cpu_now();
        }
        if (t >= sh->t1)
            break;
        if (single) { /* block in recv (see above) */
            n = 1;
            ev[0].data.ptr = &conns[0];
        } else if ((n = epoll_wait(ep, ev, 256, (int)((sh->t1 - t) / 1000000) + 1)) < 0 &&
                   errno != EINTR) {
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            conn_t *c = ev[i].data.ptr;
            ssize_t r = recv(c->fd, b, sizeof(b), 0);

            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
                die("the server closed a connection");
            if (r < 0)
                continue;
            append(c, b, (size_t)r);
            if (reply_done(c, &sh->errors)) {
                uint64_t done = now_ns();

                if (done >= sh->t0 && done < sh->t1) {
                    if (sh->nsamples < cap)
                        samples[sh->nsamples++] = done - c->sent;
                    sh->evals++;
                }
                send_request(c);
            }
        }
    }
    sh->cpu_s = cpu_now() - cpu0;
    exit(0);
}

static double proc_cpu_s(long pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut, st;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    if ((p = strrchr(buf, ')')) == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void sleep_until(uint64_t t)
{
    uint64_t n = now_ns();

    if (t > n)
        usleep((useconds_t)((t - n) / 1000));
}

/* address and token for target; says why not and returns -1. */
static int resolve(const char *target)
{
    lp_target_t t;

    if (lp_target_resolve(&t, target, NULL) != 0) {
        fprintf(stderr, "load: %s\n", t.message);
        lp_target_clear(&t);
        return -1;
    }
    snprintf(address, sizeof(address), "%s", t.address);
    snprintf(token, sizeof(token), "%s", t.token);
    return 0;
}

int main(int argc, char **argv)
{
    long procs = sysconf(_SC_NPROCESSORS_ONLN), pid = 0;
    double warm = 0.5, secs = 3;
    int ready[2], go[2], i, nconns;
    uint64_t cap, total = 0, evals = 0, errors = 0, *all;
    double load_cpu = 0, s0 = 0, s1 = 0;
    shared_t *sh;
    uint64_t *samples;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--text") == 0)
            mode = TEXT;
        else if (strcmp(argv[i], "--http") == 0)
            mode = HTTP;
        else if (i + 1 < argc && strcmp(argv[i], "-j") == 0)
            procs = atol(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "-w") == 0)
            warm = atof(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "-d") == 0)
            secs = atof(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--pid") == 0)
            pid = atol(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--code") == 0)
            code = argv[++i];
        else
            break;
    }
    if (argc - i != 2 || (nconns = atoi(argv[i + 1])) <= 0 || procs <= 0 || secs <= 0) {
        fprintf(stderr, "usage: load [--text|--http] [-j PROCS] [-w WARM_S] [-d SECONDS] "
                        "[--pid PID] [--code CODE] TARGET CONNS\n");
        return 2;
    }
    if (mode == HTTP)
        snprintf(address, sizeof(address), "%s", argv[i]);
    else if (resolve(argv[i]) != 0)
        return 1;
    if (procs > nconns)
        procs = nconns;
    cap = (uint64_t)(secs * 400000) + 1000; /* samples per worker: more than it can do */
    sh = mmap(NULL, sizeof(*sh) * (size_t)procs, PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    samples = mmap(NULL, cap * sizeof(uint64_t) * (size_t)procs, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (sh == MAP_FAILED || samples == MAP_FAILED || pipe(ready) != 0 || pipe(go) != 0)
        die("setup");
    for (long w = 0; w < procs; w++) {
        pid_t p = fork();

        if (p < 0)
            die("fork");
        if (p == 0) {
            close(ready[0]);
            close(go[1]);
            worker((int)(nconns / procs + (w < nconns % procs)), ready[1], go[0], &sh[w],
                   samples + cap * (uint64_t)w, cap);
        }
    }
    close(ready[1]);
    close(go[0]);
    for (long w = 0; w < procs; w++) { /* every connection open */
        char x;

        if (read(ready[0], &x, 1) != 1) {
            fprintf(stderr, "load: a worker failed to connect\n");
            close(go[1]);
            while (wait(NULL) > 0)
                ;
            return 1;
        }
    }
    sh[0].t0 = now_ns() + (uint64_t)(warm * 1e9);
    sh[0].t1 = sh[0].t0 + (uint64_t)(secs * 1e9);
    for (long w = 1; w < procs; w++)
        sh[w].t0 = sh[0].t0, sh[w].t1 = sh[0].t1;
    close(go[1]);
    if (pid > 0) {
        sleep_until(sh[0].t0);
        s0 = proc_cpu_s(pid);
        sleep_until(sh[0].t1);
        s1 = proc_cpu_s(pid);
    }
    for (long w = 0; w < procs; w++) {
        int st;

        if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "load: a worker failed\n");
            return 1;
        }
    }
    for (long w = 0; w < procs; w++)
        total += sh[w].nsamples;
    if ((all = malloc((total + 1) * sizeof(*all))) == NULL)
        die("out of memory");
    total = 0;
    for (long w = 0; w < procs; w++) {
        memcpy(all + total, samples + cap * (uint64_t)w, sh[w].nsamples * sizeof(*all));
        total += sh[w].nsamples;
        evals += sh[w].evals;
        errors += sh[w].errors;
        load_cpu += sh[w].cpu_s;
    }
    if (total == 0) {
        fprintf(stderr, "load: no reply completed in the window\n");
        return 1;
    }
    printf("{\"conns\": %d, \"procs\": %ld, \"evals\": %llu, \"errors\": %llu, ", nconns, procs,
           (unsigned long long)evals, (unsigned long long)errors);
    printf("\"evals_per_s\": %.1f, \"median_us\": %.2f, ", (double)evals / secs,
           quantile_us(all, total, 0.5));
    printf("\"p99_us\": %.2f, \"load_cpu\": %.2f", quantile_us(all, total, 0.99),
           load_cpu / secs);
    if (pid > 0)
        printf(", \"server_cpu\": %.2f", (s1 - s0) / secs);
    printf("}\n");
    return 0;
}
