"""The link to a far process started here (docs/contexts.md, "Threads and waiting").

A _Link starts the far Python, does the handshake on its pipes and hands them to the C
broker, all in C (src/context/launch.c, broker.c, through _limpet.ctx_*): one I/O thread for
every link in the process. A thread that calls waits for its own reply in C without the GIL
(ctx_expect, ctx_wait: one wake-up); what nobody waits for (far logs, notices, the answers of
call_async, the end of a link) goes to the one service thread here. What the command says on
stderr (ssh, sudo) is read by the one stderr thread. So 100 contexts are 3 threads, not 200.
"""
import collections
import errno
import heapq
import logging
import os
import selectors
import threading
import time
import weakref

from . import _limpet
from ._results import ProtocolError

HANDSHAKE_TIMEOUT = 30.0   # s: a far Python that has not said hello by then is given up
SHUTDOWN_TIMEOUT = 2.0     # s: for the far side to leave, before it is killed

_LINKS = {}                # broker link id -> _Link
_START = threading.Lock()
_THREADS = {}              # "service", "stderr" -> the thread, once started
_STDERR = selectors.DefaultSelector()
_log = logging.getLogger("limpet")
_HANDLED = [0]             # the number of the last event the service thread has handled
_CAUGHT_UP = threading.Condition()
_DEADLINES = []            # heap of (monotonic deadline, link id, call id) of call_async


def _after_fork():
    """A forked child has none of its parent's threads (the broker drops the parent's links
    there too): it starts its own on its first link."""
    global _START, _STDERR, _CAUGHT_UP
    _THREADS.clear()
    _LINKS.clear()
    _DEADLINES.clear()
    _HANDLED[0] = 0
    _START, _CAUGHT_UP = threading.Lock(), threading.Condition()
    _STDERR = selectors.DefaultSelector()


os.register_at_fork(after_in_child=_after_fork)


def _started(name, target):
    with _START:
        if name not in _THREADS:
            _THREADS[name] = threading.Thread(target=target, name="limpet." + name, daemon=True)
            _THREADS[name].start()


def expire_at(deadline, link, rid):
    """The call_async rid of link fails with TimeoutError at deadline (monotonic) if the far
    side has not answered by then, even to say it stopped the call."""
    with _START:
        heapq.heappush(_DEADLINES, (deadline, link.id, rid))


def _expire():
    now = time.monotonic()
    while True:
        with _START:
            if not _DEADLINES or _DEADLINES[0][0] > now:
                return
            _, lid, rid = heapq.heappop(_DEADLINES)
        link = _LINKS.get(lid)
        handler = link.pending.pop(rid, None) if link is not None else None
        if handler is not None:
            handler.end(TimeoutError("limpet: %r did not answer within its timeout and grace"
                                     % handler.ctx.name))


def _serve_events():
    """Frames nobody waits for, the ends of links, in arrival order; and the deadlines of
    call_async (checked at least every second)."""
    while True:
        got = _limpet.ctx_next_event(1.0, True)
        _expire()
        if got is None:
            continue
        event, seq = got
        link = _LINKS.get(event[0])
        try:
            if link is None:
                pass
            elif event[1] is None:
                link.ended(event[2])
            else:
                link.dispatch(event[1], event[2])
        except ProtocolError as e:
            link.disconnect("protocol error: %s" % e)
        except Exception:  # noqa: BLE001 - one bad frame must not stop every context's logs
            _log.exception("limpet: a frame from %r could not be handled", link.name)
        with _CAUGHT_UP:
            _HANDLED[0] = seq
            _CAUGHT_UP.notify_all()


def caught_up(seq, timeout=2.0):
    """Waits until the service thread has handled the first seq events: what a far call
    logged or printed before it answered is logged here before the call returns. Bounded:
    a service thread busy with a long answer delays a call, never blocks it."""
    if _HANDLED[0] >= seq or threading.current_thread() is _THREADS.get("service"):
        return
    with _CAUGHT_UP:
        _CAUGHT_UP.wait_for(lambda: _HANDLED[0] >= seq, timeout)


def _read_stderr():
    """What the commands that start far Pythons (ssh, sudo) say once they have started."""
    while True:
        for key, _ in _STDERR.select(1.0):
            try:
                chunk = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                _STDERR.unregister(key.fd)
                os.close(key.fd)
            else:
                key.data.said(chunk)


def _ending_reason(exc):
    """ProtocolError for a link the broker ended over a protocol error, else ConnectionError."""
    return ProtocolError if str(exc).startswith("protocol error") else ConnectionError


class _Link:
    """One far process started here: the frames of its context and of every context
    chained below it."""

    def __init__(self, name, argv, password, compiled):
        secret = bytearray(password.reveal().encode()) if password is not None else None
        try:                                       # C: src/context/launch.c, wipes secret
            self.pid, self.id, err, self.hello = _limpet.ctx_launch(
                argv, secret, compiled, HANDSHAKE_TIMEOUT,
                logging.getLogger().getEffectiveLevel())
        except PermissionError as e:
            hint = "; give it as password=limpet.Secret(...)" if (
                secret is None and e.strerror.endswith("asked for a password")) else ""
            raise PermissionError("limpet: %r: %s%s" % (name, e.strerror, hint)) from None
        except OSError as e:
            raise (ProtocolError if e.errno == errno.EPROTO else ConnectionError)(
                "limpet: %r %s" % (name, e.strerror)) from None
        self.name = name
        self.compiled = compiled                   # stage 2 may be compiled: a local pipe
        self.pending = {}                          # id -> what waits for a call_async
        self.contexts = weakref.WeakValueDictionary()  # path (tuple) -> Context
        self.closed = None                         # why the link ended, once it has
        self.posted = collections.deque()          # frames from finalizers, for the next send
        self.stderr = []                           # the command's last lines
        self._ids = iter(range(1, 1 << 62))
        self._lock = threading.Lock()
        self._reaping = threading.Lock()           # a pid is reaped once (then maybe reused)
        _LINKS[self.id] = self
        _started("service", _serve_events)
        if err >= 0:                               # now the stderr thread's
            _STDERR.register(err, selectors.EVENT_READ, self)
            _started("stderr", _read_stderr)

    def said(self, chunk):
        """Lines the command wrote on stderr: kept for the error that may follow, and logged
        once its context exists (ssh's warnings, for one)."""
        lines = chunk.decode("utf-8", "replace").splitlines()
        self.stderr = (self.stderr + lines)[-20:]
        root = self.contexts.get(())
        for line in lines if root is not None else ():
            root._log.getChild("stderr").warning("%s", line)

    # --- frames ----------------------------------------------------------------------------

    def new_id(self):
        with self._lock:
            return next(self._ids)

    def send(self, data=b""):
        if self.closed is not None:
            raise ConnectionError("limpet: the context %r has ended: %s" % (self.name,
                                                                             self.closed))
        chunks = []
        while self.posted:
            chunks.append(self.posted.popleft())
        if data:
            chunks.append(data)
        if chunks:
            try:
                _limpet.ctx_send(self.id, b"".join(chunks))
            except ConnectionError as e:  # the waits say ProtocolError where it was one
                raise ConnectionError("limpet: the context %r has ended: %s" % (
                    self.name, e)) from None

    def post(self, data):
        """Sends data before the next frame: for finalizers, which run anywhere."""
        self.posted.append(data)

    def wait(self, rid, deadline, ctx):
        """The frames that came for rid from ctx (maybe none: a forged one was dropped), once
        the events that came before them are handled; TimeoutError at deadline (monotonic;
        None: never); ConnectionError or ProtocolError once ctx has ended."""
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            frames, seq = _limpet.ctx_wait(self.id, rid, left, True)
            caught_up(seq)
            # only the hop that was asked may answer: frames from any other are dropped
            return [f for f in frames if f[0].get("from", []) == ctx._path]
        except KeyError:                          # forgotten: its context ended (below us)
            raise ConnectionError("limpet: the context %r has ended: %s" % (
                ctx.name, ctx._closed)) from None
        except ConnectionError as e:
            raise _ending_reason(e)("limpet: the context %r has ended: %s" % (
                ctx.name, ctx._closed or e)) from None

    def dispatch(self, h, payload):
        key = h.get("re", h.get("channel"))
        if key is not None and h.get("op") != "log":
            if not isinstance(key, int):
                raise ProtocolError("%r sent a frame that answers no request" % self.name)
            with self._lock:
                handler = self.pending.get(key)
            if handler is None or h.get("from", []) != handler.ctx._path:
                return                  # a late answer, or one from a hop not asked: dropped
            if handler.frame(h, payload):
                with self._lock:
                    self.pending.pop(key, None)
            return
        path = h.get("from", [])
        if not isinstance(path, list):
            return
        if h.get("op") == "ended" and path:     # a hop's process is gone, and what it started
            self.end(str(h.get("reason", "it ended")), path=tuple(path))
            return
        ctx = self.contexts.get(tuple(path))
        if ctx is not None:
            ctx._notice(h, payload)

    # --- ends ------------------------------------------------------------------------------

    def end(self, why, error=ConnectionError, path=()):
        """The context at path (and the ones below it) ended: whatever waits on them gets
        error; the whole link when path is empty."""
        with self._lock:
            if not path and self.closed is None:
                self.closed = why
            ended = [c for p, c in list(self.contexts.items()) if p[:len(path)] == tuple(path)]
            lost = [(k, h) for k, h in self.pending.items() if h.ctx in ended]
            for k, _ in lost:
                del self.pending[k]
        for ctx in ended:
            if ctx._closed is None:
                ctx._closed = why
            ctx._ended.set()
            for rid in list(ctx._waiting):         # a thread waiting in C: wake it
                _limpet.ctx_forget(self.id, rid)
        for _, handler in lost:
            handler.end(error("limpet: the context %r has ended: %s" % (handler.ctx.name, why)))

    def ended(self, reason):
        """The broker says the link ended (the far side left, or broke the protocol)."""
        _LINKS.pop(self.id, None)
        self.end(reason, ProtocolError if reason.startswith("protocol error") else
                 ConnectionError)
        threading.Thread(target=self.reap, daemon=True).start()

    def disconnect(self, why):
        """This side refuses the far side (a refused pickle, a broken promise)."""
        self.end(why, ProtocolError)
        self.close()
        threading.Thread(target=self.kill, daemon=True).start()

    def close(self):
        _LINKS.pop(self.id, None)
        _limpet.ctx_close(self.id)

    def reap(self, timeout=SHUTDOWN_TIMEOUT):
        """Waits up to timeout for the far process to leave, then kills it."""
        with self._reaping:
            if self.pid is not None:
                try:
                    _limpet.ctx_reap(self.pid, timeout)
                except ChildProcessError:          # reaped by someone else (SIGCHLD ignored)
                    pass
                self.pid = None

    def kill(self):
        self.reap(0)
