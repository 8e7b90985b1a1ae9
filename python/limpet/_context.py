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
import logging
import os
import pickle
import re
import shlex
import sys
import threading
import time
import types
import weakref

from . import _bootstrap, _limpet, _modules, wire
from ._agent import define as _define
from . import _link
from ._link import HANDSHAKE_TIMEOUT, SHUTDOWN_TIMEOUT, _Link
from ._results import ProtocolError, RemoteError, Secret, loads

LOCAL_GRACE = 5.0          # s: past a call's timeout, the caller stops waiting for the far side
SUDO_PROMPT = "limpet: the sudo password of "  # the prompt sudo -S is given: only it is answered
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
        if self.future.done() or not self.future.set_running_or_notify_cancel():
            return True                             # cancelled or expired: the answer is dropped
        try:
            self.future.set_result(self.ctx._outcome(self.frames))
        except ProtocolError as e:
            self.future.set_exception(e)
            self.ctx._cut("protocol error: %s" % e)  # no second try
        except BaseException as e:  # noqa: BLE001 - the outcome is the far side's exception
            self.future.set_exception(e)
        return True

    def end(self, exc):
        if not self.future.done() and self.future.set_running_or_notify_cancel():
            self.future.set_exception(exc)


class _Stream:
    """ctx.stream(...): the items of a far generator as they come, within a credit window.
    The consuming thread waits for them itself, in C (one wake-up per batch)."""

    def __init__(self, ctx, window, deadline):
        self.ctx, self.window, self.deadline = ctx, window, deadline
        self.rid = None
        self.items, self.frames = collections.deque(), []
        self.outstanding = window     # items the far side may still send
        self.taken = 0                # items taken since the last ack
        self.closed = self.finished = False

    def take(self, frames):
        for h, payload in frames:
            op = h.get("op")
            if op == "channel-data":
                if self.outstanding <= 0:
                    raise ProtocolError("%r sent a stream item it had no credit for"
                                        % self.ctx.name)
                self.outstanding -= 1
                self.items.append((h, payload))
            elif op != "channel-close":
                self.frames.append((h, payload))
                if op in ("done", "error"):
                    self.finish()
                    return
                if len(self.frames) > 2:            # an answer, then done: nothing else
                    raise ProtocolError("%r answered a stream with more than one result"
                                        % self.ctx.name)

    def finish(self):
        if not self.finished:
            self.finished = True
            self.ctx._waiting.discard(self.rid)
            _limpet.ctx_forget(self.ctx._link.id, self.rid)

    def __iter__(self):
        return self

    def __next__(self):
        while not self.items:
            if self.finished:
                if self.closed:
                    raise StopIteration
                self.ctx._outcome(self.frames)      # raises the far exception, if any
                raise StopIteration
            try:
                frames = self.ctx._link.wait(self.rid, self.deadline, self.ctx)
            except TimeoutError:
                self.finish()
                raise TimeoutError("limpet: %r did not end the stream within %.1f s of its "
                                   "timeout" % (self.ctx.name, LOCAL_GRACE)) from None
            except BaseException:
                self.finish()
                raise
            try:
                self.take(frames)
            except ProtocolError as e:
                self.finish()
                self.ctx._cut("protocol error: %s" % e)
                raise
        h, payload = self.items.popleft()
        self.taken += 1
        if self.taken >= max(1, self.window // 2) and not self.finished:
            self.outstanding += self.taken
            try:
                self.ctx._send({"op": "channel-ack", "channel": self.rid, "n": self.taken})
            except (OSError, ConnectionError):
                pass                               # it ended: the next wait says why
            self.taken = 0
        return self.ctx._value(h, payload)

    def close(self):
        """Stops the far generator (GeneratorExit there) and drops what it still sends."""
        if self.closed or self.finished:
            return
        self.closed = True
        self.items.clear()
        self.finish()
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
        if not (self.closed or self.finished) and self.rid is not None:
            self.closed = True                     # a finalizer: post, never send
            self.finish()
            self.ctx._post({"op": "channel-close", "channel": self.rid})


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
        self._waiting = set()                  # ids a thread waits for in C
        self._closed = None                    # why it ended, once it has
        self._ended = threading.Event()
        self._log = logging.getLogger("limpet.ctx." + name)
        link.contexts[tuple(path)] = self
        self._modules = _modules.State()       # what the far side's imports were sent

    # --- the link -------------------------------------------------------------------

    def _send(self, header, payload=b""):
        if self._closed is not None:
            raise ConnectionError("limpet: the context %r has ended: %s" % (self.name,
                                                                             self._closed))
        if self._path:
            header["to"] = self._path
        self._link.send(wire.encode(header, payload))

    def _request(self, header, payload, handler):
        """Sends a request whose answer the service thread hands to handler."""
        rid = header["id"] = self._link.new_id()
        self._link.pending[rid] = handler
        try:
            self._send(header, payload)
        except BaseException:
            self._link.pending.pop(rid, None)
            raise
        return rid

    def _expect(self, header, payload):
        """Sends a request whose answer this thread waits for itself (ctx_wait)."""
        rid = header["id"] = self._link.new_id()
        _limpet.ctx_expect(self._link.id, rid)
        self._waiting.add(rid)
        try:
            self._send(header, payload)
        except BaseException:
            self._waiting.discard(rid)
            _limpet.ctx_forget(self._link.id, rid)
            raise
        return rid

    def _exchange(self, header, payload, wait):
        """The frames that answer a request, up to its done: waited for here, in C without
        the GIL, for at most wait seconds (None: as long as the context lives). Ctrl+C
        interrupts the far call too."""
        rid = self._expect(header, payload)
        deadline = None if wait is None else time.monotonic() + wait
        frames = []
        try:
            while True:
                for frame in self._link.wait(rid, deadline, self):
                    frames.append(frame)
                    if frame[0].get("op") in ("done", "error"):
                        return frames
                    if len(frames) > 2:             # an answer, then done: nothing else
                        self._cut("protocol error: %r answered a request with more than "
                                  "one result" % self.name)
                        raise ProtocolError("%r answered a request with more than one result"
                                            % self.name)
        except KeyboardInterrupt:
            try:
                self._send({"op": "interrupt", "call": rid})
            except (OSError, ConnectionError):
                pass
            raise
        finally:
            self._waiting.discard(rid)
            _limpet.ctx_forget(self._link.id, rid)

    def _settle(self, frames):
        try:
            return self._outcome(frames)
        except ProtocolError as e:
            self._cut("protocol error: %s" % e)      # a far side never gets a second try
            raise

    def _cut(self, why):
        """This side refuses this context: the whole link for the first hop, else this hop
        and those below it (its parent is asked to kill it), the rest of the chain going on."""
        if not self._path:
            self._link.disconnect(why)
            return
        self._link.end(why, ProtocolError, path=self._path)
        self._kill_hop()

    def _kill_hop(self):
        """Asks this hop's parent to kill it."""
        kill = {"op": "kill", "context": self._path[-1]}
        if len(self._path) > 1:
            kill["to"] = self._path[:-1]
        try:
            self._link.send(wire.encode(kill))
        except (OSError, ConnectionError):
            pass

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
        elif op == "module-get":                   # the far side imports a module it lacks
            reply = _modules.serve(self._modules, h)
            if reply is not None:
                try:
                    self._send(*reply)
                except (OSError, ConnectionError):
                    pass                                # it ended meanwhile

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
        argv, compiled = _far_argv(address, python, ssh_options, command, password, self.agent)
        secret = password.reveal().encode() if password is not None else b""
        source = _bootstrap.agent_payload()
        header = {"op": "spawn", "argv": argv, "secret": len(secret), "source": len(source),
                  "log_level": logging.getLogger().getEffectiveLevel()}
        header["context"] = str(self._link.new_id())
        if password is not None:
            header["prompt"] = _prompt_of(argv)
        code = b""
        if compiled and self._link.compiled:             # every hop so far is on this host
            header["tag"], code = _limpet.agent_code()
        try:
            frames = self._exchange(header, secret + source + code, HANDSHAKE_TIMEOUT + 5)
        except TimeoutError:
            raise ConnectionError("limpet: %r did not start within %.0f s" % (
                address, HANDSHAKE_TIMEOUT)) from None
        done = self._settle(frames)
        return Context(self._link, "%s/%s" % (self.name, address),
                       self._path + [header["context"]], done.get("agent", {}), allow, output)

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
        rid = self._request(header, self._pickle(fn, args, kwargs), call)
        if timeout is not None:                     # a far side that never answers
            _link.expire_at(time.monotonic() + timeout + LOCAL_GRACE, self._link, rid)
        return call.future

    def call(self, fn, *args, timeout=None, **kwargs):
        """call(fn, *args, timeout=None, **kwargs) -> the value fn returned on the far side

        Its exception, raised here as its own type where it may come back (else
        limpet.RemoteError), with the far traceback as .remote_traceback and as a note.
        With timeout, a far side that does not answer in time even to say it stopped the
        call (a hung or hostile one) costs TimeoutError here LOCAL_GRACE seconds later.
        """
        header = {"op": "call"}
        if timeout is not None:
            header["timeout_ms"] = max(0, int(timeout * 1000))
        try:
            frames = self._exchange(header, self._pickle(fn, args, kwargs),
                                    None if timeout is None else timeout + LOCAL_GRACE)
        except TimeoutError:
            raise TimeoutError("limpet: %r did not answer within %.1f s of the call's "
                               "timeout" % (self.name, LOCAL_GRACE)) from None
        return self._settle(frames)

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
        stream = _Stream(self, window, None if timeout is None else
                         time.monotonic() + timeout + LOCAL_GRACE)
        stream.rid = self._expect(header, self._pickle(fn, args, kwargs))
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
                self._kill_hop()                   # it did not leave: its parent makes it
            self._link.end("shut down", path=self._path)
            return
        self._link.end("shut down")
        self._link.close()                         # its end of the pipes: the far side leaves
        self._link.reap(timeout)

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


def _prompt_of(argv):
    """What the password prompt of argv has in it: sudo's own (-p), or su's word."""
    return SUDO_PROMPT if argv[0] == "sudo" else "assword"


def _far_argv(address, python, ssh_options, command, password, here):
    """(argv, compiled): the command that starts the far Python of address from a place
    described by here (a parent's hello, or None for this process), and whether stage 2 may
    be the compiled agent (not over ssh: 24 KB instead of 7 on a network)."""
    if here is None:
        here = {"executable": sys.executable, "user": _whoami(), "host": os.uname().nodename}
    if command is not None:
        return list(command) + _bootstrap.stage1_argv(address, python or "python3"), True
    if address == "local":
        name = "%s@%s" % (here.get("user"), here.get("host"))
        return _bootstrap.stage1_argv(name, python or here.get("executable") or "python3"), True
    m = _USER.match(address)
    if m is not None:
        how, user = m.groups()
        far = _bootstrap.stage1_argv("%s@%s" % (user, here.get("host")),
                                     python or here.get("executable") or "python3")
        if how == "su":
            return ["su", user, "-c", " ".join(shlex.quote(a) for a in far)], True
        flags = ["-S", "-p", SUDO_PROMPT + "%u:"] if password else ["-n"]
        return ["sudo"] + flags + ["-u", user, "--"] + far, True
    m = _SSH.match(address)
    if m is None:
        raise ValueError("limpet: bad address %r: 'local', sudo:USER, su:USER, or "
                         "ssh://[user@]host[:port]" % address)
    if password is not None:
        raise ValueError("limpet: ssh takes no password here: its keys and agent are "
                         "OpenSSH's (ssh_options=)")
    user, host, port = m.groups()
    far = _bootstrap.stage1_argv("%s@%s" % (user or "", host), python or "python3")
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
    argv, compiled = _far_argv(address, python, ssh_options, command, password, None)
    link = _Link(address, argv, password, compiled)
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
