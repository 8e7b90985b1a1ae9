/* cmd_kernel_spec.c: `limpet kernel install|list|remove`: the options and
 * what they print; the kernelspecs themselves are src/jupyter/spec.c's. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "jupyter/spec.h"
#include "net/net.h"

static const char install_usage[] =
    "usage: limpet kernel install [--env NAME] [--name N] [--display-name D]\n"
    "                             [--user | --prefix P] [--iopub-welcome] TARGET\n"
    "\n"
    "Write a Jupyter kernelspec that runs 'limpet kernel run TARGET': a notebook,\n"
    "VS Code or 'jupyter console --kernel N' then works inside the live process\n"
    "TARGET. The target is kept as typed and found again at each start, so use the\n"
    "server's name: a pid does not survive the host's restart.\n"
    "\n"
    "options:\n"
    "  --env NAME          a session in environment NAME of a 'limpet serve'\n"
    "  --name N            the kernel's name (default: limpet-TARGET[-ENV], lowercased,\n"
    "                      other characters than a-z 0-9 . _ - made '-')\n"
    "  --display-name D    as front ends show it (default: 'limpet: TARGET[/ENV]')\n"
    "  --user              in $JUPYTER_DATA_DIR/kernels, else\n"
    "                      ~/.local/share/jupyter/kernels (the default)\n"
    "  --prefix P          in P/share/jupyter/kernels (a venv's sys.prefix)\n"
    "  --iopub-welcome     the kernel sends iopub 'starting' when it starts\n"
    "  -h, --help          show this help and exit\n"
    "\n"
    "exit status: 0 installed, 1 it could not be written, 2 usage error\n";

static const char list_usage[] =
    "usage: limpet kernel list\n"
    "\n"
    "List the limpet kernelspecs Jupyter finds ($JUPYTER_PATH, the user's data\n"
    "directory, /usr/local/share/jupyter, /usr/share/jupyter): name, target, whether a\n"
    "server of that name is up now ('many' when several are, '?' when it cannot be\n"
    "told without connecting: ssh://, HOST:PORT), and the spec's directory.\n"
    "\n"
    "options:\n"
    "  -h, --help  show this help and exit\n";

static const char remove_usage[] =
    "usage: limpet kernel remove [--user | --prefix P] NAME\n"
    "\n"
    "Remove the limpet kernelspec NAME: the one Jupyter would use, or the one in the\n"
    "user's or P's kernels directory. Another kernel's spec is never removed.\n"
    "\n"
    "options:\n"
    "  --user      only in the user's kernels directory\n"
    "  --prefix P  only in P/share/jupyter/kernels\n"
    "  -h, --help  show this help and exit\n"
    "\n"
    "exit status: 0 removed, 1 not found or not limpet's, 2 usage error\n";

/* What install and remove are told. */
struct spec_args {
    lp_kspec_opts_t o;
    const char *name, *prefix, *arg; /* arg: TARGET or NAME */
    bool user;
};

/* The value of option argv[*i] (and steps over it), or NULL: a usage error. */
static const char *value(int argc, char **argv, int *i)
{
    return *i + 1 < argc ? argv[++*i] : NULL;
}

/* -1 to go on, else the exit status. install takes every option. */
static int parse(int argc, char **argv, const char *usage, bool install, struct spec_args *a)
{
    memset(a, 0, sizeof(*a));
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], **slot = NULL;

        if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0)
            return fputs(usage, stdout), 0;
        if (strcmp(opt, "--user") == 0) {
            a->user = true;
            continue;
        }
        if (install && strcmp(opt, "--iopub-welcome") == 0) {
            a->o.iopub_welcome = true;
            continue;
        }
        if (strcmp(opt, "--prefix") == 0)
            slot = &a->prefix;
        else if (install && strcmp(opt, "--env") == 0)
            slot = &a->o.env;
        else if (install && strcmp(opt, "--name") == 0)
            slot = &a->name;
        else if (install && strcmp(opt, "--display-name") == 0)
            slot = &a->o.display_name;
        if (slot != NULL && (*slot = value(argc, argv, &i)) == NULL)
            return lp_cli_usage_error(usage, "%s needs a value", opt);
        if (slot != NULL)
            continue;
        if (opt[0] == '-' && opt[1] != 0)
            return lp_cli_usage_error(usage, "unknown option '%s'", opt);
        if (a->arg != NULL)
            return lp_cli_usage_error(usage, "too many arguments: '%s'", opt);
        a->arg = opt;
    }
    if (a->arg == NULL)
        return lp_cli_usage_error(usage, "%s is required", install ? "TARGET" : "NAME");
    if (a->user && a->prefix != NULL)
        return lp_cli_usage_error(usage, "--user and --prefix exclude each other");
    return -1;
}

/* The kernels directory asked for (the user's when neither), in buf. */
static int kernels_dir(const struct spec_args *a, char *buf, size_t size)
{
    char why[256];
    int r = a->prefix ? lp_kspec_prefix_dir(a->prefix, buf, size, why, sizeof(why))
                      : lp_kspec_user_dir(buf, size, why, sizeof(why));

    if (r != 0)
        fprintf(stderr, "limpet: %s\n", why);
    return r;
}

static bool all_digits(const char *s)
{
    for (const char *p = s; *p != 0; p++)
        if (*p < '0' || *p > '9')
            return false;
    return s[0] != 0;
}

int lp_kernel_install_cmd(int argc, char **argv)
{
    char name[LP_KSPEC_NAME_MAX + 1], kernels[LP_KSPEC_PATH_MAX], why[LP_KSPEC_PATH_MAX + 128];
    struct spec_args a;
    json_t *spec;
    int r = parse(argc, argv, install_usage, true, &a);

    if (r >= 0)
        return r;
    a.o.target = a.arg;
    if (a.name != NULL && !lp_kspec_valid_name(a.name))
        return lp_cli_usage_error(install_usage,
                                  "--name '%s': a kernel name has only a-z 0-9 . _ - "
                                  "(Jupyter's rule, lowercase)", a.name);
    if (a.name == NULL && lp_kspec_default_name(a.arg, a.o.env, name, sizeof(name)) != 0)
        return lp_cli_usage_error(install_usage, "the target and env make too long a name: "
                                                 "give --name");
    if (a.name != NULL)
        snprintf(name, sizeof(name), "%s", a.name);
    if (all_digits(a.arg))
        fprintf(stderr, "limpet: warning: a pid target will not survive the host's restart; "
                        "use its name\n");
    if (kernels_dir(&a, kernels, sizeof(kernels)) != 0)
        return LP_EXIT_FAILURE;
    if ((spec = lp_kspec_build(&a.o, why, sizeof(why))) == NULL ||
        lp_kspec_write(kernels, name, spec, why, sizeof(why)) != 0) {
        json_decref(spec);
        fprintf(stderr, "limpet: %s\n", why);
        return LP_EXIT_FAILURE;
    }
    json_decref(spec);
    printf("installed kernelspec %s in %s/%s\n", name, kernels, name);
    return 0;
}

/* Whether target's server is up, quietly: "up", "down", "many" (several
 * match: the kernel would refuse to choose), "?" (cannot tell without
 * connecting: ssh://, a HOST:PORT no record names). Discovery records are
 * live (lp_discovery_list drops the stale ones); a socket path is dialled. */
static const char *state(const char *target)
{
    lp_target_kind_t kind = lp_target_kind(target);
    const char *s = "down";
    lp_target_t t;
    int fd, r;

    if (kind == LP_TARGET_SSH)
        return "?";
    r = lp_target_resolve(&t, target, NULL);
    if (r == -ENOTUNIQ) {
        s = "many";
    } else if (r == 0 && kind == LP_TARGET_PATH) {
        if (lp_net_dial(t.address, &fd) == 0) {
            close(fd);
            s = "up";
        }
    } else if (r == 0) {
        s = strcmp(t.address, target) == 0 ? "?" : "up"; /* else a record matched */
    }
    lp_target_clear(&t);
    return s;
}

int lp_kernel_list_cmd(int argc, char **argv)
{
    json_t *specs, *v;
    size_t i;

    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "-h") == 0 || strcmp(argv[k], "--help") == 0)
            return fputs(list_usage, stdout), 0;
        return lp_cli_usage_error(list_usage, "unknown argument '%s'", argv[k]);
    }
    if ((specs = lp_kspec_list()) == NULL) {
        fprintf(stderr, "limpet: out of memory\n");
        return LP_EXIT_FAILURE;
    }
    if (json_array_size(specs) == 0)
        fprintf(stderr, "limpet: no limpet kernelspec (see 'limpet kernel install --help')\n");
    else
        printf("%-24s %-24s %-5s %s\n", "NAME", "TARGET", "UP", "DIRECTORY");
    json_array_foreach(specs, i, v) {
        const char *target = json_string_value(json_object_get(v, "target"));
        const char *env = json_string_value(json_object_get(v, "env"));
        char shown[1024];

        snprintf(shown, sizeof(shown), "%s%s%s", target ? target : "?", env ? "/" : "",
                 env ? env : "");
        printf("%-24s %-24s %-5s %s\n", json_string_value(json_object_get(v, "name")), shown,
               target ? state(target) : "?", json_string_value(json_object_get(v, "dir")));
    }
    json_decref(specs);
    return 0;
}

int lp_kernel_remove_cmd(int argc, char **argv)
{
    char kernels[LP_KSPEC_PATH_MAX], dir[LP_KSPEC_PATH_MAX], why[LP_KSPEC_PATH_MAX + 128];
    struct spec_args a;
    int r = parse(argc, argv, remove_usage, false, &a);

    if (r >= 0)
        return r;
    if (!lp_kspec_valid_name(a.arg))
        return lp_cli_usage_error(remove_usage, "'%s' is not a kernel name", a.arg);
    if ((a.user || a.prefix) && kernels_dir(&a, kernels, sizeof(kernels)) != 0)
        return LP_EXIT_FAILURE;
    if (lp_kspec_find(a.arg, a.user || a.prefix ? kernels : NULL, dir, sizeof(dir), why,
                      sizeof(why)) != 0 ||
        lp_kspec_remove(dir, why, sizeof(why)) != 0) {
        fprintf(stderr, "limpet: %s\n", why);
        return LP_EXIT_FAILURE;
    }
    printf("removed kernelspec %s from %s\n", a.arg, dir);
    return 0;
}
