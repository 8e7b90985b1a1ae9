/* present.c: one table from op to how it is shown (present.h). */
#include "cli/present.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wire/ops.h"

#define RED "\033[31m"
#define RESET "\033[0m"

static const char *str(const json_t *h, const char *key)
{
    const char *v = json_string_value(json_object_get(h, key));

    return v != NULL ? v : "";
}

static void show_out(const lp_presenter_t *p, lp_frame_t *f)
{
    int fd = strcmp(str(f->header, "stream"), "stderr") == 0 ? STDERR_FILENO : STDOUT_FILENO;

    p->write(p->ctx, fd, f->payload, f->payload_len);
}

static void show_value(const lp_presenter_t *p, lp_frame_t *f)
{
    uint8_t *line = realloc(f->payload, f->payload_len + 1); /* one write, with its newline */

    if (line != NULL) {
        f->payload = line;
        line[f->payload_len++] = '\n';
    }
    p->write(p->ctx, STDOUT_FILENO, f->payload, f->payload_len);
}

static void show_exception(const lp_presenter_t *p, lp_frame_t *f)
{
    if (p->colour)
        p->write(p->ctx, STDERR_FILENO, RED, strlen(RED));
    p->write(p->ctx, STDERR_FILENO, f->payload, f->payload_len);
    if (p->colour)
        p->write(p->ctx, STDERR_FILENO, RESET, strlen(RESET));
}

static void show_page(const lp_presenter_t *p, lp_frame_t *f)
{
    if (p->page != NULL)
        p->page(p->ctx, f->payload, f->payload_len);
    else
        p->write(p->ctx, STDOUT_FILENO, f->payload, f->payload_len);
}

/* Every op a server sends a client; others are ignored. */
static const struct {
    lp_op_t op;                                          /* the frame's op */
    void (*show)(const lp_presenter_t *, lp_frame_t *); /* NULL: nothing shown */
    lp_shown_t shown;                                    /* what the caller does next */
} table[] = {
    {LP_OP_OUT, show_out, LP_SHOWN_NOTHING},
    {LP_OP_VALUE, show_value, LP_SHOWN_NOTHING},
    {LP_OP_EXCEPTION, show_exception, LP_SHOWN_NOTHING},
    {LP_OP_PAGE, show_page, LP_SHOWN_NOTHING},
    {LP_OP_INPUT, NULL, LP_SHOWN_INPUT},
    {LP_OP_DONE, NULL, LP_SHOWN_DONE},
    {LP_OP_ERROR, NULL, LP_SHOWN_ERROR},
    {LP_OP_BYE, NULL, LP_SHOWN_BYE},
};

lp_shown_t lp_present(const lp_presenter_t *p, lp_frame_t *f, lp_route_t *rt)
{
    const lp_op_spec_t *spec;

    lp_route_get(f->header, rt);
    if (rt->op == NULL || (spec = lp_op_lookup(rt->op)) == NULL)
        return LP_SHOWN_NOTHING;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (table[i].op != spec->op)
            continue;
        if (table[i].show != NULL)
            table[i].show(p, f);
        return table[i].shown;
    }
    return LP_SHOWN_NOTHING;
}

void lp_present_error(const lp_presenter_t *p, const json_t *h)
{
    char line[4200];
    int n = snprintf(line, sizeof(line), "limpet: %s\n", str(h, "message"));

    p->write(p->ctx, STDERR_FILENO, line,
             (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}
