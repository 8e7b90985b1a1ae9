/* net.h: sockets for the server and the client: the per-user runtime
 * directory, Unix and TCP listeners, dialling, peer credentials. (The
 * discovery records are discovery.h's; framed I/O is src/io's.) No Python
 * here. Functions return 0 or a negative errno value. */
#ifndef LP_NET_H
#define LP_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#define LP_NET_PATH_MAX 108 /* sun_path, with its NUL */

/* unix.c */

/* Fills buf with the per-user runtime directory for limpet, creating it if
 * needed: $XDG_RUNTIME_DIR/limpet when XDG_RUNTIME_DIR is an absolute,
 * existing directory of ours, else /tmp/limpet-$UID. The directory must end
 * up mode 0700, owned by us and not a symlink, or -EPERM. */
int lp_net_runtime_dir(char *buf, size_t size);

/* A listening Unix socket at path, mode 0600, close-on-exec, in *fd. A
 * stale socket file (nobody accepting on it) is replaced; a live one is
 * -EADDRINUSE. */
int lp_net_listen_unix(const char *path, int *fd);

/* tcp.c */

/* Parses "A.B.C.D:PORT" or "[V6]:PORT" (numeric only). 0 or -EINVAL. */

int lp_net_parse_tcp(const char *address, struct sockaddr_storage *ss, socklen_t *len);
/* True for 127.0.0.0/8, ::1 and v4-mapped 127.x. */
bool lp_net_is_loopback(const struct sockaddr_storage *ss);
/* A listening TCP socket for address; bound gets the actual "host:port"
 * (port 0 picks one). */
int lp_net_listen_tcp(const char *address, int *fd, char *bound, size_t size);
/* Turns Nagle's algorithm off on TCP socket fd: a reply written in two
 * parts (output, then done) must not wait for the peer's delayed ACK
 * (about 40 ms on Linux). 0 or a negative errno value. */
int lp_net_tcp_nodelay(int fd);
/* A connected, close-on-exec stream socket in *fd, to a Unix socket path or
 * to "HOST:PORT" / "[V6]:PORT" (numeric; TCP gets TCP_NODELAY). 0 or a
 * negative errno value (-ENAMETOOLONG for a path too long). */
int lp_net_dial(const char *address, int *fd);
/* The uid owning the loopback peer socket of TCP connection fd, from one
 * exact NETLINK_SOCK_DIAG lookup; -ENOENT when the kernel does not know it
 * (not local, or already closed). It is the uid of whoever created the
 * peer socket (docs/security.md). */
int lp_net_tcp_peer_uid(int fd, uid_t *uid);

/* unix.c */

/* The uid of the process at the other end of Unix socket fd. */
int lp_net_peer_uid(int fd, uid_t *uid);

/* True when a peer with this uid may use a server run by us: same uid, or
 * root. */
bool lp_net_uid_allowed(uid_t peer);

/* Writes all n bytes, retrying on EINTR and short writes; MSG_NOSIGNAL, so
 * a vanished peer is -EPIPE, never SIGPIPE. */
int lp_net_write_all(int fd, const void *buf, size_t n);

/* Closes fd so that what we sent last reaches the peer: a socket closed
 * with unread input makes the kernel reset the connection, and the peer
 * loses our last words (an error reply). Stops sending, reads and drops
 * input until the peer closes, up to timeout_ms and LP_NET_LINGER_MAX
 * bytes, then closes. */
#define LP_NET_LINGER_MAX (1u << 20)
void lp_net_linger_close(int fd, int timeout_ms);

/* Waits up to timeout_ms for fd to be readable: 1 readable, 0 timed out. */
int lp_net_wait_readable(int fd, int timeout_ms);

#endif
