/* cmd_bridge.c: `limpet bridge [TARGET]`: relays standard input and output
 * to a local server, byte for byte. `limpet connect ssh://HOST/TARGET`
 * runs it on HOST through ssh; it never reads what it carries, so the
 * server authenticates the ssh user as it would any local peer. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/term.h"
#include "client/ssh.h"
#include "net/net.h"

#define RELAY_CHUNK 65536

static const char bridge_usage[] =
    "usage: limpet bridge [TARGET]\n"
    "\n"
    "Relay standard input and output to the local server TARGET (a name or pid from\n"
    "'limpet list', a socket path, HOST:PORT; none: the only one running), byte for\n"
    "byte. 'limpet connect ssh://HOST/TARGET' runs it on HOST through ssh.\n"
    "\n"
    "options:\n"
    "  -h, --help  show this help and exit\n";

/* Moves what is readable on from to to: 1 moved, 0 end of input, -1 error. */
static int move(int from, int to, bool to_socket)
{
    char buf[RELAY_CHUNK];
    ssize_t n;

    do
        n = read(from, buf, sizeof(buf));
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n == 0 ? 0 : -1;
    if (to_socket)
        return lp_net_write_all(to, buf, (size_t)n) == 0 ? 1 : -1;
    return lp_term_write(to, buf, (size_t)n) == 0 ? 1 : -1;
}

static int relay(int sock)
{
    struct pollfd p[2] = {{.fd = sock, .events = POLLIN}, {.fd = STDIN_FILENO, .events = POLLIN}};
    bool in_open = true;

    for (;;) {
        if (poll(p, in_open ? 2 : 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        if (p[0].revents != 0) {
            int r = move(sock, STDOUT_FILENO, false);

            if (r <= 0) /* the server closed: so do we */
                return r == 0 ? 0 : 1;
        }
        if (in_open && p[1].revents != 0) {
            int r = move(STDIN_FILENO, sock, true);

            if (r < 0)
                return 1;
            if (r == 0) { /* the client finished: half-close, keep the answers coming */
                shutdown(sock, SHUT_WR);
                in_open = false;
            }
        }
    }
}

int cmd_bridge(int argc, char **argv)
{
    const char *target = NULL;
    lp_target_t t;
    int sock = -1, status;

    if ((status = lp_cli_target_arg(argc, argv, bridge_usage, &target)) >= 0)
        return status;
    if (lp_ssh_is_url(target))
        return lp_cli_usage_error(bridge_usage, "a bridge relays to a server on this host, "
                                                "not to '%s'", target);
    if (lp_cli_resolve(target, &t) != 0 || (sock = lp_cli_dial(t.address)) < 0) {
        lp_target_clear(&t);
        return LP_EXIT_FAILURE;
    }
    lp_target_clear(&t);
    status = relay(sock);
    close(sock);
    return status;
}
