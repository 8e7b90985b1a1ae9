"""Execution contexts, the caller's side (docs/contexts.md).

A local child (`"local"`, `python=`), any command that starts a Python with stdio
(`command=`), `ssh://[user@]host[:port]` through the system ssh (`ssh_options=`), `sudo:USER`
and `su:USER`, and chains of them (`via=`): a chained context's frames travel over the link
of the first hop, addressed with `to` and answered with `from` (docs/protocol.md section 8).
One _Link per far process started here; each has a reader thread until the C broker takes
that over.
"""
import ast
import collections
import concurrent.futures
import io
import itertools
import logging
import os
import pickle
import re
import select
import shlex
import subprocess
import sys
import threading
import time
import types
import weakref

from . import _bootstrap, wire
from ._agent import define as _define, launch as _launch
from ._results import ProtocolError, RemoteError, Secret, loads

HANDSHAKE_TIMEOUT = 30.0   # s: a far Python that has not said hello by then is given up
SHUTDOWN_TIMEOUT = 2.0     # s: for the far side to leave after bye, before it is killed
LOCAL_GRACE = 5.0          # s: past a call's timeout, the caller stops waiting for the far side
STREAM_WINDOW = 64         # items a stream may send ahead of the caller's reading
_USER = re.compile(r"^(sudo|su):([A-Za-z0-9._][A-Za-z0-9._-]{0,63})$")
_SSH = re.compile(r"^ssh://(?:([A-Za-z0-9._][A-Za-z0-9._-]*)@)?([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])"
                  r"(?::([0-9]{1,5}))?/?$")


# the caller's pickles name the agent's define as limpet_agent.define; here the same
# function (pickle checks that the name leads to it)
_define.__module__ = "limpet_agent"
sys.modules.setdefault("limpet_agent", types.ModuleType("limpet_agent")).define = _define
_MAIN_PARTS = {}  # path -> (mtime, parts)


def _main_parts():
    """The top-level imports, functions and classes of the caller's __main__ script, as
    source texts: what a far side needs to define a function of it, without running the
    script's other statements."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if path is None:
        raise pickle.PicklingError("limpet: a function of an interactive __main__ has no "
                                   "source to send; define it in a module")
    mtime = os.stat(path).st_mtime
    cached = _MAIN_PARTS.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines(keepends=True)
    parts = []
    for node in ast.parse("".join(lines)).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):  # one name a part: `import limpet,
            for alias in node.names:                         # os` must still give os there
                parts.append(ast.unparse(
                    ast.ImportFrom(names=[alias], module=node.module, level=node.level)
                    if isinstance(node, ast.ImportFrom) else ast.Import(names=[alias])))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([node.lineno] + [d.lineno for d in
                                         getattr(node, "decorator_list", [])])
            parts.append("".join(lines[first - 1:node.end_lineno]))
    _MAIN_PARTS[path] = (mtime, tuple(parts))
    return _MAIN_PARTS[path][1]


class _Pickler(pickle.Pickler):
    """Arguments for a far side: references by id, and the caller's __main__ functions by
    the source of the script's definitions (the far side has no such __main__)."""

    def __init__(self, file, ctx):
        super().__init__(file, 4)
        self._ctx = ctx

    def persistent_id(self, obj):
        return self._ctx._ref_id(obj)

    def reducer_override(self, obj):
        if (isinstance(obj, types.FunctionType) and obj.__module__ == "__main__"
                and obj.__qualname__ == obj.__name__):
            return _define, (_main_parts(), obj.__name__)
        return NotImplemented


class Ref:
    """A far object that did not come back by value: pass it to later calls on the same
    context; it is freed there by release(), by garbage collection, or when the context
    ends. .type and .repr describe it."""

    def __init__(self, ctx, ref, type_name, text):
        self._ctx, self.id, self.type, self.repr = ctx, ref, type_name, text
        self._finalizer = weakref.finalize(self, ctx._release, ref)

    def release(self):
        self._finalizer()
        try:
            self._ctx._link.send()                  # now, not with the next call
        except (OSError, ConnectionError):
            pass

    def __repr__(self):
        return "<limpet.Ref %d on %s: %s>" % (self.id, self._ctx.name, self.repr)


Ref.__module__ = "limpet"


class _Call:
    """What waits for a call's answer: its frames until done, then its Future."""

    def __init__(self, ctx):
        self.ctx, self.frames = ctx, []
        self.future = concurrent.futures.Future()

    def frame(self, h, payload):
        self.frames.append((h, payload))
        if h.get("op") not in ("done", "error"):
            return False
        try:
            self.future.set_result(self.ctx._outcome(self.frames))
        except ProtocolError as e:
            self.future.set_exception(e)
            raise                                   # the link ends: no second try
        except BaseException as e:  # noqa: BLE001 - the outcome is the far side's exception
            self.future.set_exception(e)
        return True

    def end(self, exc):
        if not self.future.done():
            self.future.set_exception(exc)


class _Stream:
    """ctx.stream(...): the items of a far generator as they come, within a credit window."""

    def __init__(self, ctx, window):
        self.ctx, self.window, self.rid = ctx, window, None
        self.items, self.frames = [], []
        self.cond = threading.Condition()
        self.outstanding = window     # items the far side may still send
        self.taken = 0                # items taken since the last ack
        self.closed = self.finished = False
        self.failure = None
        self.deadline = None          # monotonic: past it (timeout + grace), stop waiting

    def frame(self, h, payload):
        with self.cond:
            op = h.get("op")
            if op == "channel-data":
                if self.outstanding <= 0:
                    raise ProtocolError("%r sent a stream item it had no credit for"
                                        % self.ctx.name)
                self.outstanding -= 1
                self.items.append((h, payload))
            elif op != "channel-close":
                self.frames.append((h, payload))
                self.finished = op in ("done", "error")
            self.cond.notify_all()
            return self.finished

    def end(self, exc):
        with self.cond:
            self.failure, self.finished = exc, True
            self.cond.notify_all()

    def __iter__(self):
        return self

    def __next__(self):
        with self.cond:
            while not self.items and not self.finished:
                left = None if self.deadline is None else self.deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError("limpet: %r did not end the stream within %.1f s of "
                                       "its timeout" % (self.ctx.name, LOCAL_GRACE))
                self.cond.wait(left)
            if not self.items:
                if self.failure is not None:
                    raise self.failure
                self.ctx._outcome(self.frames)      # raises the far exception, if any
                raise StopIteration
            h, payload = self.items.pop(0)
            self.taken += 1
            ack = 0
            if self.taken >= max(1, self.window // 2) and not self.closed:
                ack, self.taken = self.taken, 0
                self.outstanding += ack
        if ack:
            try:
                self.ctx._send({"op": "channel-ack", "channel": self.rid, "n": ack})
            except (OSError, ConnectionError):
                pass                               # it ended: the next wait says why
        return self.ctx._value(h, payload)

    def close(self):
        """Stops the far generator (GeneratorExit there) and drops what it still sends."""
        with self.cond:
            if self.closed or self.finished:
                return
            self.closed = True
            self.items.clear()
        self.ctx._post({"op": "channel-close", "channel": self.rid})
        try:
            self.ctx._link.send()
        except (OSError, ConnectionError):
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if not (self.closed or self.finished):
            self.closed = True                     # a finalizer: post, never take a lock
            self.ctx._post({"op": "channel-close", "channel": self.rid})


class _Link:
    """A far process started here and its stdio: the frames of its context and of every
    context chained below it. A reader thread hands each frame to what waits for it (by
    `re`, or `channel` for a stream's items) or to the context it comes `from`."""

    def __init__(self, name, argv, password, ready):
        secret = password.reveal().encode() if password is not None else None
        try:
            self.proc = _launch(argv, _bootstrap.agent_payload(), secret, ready,
                                HANDSHAKE_TIMEOUT)
        except PermissionError as e:
            raise PermissionError("limpet: %r: %s" % (name, e)) from None
        except OSError as e:
            raise ConnectionError("limpet: %r did not start: %s" % (name, e)) from None
        self.name = name
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.pending = {}                          # id -> _Call or _Stream
        self.contexts = weakref.WeakValueDictionary()  # path (tuple) -> Context
        self.closed = None                         # why the link ended, once it has
        self.posted = collections.deque()          # frames from finalizers, sent before the next
        self._stderr = []
        threading.Thread(target=self._read_stderr, daemon=True).start()
        try:
            self.hello = self._handshake()
        except BaseException:
            self.kill()
            raise
        threading.Thread(target=self._read, name="limpet.ctx." + name, daemon=True).start()

    def send(self, data=b""):
        with self.lock:
            if self.closed is not None:
                raise ConnectionError("limpet: the context %r has ended: %s" % (self.name,
                                                                                 self.closed))
            while self.posted:
                self.proc.stdin.write(self.posted.popleft())
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def post(self, data):
        """Sends data before the next frame: for finalizers, which may run inside send()
        (garbage collection happens anywhere) and so must not take its lock."""
        self.posted.append(data)

    def expect(self, handler):
        """A new request id, whose answer goes to handler."""
        with self.lock:
            rid = next(self.ids)
            self.pending[rid] = handler
        return rid

    def forget(self, rid):
        with self.lock:
            self.pending.pop(rid, None)

    def _read_stderr(self):
        for line in self.proc.stderr:              # what ssh or the command says before Python
            self._stderr.append(line.decode("utf-8", "replace").rstrip())
            del self._stderr[:-20]

    def _handshake(self):
        dec, head = wire.Decoder(wire.HELLO_HEADER_MAX, 0), b""
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        fd = self.proc.stdout.fileno()
        frame = None
        while frame is None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise ConnectionError("limpet: %r did not start within %.0f s" % (
                    self.name, HANDSHAKE_TIMEOUT))
            chunk = os.read(fd, 65536)
            if not chunk:
                self.proc.wait(timeout=5)
                why = "; ".join(self._stderr[-3:]) or "exit status %s" % self.proc.returncode
                raise ConnectionError("limpet: %r ended before its agent started: %s" % (
                    self.name, why))
            if len(head) < len(wire.PREAMBLE):       # the preamble first, then frames
                head += chunk
                if len(head) < len(wire.PREAMBLE):
                    continue
                if head[:len(wire.PREAMBLE)] != wire.PREAMBLE:
                    raise ProtocolError("%r is not a limpet agent" % self.name)
                chunk = head[len(wire.PREAMBLE):]
            dec.feed(chunk)
            frame = dec.next()
        hello = frame[0]
        if hello.get("op") != "hello" or "call" not in hello.get("caps", ()):
            raise ProtocolError("%r did not say hello as an agent does" % self.name)
        self._dec = wire.Decoder()
        self._dec.feed(dec.pending)
        self.send(wire.PREAMBLE + wire.encode({
            "op": "done", "re": hello.get("id", 0), "status": "ok", "protocol": 1,
            "log_level": logging.getLogger().getEffectiveLevel()}))
        return hello.get("agent", {})

    def _read(self):
        fd = self.proc.stdout.fileno()
        why = "the far side closed the link"
        try:
            while True:
                frame = self._dec.next()
                if frame is None:
                    chunk = os.read(fd, 1 << 20)
                    if not chunk:
                        break
                    self._dec.feed(chunk)
                    continue
                self._dispatch(*frame)
        except (wire.WireError, ProtocolError) as e:
            self.disconnect("protocol error: %s" % e)
            return
        except OSError as e:
            why = str(e)
        self.end(why)

    def _dispatch(self, h, payload):
        key = h.get("re", h.get("channel"))
        if key is not None and h.get("op") != "log":
            if not isinstance(key, int):
                raise ProtocolError("%r sent a frame that answers no request" % self.name)
            with self.lock:
                handler = self.pending.get(key)
            if handler is not None and handler.frame(h, payload):
                self.forget(key)
            return                                  # or a late answer to an abandoned call
        path = h.get("from", [])
        ctx = self.contexts.get(tuple(path)) if isinstance(path, list) else None
        if ctx is not None:
            ctx._notice(h, payload)

    def end(self, why, error=ConnectionError, path=()):
        """The context at path (and the ones below it) ended: every call waiting on them
        gets error; the whole link when path is empty."""
        with self.lock:
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
        for _, handler in lost:
            handler.end(error("limpet: the context %r has ended: %s" % (handler.ctx.name, why)))

    def disconnect(self, why):
        self.end(why, ProtocolError)
        threading.Thread(target=self.kill, daemon=True).start()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class Context:
    """A far interpreter running limpet's agent: ctx.call(fn, *args, **kwargs)."""

    def __init__(self, link, name, path, agent, allow=(), output="log"):
        if output not in ("log", "streams"):
            raise ValueError("limpet: output is 'log' or 'streams'")
        self.name = name
        self._output = output
        self.agent = agent
        self._link, self._path = link, list(path)
        self._allow = tuple(allow or ())
        self._refs = weakref.WeakValueDictionary()
        self._closed = None                    # why it ended, once it has
        self._ended = threading.Event()
        self._log = logging.getLogger("limpet.ctx." + name)
        link.contexts[tuple(path)] = self

    # --- the link -------------------------------------------------------------------

    def _send(self, header, payload=b""):
        if self._closed is not None:
            raise ConnectionError("limpet: the context %r has ended: %s" % (self.name,
                                                                             self._closed))
        if self._path:
            header["to"] = self._path
        self._link.send(wire.encode(header, payload))

    def _request(self, header, payload, handler):
        rid = self._link.expect(handler)
        header["id"] = rid
        try:
            self._send(header, payload)
        except BaseException:
            self._link.forget(rid)
            raise
        return rid

    def _notice(self, h, payload):
        op = h.get("op")
        if op == "log" and self._output == "streams" and h.get("origin") in ("stdout", "stderr"):
            out = sys.stdout if h["origin"] == "stdout" else sys.stderr
            out.write(payload.decode("utf-8", "replace") + "\n")
            out.flush()
        elif op == "log":
            logger = self._log.getChild(str(h.get("logger", "far")))
            level = h.get("level") if isinstance(h.get("level"), int) else logging.INFO
            logger.log(level, "%s", payload.decode("utf-8", "replace"))
        elif op == "ended" and self._path:        # its process is gone, and what it started
            self._link.end(str(h.get("reason", "it ended")), path=self._path)

    def _outcome(self, frames):
        done = frames[-1][0]
        if done.get("op") == "error":
            raise (PermissionError if done.get("code") == "denied" else ConnectionError)("limpet: %s on %r: %s" % (done.get("code"), self.name,
                                                            done.get("message", "")))
        if done.get("status") == "deadline-exceeded":
            raise TimeoutError("limpet: the call ran past its timeout on %r and was "
                               "interrupted there" % self.name)
        for h, payload in frames:
            if h["op"] == "result":
                return self._value(h, payload)
            if h["op"] == "exception":
                raise self._exception(h, payload)
        if done.get("status") == "abandoned":
            raise TimeoutError("limpet: the call did not stop on %r; it was left running there"
                               % self.name)
        if done.get("status") == "ok" and "agent" in done:
            return done
        raise ProtocolError("%r ended a call with no result" % self.name)

    def _value(self, h, payload):
        if "ref" in h:
            ref = Ref(self, h["ref"], h.get("type", "?"), h.get("repr", ""))
            self._refs[ref.id] = ref
            return ref
        return loads(payload, self._allow, self._persistent)

    def _exception(self, h, payload):
        n = h.get("pickle", 0) if isinstance(h.get("pickle"), int) else 0
        tb = payload[n:].decode("utf-8", "replace")
        exc = None
        if n:
            try:
                exc = loads(payload[:n], self._allow)
            except ProtocolError:
                exc = None                         # its class is not allowed: RemoteError
        if not isinstance(exc, BaseException):
            exc = RemoteError(h.get("type", "?"), h.get("message", ""), tb)
        exc.remote_type = h.get("type", "?")
        exc.remote_message = h.get("message", "")
        exc.remote_traceback = tb
        if hasattr(exc, "add_note"):                # PEP 678: a printed traceback shows it
            exc.add_note("raised on %s:\n%s" % (self.name, tb.rstrip()))
        return exc

    def _persistent(self, pid):
        raise ProtocolError("%r sent a reference inside a value" % self.name)

    def _post(self, header):
        if self._closed is None:
            if self._path:
                header["to"] = self._path
            self._link.post(wire.encode(header))

    def _release(self, ref):
        self._refs.pop(ref, None)
        self._post({"op": "ref-release", "refs": [ref]})

    def _ref_id(self, obj):
        if isinstance(obj, Ref):
            if obj._ctx is not self:
                raise ValueError("limpet: a Ref is only good on the context it came from")
            return ("ref", obj.id)
        return None

    def _pickle(self, fn, args, kwargs):
        buf = io.BytesIO()
        _Pickler(buf, self).dump((fn, args, kwargs))
        return buf.getvalue()

    def _spawn(self, address, python, ssh_options, allow, command, password, output):
        argv, ready = _far_argv(address, python, ssh_options, command, password, self.agent)
        secret = password.reveal().encode() if password is not None else b""
        call = _Call(self)
        rid = self._link.expect(call)
        header = {"op": "spawn", "id": rid, "context": str(rid), "argv": argv,
                  "secret": len(secret), "ready": ready,
                  "log_level": logging.getLogger().getEffectiveLevel()}
        try:
            self._send(header, secret + _bootstrap.agent_payload())
            done = call.future.result(timeout=HANDSHAKE_TIMEOUT + 5)
        except concurrent.futures.TimeoutError:
            raise ConnectionError("limpet: %r did not start within %.0f s" % (
                address, HANDSHAKE_TIMEOUT)) from None
        finally:
            self._link.forget(rid)
        return Context(self._link, "%s/%s" % (self.name, address), self._path + [str(rid)],
                       done.get("agent", {}), allow, output)

    # --- what users call ---------------------------------------------------------------

    def call_async(self, fn, *args, timeout=None, **kwargs):
        """call_async(fn, *args, timeout=None, **kwargs) -> concurrent.futures.Future

        Runs fn(*args, **kwargs) on the far side; timeout (seconds) is enforced there.
        timeout is call's own keyword: to give fn an argument of that name, pass
        functools.partial(fn, timeout=...) as fn.
        """
        header = {"op": "call"}
        if timeout is not None:
            header["timeout_ms"] = max(0, int(timeout * 1000))
        call = _Call(self)
        self._request(header, self._pickle(fn, args, kwargs), call)
        return call.future

    def call(self, fn, *args, timeout=None, **kwargs):
        """call(fn, *args, timeout=None, **kwargs) -> the value fn returned on the far side

        Its exception, raised here as its own type where it may come back (else
        limpet.RemoteError), with the far traceback as .remote_traceback and as a note.
        With timeout, a far side that does not answer in time even to say it stopped the
        call (a hung or hostile one) costs TimeoutError here LOCAL_GRACE seconds later.
        """
        future = self.call_async(fn, *args, timeout=timeout, **kwargs)
        try:
            return future.result(None if timeout is None else timeout + LOCAL_GRACE)
        except concurrent.futures.TimeoutError:
            raise TimeoutError("limpet: %r did not answer within %.1f s of the call's "
                               "timeout" % (self.name, LOCAL_GRACE)) from None

    def stream(self, fn, *args, timeout=None, window=STREAM_WINDOW, **kwargs):
        """stream(fn, *args, timeout=None, window=64, **kwargs) -> iterator

        Iterates what fn(*args, **kwargs) returns (a generator, or any iterable) on the far
        side, giving its items here as they are produced. At most window items travel ahead
        of the caller's reading, so a fast producer cannot fill memory here; leaving the loop
        early (or .close()) stops the far generator. timeout (seconds) bounds the whole stream,
        enforced there as for call.
        """
        if not 1 <= window <= 65536:
            raise ValueError("limpet: window is 1 to 65536 items")
        header = {"op": "call", "stream": window}
        if timeout is not None:
            header["timeout_ms"] = max(0, int(timeout * 1000))
        stream = _Stream(self, window)
        if timeout is not None:
            stream.deadline = time.monotonic() + timeout + LOCAL_GRACE
        stream.rid = self._request(header, self._pickle(fn, args, kwargs), stream)
        return stream

    def refs(self):
        """refs() -> list of the live limpet.Ref of this context."""
        return list(self._refs.values())

    def sudo(self, user, password=None):
        """sudo(user, password=None) -> Context: a context as user, started with sudo from
        this one (a chain: its frames go through this context's link). password (a
        limpet.Secret) answers sudo's prompt, and never shows anywhere."""
        return connect("sudo:" + user, via=self, password=password, allow=self._allow,
                       output=self._output)

    def su(self, user, password=None):
        """su(user, password=None) -> Context: as sudo, with su (user's password)."""
        return connect("su:" + user, via=self, password=password, allow=self._allow,
                       output=self._output)

    def shutdown(self, timeout=SHUTDOWN_TIMEOUT):
        """Says bye, gives the far side timeout seconds to leave, then makes it."""
        try:
            self._send({"op": "bye"})
        except (OSError, ConnectionError):
            pass
        if self._path:
            if not self._ended.wait(timeout) and self._link.closed is None:
                kill = {"op": "kill", "context": self._path[-1]}  # its parent makes it leave
                if len(self._path) > 1:
                    kill["to"] = self._path[:-1]
                try:
                    self._link.send(wire.encode(kill))
                except (OSError, ConnectionError):
                    pass
            self._link.end("shut down", path=self._path)
            return
        self._link.end("shut down")
        try:
            self._link.proc.stdin.close()
        except OSError:
            pass
        try:
            self._link.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._link.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def __repr__(self):
        return "<limpet.Context %s>" % self.name


Context.__module__ = "limpet"


def _whoami():
    try:
        import pwd
        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return str(os.getuid())


def _far_argv(address, python, ssh_options, command, password, here):
    """(argv, ready): the command that starts the far Python of address from a place
    described by here (a parent's hello, or None for this process)."""
    if here is None:
        here = {"executable": sys.executable, "user": _whoami(), "host": os.uname().nodename}
    n = len(_bootstrap.agent_payload())
    if command is not None:
        return list(command) + _bootstrap.stage1_argv(n, address, python or "python3"), False
    if address == "local":
        name = "%s@%s" % (here.get("user"), here.get("host"))
        return _bootstrap.stage1_argv(n, name, python or here.get("executable") or "python3"), \
            False
    m = _USER.match(address)
    if m is not None:
        how, user = m.groups()
        ready = password is not None or how == "su"
        far = _bootstrap.stage1_argv(n, "%s@%s" % (user, here.get("host")),
                                     python or here.get("executable") or "python3", ready)
        if how == "su":
            return ["su", user, "-c", " ".join(shlex.quote(a) for a in far)], True
        flags = ["-S", "-p", "limpet: the password of %u for sudo:"] if ready else ["-n"]
        return ["sudo"] + flags + ["-u", user, "--"] + far, ready
    m = _SSH.match(address)
    if m is None:
        raise ValueError("limpet: bad address %r: 'local', sudo:USER, su:USER, or "
                         "ssh://[user@]host[:port]" % address)
    if password is not None:
        raise ValueError("limpet: ssh takes no password here: its keys and agent are "
                         "OpenSSH's (ssh_options=)")
    user, host, port = m.groups()
    far = _bootstrap.stage1_argv(n, "%s@%s" % (user or "", host), python or "python3")
    remote = " ".join(shlex.quote(a) for a in far)  # the far login shell reads one string
    argv = ["ssh", "-T", "-o", "BatchMode=yes"] + list(ssh_options or [])
    if port:
        argv += ["-p", port]
    if user:
        argv += ["-l", user]
    return argv + ["--", host.strip("[]"), remote], False


def connect(address, *, python=None, ssh_options=None, via=None, allow=None, command=None,
            password=None, output="log"):
    """connect(address, *, python=None, ssh_options=None, via=None, allow=None, command=None,
               password=None, output="log")

    Starts a far interpreter with nothing installed but Python and returns its Context:
    "local" (a child; python= picks it), "ssh://[user@]host[:port]" (the system ssh;
    ssh_options= adds arguments), "sudo:USER" or "su:USER" (password=, a limpet.Secret,
    answers their prompt), or any address with command= (an argv prefix that starts a Python
    with stdio, such as ["docker", "exec", "-i", "c1"]). via=ctx starts it from ctx's far
    side instead of here, through ctx's link (a chain). allow= names the classes a result
    may be made of besides plain data. The far stdout and stderr (its child processes'
    too) arrive as log lines under limpet.ctx.<name>, or with output="streams" on this
    process's sys.stdout and sys.stderr.
    """
    if password is not None and not isinstance(password, Secret):
        password = Secret(password)
    if via is not None:
        return via._spawn(address, python, ssh_options, allow, command, password, output)
    argv, ready = _far_argv(address, python, ssh_options, command, password, None)
    link = _Link(address, argv, password, ready)
    return Context(link, address, (), link.hello, allow, output)

class Group:
    """Contexts used together: group.call(fn, ...) runs on all of them at once."""

    def __init__(self, contexts):
        self.contexts = list(contexts)

    def call(self, fn, *args, timeout=None, **kwargs):
        """call(fn, *args, timeout=None, **kwargs) -> list

        Runs fn(*args, **kwargs) on every context at once; one entry per context, in the
        contexts' order: the value, or the exception it raised (never raised here, so one
        failing host does not hide the others' results).
        """
        futures = []
        for ctx in self.contexts:
            try:
                futures.append(ctx.call_async(fn, *args, timeout=timeout, **kwargs))
            except Exception as e:  # noqa: BLE001 - a context already gone: its entry says so
                futures.append(e)
        out = []
        for f in futures:
            if isinstance(f, BaseException):
                out.append(f)
                continue
            try:
                out.append(f.result())
            except Exception as e:  # noqa: BLE001 - see the docstring
                out.append(e)
        return out

    def shutdown(self):
        for ctx in self.contexts:
            ctx.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def __len__(self):
        return len(self.contexts)


Group.__module__ = "limpet"


def group(contexts):
    """group(contexts) -> Group: group(ctxs).call(fn, ...) runs fn on all of them at once."""
    return Group(contexts)


def connect_many(addresses, *, workers=32, **options):
    """connect_many(addresses, *, workers=32, **options) -> list

    Starts a context for each address at once (at most workers starting together; options
    as for connect); one entry per address, in order: the Context, or the exception that
    kept it from starting.
    """
    out = [None] * len(addresses)

    def start(i):
        try:
            out[i] = connect(addresses[i], **options)
        except Exception as e:  # noqa: BLE001 - one bad host must not hide the others
            out[i] = e

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(start, range(len(addresses))))
    return out
