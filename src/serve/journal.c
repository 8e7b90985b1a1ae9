/* journal.c: the audit journal (issue 12, item 7): one JSON line per
 * finished run (time, who, env, run, code size and SHA-256, duration,
 * outcome), appended to a 0600 file and rotated by size (PATH.1). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/io.h"
#include "serve/internal.h"

static int open_journal(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

    if (fd >= 0)
        fchmod(fd, 0600); /* a file that was there keeps no wider mode */
    return fd;
}

int lp_journal_open(lp_serve_t *sv)
{
    if (sv->cfg.journal == NULL)
        return 0;
    if ((sv->journal_fd = open_journal(sv->cfg.journal)) < 0)
        return -errno;
    return 0;
}

void lp_journal_close(lp_serve_t *sv)
{
    if (sv->journal_fd >= 0)
        close(sv->journal_fd);
    sv->journal_fd = -1;
}

/* Past journal_max bytes, PATH becomes PATH.1 (one generation kept). */
static void rotate_locked(lp_serve_t *sv)
{
    struct stat st;
    char old[4096];

    if (fstat(sv->journal_fd, &st) != 0 || (size_t)st.st_size < sv->cfg.journal_max)
        return;
    snprintf(old, sizeof(old), "%s.1", sv->cfg.journal);
    if (rename(sv->cfg.journal, old) == 0) {
        int fd = open_journal(sv->cfg.journal);

        if (fd >= 0) {
            close(sv->journal_fd);
            sv->journal_fd = fd;
        }
    }
}

void lp_journal_run(lp_serve_t *sv, const char *env, lp_run_t *r)
{
    char when[32], *line;
    uint64_t now = lp_clock_wall_ms();
    time_t t = (time_t)(now / 1000);
    struct tm tm;
    json_t *o;

    if (sv->journal_fd < 0)
        return;
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%03uZ", (unsigned)(now % 1000));
    pthread_mutex_lock(&r->mu);
    o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:f, s:s}", "time", when, "who",
                  r->who != NULL ? r->who : "?", "env", env, "run", (json_int_t)r->id,
                  "code_bytes", (json_int_t)r->code_bytes, "code_sha256", r->code_sha256,
                  "duration_ms", (double)r->duration_us / 1000.0, "outcome",
                  lp_run_status_name(r->status));
    pthread_mutex_unlock(&r->mu);
    if (o == NULL || (line = json_dumps(o, JSON_COMPACT)) == NULL) {
        json_decref(o);
        return;
    }
    json_decref(o);
    pthread_mutex_lock(&sv->journal_mu);
    rotate_locked(sv);
    dprintf(sv->journal_fd, "%s\n", line);
    pthread_mutex_unlock(&sv->journal_mu);
    free(line);
}
