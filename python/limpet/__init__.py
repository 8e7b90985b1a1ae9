"""limpet: talk to live Python interpreters.

    import limpet
    server = limpet.start(globals())   # returns at once; the program goes on
    print("limpet listening on", server.address)

From another terminal, a client opens a session inside this process: code
runs in the namespace given to start(), so `x = 42` there sets this
module's x.
"""
import atexit
import json
import os
import platform
import re
import sys
import threading
import time

from . import wire
from ._limpet import PROTOCOL_VERSION, VERSION as __version__
from . import _helpers, _limpet
from ._discovery import servers

# Execution contexts are imported on first use: a host that embeds the server pays
# nothing for them (they pull in logging, pickle, subprocess, decimal...: 21 ms and
# 3.8 MB at `import limpet` when they were imported here).
_LAZY = {"ProtocolError": "_results", "RemoteError": "_results", "Secret": "_results",
         "connect": "_context", "Context": "_context", "Ref": "_context",
         "group": "_context", "Group": "_context", "connect_many": "_context"}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError("module 'limpet' has no attribute %r" % name)
    import importlib
    value = getattr(importlib.import_module("." + module, __name__), name)
    globals()[name] = value
    return value

__all__ = ["start", "servers", "Server", "wire", "PROTOCOL_VERSION", "__version__",
           "ProtocolError", "RemoteError", "Secret", "connect", "Context", "Ref",
           "group", "Group", "connect_many"]

_ARGV_MAX = 32        # entries of argv in the identity (docs/protocol.md, hello)
_ARG_MAX = 256        # bytes of each

_lock = threading.Lock()
_running = None       # the Server of this process, if any
_hooks_installed = False


class Server:
    """A running embedded server: .address, .name, .stop(); a context manager."""

    def __init__(self, core, name, token=None):
        self._core = core
        self.name = name
        self.token = token   # TCP: what a peer the kernel cannot vouch for must send

    @property
    def address(self):
        """The socket path clients connect to."""
        return self._core.address

    @property
    def running(self):
        return self._core.running

    def stop(self, timeout=5.0):
        """stop(timeout=5.0)

        Says bye to every client, closes their connections, waits up to
        timeout seconds for running evaluations and joins every thread the
        server started; removes the socket and the discovery record.
        """
        global _running
        try:
            self._core.stop(timeout=timeout)
        finally:
            if not self._core.running:   # a bad timeout leaves it running
                with _lock:
                    if _running is self:
                        _running = None
                _helpers.uninstall()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        state = "running" if self.running else "stopped"
        return f"<limpet.Server {self.name!r} at {self.address!r}, {state}>"


def _identity(name):
    argv = [a.encode("utf-8", "surrogateescape")[:_ARG_MAX].decode("utf-8", "ignore")
            for a in sys.argv[:_ARGV_MAX]]
    return {"name": name, "pid": os.getpid(), "python": platform.python_version(),
            "limpet": __version__, "argv": argv, "started": int(time.time() * 1000)}


def _default_name():
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return prog or "python"


def _stop_at_exit():
    server = _running
    if server is not None:
        try:
            server.stop(timeout=1.0)
        except TimeoutError as e:
            # a job stuck in a blocking call: the process is ending anyway
            print(e, file=sys.stderr)


def _forget_in_child():
    """After os.fork(): the child has none of the parent's threads, so it has
    no server, until it starts its own."""
    global _running, _lock
    _lock = threading.Lock()
    server, _running = _running, None
    if server is not None:
        server._core._forget_after_fork()


def _install_hooks():
    global _hooks_installed
    if not _hooks_installed:
        atexit.register(_stop_at_exit)
        os.register_at_fork(after_in_child=_forget_in_child)
        _hooks_installed = True


_TCP = re.compile(r"^(?:\[([0-9A-Fa-f:.]+)\]|(\d+\.\d+\.\d+\.\d+|localhost)):(\d+)$")


def _tcp_address(address, allow_remote):
    """The TCP address in address ("127.0.0.1:7000", "[::1]:0"), or None for a path."""
    m = _TCP.match(address)
    if m is None:
        return None
    import ipaddress   # only for TCP: not a cost of `import limpet`
    host = m.group(1) or m.group(2)
    if host == "localhost":
        host = "127.0.0.1"
    if not ipaddress.ip_address(host).is_loopback and not allow_remote:
        raise ValueError(f"limpet: {address!r} is not a loopback address; listening there "
                         f"needs allow_remote=True (peers then need the token)")
    return f"[{host}]:{m.group(3)}" if ":" in host else f"{host}:{m.group(3)}"


def start(namespace=None, address=None, *, name=None, transform=None, max_connections=None,
          max_sessions=None, grace=1.0, allow_remote=False):
    """start(namespace=None, address=None, *, name=None, transform=None,
             max_connections=None, max_sessions=None, grace=1.0, allow_remote=False) -> Server

    Starts the embedded server and returns at once. Sessions run code in
    namespace (a dict; the caller's globals() when None). address is the Unix
    socket path; by default $XDG_RUNTIME_DIR/limpet/<pid>.sock (or
    /tmp/limpet-<uid>/<pid>.sock), private to this user. A TCP address
    ("127.0.0.1:7000", "[::1]:0" for any port) listens on loopback instead:
    peers the kernel shows as this user (or root) get in, others must send
    server.token (also in the 0600 file <runtime dir>/<pid>.token); any
    other interface needs allow_remote=True. name is what
    `limpet list` shows (default: the program's name). transform, if given,
    is called as transform(source, filename, mode) before each input is
    compiled and returns source text, an AST or a code object (macros).
    grace: seconds that interrupted code stuck in a blocking call (where no
    interrupt reaches it) may take to stop; then the session gets its prompt
    back and the code goes on as a background job (jobs(), fg()).
    max_connections: clients connected at once (default 256); one more is
    refused with "too many connections". Peers that must still send the
    token are held apart, in a small pool of their own, and take none of
    these places. max_sessions: sessions open at once, over all clients
    (default 4096). Each is a positive int, or None for the default.

    One server per process: a second start() while one runs raises
    RuntimeError. The server stops by itself at interpreter exit, and a
    forked child does not inherit it.
    """
    global _running
    if namespace is None:
        namespace = sys._getframe(1).f_globals
    if not isinstance(namespace, dict):
        raise TypeError(f"limpet: namespace must be a dict, not {type(namespace).__name__}")
    if address is not None and not isinstance(address, (str, os.PathLike)):
        raise TypeError("limpet: address must be a socket path")
    tcp = None
    if address is not None:
        address = os.fspath(address)
        tcp = _tcp_address(address, allow_remote)
        if tcp is not None:
            address = None
    token = None
    if tcp:
        import secrets
        token = secrets.token_hex(32)
    name = name or _default_name()
    with _lock:
        if _running is not None and _running.running:
            raise RuntimeError(f"limpet: a server is already running in this process at "
                               f"{_running.address!r}; stop it first")
        core = _limpet.Server(namespace, address, json.dumps(_identity(name)),
                              transform=transform, max_connections=max_connections,
                              max_sessions=max_sessions, grace=grace, tcp=tcp, token=token,
                              allow_remote=allow_remote)
        _helpers.install()
        _running = Server(core, name, token)
        _install_hooks()
        return _running
