/* target.c: the command that starts an environment's far Python, from its
 * target ("local", "sudo:USER", "ssh://[user@]host[:port]"), as
 * docs/contexts.md says limpet.connect starts one. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "context/bootstrap.h"
#include "serve/target.h"

#define MAX_ARGS 24

static bool word_ok(const char *s, size_t n, const char *extra)
{
    if (n == 0 || n > 255 || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || strchr(extra, c) != NULL))
            return false;
    }
    return true;
}

void lp_target_free(lp_target_argv_t *t)
{
    for (int i = 0; i < t->argc; i++)
        free(t->argv[i]);
    free(t->argv);
    memset(t, 0, sizeof(*t));
}

static int add(lp_target_argv_t *t, const char *s, size_t n)
{
    if (t->argc >= MAX_ARGS || (t->argv[t->argc] = strndup(s, n)) == NULL)
        return -ENOMEM;
    t->argc++;
    return 0;
}

static int adds(lp_target_argv_t *t, const char *s)
{
    return add(t, s, strlen(s));
}

/* One string for a far login shell: each word in single quotes. */
static char *shell_join(char *const *words, int n)
{
    size_t size = 1;
    char *out, *p;

    for (int i = 0; i < n; i++)
        size += 4 * strlen(words[i]) + 3;
    if ((p = out = malloc(size)) == NULL)
        return NULL;
    for (int i = 0; i < n; i++) {
        *p++ = '\'';
        for (const char *c = words[i]; *c != 0; c++) {
            if (*c == '\'') {
                memcpy(p, "'\\''", 4);
                p += 4;
            } else {
                *p++ = *c;
            }
        }
        *p++ = '\'';
        *p++ = i + 1 < n ? ' ' : 0;
    }
    if (n == 0)
        *p = 0;
    return out;
}

/* The stage-1 words: python -c STAGE1 TAG, where TAG names USER@HOST. */
static int stage1(lp_target_argv_t *t, const char *python, const char *who)
{
    char tag[128];
    int r;

    snprintf(tag, sizeof(tag), LP_CONTEXT_TAG_FMT, who);
    if ((r = adds(t, python)) != 0 || (r = adds(t, "-c")) != 0 ||
        (r = adds(t, lp_context_stage1())) != 0)
        return r;
    return adds(t, tag);
}

int lp_target_argv(const char *target, const char *python, lp_target_argv_t *t,
                   char *msg, size_t msg_size)
{
    char who[96], host[64] = "?";
    struct passwd *pw = getpwuid(getuid());
    int r = -EINVAL;

    memset(t, 0, sizeof(*t));
    if ((t->argv = calloc(MAX_ARGS + 1, sizeof(char *))) == NULL)
        return -ENOMEM;
    gethostname(host, sizeof(host) - 1);
    if (target == NULL || strcmp(target, "local") == 0) {
        snprintf(who, sizeof(who), "%s@%s", pw != NULL ? pw->pw_name : "?", host);
        t->compiled = true;
        t->local = true;
        r = stage1(t, python, who);
    } else if (strncmp(target, "sudo:", 5) == 0) {
        const char *user = target + 5;

        if (!word_ok(user, strlen(user), "")) {
            snprintf(msg, msg_size, "bad user in target '%s'", target);
            goto fail;
        }
        snprintf(who, sizeof(who), "%s@%s", user, host);
        t->compiled = true;
        /* -n: no password prompt; a server has no one to type it */
        if ((r = adds(t, "sudo")) != 0 || (r = adds(t, "-n")) != 0 || (r = adds(t, "-u")) != 0 ||
            (r = adds(t, user)) != 0 || (r = adds(t, "--")) != 0)
            goto fail;
        r = stage1(t, python, who);
    } else if (strncmp(target, "ssh://", 6) == 0) {
        const char *s = target + 6, *at = strchr(s, '@'), *hs = at != NULL ? at + 1 : s;
        const char *colon = strrchr(hs, ':');
        lp_target_argv_t far = {0};
        size_t hn = colon != NULL ? (size_t)(colon - hs) : strlen(hs);
        char *remote;

        if ((at != NULL && !word_ok(s, (size_t)(at - s), "")) || !word_ok(hs, hn, "") ||
            (colon != NULL && (colon[1] == 0 || strspn(colon + 1, "0123456789") !=
                                                    strlen(colon + 1)))) {
            snprintf(msg, msg_size, "bad target '%s': ssh://[user@]host[:port]", target);
            r = -EINVAL;
            goto fail;
        }
        snprintf(who, sizeof(who), "%.*s@%.*s", at != NULL ? (int)(at - s) : 0, s, (int)hn, hs);
        if ((far.argv = calloc(MAX_ARGS + 1, sizeof(char *))) == NULL ||
            (r = stage1(&far, python, who)) != 0) {
            lp_target_free(&far);
            goto fail;
        }
        remote = shell_join(far.argv, far.argc);
        lp_target_free(&far);
        if (remote == NULL) {
            r = -ENOMEM;
            goto fail;
        }
        r = 0;
        if ((r = adds(t, "ssh")) == 0 && (r = adds(t, "-T")) == 0 && (r = adds(t, "-o")) == 0)
            r = adds(t, "BatchMode=yes");
        if (r == 0 && colon != NULL && (r = adds(t, "-p")) == 0)
            r = adds(t, colon + 1);
        if (r == 0 && at != NULL && (r = adds(t, "-l")) == 0)
            r = add(t, s, (size_t)(at - s));
        if (r == 0 && (r = adds(t, "--")) == 0 && (r = add(t, hs, hn)) == 0)
            r = adds(t, remote);
        free(remote);
    } else {
        snprintf(msg, msg_size, "bad target '%s': local, sudo:USER or ssh://[user@]host[:port]",
                 target);
    }
    if (r == 0)
        return 0;
fail:
    lp_target_free(t);
    return r;
}
