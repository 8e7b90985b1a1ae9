"""Execution contexts, the caller's side (docs/contexts.md).

This increment: a local child (`"local"`, `python=`), any command that starts a Python with
stdio (`command=`) and `ssh://[user@]host[:port]` through the system ssh (`ssh_options=`);
calls, asynchronous calls, references, far exceptions with their traceback, far logs and
output. Each context has a reader thread of its own (the _Link below); the C broker of issue
11 takes that over (one I/O thread for every context), and chains (`via=`, `sudo`), module
forwarding and streams come with it.
"""
import ast
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
from ._agent import define as _define
from ._results import ProtocolError, RemoteError, loads

HANDSHAKE_TIMEOUT = 30.0   # s: a far Python that has not said hello by then is given up
SHUTDOWN_TIMEOUT = 2.0     # s: for the far side to leave after bye, before it is killed
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
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                             ast.ClassDef)):
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

    def __repr__(self):
        return "<limpet.Ref %d on %s: %s>" % (self.id, self._ctx.name, self.repr)


Ref.__module__ = "limpet"


class Context:
    """A far interpreter running limpet's agent: ctx.call(fn, *args, **kwargs)."""

    def __init__(self, name, argv, allow=(), env=None):
        self.name = name
        self._allow = tuple(allow or ())
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pending = {}                     # call id -> (Future, [frames])
        self._refs = weakref.WeakValueDictionary()
        self._closed = None                    # why the link ended, once it has
        self._log = logging.getLogger("limpet.ctx." + name)
        payload = _bootstrap.agent_payload()
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, env=env, start_new_session=True)
        self._stderr = []
        hello = concurrent.futures.Future()
        try:
            self._write(payload)           # the pipe holds it: the child reads it when it can
            # the threads start while the far Python does (a thread start waits for the GIL
            # handoff, milliseconds on a busy machine); the reader says whether it said hello
            threading.Thread(target=self._read_stderr, daemon=True).start()
            threading.Thread(target=self._read, args=(hello,), name="limpet.ctx." + name,
                             daemon=True).start()
            self.agent = hello.result()
        except BaseException:
            self._kill()
            raise

    # --- the link -------------------------------------------------------------------

    def _write(self, data):
        with self._lock:
            if self._closed is not None:
                raise ConnectionError("limpet: the context %r has ended: %s" % (self.name,
                                                                                 self._closed))
            self._proc.stdin.write(data)
            self._proc.stdin.flush()

    def _read_stderr(self):
        for line in self._proc.stderr:         # what ssh or the command says before Python
            self._stderr.append(line.decode("utf-8", "replace").rstrip())

    def _handshake(self):
        dec, head = wire.Decoder(wire.HELLO_HEADER_MAX, 0), b""
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        fd = self._proc.stdout.fileno()
        frame = None
        while frame is None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise ConnectionError("limpet: %r did not start within %.0f s" % (
                    self.name, HANDSHAKE_TIMEOUT))
            chunk = os.read(fd, 65536)
            if not chunk:
                self._proc.wait(timeout=5)
                why = "; ".join(self._stderr[-3:]) or "exit status %s" % self._proc.returncode
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
        self._write(wire.PREAMBLE + wire.encode({
            "op": "done", "re": hello.get("id", 0), "status": "ok", "protocol": 1,
            "log_level": logging.getLogger().getEffectiveLevel()}))
        return hello.get("agent", {})

    def _read(self, hello):
        try:
            hello.set_result(self._handshake())
        except BaseException as e:  # noqa: BLE001 - raised in the thread that connects
            hello.set_exception(e)
            return
        fd = self._proc.stdout.fileno()
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
            self._disconnect("protocol error: %s" % e)
            return
        except OSError as e:
            why = str(e)
        self._end(why)

    def _dispatch(self, h, payload):
        op = h.get("op")
        if op == "log":
            logger = self._log.getChild(str(h.get("logger", "far")))
            level = h.get("level") if isinstance(h.get("level"), int) else logging.INFO
            logger.log(level, "%s", payload.decode("utf-8", "replace"))
            return
        with self._lock:
            entry = self._pending.get(h.get("re"))
        if entry is None:
            return                                  # a late answer to an abandoned call
        future, frames = entry
        frames.append((h, payload))
        if op == "done":
            with self._lock:
                self._pending.pop(h["re"], None)
            self._settle(future, frames)

    def _settle(self, future, frames):
        try:
            future.set_result(self._outcome(frames))
        except ProtocolError as e:
            future.set_exception(e)
            self._disconnect("protocol error: %s" % e)  # a far side never gets a second try
        except BaseException as e:  # noqa: BLE001 - the outcome is the far side's exception
            future.set_exception(e)

    def _outcome(self, frames):
        done = frames[-1][0]
        if done.get("status") == "deadline-exceeded":
            raise TimeoutError("limpet: the call ran past its timeout on %r and was "
                               "interrupted there" % self.name)
        for h, payload in frames:
            if h["op"] == "result":
                if "ref" in h:
                    ref = Ref(self, h["ref"], h.get("type", "?"), h.get("repr", ""))
                    self._refs[ref.id] = ref
                    return ref
                return loads(payload, self._allow, self._persistent)
            if h["op"] == "exception":
                raise self._exception(h, payload)
        if done.get("status") == "abandoned":
            raise TimeoutError("limpet: the call did not stop on %r; it was left running there"
                               % self.name)
        raise ProtocolError("%r ended a call with no result" % self.name)

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

    def _end(self, why, error=ConnectionError):
        with self._lock:
            if self._closed is None:
                self._closed = why
            pending, self._pending = self._pending, {}
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(error("limpet: the context %r has ended: %s"
                                           % (self.name, why)))

    def _disconnect(self, why):
        self._end(why, ProtocolError)
        threading.Thread(target=self._kill, daemon=True).start()

    def _release(self, ref):
        self._refs.pop(ref, None)
        if self._closed is None:
            try:
                self._write(wire.encode({"op": "ref-release", "refs": [ref]}))
            except (OSError, ConnectionError):
                pass

    def _kill(self):
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()

    # --- what users call ---------------------------------------------------------------

    def call_async(self, fn, *args, timeout=None, **kwargs):
        """call_async(fn, *args, timeout=None, **kwargs) -> concurrent.futures.Future

        Runs fn(*args, **kwargs) on the far side; timeout (seconds) is enforced there.
        timeout is call's own keyword: to give fn an argument of that name, pass
        functools.partial(fn, timeout=...) as fn.
        """
        buf = io.BytesIO()
        _Pickler(buf, self).dump((fn, args, kwargs))
        rid = next(self._ids)
        header = {"op": "call", "id": rid}
        if timeout is not None:
            header["timeout_ms"] = max(0, int(timeout * 1000))
        future = concurrent.futures.Future()
        with self._lock:
            self._pending[rid] = (future, [])
        try:
            self._write(wire.encode(header, buf.getvalue()))
        except BaseException:
            with self._lock:
                self._pending.pop(rid, None)
            raise
        return future

    def call(self, fn, *args, timeout=None, **kwargs):
        """call(fn, *args, timeout=None, **kwargs) -> the value fn returned on the far side

        Its exception, raised here as its own type where it may come back (else
        limpet.RemoteError), with the far traceback as .remote_traceback and as a note.
        """
        return self.call_async(fn, *args, timeout=timeout, **kwargs).result()

    def _ref_id(self, obj):
        if isinstance(obj, Ref):
            if obj._ctx is not self:
                raise ValueError("limpet: a Ref is only good on the context it came from")
            return ("ref", obj.id)
        return None

    def refs(self):
        """refs() -> list of the live limpet.Ref of this context."""
        return list(self._refs.values())

    def shutdown(self, timeout=SHUTDOWN_TIMEOUT):
        """Says bye, gives the far side timeout seconds to leave, then makes it."""
        try:
            self._write(wire.encode({"op": "bye"}))
        except (OSError, ConnectionError):
            pass
        self._end("shut down")
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill()

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


def connect(address, *, python=None, ssh_options=None, via=None, allow=None, command=None):
    """connect(address, *, python=None, ssh_options=None, via=None, allow=None, command=None)

    Starts a far interpreter with nothing installed but Python and returns its Context:
    "local" (a child here; python= picks it), "ssh://[user@]host[:port]" (the system ssh;
    ssh_options= adds arguments), or any address with command= (an argv prefix that starts
    a Python with stdio, such as ["docker", "exec", "-i", "c1"]). allow= names the classes a
    result may be made of besides plain data.
    """
    if via is not None:
        raise ValueError("limpet: via= (chains through another context) is not available "
                         "yet; it comes with the context broker")
    payload_len = len(_bootstrap.agent_payload())
    if command is not None:
        argv = list(command) + _bootstrap.stage1_argv(payload_len, address, python or "python3")
        return Context(address, argv, allow)
    if address == "local":
        name = "%s@%s" % (_whoami(), os.uname().nodename)
        return Context("local", _bootstrap.stage1_argv(payload_len, name,
                                                       python or sys.executable), allow)
    m = _SSH.match(address)
    if m is None:
        raise ValueError("limpet: bad address %r: 'local', or ssh://[user@]host[:port]"
                         % address)
    user, host, port = m.groups()
    far = _bootstrap.stage1_argv(payload_len, "%s@%s" % (user or "", host),
                                 python or "python3")
    remote = " ".join(shlex.quote(a) for a in far)  # the far login shell reads one string
    argv = ["ssh", "-T", "-o", "BatchMode=yes"] + list(ssh_options or [])
    if port:
        argv += ["-p", port]
    if user:
        argv += ["-l", user]
    return Context(address, argv + ["--", host.strip("[]"), remote], allow)


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
