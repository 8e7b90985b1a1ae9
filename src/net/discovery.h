/* discovery.h: the records beside each server's socket that `limpet list`,
 * `limpet connect NAME` and limpet.servers() read: <runtime dir>/<pid>.json,
 * mode 0600, and the TCP token's <pid>.token. Both sides of the rule live
 * here, once: the server writes (lp_discovery_write), every reader (the
 * client library, the Python package through the extension) lists. */
#ifndef LP_NET_DISCOVERY_H
#define LP_NET_DISCOVERY_H

#include <stdbool.h>
#include <jansson.h>
#include <sys/types.h>

/* Fills buf with dir/<pid>.<ext>. 0 or -ENAMETOOLONG. */
int lp_discovery_path(char *buf, size_t size, const char *dir, pid_t pid, const char *ext);

/* Writes record (an object: pid, name, argv, address, started, python,
 * limpet) atomically to dir/<pid>.json. 0 or a negative errno. */
int lp_discovery_write(const char *dir, pid_t pid, const json_t *record);

/* Writes text and a newline to dir/<pid>.<ext> atomically, mode 0600 (the
 * TCP token's connection file). */
int lp_discovery_write_text(const char *dir, pid_t pid, const char *ext, const char *text);

/* Removes dir/<pid>.json and dir/<pid>.token if they are there. */
void lp_discovery_remove(const char *dir, pid_t pid);

/* True while the server of rec (a record object) runs: its pid is a
 * process that started no later than the record's "started" (ms since the
 * epoch) allows; a pid reused by a younger process is not. */
bool lp_discovery_is_live(const json_t *rec);

/* The live records in dir, oldest first, as a new array the caller owns
 * (empty when dir cannot be read; NULL only when out of memory). Stale
 * records are removed with their token and socket files; files that are
 * not records (or are being written) are left alone. */
json_t *lp_discovery_list(const char *dir);

/* Reads dir/<pid>.token into token, without its newline: 0, or -errno
 * (-ENOENT: none) with token "". */
int lp_discovery_read_token(const char *dir, pid_t pid, char *token, size_t size);

#endif
