/* spec.h: Jupyter kernelspecs for `limpet kernel run` (docs/jupyter.md
 * section 8): build kernel.json, find Jupyter's kernel directories as
 * jupyter_core does on Linux, write, list and remove limpet's specs. No
 * printing: failures come back with a one-line reason in why[size]. */
#ifndef LP_JUPYTER_SPEC_H
#define LP_JUPYTER_SPEC_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define LP_KSPEC_PATH_MAX 4096
#define LP_KSPEC_NAME_MAX 255 /* a directory name */

/* What a kernelspec says; NULL fields take their defaults. */
typedef struct lp_kspec_opts {
    const char *target;       /* as typed; resolved at each start of the kernel */
    const char *env;          /* --env NAME of a 'limpet serve', or NULL */
    const char *display_name; /* NULL: "limpet: TARGET" or "limpet: TARGET/ENV" */
    bool iopub_welcome;       /* adds --iopub-welcome to the kernel's argv */
} lp_kspec_opts_t;

/* kernel.json's object: argv[0] the running binary (/proc/self/exe,
 * resolved), "{connection_file}" its own element, metadata.limpet. NULL
 * with why said (no /proc, out of memory). */
json_t *lp_kspec_build(const lp_kspec_opts_t *o, char *why, size_t size);

/* "limpet-" TARGET ("-" ENV), lowercased, every character outside
 * [a-z0-9._-] made '-'. 0, or -1 when it does not fit. */
int lp_kspec_default_name(const char *target, const char *env, char *buf, size_t size);
/* Jupyter's rule for kernel names, lowercase as Jupyter stores them: only
 * [a-z0-9._-], not "." or "..", at most LP_KSPEC_NAME_MAX bytes. */
bool lp_kspec_valid_name(const char *name);

/* The user's kernels directory, as jupyter_core.paths.jupyter_data_dir():
 * $JUPYTER_DATA_DIR, else $XDG_DATA_HOME/jupyter, else
 * ~/.local/share/jupyter; with "/kernels". 0, or -1 with why. */
int lp_kspec_user_dir(char *buf, size_t size, char *why, size_t why_size);
/* PREFIX/share/jupyter/kernels. 0, or -1 with why. */
int lp_kspec_prefix_dir(const char *prefix, char *buf, size_t size, char *why, size_t why_size);
/* Jupyter's kernel directories, first wins (jupyter_core.paths.jupyter_path
 * ("kernels")): each $JUPYTER_PATH entry, the user's data directory, the
 * Python user base's (~/.local/share/jupyter), /usr/local/share/jupyter,
 * /usr/share/jupyter. An array of strings; NULL when out of memory. */
json_t *lp_kspec_search_path(void);

/* Reads DIR/kernel.json: 1 and *limpet (metadata.limpet, a new reference,
 * may be NULL) when it is a limpet kernelspec; 0 when it is another
 * kernel's; -1 with why when there is none or it is not JSON. */
int lp_kspec_read(const char *dir, json_t **limpet, char *why, size_t size);

/* Writes spec to KERNELS/NAME/kernel.json through a temporary file and a
 * rename; directories made 0755, the file 0644. Refuses to replace another
 * kernel's spec. 0, or -1 with why. */
int lp_kspec_write(const char *kernels, const char *name, const json_t *spec, char *why,
                   size_t size);

/* The limpet kernelspecs Jupyter sees, in search order, one per name (the
 * first, as Jupyter picks): an array of {"name", "dir", "target", "env"}
 * (env null when none). NULL when out of memory. */
json_t *lp_kspec_list(void);

/* Where kernelspec name is: in kernels when given, else the first of the
 * search path. 0 with DIR in buf, or -1 with why ("no kernelspec ..."). */
int lp_kspec_find(const char *name, const char *kernels, char *buf, size_t size, char *why,
                  size_t why_size);
/* Removes spec directory dir and what it holds, only if it is a limpet
 * kernelspec. 0, or -1 with why. */
int lp_kspec_remove(const char *dir, char *why, size_t size);

/* The Jupyter data directory of `limpet jupyter`'s temporary specs, made
 * private: the runtime directory's "jupyter" (lp_net_runtime_dir); its
 * "kernels" holds them. 0, or -1 with why. */
int lp_kspec_tmp_data_dir(char *buf, size_t size, char *why, size_t why_size);

#endif
