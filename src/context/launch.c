/* launch.c: starts a far Python, its bootstrap and handshake (launch.h). */
#include "context/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "context/bootstrap.h"
#include "io/io.h"
#include "wire/hdr.h"

extern char **environ;

#define STAGE1 "limpet-stage1 "
#define SLICE_MS 200     /* how often a wait asks opt->interrupted */
#define DRAIN_MS 1000    /* for a command that ended to finish saying why */
#define ERR_KEEP 4096    /* stderr bytes kept, for prompts and errors */
#define TAIL 300         /* of them, in an error */
#define QUIET_MS 100     /* a prompt then waits: "sudo: a password is required" comes
                          * in pieces ("sudo", ": ", ...) and is none */
/* stdout before the link: stage 1's line, then a preamble and the hello */
#define OUT_MAX (256 + LP_WIRE_PREAMBLE_LEN + LP_WIRE_PREFIX_LEN + LP_WIRE_HELLO_HEADER_MAX)

struct run {
    const lp_launch_t *opt;
    lp_launched_t *out;
    lp_reader_t so, se; /* stdout; stderr (raw, the last ERR_KEEP bytes) */
    size_t since;       /* stderr before this offset came before the last step */
    bool sent;          /* the password was written */
    lp_writer_t w;      /* stdin */
};

__attribute__((format(printf, 3, 4)))
static int fail(struct run *r, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->out->error, sizeof(r->out->error), fmt, ap);
    va_end(ap);
    return code;
}

/* Moves *fd above stdio (close-on-exec): a pipe made while this process's
 * fd 0, 1 or 2 was closed must not be clobbered by the dup2s to them. */
static int above_stdio(int *fd)
{
    int moved;

    if (*fd > 2)
        return 0;
    if ((moved = fcntl(*fd, F_DUPFD_CLOEXEC, 3)) < 0)
        return -errno;
    close(*fd);
    *fd = moved;
    return 0;
}

/* Starts the command: pipes on its 0, 1, 2 (our ends in out), its own
 * session, default SIGPIPE, no other fd (as subprocess's close_fds). */
static int spawn(struct run *r)
{
    const lp_launch_t *opt = r->opt;
    lp_launched_t *out = r->out;
    int p[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}}, e = 0;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dfl;

    for (int i = 0; i < 3 && e == 0; i++)
        if (pipe2(p[i], O_CLOEXEC) != 0 || (e = above_stdio(&p[i][0])) != 0 ||
            (e = above_stdio(&p[i][1])) != 0)
            e = e != 0 ? e : -errno;
    if (e != 0)
        fail(r, e, "did not start: %s", strerror(-e));
    else {
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&at);
        sigemptyset(&none);
        sigemptyset(&dfl);
        sigaddset(&dfl, SIGPIPE);
        sigaddset(&dfl, SIGXFSZ);
        posix_spawnattr_setsigmask(&at, &none);
        posix_spawnattr_setsigdefault(&at, &dfl);
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                          POSIX_SPAWN_SETSIGDEF);
        posix_spawn_file_actions_adddup2(&fa, p[0][0], 0);
        posix_spawn_file_actions_adddup2(&fa, p[1][1], 1);
        posix_spawn_file_actions_adddup2(&fa, p[2][1], 2);
        posix_spawn_file_actions_addclosefrom_np(&fa, 3);
        if ((e = posix_spawnp(&out->pid, opt->argv[0], &fa, &at, (char *const *)opt->argv,
                              environ)) != 0)
            e = fail(r, -ENOEXEC, "did not start: %s: %s", opt->argv[0], strerror(e));
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&at);
    }
    for (int i = 0; i < 3; i++) { /* the child's ends */
        if (p[i][i == 0 ? 0 : 1] >= 0)
            close(p[i][i == 0 ? 0 : 1]);
    }
    out->wfd = p[0][1];
    out->rfd = p[1][0];
    out->errfd = p[2][0];
    if (e != 0)
        out->pid = -1;
    return e;
}

/* Waits for stdout or stderr (while open) until deadline: bit 1 stdout, bit
 * 2 stderr readable (or ended); -ETIMEDOUT, LP_EINTERRUPTED, -errno. */
static int wait_io(struct run *r, uint64_t deadline)
{
    struct pollfd p[2] = {{.fd = r->out->rfd, .events = POLLIN},
                          {.fd = r->out->errfd, .events = POLLIN}};

    for (;;) {
        int left = lp_clock_left_ms(deadline), n;

        if (left == 0)
            return -ETIMEDOUT;
        n = poll(p, r->out->errfd >= 0 ? 2 : 1, left < 0 || left > SLICE_MS ? SLICE_MS : left);
        if (n > 0)
            return (p[0].revents ? 1 : 0) | (r->out->errfd >= 0 && p[1].revents ? 2 : 0);
        if (n < 0 && errno != EINTR)
            return -errno;
        if (r->opt->interrupted != NULL && r->opt->interrupted(r->opt->arg))
            return LP_EINTERRUPTED;
    }
}

/* Reads stderr once: true when bytes came. At its end it is closed; the
 * oldest half is dropped when the buffer is full. */
static bool read_err(struct run *r)
{
    size_t len = lp_buf_len(r->se.in);
    int e;

    if (len == ERR_KEEP) {
        lp_buf_consume(r->se.in, ERR_KEEP / 2);
        r->since = r->since > ERR_KEEP / 2 ? r->since - ERR_KEEP / 2 : 0;
    }
    if ((e = lp_reader_fill(&r->se, 0)) == 0)
        return true;
    if (e != -ETIMEDOUT) {
        close(r->out->errfd);
        r->out->errfd = -1;
    }
    return false;
}

/* stderr since r->since, without surrounding white space, its last max bytes. */
static const char *said(struct run *r, size_t max, size_t *n)
{
    const char *s = (const char *)lp_buf_data(r->se.in) + r->since;
    size_t len = lp_buf_len(r->se.in) - r->since;

    while (len > 0 && strchr(" \t\r\n", s[len - 1]) != NULL)
        len--;
    if (len > max) {
        s += len - max;
        len = max;
    }
    while (len > 0 && strchr(" \t\r\n", *s) != NULL) {
        s++;
        len--;
    }
    *n = len;
    return s;
}

/* Is stderr's last line (since the password, once sent) a password prompt,
 * with nothing after it for QUIET_MS? */
static bool prompted(struct run *r)
{
    struct pollfd p = {.fd = r->out->errfd, .events = POLLIN};
    const char *s = (const char *)lp_buf_data(r->se.in) + r->since, *line;
    size_t len = lp_buf_len(r->se.in) - r->since;

    while (len > 0 && s[len - 1] == ' ')
        len--;
    if (len == 0 || s[len - 1] != ':')
        return false;
    line = memrchr(s, '\n', len);
    line = line == NULL ? s : line + 1;
    if (r->sent && memmem(line, (size_t)(s + len - line), "assword", 7) == NULL)
        return false;
    return poll(&p, 1, QUIET_MS) == 0;
}

/* The command ended (its stdout did): lets it finish saying why on stderr,
 * reaps it, and puts why in why[TAIL + 32]: the end of what it said (with
 * lines, its last three lines joined by "; "), else its exit status as
 * subprocess says it (-SIGNAL when killed). */
static void ended(struct run *r, char *why, bool lines)
{
    uint64_t deadline = lp_clock_deadline(DRAIN_MS);
    const char *s, *cut;
    struct pollfd p = {.events = POLLIN};
    size_t n, k = 0;
    int st, nl = 0;

    /* stderr alone: stdout, at its end, would always be readable */
    while ((p.fd = r->out->errfd) >= 0 && poll(&p, 1, lp_clock_left_ms(deadline)) > 0)
        read_err(r);
    st = lp_context_reap(r->out->pid, DRAIN_MS);
    r->out->pid = -1;
    s = said(r, TAIL, &n);
    for (cut = s + n; lines && cut > s && nl < 3; nl += *--cut == '\n')
        ;
    cut = lines ? cut + (nl == 3) : s;
    for (; cut < s + n && k < TAIL + 28; cut++) {
        if (lines && *cut == '\n')
            why[k++] = ';';
        if (!lines || *cut != '\r')
            why[k++] = lines && *cut == '\n' ? ' ' : *cut;
    }
    why[k] = '\0';
    if (k == 0)
        snprintf(why, TAIL + 32, "exit status %d",
                 st < 0 ? st : WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st));
}

static int write_in(struct run *r, const void *p, size_t n)
{
    return lp_writer_write(&r->w, p, n, true);
}

/* Until stage 1 says its line, answering a password prompt; then stage 2. */
static int stage1(struct run *r)
{
    const char *cmd = r->opt->argv[0];
    uint64_t deadline = lp_clock_deadline(r->opt->timeout_ms);
    const uint8_t *nl;
    char head[16];
    size_t n;
    int e;

    r->so.raw = true;
    while ((nl = memchr(lp_buf_data(r->so.in), '\n', lp_buf_len(r->so.in))) == NULL) {
        if ((e = wait_io(r, deadline)) == -ETIMEDOUT)
            return fail(r, e, "did not start: %s did not start within %.0f s", cmd,
                        r->opt->timeout_ms / 1000.0);
        if (e < 0)
            return fail(r, e, "did not start: %s", lp_wire_strerror(e));
        if (e & 1) {
            if ((e = lp_reader_fill(&r->so, 0)) == -ECONNRESET) {
                char why[TAIL + 32];

                r->since = 0; /* all it said, the prompt too */
                ended(r, why, false);
                return fail(r, r->sent ? -EACCES : -ECONNABORTED, "%s%s ended%s: %s",
                            r->sent ? "" : "did not start: ", cmd,
                            r->sent ? " after the password was given" : "", why);
            }
            if (e == LP_WIRE_ELIMIT)
                break; /* no line in all that: not stage 1, said below */
            if (e != 0 && e != -ETIMEDOUT)
                return fail(r, e, "did not start: %s", lp_wire_strerror(e));
            continue;
        }
        if (!read_err(r) || !prompted(r))
            continue;
        if (r->opt->password == NULL || r->sent)
            return fail(r, -EACCES, "%s asked for a password%s", cmd,
                        r->sent ? " again: the one given was refused" : "");
        if ((e = write_in(r, r->opt->password, r->opt->password_len)) != 0 ||
            (e = write_in(r, "\n", 1)) != 0)
            return fail(r, -EACCES, "%s ended after the password was given", cmd);
        r->sent = true;
        r->since = lp_buf_len(r->se.in);
    }
    n = lp_buf_len(r->so.in);
    if (nl == NULL || n < sizeof(STAGE1) - 1 || memcmp(lp_buf_data(r->so.in), STAGE1, 14) != 0)
        return fail(r, -EPROTO, "did not start: %s is not limpet's stage 1: it said '%.*s'", cmd,
                    (int)(n > 80 ? 80 : n), (const char *)lp_buf_data(r->so.in));
    {
        const char *tag = (const char *)lp_buf_data(r->so.in) + sizeof(STAGE1) - 1;
        size_t tlen = (size_t)((const char *)nl - tag), want = strlen(lp_agent_code_tag);
        bool code = r->opt->compiled && tlen == want && memcmp(tag, lp_agent_code_tag, want) == 0;
        bool env = r->opt->session;
        const unsigned char *blob = env ? (code ? lp_agent_session_code_blob
                                               : lp_agent_session_blob)
                                        : (code ? lp_agent_code_blob : lp_agent_blob);
        size_t len = env ? (code ? lp_agent_session_code_blob_len : lp_agent_session_blob_len)
                         : (code ? lp_agent_code_blob_len : lp_agent_blob_len);

        lp_buf_consume(r->so.in, (size_t)(nl - lp_buf_data(r->so.in)) + 1);
        snprintf(head, sizeof(head), "%c%08zu", code ? 'c' : 's', len);
        if ((e = write_in(r, head, 9)) != 0 || (e = write_in(r, blob, len)) != 0) {
            char why[TAIL + 32];

            ended(r, why, false);
            return fail(r, -ECONNABORTED, "did not start: %s ended: %s", cmd, why);
        }
    }
    return 0;
}

/* Reads the agent's preamble and hello; answers them. */
static int handshake(struct run *r)
{
    static const lp_limits_t hello_lim = LP_LIMITS_HELLO, lim = LP_LIMITS_DEFAULT;
    uint64_t deadline = lp_clock_deadline(r->opt->timeout_ms);
    bool preamble = false;
    lp_frame_t f = {0};
    lp_hdr_t h;
    char text[256];
    const json_t *caps, *id;
    lp_buf_t *done;
    size_t len, i;
    int e;

    r->so.raw = false;
    r->since = lp_buf_len(r->se.in); /* what it says now is why it ends, if it does */
    for (;;) {
        e = preamble ? lp_frame_decode(r->so.in, &hello_lim, &f) : lp_preamble_decode(r->so.in);
        if (e == 0 && !preamble) {
            preamble = true;
            continue;
        }
        if (e == 0)
            break;
        if (e == LP_WIRE_ENOMEM)
            return fail(r, e, "did not start: %s", lp_wire_strerror(e));
        if (e != LP_WIRE_EAGAIN)
            return fail(r, preamble ? LP_WIRE_EHANDSHAKE : LP_WIRE_EPREAMBLE,
                        "is not a limpet agent: %s", lp_wire_strerror(e));
        while ((e = wait_io(r, deadline)) == 2)
            read_err(r);
        if (e == -ETIMEDOUT)
            return fail(r, e, "did not start within %.0f s", r->opt->timeout_ms / 1000.0);
        if (e < 0)
            return fail(r, e, "did not start: %s", lp_wire_strerror(e));
        if (e & 2)
            read_err(r);
        if ((e = lp_reader_fill(&r->so, 0)) == -ECONNRESET) {
            char why[TAIL + 32];

            ended(r, why, true);
            return fail(r, -ECONNRESET, "ended before its agent started: %s", why);
        }
        if (e != 0 && e != -ETIMEDOUT)
            return fail(r, LP_WIRE_EHANDSHAKE, "is not a limpet agent: %s", lp_wire_strerror(e));
    }
    caps = json_object_get(f.header, "caps");
    json_array_foreach(caps, i, id) {
        if (json_is_string(id) && strcmp(json_string_value(id), "call") == 0)
            break;
    }
    if (!json_is_string(json_object_get(f.header, "op")) ||
        strcmp(json_string_value(json_object_get(f.header, "op")), "hello") != 0 ||
        !json_is_array(caps) || i == json_array_size(caps)) {
        lp_frame_clear(&f);
        return fail(r, LP_WIRE_EHANDSHAKE, "did not say hello as an agent does");
    }
    id = json_object_get(f.header, "id");
    r->out->agent = json_is_object(json_object_get(f.header, "agent"))
                        ? json_incref(json_object_get(f.header, "agent"))
                        : json_object();
    lp_hdr_begin(&h, text, sizeof(text), "done");
    lp_hdr_int(&h, "re", json_is_integer(id) ? (int64_t)json_integer_value(id) : 0);
    lp_hdr_str(&h, "status", "ok");
    lp_hdr_int(&h, "protocol", 1);
    lp_hdr_int(&h, "log_level", r->opt->log_level);
    lp_frame_clear(&f);
    if (r->out->agent == NULL || (e = lp_hdr_end(&h, &len)) != 0 ||
        (done = lp_buf_new(sizeof(text) + 16)) == NULL)
        return fail(r, LP_WIRE_ENOMEM, "did not start: %s", lp_wire_strerror(LP_WIRE_ENOMEM));
    if ((e = lp_preamble_encode(done)) == 0 &&
        (e = lp_frame_put(done, text, len, NULL, 0, &lim)) == 0)
        e = write_in(r, lp_buf_data(done), lp_buf_len(done));
    lp_buf_free(done);
    if (e != 0) {
        char why[TAIL + 32];

        ended(r, why, true);
        return fail(r, -ECONNRESET, "ended before its agent started: %s", why);
    }
    return 0;
}

int lp_context_launch(const lp_launch_t *opt, lp_launched_t *out)
{
    struct run r = {.opt = opt, .out = out};
    int e;

    memset(out, 0, sizeof(*out));
    out->pid = out->rfd = out->wfd = out->errfd = -1;
    r.so.in = lp_buf_new(OUT_MAX);
    r.se.in = lp_buf_new(ERR_KEEP);
    r.se.raw = true;
    if (r.so.in == NULL || r.se.in == NULL) {
        e = fail(&r, LP_WIRE_ENOMEM, "did not start: %s", lp_wire_strerror(LP_WIRE_ENOMEM));
        goto out;
    }
    if ((e = spawn(&r)) != 0)
        goto out;
    r.so.fd = out->rfd;
    r.se.fd = out->errfd;
    if ((e = lp_writer_init(&r.w, out->wfd, 0, opt->timeout_ms)) != 0) {
        e = fail(&r, e, "did not start: %s", lp_wire_strerror(e));
        goto out;
    }
    fcntl(out->errfd, F_SETFL, fcntl(out->errfd, F_GETFL) | O_NONBLOCK);
    if ((e = stage1(&r)) == 0 && (e = handshake(&r)) == 0 &&
        (out->initial_len = lp_buf_len(r.so.in)) > 0 &&
        (out->initial = malloc(out->initial_len)) == NULL)
        e = fail(&r, LP_WIRE_ENOMEM, "did not start: %s", lp_wire_strerror(LP_WIRE_ENOMEM));
    if (e == 0 && out->initial_len > 0)
        memcpy(out->initial, lp_buf_data(r.so.in), out->initial_len);
    lp_writer_destroy(&r.w);
out:
    if (e != 0) {
        if (out->pid > 0)
            lp_context_reap(out->pid, 0);
        out->pid = -1;
        out->initial_len = 0;
        lp_launched_clear(out);
    }
    lp_buf_free(r.so.in);
    lp_buf_free(r.se.in);
    return e;
}

void lp_launched_clear(lp_launched_t *out)
{
    int *fds[] = {&out->rfd, &out->wfd, &out->errfd};

    for (size_t i = 0; i < 3; i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
    free(out->initial);
    out->initial = NULL;
    json_decref(out->agent);
    out->agent = NULL;
}

/* waitpid with a deadline, in naps of up to 16 ms (as subprocess waits):
 * 1 once reaped (*st set), 0 at the deadline, -errno. */
static int wait_until(pid_t pid, uint64_t deadline, int *st)
{
    for (long nap = 1;; nap = nap < 16 ? nap * 2 : nap) {
        pid_t got = waitpid(pid, st, WNOHANG);
        int left = lp_clock_left_ms(deadline);
        struct timespec ts = {0, (left >= 0 && left < nap ? left : nap) * 1000000L};

        if (got == pid || got < 0)
            return got == pid ? 1 : -errno;
        if (left == 0)
            return 0;
        nanosleep(&ts, NULL);
    }
}

int lp_context_reap(pid_t pid, int timeout_ms)
{
    int st = 0, e;

    if ((e = wait_until(pid, lp_clock_deadline(timeout_ms), &st)) != 0)
        return e < 0 ? e : st;
    kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return st;
}
