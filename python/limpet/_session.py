"""REPL sessions in the agent of a `limpet serve` environment (docs/protocol.md section 8,
"Sessions"; docs/serve.md, "The far side").

Not a module of its own: the build appends it, after _completion.py, to the agent
(_bootstrap.session_source()) and it uses the agent's names (Agent, Lines, main, ...) and
_completion's (complete, builtins). That module is the second stage 2, sent instead of the
agent when lp_launch_t.session is set, so `limpet.connect` never carries it. Standard
library only; the syntax of Python 3.6, as the agent.

Evals run on the main thread, one at a time, in the order they came; the agent's readers
(Agent.lead) run on other threads. An interrupt is a SIGINT to this process, which breaks
time.sleep and blocking reads; the handler raises only in the eval it was meant for.
"""
import ast
import codeop
import signal
import traceback
from collections import deque

VALUE_MAX = 65536      # bytes of a value's repr, "..." included
WATCH_S = 0.01         # an eval running longer has its link read by the watcher thread
NAMES_MAX = 1000       # names in one answer to `names`
NAMES_BYTES = 60000    # and their bytes: the answer is one header (64 KiB at most)
DOC_MAX = 60000        # bytes of inspect's help text, in its answer's one header
AGENT_GLOBALS = globals()  # the agent's frames run here: left out of the user's tracebacks


def header_text(s):
    """s as text a header can carry: a lone surrogate (not UTF-8, and an escape the far end
    must refuse in JSON) escaped as sys.stderr escapes it; left as it was, it ends the link."""
    return s.encode("utf-8", "backslashreplace").decode("utf-8")


def type_name(t):
    """The qualified name of type t, without "builtins." (as the embedded engine says it)."""
    try:
        m, q = t.__module__, t.__qualname__
        return header_text(q if m == "builtins" else "%s.%s" % (m, q))
    except Exception:  # noqa: BLE001 - a metaclass that raises: its C name will do
        return header_text(str(getattr(t, "__name__", "?")))


def user_stack(tb):
    """The frames of traceback tb but the agent's, as traceback.extract_tb gives them: with
    the positions that 3.11 underlines (^^^), taken from a traceback of the user's entries
    (walk_tb's (frame, line) pairs have none)."""
    kept = []
    while tb is not None:
        if tb.tb_frame.f_globals is not AGENT_GLOBALS:
            kept.append(tb)
        tb = tb.tb_next
    try:
        for t in reversed(kept):
            tb = type(t)(tb, t.tb_frame, t.tb_lasti, t.tb_lineno)
    except TypeError:  # 3.6 makes no tracebacks, and shows no positions
        return traceback.StackSummary.extract((t.tb_frame, t.tb_lineno) for t in kept)
    return traceback.extract_tb(tb)


def user_frames(te, e, seen):
    """Leaves the agent's frames out of the TracebackException te of e and of its chain: the
    user's start at their own code, as in the standard REPL's tracebacks."""
    while te is not None and e is not None and id(e) not in seen:
        seen.add(id(e))
        te.stack = user_stack(e.__traceback__)
        user_frames(te.__cause__, e.__cause__, seen)
        te, e = te.__context__, e.__context__


def compile_fast(cc, source, name):
    """codeop's answer for the common line (complete, valid, silent), from the first compile
    codeop would make, and without its warnings.catch_warnings(), whose end resets every
    warnings registry (a warning would show at every line, where python3 shows it once per
    place). A warning from that compile is an error, by a filter on this filename alone, and
    then codeop decides and warns once; so does anything else. None when codeop must."""
    if all(not line.strip() or line.strip()[0] == "#" for line in source.split("\n")):
        return None  # codeop compiles "pass" instead
    module = name[:-3] if name.endswith(".py") else name  # what the compiler warns as
    stop = ("error", None, Warning, re.compile(re.escape(module) + r"\Z"), 0)
    import warnings
    warnings.filters.insert(0, stop)
    try:
        return cc.compiler(source, name, "single")
    except Exception:  # noqa: BLE001 - codeop says what it is
        return None
    finally:
        for i, f in enumerate(warnings.filters):
            if f is stop:
                del warnings.filters[i]
                break


class Out(Lines):
    """Fd 1 or 2: while an eval runs, what it receives goes out as the eval's `out` frames,
    exactly as read (partial lines too); otherwise line by line as `log` frames."""

    def __init__(self, agent, *args):
        self.agent = agent  # before Lines starts its thread
        Lines.__init__(self, *args)

    def take(self, chunk):
        rid = self.agent.out_re
        if rid is None:
            return Lines.take(self, chunk)
        self.link.send({"op": "out", "re": rid, "stream": self.head["origin"]}, chunk)


class Stdin(io.TextIOBase):
    """sys.stdin: during an eval that may ask (`input`: true), each line is asked of the
    caller; otherwise the end of input, at once."""
    encoding = "utf-8"

    def __init__(self, agent):
        self.agent = agent

    def readable(self):
        return True

    def isatty(self):
        return False

    def readline(self, size=-1):
        return self.agent.ask("", False) or ""

    def read(self, size=-1):
        lines = []
        while True:
            line = self.readline()
            if not line:
                return "".join(lines)
            lines.append(line)

    def close(self):
        pass  # exit() closes sys.stdin: the environment keeps it


class Help:
    """builtins.help: pydoc's, whose pager sends the text as a `page` frame of the eval."""

    def __init__(self, agent, helper):
        self.agent, self.helper, self.pager = agent, helper, None

    def __repr__(self):
        return repr(self.helper)

    def __call__(self, *args, **kwds):
        import pydoc
        if pydoc.pager != self.page:
            self.pager, pydoc.pager = pydoc.pager, self.page
        return pydoc.help(*args, **kwds)

    def page(self, text, title=""):
        cur = self.agent.evaluating()
        if cur is None:
            return self.pager(*((text, title) if title else (text,)))
        import pydoc
        self.agent.emit({"op": "page", "re": cur["id"]},
                        pydoc.plain(text).encode("utf-8", "backslashreplace"))


class Session(Agent):
    """The agent of an environment: the agent's calls, and REPL sessions on one namespace."""
    caps = Agent.caps + ["session"]

    def __init__(self, link):
        Agent.__init__(self, link)
        self.ns = {"__name__": "__main__", "__builtins__": builtins}
        self.sessions = {}     # session -> [its pending lines, its codeop.CommandCompiler]
        self.queue = deque()   # (header, code) of the evals not started, in arrival order
        self.cond = None       # guards queue, current; made in run() (after threading)
        self.current = None    # the eval being run: a dict (evaluate())
        self.out_re = None     # the eval whose out frames the pipes' bytes are
        self.last = None       # what `_` was last bound to
        self.main_id = None
        self.hooks = {}

    def lines(self, *args):
        return Out(self, *args)

    def run(self):
        """The main thread runs the evals and, when it has none, reads the link itself: an
        eval then costs no hand-off between threads (20 us and back here, as much as the
        rest of the eval). While an eval runs past WATCH_S, the watcher reads instead."""
        self.cond = threading.Condition()
        self.main_id = get_ident()
        self.patch()
        signal.signal(signal.SIGINT, self.on_sigint)
        start_new_thread(self.watch, ())
        while True:
            with self.cond:
                item = self.queue.popleft() if self.queue else None
                if item is not None:
                    h, code = item
                    cur = self.current = {"id": h["id"], "live": False, "ended": False,
                                          "asked": 0, "hit": 0, "asking": False,
                                          "answer": None, "input": h.get("input") is True,
                                          "t0": time.monotonic()}
            if item is None:
                self.read_or_wait()
                continue
            try:
                self.evaluate(h, code, cur)
            finally:
                with self.cond:
                    self.current = None

    def read_one(self):
        """Reads and handles one frame (the reading lock held); a call runs on a thread."""
        self.reader = get_ident()
        try:
            call = self.serve_one()
        except Exception:  # noqa: BLE001 - the link ended or broke: leave with it
            leave()
        finally:
            self.reader = None
        if call is not None:
            start_new_thread(self.run_call, call)

    def read_or_wait(self):
        """Idle: reads a frame, or waits for the watcher to give the reading back."""
        if self.reading.acquire(False):
            try:
                self.read_one()
            finally:
                self.reading.release()
            return
        with self.cond:
            while not self.queue and self.reading.locked():
                self.cond.wait()

    def watch(self):
        """Reads the link while an eval runs longer than WATCH_S or waits for input, so that
        interrupt, stdin and complete are served meanwhile; gives the reading back to the
        main thread once that eval is over. A tick, not a wake-up per eval."""
        while True:
            time.sleep(WATCH_S)
            cur = self.current
            if cur is None or (not cur["asking"] and time.monotonic() - cur["t0"] < WATCH_S):
                continue
            if not self.reading.acquire(False):
                continue
            try:
                while self.current is cur:
                    self.read_one()
            finally:
                self.reading.release()
                with self.cond:
                    self.cond.notify_all()

    def patch(self):
        """input(), getpass, help(), sys.displayhook and sys.stdin speak to the running eval's
        caller (to their own ways outside evals); the far stdout and stderr write through,
        so what a run prints goes out while it runs."""
        import getpass
        self.hooks = {"input": builtins.input, "displayhook": sys.displayhook,
                      "getpass": getpass.getpass}
        builtins.input, sys.displayhook, getpass.getpass = self.input, self.display, \
            self.getpass
        builtins.help = Help(self, getattr(builtins, "help", None))
        sys.stdin = Stdin(self)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            setattr(sys, name, io.TextIOWrapper(io.FileIO(fd, "w", closefd=False),
                                                encoding="utf-8", errors="backslashreplace",
                                                write_through=True))

    # --- the reader's side: frames, handled at once ----------------------------------------

    def serve_other(self, op, h, payload):
        if op == "eval":
            self.on_eval(h, payload)
        elif op == "interrupt":
            self.on_interrupt(h)
        elif op == "stdin":
            self.on_stdin(h, payload)
        elif op == "complete":
            self.on_complete(h)
        elif op == "check":  # at once, even while an eval runs: it runs nothing
            self.on_check(h, payload)
        elif op == "inspect":  # pydoc may take a while: not on the reader
            start_new_thread(self.on_inspect, (h,))
        elif op == "names":  # reprs are the user's code: not on the reader
            start_new_thread(self.on_names, (h,))
        elif op == "forget":
            self.sessions.pop(h.get("session"), None)
        else:
            Agent.serve_other(self, op, h, payload)

    def refuse(self, h, code, field, message):
        self.link.send({"op": "error", "re": h["id"], "code": code, "field": field,
                        "message": message})

    def on_eval(self, h, payload):
        session, mode, name = h.get("session"), h.get("mode", "cell"), h.get("filename")
        if not isinstance(h.get("id"), int):
            raise ValueError("id: an integer")
        if not isinstance(session, str) or not 1 <= len(session.encode("utf-8")) <= 64:
            return self.refuse(h, "bad-field", "session", "session: a string of 1-64 bytes")
        if mode not in ("cell", "single", "exec"):
            return self.refuse(h, "bad-field", "mode", "mode: cell, single or exec")
        if name is not None and not isinstance(name, str):
            return self.refuse(h, "bad-field", "filename", "filename: a string")
        try:
            code = payload.decode("utf-8")
        except UnicodeDecodeError:
            code = "\0"
        if "\0" in code:
            return self.refuse(h, "bad-text", "payload", "the code is not UTF-8 text")
        with self.cond:
            self.queue.append((h, code))
            self.cond.notify_all()

    def on_interrupt(self, h):
        rid, was = h.get("call"), None
        with self.cond:
            cur = self.current
            if cur is not None and cur["id"] == rid:
                cur["asked"] += 1
                was = "idle" if cur["ended"] else "running"
                kill = cur["live"]  # else it stops as it starts (user())
            else:
                for item in self.queue:
                    if item[0]["id"] == rid:
                        self.queue.remove(item)
                        was = "queued"
                        break
        if was is None:
            return Agent.interrupt(self, h)  # a call's, or nothing running
        if was == "queued":
            self.link.send({"op": "done", "re": rid, "status": "interrupted"})
        if "id" in h:  # before the signal: read on the main thread (input()), it raises here
            self.link.send({"op": "done", "re": h["id"], "status": "ok", "was": was})
        if was == "running" and kill:
            os.kill(os.getpid(), signal.SIGINT)

    def on_sigint(self, signum, frame):
        cur = self.current
        if cur is not None and cur["live"] and cur["asked"] > cur["hit"]:
            cur["hit"] = cur["asked"]
            raise KeyboardInterrupt

    def on_stdin(self, h, payload):
        line = payload.decode("utf-8", "replace")
        with self.cond:
            cur = self.current
            if cur is not None and cur["id"] == h.get("re") and cur["asking"]:
                cur["answer"] = (bool(h.get("eof")), line if line.endswith("\n")
                                 else line + "\n")
                self.cond.notify_all()

    def on_complete(self, h):
        data = h.get("text", "").encode("utf-8")
        cursor = h.get("cursor", len(data))
        if not isinstance(cursor, int) or not 0 <= cursor <= len(data):
            return self.refuse(h, "bad-field", "cursor", "cursor: a byte offset in text")
        start, matches = complete(self.ns, data, cursor)
        self.link.send({"op": "done", "re": h["id"], "status": "ok", "start": start,
                        "matches": [header_text(m) for m in matches]})

    def on_check(self, h, payload):
        s = self.sessions.get(h.get("session"))
        flags = s[1].compiler.flags if s is not None else 0  # its __future__ features
        status, indent = check(payload.decode("utf-8", "replace"), flags)
        self.link.send({"op": "done", "re": h["id"], "status": "ok", "complete": status,
                        "indent": indent})

    def on_inspect(self, h):
        data = h.get("text", "").encode("utf-8")
        cursor, detail, limit = h.get("cursor", len(data)), h.get("detail", 0), h.get("limit")
        if not isinstance(cursor, int) or not 0 <= cursor <= len(data):
            return self.refuse(h, "bad-field", "cursor", "cursor: a byte offset in text")
        if not isinstance(limit, int) or limit < 0:
            limit = DOC_MAX
        found, doc = describe(self.ns, data, cursor, detail == 1, min(limit, DOC_MAX))
        done = {"op": "done", "re": h["id"], "status": "ok", "found": found,
                "doc": header_text(doc)}
        while len(encode_header(done)) > DOC_MAX + 1024:  # escapes made it longer: cut more
            done["doc"] = done["doc"][:len(done["doc"]) * 3 // 4]
        self.link.send(done)

    def on_names(self, h):
        import reprlib
        shown = reprlib.Repr()
        shown.maxstring = shown.maxother = 200
        names, size, cut = [], 0, False
        for name in sorted(k for k in list(self.ns) if isinstance(k, str)
                           and not (k.startswith("__") and k.endswith("__"))):
            v = self.ns.get(name)
            try:
                shown_v = shown.repr(v)[:200]
            except Exception:  # noqa: BLE001 - reprlib catches most; not all
                shown_v = "<%s object>" % type_name(type(v))
            entry = {"name": header_text(name), "type": type_name(type(v)),
                     "repr": header_text(shown_v)}
            size += len(encode_header(entry)) + 1
            if len(names) == NAMES_MAX or size > NAMES_BYTES:
                cut = True
                break
            names.append(entry)
        done = {"op": "done", "re": h["id"], "status": "ok", "names": names}
        if cut:
            done["truncated"] = True
        self.link.send(done)

    # --- the main thread's side: the evals -------------------------------------------------

    def evaluating(self):
        """The running eval's state when the caller is its thread, else None."""
        cur = self.current
        return cur if cur is not None and get_ident() == self.main_id else None

    def hold(self, rid):
        """The pipes' bytes are rid's out frames from now on (None: log frames again). Taken
        under the pipes' locks, so no out frame of an eval is sent after its done."""
        for o in self.output:
            o.lock.acquire()
        self.out_re = rid
        for o in self.output:
            o.lock.release()

    def emit(self, header, payload=b""):
        """Sends a frame of the eval after what it wrote so far."""
        self.drain()
        self.link.send(header, payload)

    def evaluate(self, h, text, cur):
        rid, mode, session = h["id"], h.get("mode", "cell"), h["session"]
        frames, status = [], "ok"
        self.drain()  # what came before it is the log's
        self.hold(rid)
        try:
            try:
                code = self.compile(session, mode, text, h.get("filename") or "<limpet>")
            except (SyntaxError, OverflowError, ValueError) as e:  # shown alone, as the REPL
                frames.append(self.error_frame(rid, e, True))
                status = "exception"
            else:
                if code is None:
                    status = "more"
                else:
                    self.user(cur, self.execute, code, mode)
        except SystemExit as e:
            status = "closed"
            self.sessions.pop(session, None)
            if e.code is not None and not isinstance(e.code, int):  # what python3 prints
                frames.append(({"op": "out", "re": rid, "stream": "stderr"},
                               ("%s\n" % safe_str(e.code)).encode("utf-8", "backslashreplace")))
        except KeyboardInterrupt as e:
            status = "interrupted"
            frames.append(self.error_frame(rid, e))
        except BaseException as e:  # noqa: BLE001 - the user's exception, for the caller
            status = "exception"
            frames.append(self.error_frame(rid, e))
        self.drain()
        self.hold(None)
        frames.append(({"op": "done", "re": rid, "status": status}, b""))
        self.link.send_all(frames)

    def compile(self, session, mode, text, name):
        """The code to run, None for incomplete input (single mode), by codeop's rules."""
        if mode == "single":
            s = self.sessions.setdefault(session, [[], codeop.CommandCompiler()])
            s[0].append(text[:-1] if text.endswith("\n") else text)
            source = "\n".join(s[0])
            try:
                code = compile_fast(s[1], source, name) or s[1](source, name, "single")
            except BaseException:
                del s[0][:]
                raise
            if code is not None:
                del s[0][:]
            return code
        if mode == "exec":
            return compile(text, name, "exec", dont_inherit=True)
        tree = compile(text, name, "exec", ast.PyCF_ONLY_AST, True)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):  # its value is shown
            last = compile(ast.Expression(tree.body.pop().value), name, "eval",
                           dont_inherit=True)
        return compile(tree, name, "exec", dont_inherit=True), last

    def user(self, cur, fn, *args):
        """fn(*args), the user's code: interruptible while it runs, and only then."""
        try:
            cur["live"] = True
            if cur["asked"] > cur["hit"]:  # interrupted before it started
                cur["hit"] = cur["asked"]
                raise KeyboardInterrupt
            return fn(*args)
        finally:
            while cur["live"]:
                try:
                    cur["live"] = False
                except KeyboardInterrupt:  # the signal came as it ended: too late, dropped
                    pass
            cur["ended"] = True

    def execute(self, code, mode):
        if mode == "cell":
            code, last = code
            exec(code, self.ns)
            if last is not None:
                self.display(eval(last, self.ns))
        else:
            exec(code, self.ns)

    def display(self, value):
        """sys.displayhook: a value of the eval goes to its caller, bound to `_`."""
        cur = self.evaluating()
        if cur is None:
            return self.hooks["displayhook"](value)
        if value is None:
            return
        self.bind(None)  # as sys.displayhook: None while repr runs, and if it fails
        data = repr(value).encode("utf-8", "backslashreplace")
        self.bind(value)
        if len(data) > VALUE_MAX:
            data = data[:VALUE_MAX - 3].decode("utf-8", "ignore").encode("utf-8") + b"..."
        self.emit({"op": "value", "re": cur["id"], "type": type_name(type(value))}, data)

    def bind(self, value):
        """`_` = value, unless the user has a `_` of their own (gettext's)."""
        old = self.ns.get("_", self)
        if old is self or old is self.last:
            self.ns["_"] = self.last = value

    def error_frame(self, rid, e, only=False):
        t = type(e)
        if only:
            text = "".join(traceback.format_exception_only(t, e))
        else:
            te = traceback.TracebackException(t, e, e.__traceback__)
            user_frames(te, e, set())
            text = "".join(te.format())
        return ({"op": "exception", "re": rid, "type": type_name(t),
                 "message": header_text(safe_str(e)[:4096]), "pickle": 0},
                text.encode("utf-8", "backslashreplace"))

    def ask(self, prompt, password):
        """A line from the eval's caller (an `input` frame, answered by `stdin`), or None
        at the end of input: at once for an eval that may not ask, or outside one."""
        cur = self.evaluating()
        if cur is None or not cur["input"]:
            return None
        self.drain()
        with self.cond:
            cur["answer"], cur["asking"] = None, True
        try:
            self.link.send({"op": "input", "re": cur["id"], "prompt": header_text(prompt),
                            "password": password})
            while cur["answer"] is None:
                if self.reading.acquire(False):  # nobody reads: the answer is ours to read
                    try:
                        self.read_one()
                    finally:
                        self.reading.release()
                    continue
                with self.cond:
                    if cur["answer"] is None:
                        self.cond.wait(0.25)  # short: SIGINT's handler runs between waits
        finally:
            cur["asking"] = False
        eof, line = cur["answer"]
        return None if eof else line

    def input(self, prompt=""):
        if self.evaluating() is None:
            return self.hooks["input"](prompt)
        line = self.ask(str(prompt), False)
        if line is None:
            raise EOFError("EOF when reading a line")
        return line[:-1]

    def getpass(self, prompt="Password: ", stream=None):
        if self.evaluating() is None:
            return self.hooks["getpass"](prompt, stream)
        line = self.ask(str(prompt), True)
        if line is None:
            raise EOFError("EOF when reading a password")
        return line[:-1]


if __name__ == "__main__":  # stage 1 runs the whole with exec() in __main__'s namespace
    main(Session)
