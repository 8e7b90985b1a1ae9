/* discovery.h: the records beside each server's socket that `limpet list`
 * and `limpet connect NAME` read: <runtime dir>/<pid>.json, mode 0600. */
#ifndef LP_NET_DISCOVERY_H
#define LP_NET_DISCOVERY_H

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

#endif
