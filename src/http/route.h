/* route.h: a request's method and path to what it asks for (docs/http.md),
 * pure string work a unit test drives. */
#ifndef LP_HTTP_ROUTE_H
#define LP_HTTP_ROUTE_H

#include <stdint.h>

#define LP_HTTP_NAME_MAX 64 /* an environment's name, as the core bounds it */

typedef enum lp_http_what {
    LP_HTTP_CONSOLE,        /* GET / */
    LP_HTTP_ARTICLE_EXEC,   /* POST / (id=, code=) */
    LP_HTTP_ARTICLE_CREATE, /* POST /env/create */
    LP_HTTP_ARTICLE_DELETE, /* POST /env/delete */
    LP_HTTP_ARTICLE_GET,    /* POST /env/get */
    LP_HTTP_ENVS_LIST,      /* GET /api/envs */
    LP_HTTP_ENVS_CREATE,    /* POST /api/envs */
    LP_HTTP_ENV_GET,        /* GET /api/envs/{name} */
    LP_HTTP_ENV_DELETE,     /* DELETE /api/envs/{name} */
    LP_HTTP_ENV_RESTART,    /* POST /api/envs/{name}/restart */
    LP_HTTP_ENV_EXEC,       /* POST /api/envs/{name}/exec */
    LP_HTTP_ENV_INTERRUPT,  /* POST /api/envs/{name}/interrupt */
    LP_HTTP_RUNS_LIST,      /* GET /api/envs/{name}/runs */
    LP_HTTP_RUN_GET,        /* GET /api/envs/{name}/runs/{id} */
    LP_HTTP_PING,           /* GET /api/ping: a health check, and the bench's static answer */
} lp_http_what_t;

typedef struct lp_http_route {
    lp_http_what_t what;
    char env[LP_HTTP_NAME_MAX + 1]; /* {name}, or "" */
    uint64_t run;                   /* {id}, or 0 */
} lp_http_route_t;

#define LP_HTTP_ENOROUTE (-1)  /* 404 not-found: no such path */
#define LP_HTTP_EMETHOD (-2)   /* 405: the path exists, not with this method */
#define LP_HTTP_EBADNAME (-3)  /* 400: {name} longer than any environment's */
#define LP_HTTP_EBADRUN (-4)   /* 404 no-such-run: {id} is not a run number */

/* 0 with *rt filled, or one of the codes above. path is MHD's: decoded,
 * without its query. */
int lp_http_route(const char *method, const char *path, lp_http_route_t *rt);
/* "GET, POST": the methods path answers to (for a 405's Allow), or NULL. */
const char *lp_http_route_allow(const char *path);

#endif
