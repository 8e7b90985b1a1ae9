"""The far side of an execution context (docs/contexts.md, docs/protocol.md section 8).

Sent zlib-compressed to a Python that has nothing else installed and run from memory by the
stage-1 command line, which leaves the rest of the link on fd 0. Standard library only;
CPython 3.6 and later, PyPy 3 (no syntax newer than 3.6 here). It serves calls, results,
exceptions, references, interrupts and deadlines, streams, logs and the far stdio, modules
from the caller, and starts and relays the contexts chained below it.
"""
import io
import os
import struct
import sys
import time
from _thread import allocate_lock, get_ident, start_new_thread  # threading: 1 ms of imports

try:  # the C codecs json itself uses, without json's modules (json.decoder imports re)
    from _json import make_encoder, make_scanner
except ImportError:  # PyPy
    make_encoder = make_scanner = None
try:  # pickle.py imports re; _pickle is the same pickle without it
    import _pickle as pickle
except ImportError:  # PyPy
    import pickle

threading = None  # imported by Agent.hello, in the main thread, while the caller reads
PREAMBLE = b"\0limpet\n"
HEADER_MAX = 65536
PAYLOAD_MAX = 16 << 20
PICKLE_PROTOCOL = 4  # what every Python from 3.4 reads
OUTBOX_MAX = 64 << 20  # bytes relayed down to a chained child that is not reading them
ABANDON_AFTER = 2.0  # s: an interrupted call that has not stopped by then is given up


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
        self.send_all(((header, payload),))

    def send_all(self, frames):
        """Writes frames ((header, payload) pairs) in one go: a call's answer and its done
        reach the caller in one read, and wake it once. Big payloads are not copied."""
        parts, small = [], b""
        for header, payload in frames:
            h = encode_header(header)
            small += struct.pack(">II", len(h), len(payload)) + h
            if len(payload) < 65536:
                small += payload
            else:
                parts += [small, payload]
                small = b""
        parts.append(small)
        stopped = None
        with self.lock:
            for data in parts:
                data = memoryview(data)
                while data:
                    try:
                        data = data[os.write(self.wfd, data):]
                    except KeyboardInterrupt as e:  # meant for the call: never mid-frame
                        stopped = e
        if stopped is not None:
            raise stopped

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


STAGE1 = b"limpet-stage1 "  # how stage 1 says which bytecode it runs, on its stdout


def stage2(payloads, tag):
    """The header and bytes of stage 2 for a stage 1 that said tag: the agent compiled for
    that bytecode when payloads has it, else its source."""
    kind, data = (b"c", payloads[tag]) if tag in payloads else (b"s", payloads["source"])
    return kind + b"%08d" % len(data) + data


def readable(fds, timeout):
    """The fds of fds that are readable within timeout seconds (poll: any fd number)."""
    import select
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    return [fd for fd, _ in poller.poll(None if timeout is None else max(0, timeout) * 1000)]


def launch(argv, payloads, password=None, timeout=30.0, prompt=None):
    """Starts argv (a command that ends with stage 1) with pipes on its stdio, answers the one
    password prompt it may print on stderr first (a line that ends in ':', has prompt in it
    when given, and then stays quiet), and once stage 1 has said which bytecode it runs,
    writes stage 2 (from payloads: see stage2). A password so never lands in the agent's
    bytes, nor the agent's bytes in a password prompt; what the command says is never
    reported with the password in it. The caller and a relaying agent both use it."""
    import subprocess
    p = subprocess.Popen(argv, stdin=-1, stdout=-1, stderr=-1, start_new_session=True)
    fo, fe = p.stdout.fileno(), p.stderr.fileno()
    out, err, said, sent = b"", b"", b"", False
    deadline = time.time() + timeout

    def why():
        text = said + err
        if password:
            text = text.replace(password, b"***")
        return text.decode("utf-8", "replace").strip()[-300:]
    try:
        while not out.endswith(b"\n"):
            ready = readable([fo, fe], deadline - time.time())
            if not ready:
                raise OSError("%s did not start within %.0f s" % (argv[0], timeout))
            if fo in ready:
                chunk = os.read(fo, 4096)
                if not chunk:  # it ended: what it said on stderr is why
                    while readable([fe], 1):
                        chunk = os.read(fe, 4096)
                        if not chunk:
                            break
                        err += chunk
                    raise (PermissionError if sent else OSError)("%s ended%s: %s" % (
                        argv[0], " after the password was given" if sent else "",
                        why() or "exit status %s" % p.wait()))
                out += chunk
                continue
            chunk = os.read(fe, 4096)
            err += chunk
            last = err.rstrip(b" ").rsplit(b"\n", 1)[-1]
            if (chunk and last.endswith(b":") and (not sent or b"assword" in last)
                    and (prompt is None or prompt in last)
                    and not readable([fe], 0.1)):  # "sudo", ": " ... come apart
                if password is None or sent:     # a password prompt
                    raise PermissionError("%s asked for a password%s" % (
                        argv[0], " again: the one given was refused" if sent else
                        "; give it as password=limpet.Secret(...)"))
                p.stdin.write(password + b"\n")
                p.stdin.flush()
                sent, said, err = True, said + err, b""
        if not out.startswith(STAGE1):
            raise OSError("%s is not limpet's stage 1: it said %r" % (argv[0], out[:80]))
        p.stdin.write(stage2(payloads, out[len(STAGE1):].strip().decode()))
        p.stdin.flush()
    except BrokenPipeError:  # it ended before reading the agent
        raise OSError("%s ended: exit status %s" % (argv[0], p.wait()))
    except BaseException:
        p.kill()
        p.wait()
        raise
    return p


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


class Lines:
    """What is written to fd, sent line by line as log frames (from path: a chained context's
    command, such as ssh). Bytes are taken off the pipe only under the lock, so drain() can
    promise that what was written before it has been sent."""

    def __init__(self, link, fd, origin, level, path=None):
        self.link, self.fd, self.path = link, fd, path
        self.head = {"op": "log", "level": level, "logger": origin, "origin": origin}
        self.lock = allocate_lock()
        self.pending = b""
        os.set_blocking(fd, False)
        start_new_thread(self.run, ())

    def run(self):
        while readable([self.fd], None) and self.pump(False):
            pass
        if self.path:  # a chained command's stderr: its own copy of the fd, closed at the end
            os.close(self.fd)

    def pump(self, flush):
        """Sends what the pipe holds (and, with flush, a partial last line); False at its end."""
        with self.lock:
            while True:
                try:
                    chunk = os.read(self.fd, 65536)
                except BlockingIOError:
                    chunk = None
                if not chunk:
                    break
                self.take(chunk)
            if flush and self.pending:
                self.send(self.pending)
                self.pending = b""
            return chunk is None

    def take(self, chunk):
        lines = (self.pending + chunk).split(b"\n")
        self.pending = lines.pop()
        for line in lines:
            self.send(line)

    def send(self, line):
        h = dict(self.head, created_ms=int(time.time() * 1000))
        if self.path:
            h["from"] = self.path
        self.link.send(h, line)


class Outbox:
    """Frames relayed down to a chained child, written by a thread of its own: the reader
    never blocks on a child that does not read. Past OUTBOX_MAX bytes queued, the child is
    killed (its relay thread then says it ended)."""

    def __init__(self, link, proc):
        self.link, self.proc = link, proc
        self.frames, self.size, self.closed = [], 0, False
        self.cond = threading.Condition()
        start_new_thread(self.run, ())

    def put(self, header, payload):
        with self.cond:
            self.size += len(payload) + 256
            if self.size > OUTBOX_MAX:
                self.proc.kill()
                return
            self.frames.append((header, payload))
            self.cond.notify()

    def close(self):
        with self.cond:
            self.closed = True
            self.cond.notify()

    def run(self):
        while True:
            with self.cond:
                while not self.frames and not self.closed:
                    self.cond.wait()
                if self.closed:
                    break
                frames, self.frames, self.size = self.frames, [], 0
            try:
                self.link.send_all(frames)
            except OSError:
                break
        try:
            os.close(self.link.wfd)  # its stdin: the agent below sees the end of its link
        except OSError:
            pass


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
    try:  # no import here: the reader calls this while a worker may hold the import lock
        ctypes = sys.modules["ctypes"]  # imported by a worker: warm_up(), run_call()
        set_async = ctypes.pythonapi.PyThreadState_SetAsyncExc
    except (KeyError, AttributeError):
        return False  # PyPy: no C API; the call is reported abandoned
    if thread_id == 0:
        return True  # the question only: it can
    arg = ctypes.py_object(exc) if exc is not None else None
    return set_async(ctypes.c_ulong(thread_id), arg) == 1


def warm_up():
    """Imports ctypes, which interrupts need, when one is first needed and never on the reader
    thread (which must not import); True when this interpreter can interrupt a thread."""
    try:
        import ctypes  # noqa: F401 - for interrupt_thread
    except ImportError:
        pass
    return interrupt_thread(0, None)


def tracer(state):
    """A trace function that raises KeyboardInterrupt in the traced thread once state has a
    status (interrupted, deadline-exceeded)."""
    def trace(frame, event, arg):
        if state["status"] is not None:
            raise KeyboardInterrupt
        return trace
    return trace


class Agent:
    caps = ["call", "channel", "module", "log", "route"]  # _session.py's adds "session"
    lines = Lines  # what carries the far stdout and stderr

    def __init__(self, link):
        self.link = link
        self.refs = {}           # id -> object the caller holds a Ref to
        self.next_ref = 1
        self.calls = {}          # call id -> (thread id, state dict)
        self.lock = allocate_lock()
        self.reading = allocate_lock()  # held by the one thread that reads the link
        self.reader = None          # its ident
        self.spare = 0              # threads waiting to read (under lock)
        self.channels = {}          # stream id -> [credit, closed, Condition]
        self.children = {}          # context id -> (Popen, Link) of the contexts chained below
        self.output = []            # Lines of the far stdout and stderr
        self.asks = {}              # id of a request of ours -> [Event, (header, payload)]
        self.asked = 0              # the last such id (apart from the caller's ids)

    def lead(self):
        """Leader and followers: one thread at a time reads the link; the one that reads a
        call hands the reading on to a waiting thread (starting one if none waits: threads
        are kept, one per call in flight) and runs the call itself. A call so costs no
        hand-off between threads, which is 20 us and back here, as much as the call."""
        while True:
            with self.lock:
                self.spare += 1
            self.reading.acquire()
            with self.lock:
                self.spare -= 1
                self.reader = get_ident()
            try:
                call = None
                while call is None:
                    call = self.serve_one()
            except BaseException:  # noqa: BLE001 - the link ended or broke: no one can
                leave()            # reach this side any more; it must not outlive its caller
            with self.lock:
                self.reader = None
                start = self.spare == 0
            if start:
                try:
                    start_new_thread(self.lead, ())  # threading's start() waits for it to run
                except RuntimeError:  # no thread to spare: read again once this call is done
                    pass
            self.reading.release()
            self.run_call(*call)

    run = lead  # on the main thread; a Session reads on another one

    def hello(self, name):
        try:
            import pwd  # not getpass or platform: a millisecond of imports at every start
            user = pwd.getpwuid(os.getuid()).pw_name
        except (ImportError, KeyError):  # no passwd entry in a container
            user = str(os.getuid())
        os.write(self.link.wfd, PREAMBLE)
        self.link.send({"op": "hello", "id": 0, "protocol": [1], "client": "limpet-agent",
                        "caps": self.caps,
                        "agent": {"python": "%d.%d.%d" % sys.version_info[:3],
                                  "implementation": sys.implementation.name,
                                  "pid": os.getpid(), "user": user,
                                  "executable": sys.executable,
                                  "host": os.uname().nodename, "name": name}})
        # threading takes the thread that first imports it for the main thread: this one,
        # then, not a worker running far code; here, while the caller reads the hello
        global threading
        import threading
        self.link.preamble()
        welcome, _ = self.link.recv()
        if welcome.get("op") != "done" or welcome.get("status") != "ok":
            raise SystemExit(2)
        return welcome

    def serve_one(self):
        """Reads and handles one frame; a call is returned (to run), not run. Never imports:
        a thread running a call may hold the import lock while it waits for an answer."""
        h, payload = self.link.recv()
        op = h.get("op")
        try:
            if "to" in h:
                self.relay_down(h, payload)
            elif op == "call":
                return self.start_call(h, payload)
            else:
                self.serve_other(op, h, payload)
        except Exception as e:  # noqa: BLE001 - a malformed frame costs its sender an error
            if "id" in h:
                self.link.send({"op": "error", "re": h["id"], "code": "bad-field",
                                "message": "%s: %s" % (type(e).__name__, e)})

    def serve_other(self, op, h, payload):
        """Every frame but a call's."""
        if op == "interrupt":
            self.interrupt(h)
        elif op in ("channel-ack", "channel-close"):
            self.credit(h)
        elif op == "spawn":
            start_new_thread(self.spawn, (h, payload))
        elif op == "kill":
            child = self.children.get(h.get("context"))
            if child is not None:
                child[0].kill()  # sudo or su, say: its agent below leaves at the EOF
                child[2].close()
        elif op == "ref-release":
            with self.lock:
                for ref in h.get("refs", []):
                    self.refs.pop(ref, None)
        elif op == "bye":
            raise EOFError("bye")
        elif "re" in h:  # the answer to one of this side's requests
            with self.lock:
                slot = self.asks.get(h["re"])
            if slot:
                slot[1] = (h, payload)
                slot[0].set()
        elif "id" in h:
            self.link.send({"op": "error", "re": h["id"], "code": "not-supported",
                            "message": "not available in this agent"})

    def request(self, header, payload=b"", timeout=30):
        """Asks the caller; waits for the one answer, (header, payload). serve() routes
        it here and never imports: a worker may wait here holding the import lock."""
        if self.reader == get_ident():
            raise RuntimeError("the reader cannot wait for an answer")  # it brings them
        slot = [threading.Event(), None]
        with self.lock:
            self.asked += 1
            rid = header["id"] = self.asked
            self.asks[rid] = slot
        try:
            self.link.send(header, payload)
            if not slot[0].wait(timeout):
                raise TimeoutError("no answer to %s within %g s" % (header["op"], timeout))
        finally:
            with self.lock:
                self.asks.pop(rid, None)
        return slot[1]

    def start_call(self, h, payload):
        if h.get("stream"):  # the credit is there before the first item can need it
            self.channels[h["id"]] = [int(h["stream"]), False, threading.Condition()]
        state = {"status": None}
        with self.lock:
            self.calls[h["id"]] = (None, state)
        timeout = h.get("timeout_ms")
        if isinstance(timeout, int) and 0 <= timeout <= 1 << 40:
            state["timer"] = threading.Timer(timeout / 1000.0, self.expire, (h["id"],))
            state["timer"].daemon = True
            state["timer"].start()  # cancelled when the call ends: no thread per call left
        return h, payload, state

    # --- streams: a call's items, sent while the caller has granted credit ----------------

    def pump(self, re, items):
        ch = self.channels[re]
        try:
            for item in items:
                with ch[2]:
                    while ch[0] <= 0 and not ch[1]:
                        ch[2].wait(0.05)  # short: an interrupt lands between waits
                    if ch[1]:
                        break
                    ch[0] -= 1
                self.drain()
                self.link.send(*self.value_frame(re, item, False, "channel-data"))
        finally:
            self.channels.pop(re, None)
            if ch[1] and hasattr(items, "close"):
                items.close()  # the caller stopped early: GeneratorExit in the generator
            self.link.send({"op": "channel-close", "channel": re})

    def credit(self, h):
        ch = self.channels.get(h.get("channel"))
        if ch is None:
            return
        with ch[2]:
            if h["op"] == "channel-close":
                ch[1] = True
            elif isinstance(h.get("n"), int) and 0 < h["n"] <= 65536:
                ch[0] += h["n"]
            ch[2].notify()

    # --- chains: contexts started from here, their frames relayed both ways ---------------

    def spawn(self, h, payload):
        n, m, proc = h.get("secret", 0), h.get("source", 0), None
        payloads = {"source": payload[n:n + m]}
        if h.get("tag"):
            payloads[h["tag"]] = payload[n + m:]
        try:
            proc = launch(h["argv"], payloads, payload[:n] if n else None,
                          prompt=h.get("prompt", "").encode() or None)
            link = Link(proc.stdout.fileno(), proc.stdin.fileno())
            hung = threading.Timer(30.0, proc.kill)  # a child that never says hello
            hung.daemon = True
            hung.start()
            link.preamble()
            hello, _ = link.recv()
            hung.cancel()
            os.write(link.wfd, PREAMBLE)
            link.send({"op": "done", "re": hello.get("id", 0), "status": "ok", "protocol": 1,
                       "log_level": h.get("log_level", 20)})  # INFO
        except Exception as e:  # noqa: BLE001 - the caller gets why, as text
            why = str(e) or type(e).__name__
            if proc is not None:  # it started, then never said hello: what it said instead
                proc.kill()
                if readable([proc.stderr.fileno()], 1):
                    why += ": " + os.read(proc.stderr.fileno(), 4096).decode(
                        "utf-8", "replace").strip()
            self.link.send({"op": "error", "re": h["id"], "message": why, "code":
                            "denied" if isinstance(e, PermissionError) else "spawn-failed"})
            return
        cid = h["context"]
        # its own copy of the fd: the Popen closes its one when it goes, and the number may
        # then be a new hop's link while this thread still reads it
        Lines(self.link, os.dup(proc.stderr.fileno()), "stderr", 30, [cid])  # WARNING
        self.children[cid] = (proc, link, Outbox(link, proc))
        self.link.send({"op": "done", "re": h["id"], "status": "ok",
                        "agent": hello.get("agent", {})})
        why = "the far side closed the link"
        try:
            while True:
                up, data = link.recv()
                up["from"] = [cid] + list(up.get("from", ()))
                self.link.send(up, data)
        except Exception as e:  # noqa: BLE001 - EOF, or a child that broke the protocol
            if not isinstance(e, EOFError):
                why = "%s: %s" % (type(e).__name__, e)
        self.children.pop(cid, None)
        proc.kill()  # its link is gone: nothing it does can reach anyone
        proc.wait()
        self.link.send({"op": "ended", "from": [cid], "reason": why})

    def relay_down(self, h, payload):
        path = h.pop("to")
        child = self.children.get(path[0]) if isinstance(path, list) and path else None
        if child is None:
            if "id" in h:
                self.link.send({"op": "error", "re": h["id"], "code": "no-such-context",
                                "message": "no context %r here" % (path,)})
            return
        if len(path) > 1:
            h["to"] = path[1:]
        child[2].put(h, payload)

    def stop_call(self, call_id, status):
        """Interrupts call call_id with status, on a thread of its own (which may import
        ctypes: the reader must not). True when it was running."""
        with self.lock:
            entry = self.calls.get(call_id)
            if entry is None or entry[1].get("answered"):
                return False
            entry[1]["status"] = status
            if entry[0] is None:
                return True  # read, not started yet: it stops as it starts (run_call)
        start_new_thread(self.stop, (call_id, entry[1]))
        return True

    def stop(self, call_id, state):
        warm_up()
        with self.lock:  # the call may have ended meanwhile: never interrupt the next one
            entry = self.calls.get(call_id)
            if entry is None or entry[1] is not state or state.get("answered"):
                return
            stoppable = interrupt_thread(entry[0]) or state.get("traced")
        if stoppable:
            # raised at the next bytecode (or line, traced) it runs; stuck in C (time.sleep
            # in a worker, a blocking read), it runs none: then it is abandoned after all
            time.sleep(ABANDON_AFTER)
        self.abandon(call_id, state)  # PyPy without a deadline: nothing can stop it

    def abandon(self, call_id, state):
        with self.lock:
            if state.get("answered"):
                return True
            state["answered"] = True
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
            if state["status"] is not None:  # stopped before it ran (a deadline of 0)
                raise KeyboardInterrupt
            if h.get("timeout_ms") is not None and not warm_up():
                state["traced"] = True  # no asynchronous exceptions here (PyPy): a deadline
                sys.settrace(tracer(state))  # is kept by a trace function, at a cost
            value = fn(*args, **kwargs)
            if h.get("stream"):
                value = self.pump(re, value)
        except BaseException as e:  # noqa: BLE001 - every failure goes back to the caller
            error = e
        if state.get("traced"):
            sys.settrace(None)
        if state.get("timer") is not None:
            state["timer"].cancel()
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
        self.drain()
        answer = self.value_frame(re, value, h.get("ref", False)) if error is None \
            else self.exception_frame(re, error)
        self.link.send_all((answer, ({"op": "done", "re": re, "status": "ok" if error is None
                                      else state["status"] or "exception"}, b"")))

    def drain(self):
        """What the call printed, or its child processes wrote, goes out before its answer."""
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except Exception:  # noqa: BLE001 - a far stream the call replaced or broke
                pass
        for lines in self.output:
            lines.pump(True)

    def value_frame(self, re, value, as_ref, op="result"):
        """(header, payload) of a result: the pickle, or a Ref to what does not pickle."""
        data = None
        key = "channel" if op == "channel-data" else "re"
        if not as_ref:
            try:
                data = pickle.dumps(value, PICKLE_PROTOCOL)
            except Exception:  # noqa: BLE001 - not picklable: it stays here, as a Ref
                data = None
        if data is not None and len(data) <= PAYLOAD_MAX:
            return {"op": op, key: re}, data
        with self.lock:
            ref, self.next_ref = self.next_ref, self.next_ref + 1
            self.refs[ref] = value
        t = type(value)
        return {"op": op, key: re, "ref": ref, "type": t.__module__ + "." + t.__qualname__,
                "repr": safe_repr(value)[:256]}, b""

    def exception_frame(self, re, e):
        """(header, payload) of an exception: its pickle, if any, then its traceback."""
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
        return {"op": "exception", "re": re, "type": t.__module__ + "." + t.__qualname__,
                "message": safe_str(e)[:4096], "pickle": len(data)}, data + text


def safe_repr(v):
    try:
        return repr(v)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not lose the result
        return "<%s object>" % type(v).__name__


def safe_str(v):
    """str(v) a header can carry: a lone surrogate escaped (JSON's escape of it is refused)."""
    try:
        return str(v).encode("utf-8", "backslashreplace").decode()
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


class Finder:
    """Last in sys.meta_path: asks the caller for what this side lacks (module-get) and
    keeps what it was sent and what the caller lacks, in memory. (No importlib.abc: its
    imports would slow every start.)"""

    def __init__(self, agent):
        self.agent = agent
        self.got = {}   # name -> (source bytes, is a package, origin)
        self.lack = {}  # name -> why the caller cannot give it ("": it has no such module)

    def find_spec(self, name, path=None, target=None):
        if name not in self.got and name not in self.lack:
            self.ask(name)
        if name in self.got:
            src, pkg, origin = self.got[name]
            spec = type(sys.__spec__)(name, self, origin=origin, is_package=pkg)
            spec.has_location = True  # __file__ = origin, for tracebacks
            return spec
        if self.lack[name]:
            raise ImportError(self.lack[name], name=name)
        return None

    def ask(self, name):
        try:
            h, data = self.agent.request({"op": "module-get", "name": name})
            if h.get("op") == "error":
                self.lack[name] = str(h.get("message"))
                return
            at = 0
            for m in h.get("modules", ()):
                n = int(m["len"])
                self.got[str(m["name"])] = (data[at:at + n], bool(m["package"]),
                                            "<limpet:caller>" + str(m["path"]))
                at += n
            for n in h.get("missing", ()):
                self.lack.setdefault(str(n), "")
            for n, why in h.get("refused", {}).items():
                self.lack.setdefault(str(n), str(why))
        except (RuntimeError, TimeoutError, KeyError, TypeError, ValueError) as e:
            raise ImportError("limpet: no module %r from the caller: %s" % (name, e), name=name)
        if name not in self.got:
            self.lack.setdefault(name, "")

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        src, _, origin = self.got[module.__spec__.name]
        text = src.decode("utf-8", "replace")
        import linecache  # a worker's import: not at start (it imports tokenize, re)
        linecache.cache[origin] = (len(text), None, text.splitlines(True), origin)
        exec(compile(src, origin, "exec", dont_inherit=True), module.__dict__)


def set_process_name(arg):
    """ps shows limpet:USER@HOST:PID: the PID goes into the spaces stage 1's last argument
    (arg) keeps for it, in place in the process's argv memory, and the short name into comm
    (Linux, through /proc: no ctypes to import)."""
    name = (arg.rstrip() + str(os.getpid())).encode()
    try:
        with open("/proc/self/comm", "wb") as f:
            f.write(name[:15])
        with open("/proc/self/stat", "rb") as f:
            end = int(f.read().rsplit(b")", 1)[1].split()[46])  # arg_end, field 49
        where = end - len(arg.encode()) - 1
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(where)
            if mem.read(len(name)) == arg.encode()[:len(name)] and len(name) <= len(arg):
                mem.seek(where)
                mem.write(name)
    except (OSError, ValueError, IndexError):  # not Linux, or no /proc: only cosmetic
        pass


def main(make=Agent):
    """Runs the agent: make is Agent, or _session.py's Session for an environment."""
    arg = sys.argv[-1] if len(sys.argv) > 1 else "limpet:"
    name = arg.rstrip() + str(os.getpid())
    rfd, wfd, pipes = take_stdio()
    install_module()
    link = Link(rfd, wfd)
    agent = make(link)
    set_process_name(arg)  # before hello: once it has said hello, ps shows who it is
    try:
        welcome = agent.hello(name)
    except (EOFError, ValueError):
        os._exit(2)
    agent.output = [agent.lines(link, pipes[0], "stdout", 20),
                    agent.lines(link, pipes[1], "stderr", 30)]
    level = welcome.get("log_level", 20)  # INFO
    if "logging" in sys.modules:  # a sitecustomize imported it
        log_to_link(sys.modules["logging"], link, level)
    else:
        sys.meta_path.insert(0, LogHook(link, level))
    if make is Agent:  # an environment has no caller with modules to give
        sys.meta_path.append(Finder(agent))  # last: what this side has wins
    agent.run()


def leave():
    """The caller is gone or said bye: leave at once, whatever calls still run."""
    try:
        sys.stdout.flush()
    finally:
        os._exit(0)


if __name__ == "__main__":  # stage 1 runs it with exec() in __main__'s namespace
    main()
