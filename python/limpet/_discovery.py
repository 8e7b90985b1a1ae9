"""The servers this user can reach, from the discovery records they write
beside their sockets (<runtime dir>/<pid>.json).

One rule, one place: where the runtime directory is, which records are
live (a record whose process is gone, or whose pid now belongs to a later
process, is stale and is removed with its socket and token files), and how
a TARGET resolves are written once, in C (src/net/unix.c,
src/net/discovery.c, src/client/target.c), and shared with the `limpet`
command; this module only calls them through the extension."""
import json

from . import _limpet


def runtime_dir():
    """runtime_dir() -> str

    The per-user directory of servers' sockets and records, made 0700 if
    missing; OSError when it is not safe to use.
    """
    return _limpet.runtime_dir()


def servers(directory=None):
    """servers(directory=None) -> list of records (dicts: pid, name, argv, address, started, ...)

    The servers this user can reach, oldest first; stale records are removed.
    """
    return json.loads(_limpet.servers_json(directory))


def resolve(target=None, directory=None):
    """resolve(target=None, directory=None) -> (address, token)

    Where `limpet connect TARGET` would connect: a server name or pid, a
    socket path, HOST:PORT, [V6]:PORT or ssh://...; None: the only server
    running. token is '' when the server has none. LookupError when no
    server, or several, match.
    """
    return _limpet.resolve(target, directory)
