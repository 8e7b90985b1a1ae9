/* history.c: the kernel's own history of executed cells (the host keeps
 * none): in memory, at most K_HISTORY_MAX entries, served as
 * history_request's tail, range and search (docs/jupyter.md section 3.3). */
#include <fnmatch.h>
#include <string.h>

#include "jupyter/internal.h"

#define K_HISTORY_MAX 10000

void k_history_add(kernel_t *k, int64_t count, const char *input, const char *output)
{
    if (json_array_size(k->history) >= K_HISTORY_MAX)
        json_array_remove(k->history, 0);
    json_array_append_new(k->history, json_pack("[I,I,s,s?]", (json_int_t)k->history_session,
                                                (json_int_t)count, input, output));
}

/* One entry as the reply wants it: [session, line, input] or, with output,
 * [session, line, [input, output]]. */
static json_t *entry(const json_t *e, bool output)
{
    json_t *s = json_array_get(e, 0), *line = json_array_get(e, 1), *in = json_array_get(e, 2);

    if (!output)
        return json_pack("[O,O,O]", s, line, in);
    return json_pack("[O,O,[O,O]]", s, line, in, json_array_get(e, 3));
}

static int64_t int_or(const json_t *c, const char *key, int64_t dflt)
{
    const json_t *v = json_object_get(c, key);

    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

json_t *k_history_reply(kernel_t *k, const json_t *c)
{
    const char *how = k_str(c, "hist_access_type", "tail");
    bool output = json_is_true(json_object_get(c, "output"));
    size_t size = json_array_size(k->history);
    json_t *out = json_array();

    if (strcmp(how, "tail") == 0) {
        int64_t n = int_or(c, "n", 10);
        size_t from = n >= 0 && (size_t)n < size ? size - (size_t)n : 0;

        for (size_t i = from; i < size; i++)
            json_array_append_new(out, entry(json_array_get(k->history, i), output));
    } else if (strcmp(how, "range") == 0) {
        int64_t session = int_or(c, "session", 0), start = int_or(c, "start", 1),
                stop = int_or(c, "stop", INT64_MAX);

        /* 0 is this session, as IPython's; older sessions are not kept */
        if (session == 0 || session == k->history_session)
            for (size_t i = 0; i < size; i++) {
                const json_t *e = json_array_get(k->history, i);
                int64_t line = (int64_t)json_integer_value(json_array_get(e, 1));

                if (line >= start && line < stop)
                    json_array_append_new(out, entry(e, output));
            }
    } else if (strcmp(how, "search") == 0) {
        const char *pattern = k_str(c, "pattern", "*");
        bool unique = json_is_true(json_object_get(c, "unique"));
        int64_t n = int_or(c, "n", -1);

        /* newest first while counting n, then in history order, as IPython */
        for (size_t i = size; i-- > 0 && (n < 0 || (int64_t)json_array_size(out) < n);) {
            const json_t *e = json_array_get(k->history, i);
            const char *in = json_string_value(json_array_get(e, 2));
            bool seen = false;

            if (fnmatch(pattern, in, 0) != 0)
                continue;
            for (size_t j = 0; unique && j < json_array_size(out) && !seen; j++) {
                const json_t *o = json_array_get(out, j);
                const json_t *oin = json_array_get(o, 2);

                if (json_is_array(oin))
                    oin = json_array_get(oin, 0);
                seen = strcmp(json_string_value(oin), in) == 0;
            }
            if (!seen)
                json_array_insert_new(out, 0, entry(e, output));
        }
    }
    return json_pack("{s:s,s:o}", "status", "ok", "history", out);
}
