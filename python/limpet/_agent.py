"""The far side of an execution context (docs/contexts.md, docs/protocol.md section 8).

Sent zlib-compressed to a Python that has nothing else installed and run from memory by the
stage-1 command line, which leaves the rest of the link on fd 0. Standard library only;
CPython 3.6 and later, PyPy 3 (no syntax newer than 3.6 here). This increment serves calls,
results, exceptions, references, interrupts and deadlines, logs and the far stdio; modules,
streams and chains follow (issue 11).
"""
import io
import os
import struct
import sys
import time
from _collections import deque
from _thread import allocate_lock, get_ident, start_new_thread  # threading: 1 ms of imports

try:  # the C codecs json itself uses, without json's modules (json.decoder imports re)
    from _json import make_encoder, make_scanner
except ImportError:  # PyPy
    make_encoder = make_scanner = None
try:  # pickle.py imports re; _pickle is the same pickle without it
    import _pickle as pickle
except ImportError:  # PyPy
    import pickle

PREAMBLE = b"\0limpet\n"
HEADER_MAX = 65536
PAYLOAD_MAX = 16 << 20
PICKLE_PROTOCOL = 4  # what every Python from 3.4 reads


class JsonContext:
    """What _json's scanner reads from a json.JSONDecoder: the same settings as json.loads."""
    strict = True
    object_hook = object_pairs_hook = None
    parse_float, parse_int = float, int
    memo = {}

    @staticmethod
    def parse_constant(name):
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


def json_default(o):
    raise TypeError("%s is not JSON serializable" % type(o).__name__)


if make_scanner is not None:
    _scan = make_scanner(JsonContext())
    _encode = make_encoder(None, json_default, __import__("_json").encode_basestring_ascii,
                           None, ":", ",", False, False, True)

    def encode_header(header):
        """header (a dict) -> bytes: json.dumps(header, separators=(",", ":")), ASCII."""
        return "".join(_encode(header, 0)).encode()

    def decode_header(text):
        """text -> the JSON value it holds, as json.loads(text) gives it; ValueError if it
        is not JSON."""
        text = text.strip(" \t\n\r")
        try:
            value, end = _scan(text, 0)
        except StopIteration:
            raise ValueError("not JSON")
        if end != len(text):
            raise ValueError("extra data after the JSON value")
        return value
else:
    def encode_header(header):
        import json
        return json.dumps(header, separators=(",", ":")).encode()

    def decode_header(text):
        import json
        return json.loads(text)


class Link:
    """Frames over two file descriptors: one reader (the main thread), writers under a lock."""

    def __init__(self, rfd, wfd):
        self.rfd, self.wfd = rfd, wfd
        self.buf = bytearray()
        self.lock = allocate_lock()

    def send(self, header, payload=b""):
        h = encode_header(header)
        head = struct.pack(">II", len(h), len(payload)) + h
        parts = [head + payload] if len(payload) < 65536 else [head, payload]  # no big copy
        with self.lock:
            for data in parts:
                data = memoryview(data)
                while data:
                    data = data[os.write(self.wfd, data):]

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = os.read(self.rfd, max(65536, n - len(self.buf)))
            if not chunk:
                raise EOFError("the link ended")
            self.buf += chunk

    def preamble(self):
        self._fill(len(PREAMBLE))
        if bytes(self.buf[:len(PREAMBLE)]) != PREAMBLE:
            raise ValueError("not a limpet peer")
        del self.buf[:len(PREAMBLE)]

    def recv(self):
        self._fill(8)
        hlen, plen = struct.unpack(">II", bytes(self.buf[:8]))
        if hlen > HEADER_MAX or plen > PAYLOAD_MAX:
            raise ValueError("frame over the limit")
        self._fill(8 + hlen + plen)
        header = decode_header(bytes(self.buf[8:8 + hlen]).decode("utf-8"))
        payload = bytes(self.buf[8 + hlen:8 + hlen + plen])
        del self.buf[:8 + hlen + plen]
        if not isinstance(header, dict):
            raise ValueError("a header is a JSON object")
        return header, payload


def take_stdio():
    """The link keeps the real fds 0 and 1; fd 0 becomes /dev/null and fds 1 and 2 become
    pipes whose lines are sent as log frames (Python's output and child processes' alike)."""
    rfd, wfd = os.dup(0), os.dup(1)
    for fd in (rfd, wfd):
        os.set_inheritable(fd, False)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    pipes = []
    for fd in (1, 2):
        r, w = os.pipe()
        os.dup2(w, fd)
        os.close(w)
        os.set_inheritable(r, False)
        pipes.append(r)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True,
                                  errors="backslashreplace")
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True,
                                  errors="backslashreplace")
    return rfd, wfd, pipes


def forward_lines(link, fd, origin, level):
    """Sends each line written to fd as a log frame; a partial line waits for its end."""
    pending = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            link.send({"op": "log", "level": level, "logger": origin, "origin": origin,
                       "created_ms": int(time.time() * 1000)}, line)


def log_to_link(logging, link, level):
    """Sends the far side's log records as log frames: a handler on the root logger."""

    class LinkHandler(logging.Handler):
        def emit(self, record):
            try:
                text = self.format(record).encode("utf-8", "backslashreplace")
                link.send({"op": "log", "level": record.levelno, "logger": record.name,
                           "origin": "logging", "created_ms": int(record.created * 1000)},
                          text)
            except Exception:  # noqa: BLE001 - a log record must never break the call
                self.handleError(record)

    root = logging.getLogger()
    root.addHandler(LinkHandler())
    root.setLevel(level)


class LogHook:
    """A sys.meta_path entry that calls log_to_link when the far code first imports logging:
    importing it at every start would cost more than the rest of the agent (5 ms, with
    traceback and re)."""

    def __init__(self, link, level):
        self.link, self.level = link, level

    def find_spec(self, name, path=None, target=None):
        if name != "logging":
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = getattr(finder, "find_spec", lambda *a: None)(name, path, target)
            if spec is not None:
                spec.loader = LoadThen(spec.loader, self.installed)
                return spec
        return None

    def installed(self, module):
        log_to_link(module, self.link, self.level)


class LoadThen:
    """A module's loader that calls then(module) once the module has run."""

    def __init__(self, loader, then):
        self.loader, self.then = loader, then

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        self.then(module)

    def __getattr__(self, name):  # get_source and the rest, for tracebacks
        return getattr(self.loader, name)


def interrupt_thread(thread_id, exc=KeyboardInterrupt):
    """Raises exc in another thread, where this interpreter allows it (None: clears one
    pending). True when it did."""
    try:
        import ctypes
        set_async = ctypes.pythonapi.PyThreadState_SetAsyncExc
    except (ImportError, AttributeError):
        return False  # PyPy: no C API; the call is reported abandoned
    arg = ctypes.py_object(exc) if exc is not None else None
    return set_async(ctypes.c_ulong(thread_id), arg) == 1


class Calls:
    """A FIFO for the workers: queue.Queue without the imports of queue and threading."""

    def __init__(self):
        self.items, self.waiters = deque(), deque()
        self.lock = allocate_lock()

    def put(self, item):
        with self.lock:
            if not self.waiters:
                self.items.append(item)
                return
            waiter = self.waiters.popleft()  # handed over: no other get() can take it
        waiter[1] = item
        waiter[0].release()

    def get(self):
        with self.lock:
            if self.items:
                return self.items.popleft()
            waiter = [allocate_lock(), None]
            waiter[0].acquire()
            self.waiters.append(waiter)
        waiter[0].acquire()
        return waiter[1]


class Agent:
    def __init__(self, link):
        self.link = link
        self.refs = {}           # id -> object the caller holds a Ref to
        self.next_ref = 1
        self.calls = {}          # call id -> (thread id, state dict)
        self.lock = allocate_lock()
        self.queue = Calls()        # calls for the workers
        self.idle = 0               # workers waiting for a call (under lock)

    def work(self):
        """A worker: runs calls as they come; a thread start per call cost more than the
        call (600 us against 180)."""
        while True:
            h, payload, state = self.queue.get()
            self.run_call(h, payload, state)
            with self.lock:
                self.idle += 1

    def hello(self, name):
        try:
            import pwd  # not getpass or platform: a millisecond of imports at every start
            user = pwd.getpwuid(os.getuid()).pw_name
        except (ImportError, KeyError):  # no passwd entry in a container
            user = str(os.getuid())
        os.write(self.link.wfd, PREAMBLE)
        self.link.send({"op": "hello", "id": 0, "protocol": [1], "client": "limpet-agent",
                        "caps": ["call", "channel", "module", "log"],
                        "agent": {"python": "%d.%d.%d" % sys.version_info[:3],
                                  "implementation": sys.implementation.name,
                                  "pid": os.getpid(), "user": user,
                                  "host": os.uname().nodename, "name": name}})
        # threading takes the thread that first imports it for the main thread: this one,
        # then, not a worker running far code; here, while the caller reads the hello
        import threading  # noqa: F401
        self.link.preamble()
        welcome, _ = self.link.recv()
        if welcome.get("op") != "done" or welcome.get("status") != "ok":
            raise SystemExit(2)
        return welcome

    def serve(self):
        while True:
            h, payload = self.link.recv()
            op = h.get("op")
            if op == "call":
                self.start_call(h, payload)
            elif op == "interrupt":
                self.interrupt(h)
            elif op == "ref-release":
                with self.lock:
                    for ref in h.get("refs", []):
                        self.refs.pop(ref, None)
            elif op == "bye":
                return
            elif "id" in h:
                self.link.send({"op": "error", "re": h["id"], "code": "not-supported",
                                "message": "not available in this agent"})

    def start_call(self, h, payload):
        state = {"status": None}
        with self.lock:
            self.calls[h["id"]] = (None, state)
            start = self.idle == 0     # a worker per call in flight, kept for the next ones
            self.idle -= 0 if start else 1
        if start:
            start_new_thread(self.work, ())  # threading's start() waits for it to run
        self.queue.put((h, payload, state))
        timeout = h.get("timeout_ms")
        if isinstance(timeout, int) and timeout >= 0:
            import threading  # only for deadlines: 1 ms at every start otherwise
            timer = threading.Timer(timeout / 1000.0, self.expire, (h["id"],))
            timer.daemon = True
            timer.start()

    def stop_call(self, call_id, status):
        """Interrupts call call_id with status; where this interpreter cannot (PyPy), the
        call is answered now as abandoned and its thread left to finish unheard. True when
        it was running."""
        with self.lock:
            entry = self.calls.get(call_id)
            if entry is None or entry[0] is None or entry[1].get("answered"):
                return False
            entry[1]["status"] = status
            if interrupt_thread(entry[0]):
                return True
            entry[1]["answered"] = True
        self.link.send({"op": "done", "re": call_id, "status": "abandoned"})
        return True

    def expire(self, call_id):
        self.stop_call(call_id, "deadline-exceeded")

    def interrupt(self, h):
        was = "running" if self.stop_call(h.get("call"), "interrupted") else "idle"
        if "id" in h:
            self.link.send({"op": "done", "re": h["id"], "status": "ok", "was": was})

    def unpickle_arg(self, pid):
        if isinstance(pid, tuple) and len(pid) == 2 and pid[0] == "ref":
            with self.lock:
                return self.refs[pid[1]]
        raise pickle.UnpicklingError("unknown persistent id")

    def run_call(self, h, payload, state):
        re = h["id"]
        with self.lock:
            self.calls[re] = (get_ident(), state)
        value = error = None
        try:
            up = pickle.Unpickler(io.BytesIO(payload))
            up.persistent_load = self.unpickle_arg
            fn, args, kwargs = up.load()
            value = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - every failure goes back to the caller
            error = e
        while True:
            # an interrupt aimed at the call may land here, after it returned: take the
            # call off the table (no new one can come), drop any that is pending, then send
            try:
                with self.lock:
                    self.calls.pop(re, None)
                    if state["status"] is not None:  # ctypes only after an interrupt
                        interrupt_thread(get_ident(), None)
                    answered = state.get("answered")
                    state["answered"] = True
                break
            except KeyboardInterrupt:
                continue
        if answered:
            return  # abandoned: the caller has had its answer
        if error is None:
            self.send_value(re, value, h.get("ref", False))
        else:
            self.send_exception(re, error)
        self.link.send({"op": "done", "re": re,
                        "status": "ok" if error is None else state["status"] or "exception"})

    def send_value(self, re, value, as_ref):
        data = None
        if not as_ref:
            try:
                data = pickle.dumps(value, PICKLE_PROTOCOL)
            except Exception:  # noqa: BLE001 - not picklable: it stays here, as a Ref
                data = None
        if data is not None and len(data) <= PAYLOAD_MAX:
            self.link.send({"op": "result", "re": re}, data)
            return
        with self.lock:
            ref, self.next_ref = self.next_ref, self.next_ref + 1
            self.refs[ref] = value
        t = type(value)
        self.link.send({"op": "result", "re": re, "ref": ref,
                        "type": t.__module__ + "." + t.__qualname__,
                        "repr": safe_repr(value)[:256]})

    def send_exception(self, re, e):
        t = type(e)
        frames = e.__traceback__
        if frames is not None and frames.tb_frame.f_code.co_name == "run_call":
            frames = frames.tb_next  # the agent's own frame: not the caller's business
        import traceback  # here: 2 ms at every start otherwise
        tb = "".join(traceback.format_exception(t, e, frames))
        try:
            data = pickle.dumps(e, PICKLE_PROTOCOL)
        except Exception:  # noqa: BLE001 - the caller gets the type, message and traceback
            data = b""
        text = tb.encode("utf-8", "backslashreplace")
        self.link.send({"op": "exception", "re": re, "type": t.__module__ + "." + t.__qualname__,
                        "message": safe_str(e)[:4096], "pickle": len(data)}, data + text)


def safe_repr(v):
    try:
        return repr(v)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not lose the result
        return "<%s object>" % type(v).__name__


def safe_str(v):
    try:
        return str(v)
    except Exception:  # noqa: BLE001
        return ""


_DEFINED = {}  # the caller's __main__ parts, run once per distinct text


def define(parts, name):
    """The caller's __main__ function name, defined here: parts are the top-level imports,
    functions and classes of the caller's script (never its other statements, which would
    run the script), run in a namespace of their own; a part that fails (an import of
    something this side lacks) is skipped. Reached by the caller's pickles as
    limpet_agent.define."""
    key = "\0".join(parts)
    ns = _DEFINED.get(key)
    if ns is None:
        ns = {"__name__": "__limpet_main__", "__builtins__": __builtins__}
        for part in parts:
            try:
                exec(compile(part, "<the caller's __main__>", "exec"), ns)
            except Exception:  # noqa: BLE001 - what this side lacks may not be needed
                pass
        _DEFINED[key] = ns
    return ns[name]


def install_module():
    """limpet_agent, importable here, for the pickles that name limpet_agent.define."""
    import types
    mod = types.ModuleType("limpet_agent")
    mod.define = define
    define.__module__ = "limpet_agent"
    sys.modules["limpet_agent"] = mod


def set_process_name(name):
    """The short name ps shows (Linux: prctl(PR_SET_NAME) without ctypes, 2 ms to import)."""
    try:
        with open("/proc/self/comm", "wb") as f:
            f.write(name.encode()[:15])
    except (OSError, ValueError):  # not Linux: only cosmetic
        pass


def main():
    name = sys.argv[-1] if len(sys.argv) > 1 else "limpet"
    rfd, wfd, pipes = take_stdio()
    install_module()
    link = Link(rfd, wfd)
    agent = Agent(link)
    try:
        welcome = agent.hello(name)
    except (EOFError, ValueError):
        os._exit(2)
    set_process_name("limpet:" + name.split(":", 1)[-1])
    for fd, origin, level in ((pipes[0], "stdout", 20), (pipes[1], "stderr", 30)):  # INFO, WARNING
        start_new_thread(forward_lines, (link, fd, origin, level))
    level = welcome.get("log_level", 20)
    if "logging" in sys.modules:  # a sitecustomize imported it
        log_to_link(sys.modules["logging"], link, level)
    else:
        sys.meta_path.insert(0, LogHook(link, level))
    try:
        agent.serve()
    except (EOFError, ValueError, OSError):
        pass
    # the caller is gone or said bye: leave at once, whatever calls still run
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":  # stage 1 runs it with exec() in __main__'s namespace
    main()
