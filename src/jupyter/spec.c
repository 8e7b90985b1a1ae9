/* spec.c: Jupyter kernelspecs (spec.h). */
#include "jupyter/spec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io.h"
#include "net/net.h"

__attribute__((format(printf, 3, 4))) static int fail(char *why, size_t size, const char *fmt,
                                                      ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
    return -1;
}

json_t *lp_kspec_build(const lp_kspec_opts_t *o, char *why, size_t size)
{
    char exe[PATH_MAX], display[1024];
    json_t *argv, *spec;

    const char *texts[][2] = {{"the target", o->target}, {"the env", o->env},
                              {"the display name", o->display_name}};

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        json_t *v = texts[i][1] ? json_string(texts[i][1]) : json_null();

        if (v == NULL) {
            fail(why, size, "%s is not UTF-8 text", texts[i][0]);
            return NULL;
        }
        json_decref(v);
    }
    if (realpath("/proc/self/exe", exe) == NULL) {
        fail(why, size, "cannot find the limpet binary (/proc/self/exe): %s", strerror(errno));
        return NULL;
    }
    if (o->display_name != NULL)
        snprintf(display, sizeof(display), "%s", o->display_name);
    else
        snprintf(display, sizeof(display), "limpet: %s%s%s", o->target, o->env ? "/" : "",
                 o->env ? o->env : "");
    argv = json_pack("[sss]", exe, "kernel", "run");
    if (argv != NULL) {
        json_array_append_new(argv, json_string(o->target));
        if (o->env != NULL) {
            json_array_append_new(argv, json_string("--env"));
            json_array_append_new(argv, json_string(o->env));
        }
        if (o->iopub_welcome)
            json_array_append_new(argv, json_string("--iopub-welcome"));
        json_array_append_new(argv, json_string("-f"));
        json_array_append_new(argv, json_string("{connection_file}"));
    }
    if (argv == NULL) {
        fail(why, size, "out of memory");
        return NULL;
    }
    spec = json_pack("{s:o, s:s, s:s, s:s, s:{s:{s:s, s:s*}}}", "argv", argv, "display_name",
                     display, "language", "python", "interrupt_mode", "message", "metadata",
                     "limpet", "target", o->target, "env", o->env);
    /* json_pack gives "env": absent for NULL with s*; the spec says null. */
    if (spec != NULL && o->env == NULL)
        json_object_set_new(json_object_get(json_object_get(spec, "metadata"), "limpet"), "env",
                            json_null());
    if (spec == NULL)
        fail(why, size, "out of memory");
    return spec;
}

static bool name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
           ch == '-';
}

int lp_kspec_default_name(const char *target, const char *env, char *buf, size_t size)
{
    int n = snprintf(buf, size, "limpet-%s%s%s", target, env ? "-" : "", env ? env : "");

    if (n < 0 || (size_t)n >= size || n > LP_KSPEC_NAME_MAX)
        return -1;
    for (char *p = buf; *p != 0; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
        else if (!name_char(*p))
            *p = '-';
    }
    return 0;
}

bool lp_kspec_valid_name(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > LP_KSPEC_NAME_MAX || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    for (const char *p = name; *p != 0; p++)
        if (!name_char(*p))
            return false;
    return true;
}

/* $HOME, else the password file's, as os.path.expanduser("~"); NULL when none. */
static const char *home_dir(void)
{
    const char *home = getenv("HOME");
    struct passwd *pw;

    if (home != NULL && home[0] != 0)
        return home;
    pw = getpwuid(getuid());
    return pw != NULL ? pw->pw_dir : NULL;
}

static int fit(int n, size_t size, char *why, size_t why_size)
{
    if (n < 0 || (size_t)n >= size)
        return fail(why, why_size, "the kernels directory's path is too long");
    return 0;
}

/* jupyter_core.paths.jupyter_data_dir() on Linux; "" values count as unset. */
static int data_dir(char *buf, size_t size, char *why, size_t why_size)
{
    const char *jdd = getenv("JUPYTER_DATA_DIR"), *xdg = getenv("XDG_DATA_HOME");
    const char *home = home_dir();

    if (jdd != NULL && jdd[0] != 0)
        return fit(snprintf(buf, size, "%s", jdd), size, why, why_size);
    if (xdg != NULL && xdg[0] != 0)
        return fit(snprintf(buf, size, "%s/jupyter", xdg), size, why, why_size);
    if (home == NULL)
        return fail(why, why_size, "no home directory: set JUPYTER_DATA_DIR or use --prefix");
    return fit(snprintf(buf, size, "%s/.local/share/jupyter", home), size, why, why_size);
}

int lp_kspec_user_dir(char *buf, size_t size, char *why, size_t why_size)
{
    char d[LP_KSPEC_PATH_MAX];

    if (data_dir(d, sizeof(d), why, why_size) != 0)
        return -1;
    return fit(snprintf(buf, size, "%s/kernels", d), size, why, why_size);
}

int lp_kspec_prefix_dir(const char *prefix, char *buf, size_t size, char *why, size_t why_size)
{
    return fit(snprintf(buf, size, "%s/share/jupyter/kernels", prefix), size, why, why_size);
}

/* Appends DIR/kernels to path unless it is there already. */
static void add_dir(json_t *path, const char *dir, size_t len)
{
    char buf[LP_KSPEC_PATH_MAX];
    json_t *v;
    size_t i;

    while (len > 1 && dir[len - 1] == '/') /* jupyter_core strips trailing separators */
        len--;
    if (len == 0 || snprintf(buf, sizeof(buf), "%.*s/kernels", (int)len, dir) >= (int)sizeof(buf))
        return;
    json_array_foreach(path, i, v)
        if (strcmp(json_string_value(v), buf) == 0)
            return;
    json_array_append_new(path, json_string(buf));
}

json_t *lp_kspec_search_path(void)
{
    const char *jp = getenv("JUPYTER_PATH"), *ub = getenv("PYTHONUSERBASE"), *home = home_dir();
    json_t *path = json_array();
    char buf[LP_KSPEC_PATH_MAX], why[16];

    if (path == NULL)
        return NULL;
    for (const char *p = jp; p != NULL && *p != 0;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);

        add_dir(path, p, len);
        p = end ? end + 1 : NULL;
    }
    if (data_dir(buf, sizeof(buf), why, sizeof(why)) == 0)
        add_dir(path, buf, strlen(buf));
    /* site.getuserbase() + share/jupyter */
    if (ub != NULL && ub[0] != 0)
        snprintf(buf, sizeof(buf), "%s/share/jupyter", ub);
    else if (home != NULL)
        snprintf(buf, sizeof(buf), "%s/.local/share/jupyter", home);
    else
        buf[0] = 0;
    add_dir(path, buf, strlen(buf));
    add_dir(path, "/usr/local/share/jupyter", strlen("/usr/local/share/jupyter"));
    add_dir(path, "/usr/share/jupyter", strlen("/usr/share/jupyter"));
    return path;
}

int lp_kspec_read(const char *dir, json_t **limpet, char *why, size_t size)
{
    char file[LP_KSPEC_PATH_MAX];
    json_error_t err;
    json_t *spec, *meta;

    *limpet = NULL;
    if (snprintf(file, sizeof(file), "%s/kernel.json", dir) >= (int)sizeof(file))
        return fail(why, size, "%s: path too long", dir);
    if ((spec = json_load_file(file, 0, &err)) == NULL) {
        if (access(file, F_OK) != 0)
            return fail(why, size, "%s: %s", file, strerror(errno));
        return fail(why, size, "%s: not a kernelspec (%s)", file, err.text);
    }
    meta = json_object_get(json_object_get(spec, "metadata"), "limpet");
    if (json_is_object(meta))
        *limpet = json_incref(meta);
    json_decref(spec);
    return *limpet != NULL ? 1 : 0;
}

int lp_kspec_write(const char *kernels, const char *name, const json_t *spec, char *why,
                   size_t size)
{
    char dir[LP_KSPEC_PATH_MAX], tmp[LP_KSPEC_PATH_MAX + 32], file[LP_KSPEC_PATH_MAX + 16];
    json_t *meta = NULL;
    int fd, r;

    if (snprintf(dir, sizeof(dir), "%s/%s", kernels, name) >= (int)sizeof(dir))
        return fail(why, size, "the kernelspec's path is too long");
    r = lp_kspec_read(dir, &meta, why, size);
    json_decref(meta);
    snprintf(file, sizeof(file), "%s/kernel.json", dir);
    if (r == 0 || (r < 0 && access(file, F_OK) == 0))
        return fail(why, size, "%s is another kernel's spec: not replaced (remove it first)",
                    dir);
    if (lp_io_make_dirs(dir, 0755) != 0)
        return fail(why, size, "cannot make %s: %s", dir, strerror(errno));
    chmod(dir, 0755); /* umask aside: Jupyter run by another user may read it */
    snprintf(tmp, sizeof(tmp), "%s/.kernel.json.XXXXXX", dir);
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
        return fail(why, size, "cannot write in %s: %s", dir, strerror(errno));
    r = json_dumpfd(spec, fd, JSON_INDENT(1) | JSON_ENSURE_ASCII);
    if (r == 0)
        r = write(fd, "\n", 1) == 1 ? 0 : -1;
    if (r == 0)
        r = fchmod(fd, 0644) | fsync(fd);
    if (close(fd) != 0 || r != 0 || rename(tmp, file) != 0) {
        int e = errno;

        unlink(tmp);
        return fail(why, size, "cannot write %s: %s", file, strerror(e));
    }
    return 0;
}

/* Adds the limpet specs in kernels/ that no earlier directory named. */
static void list_dir(json_t *out, const char *kernels)
{
    DIR *d = opendir(kernels);
    struct dirent *e;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        char dir[LP_KSPEC_PATH_MAX], name[LP_KSPEC_NAME_MAX + 1], why[16];
        json_t *meta = NULL, *v;
        bool seen = false;
        size_t i;

        if (e->d_name[0] == '.' || strlen(e->d_name) > LP_KSPEC_NAME_MAX)
            continue;
        for (i = 0; e->d_name[i] != 0; i++) /* Jupyter lowercases directory names */
            name[i] = (char)(e->d_name[i] >= 'A' && e->d_name[i] <= 'Z' ? e->d_name[i] + 32
                                                                        : e->d_name[i]);
        name[i] = 0;
        json_array_foreach(out, i, v)
            seen = seen || strcmp(json_string_value(json_object_get(v, "name")), name) == 0;
        if (seen || !lp_kspec_valid_name(name) ||
            snprintf(dir, sizeof(dir), "%s/%s", kernels, e->d_name) >= (int)sizeof(dir))
            continue;
        /* Another kernel's spec still hides a later limpet one of that name. */
        if (lp_kspec_read(dir, &meta, why, sizeof(why)) >= 0)
            json_array_append_new(
                out, json_pack("{s:s, s:s, s:O?, s:O?, s:b}", "name", name, "dir", dir, "target",
                               json_object_get(meta, "target"), "env",
                               json_object_get(meta, "env"), "limpet", meta != NULL));
        json_decref(meta);
    }
    closedir(d);
}

json_t *lp_kspec_list(void)
{
    json_t *path = lp_kspec_search_path(), *all = json_array(), *out = json_array(), *v;
    size_t i;

    if (path == NULL || all == NULL || out == NULL) {
        json_decref(path);
        json_decref(all);
        json_decref(out);
        return NULL;
    }
    json_array_foreach(path, i, v)
        list_dir(all, json_string_value(v));
    json_array_foreach(all, i, v)
        if (json_is_true(json_object_get(v, "limpet"))) {
            json_object_del(v, "limpet");
            json_array_append(out, v);
        }
    json_decref(path);
    json_decref(all);
    return out;
}

int lp_kspec_find(const char *name, const char *kernels, char *buf, size_t size, char *why,
                  size_t why_size)
{
    json_t *path = kernels ? json_pack("[s]", kernels) : lp_kspec_search_path(), *v;
    struct stat st;
    size_t i;

    json_array_foreach(path, i, v) {
        snprintf(buf, size, "%s/%s/kernel.json", json_string_value(v), name);
        if (stat(buf, &st) == 0 && S_ISREG(st.st_mode)) {
            snprintf(buf, size, "%s/%s", json_string_value(v), name);
            json_decref(path);
            return 0;
        }
    }
    json_decref(path);
    if (kernels != NULL)
        return fail(why, why_size, "no kernelspec '%s' in %s", name, kernels);
    return fail(why, why_size, "no kernelspec '%s' (see 'limpet kernel list')", name);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

int lp_kspec_remove(const char *dir, char *why, size_t size)
{
    json_t *meta = NULL;
    int r = lp_kspec_read(dir, &meta, why, size);

    json_decref(meta);
    if (r < 0)
        return -1;
    if (r == 0)
        return fail(why, size, "%s is not a limpet kernelspec: not removed", dir);
    if (nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return fail(why, size, "cannot remove %s: %s", dir, strerror(errno));
    return 0;
}

int lp_kspec_tmp_data_dir(char *buf, size_t size, char *why, size_t why_size)
{
    char run[LP_KSPEC_PATH_MAX];
    int r = lp_net_runtime_dir(run, sizeof(run));

    if (r != 0)
        return fail(why, why_size, "no runtime directory: %s", strerror(-r));
    if (fit(snprintf(buf, size, "%s/jupyter", run), size, why, why_size) != 0)
        return -1;
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return fail(why, why_size, "cannot make %s: %s", buf, strerror(errno));
    return 0;
}
