/* target.c: the command that starts an environment's far Python, from its
 * target ("local", "sudo:USER", "ssh://[user@]host[:port]"), as
 * docs/contexts.md says limpet.connect starts one. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/ssh.h"
#include "context/bootstrap.h"
#include "serve/target.h"

#define MAX_ARGS 24

/* A user name as sudo takes it: no option, no shell character. */
static bool user_ok(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n <= 64 && s[0] != '-' &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
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
    char tag[700];
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
    char who[600], host[64] = "?";
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

        if (!user_ok(user)) {
            snprintf(msg, msg_size, "bad target '%s': a user name after sudo:", target);
            goto fail;
        }
        snprintf(who, sizeof(who), "%s@%s", user, host);
        t->compiled = true;
        /* -n: no password prompt; a server has no one to type it */
        if ((r = adds(t, "sudo")) != 0 || (r = adds(t, "-n")) != 0 || (r = adds(t, "-u")) != 0 ||
            (r = adds(t, user)) != 0 || (r = adds(t, "--")) != 0)
            goto fail;
        r = stage1(t, python, who);
    } else if (lp_ssh_is_url(target)) {
        lp_ssh_url_t u;
        const char *why = NULL, *args[LP_SSH_ARGS_MAX];
        lp_target_argv_t far = {0};
        char script[4096], *remote = NULL;

        if (lp_ssh_parse(target, &u, &why) != 0 || u.target[0] != 0) {
            snprintf(msg, msg_size, "bad target '%s': %s", target,
                     why != NULL ? why : "ssh://[user@]host[:port], with no path");
            r = -EINVAL;
            goto fail;
        }
        snprintf(who, sizeof(who), "%s@%s", u.user, u.host);
        if ((far.argv = calloc(MAX_ARGS + 1, sizeof(char *))) != NULL &&
            (r = stage1(&far, python, who)) == 0)
            remote = shell_join(far.argv, far.argc); /* the far login shell reads one string */
        lp_target_free(&far);
        if (remote == NULL) {
            r = -ENOMEM;
            goto fail;
        }
        lp_ssh_argv(&u, remote, true, args, script, sizeof(script));
        for (int i = 0; args[i] != NULL && r == 0; i++)
            r = adds(t, args[i]);
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
