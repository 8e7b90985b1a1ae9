/* target.h: what a user types to name a server (TARGET), resolved once for
 * every front end: the limpet command, the extension (limpet.resolve). A
 * name or pid from the discovery records, a socket path, HOST:PORT or
 * [V6]:PORT, ssh://[USER@]HOST[:PORT][/TARGET] (resolved on the far side
 * by its bridge), or nothing: the only server running for this user. */
#ifndef LP_CLIENT_TARGET_H
#define LP_CLIENT_TARGET_H

#include <jansson.h>

#include "wire/wire.h"

#define LP_TARGET_ADDRESS_MAX 4096 /* a resolved address, with its NUL */

/* What a TARGET is, from its text alone. */
typedef enum lp_target_kind {
    LP_TARGET_ONLY,    /* none given: the only server running */
    LP_TARGET_SSH,     /* ssh://...: its own address */
    LP_TARGET_PATH,    /* has a '/' and no ':': a socket path, its own address */
    LP_TARGET_NAME,    /* a name, a pid, or HOST:PORT: the records first */
} lp_target_kind_t;

/* A resolved target; lp_target_clear frees what it owns. */
typedef struct lp_target {
    char address[LP_TARGET_ADDRESS_MAX]; /* where to connect (lp_client_open) */
    char token[LP_WIRE_TOKEN_MAX + 1];   /* from the server's token file; "" when none */
    json_t *matches;                     /* on -ENOTUNIQ: the records that matched, oldest
                                            first (owned) */
    char message[LP_TARGET_ADDRESS_MAX + 128]; /* on failure: why, lowercase, no "limpet: " */
} lp_target_t;

/* The kind of target (NULL: LP_TARGET_ONLY). */
lp_target_kind_t lp_target_kind(const char *target);

/* Resolves target (NULL: the only server) against the live records in dir
 * (NULL: this user's runtime directory) into *t, which is overwritten
 * (clear it first if it holds matches). 0; or, with t->message
 * set: -ENOENT (no server by that name, or none running), -ENOTUNIQ
 * (several match: t->matches holds them), -ENAMETOOLONG (the address does
 * not fit). A record's address wins over a HOST:PORT or path that happens
 * to equal it, so its token comes along. */
int lp_target_resolve(lp_target_t *t, const char *target, const char *dir);
/* Frees what t owns; NULL is accepted. */
void lp_target_clear(lp_target_t *t);

#endif
