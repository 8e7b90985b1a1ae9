"""The far side of execution contexts (issue 11, first part): the two-stage bootstrap and the
agent, driven over a real child's stdio with the reference peer (limpet.wire) playing the
caller. On Debian's python3 and, when installed, pypy3."""
import io
import logging
import os
import pickle
import select
import shutil
import subprocess
import sys
import time

import pytest

from limpet import _agent, _bootstrap, wire

PYTHONS = [sys.executable] + ([shutil.which("pypy3")] if shutil.which("pypy3") else [])


class Ref:
    """Stands for a far-side reference in a pickle (persistent id ("ref", id))."""

    def __init__(self, ref):
        self.ref = ref


class Far:
    """A far Python started with stage 1, the agent sent as stage 2, the handshake done."""

    def __init__(self, python, cwd=None):
        self.proc = subprocess.Popen(_bootstrap.stage1_argv("test@local", python),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=cwd)
        said = self.proc.stdout.readline()                 # stage 1 says its bytecode
        assert said.startswith(_agent.STAGE1), said
        self.proc.stdin.write(_agent.stage2(_bootstrap.payloads(), said[len(_agent.STAGE1):]
                                            .strip().decode()))
        self.proc.stdin.flush()
        self.dec = wire.Decoder()
        first = self.read_raw(len(wire.PREAMBLE))
        assert first == wire.PREAMBLE, first
        self.hello = self.next()[0]
        self.proc.stdin.write(wire.PREAMBLE + wire.encode(
            {"op": "done", "re": 0, "status": "ok", "protocol": 1, "log_level": logging.INFO}))
        self.proc.stdin.flush()
        self.next_id = 1
        self.logs = []

    def read_raw(self, n):
        data = b""
        while len(data) < n:
            chunk = os.read(self.proc.stdout.fileno(), n - len(data))
            assert chunk, "the agent closed its link"
            data += chunk
        return data

    def next(self, timeout=10):
        deadline = time.monotonic() + timeout
        while (f := self.dec.next()) is None:
            left = deadline - time.monotonic()
            assert left > 0 and select.select([self.proc.stdout], [], [], left)[0], "no frame"
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            assert chunk, "the agent closed its link"
            self.dec.feed(chunk)
        return f

    def send(self, header, payload=b""):
        self.proc.stdin.write(wire.encode(header, payload))
        self.proc.stdin.flush()

    def call(self, fn, *args, timeout_ms=None, as_ref=False, **kwargs):
        """Sends a call; returns its frames up to its done (log frames go to self.logs)."""
        buf = io.BytesIO()
        p = pickle.Pickler(buf, 4)
        p.persistent_id = lambda o: ("ref", o.ref) if isinstance(o, Ref) else None
        p.dump((fn, args, kwargs))
        rid, self.next_id = self.next_id, self.next_id + 1
        h = {"op": "call", "id": rid}
        if timeout_ms is not None:
            h["timeout_ms"] = timeout_ms
        if as_ref:
            h["ref"] = True
        self.send(h, buf.getvalue())
        return self.until(rid)

    def until(self, rid, timeout=10):
        frames = []
        while True:
            h, p = self.next(timeout)
            if h["op"] == "log":
                self.logs.append((h, p))
                continue
            frames.append((h, p))
            if h["op"] == "done" and h.get("re") == rid:
                return frames

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture(params=PYTHONS, ids=lambda p: os.path.basename(p))
def far(request):
    f = Far(request.param)
    yield f
    f.close()


def test_bootstrap_is_small_and_the_agent_says_who_it_is(far):
    payload = _bootstrap.agent_payload()
    argv = _bootstrap.stage1_argv("test@local")
    assert len(argv[2]) + len(argv[3]) < 600        # the command line's budget
    assert len(payload) < 8192                        # the agent's budget (mitogen: 17.7 KB)
    assert "'" not in argv[2]                         # quotable in single quotes by any shell
    agent = far.hello["agent"]
    assert agent["pid"] == far.proc.pid
    assert agent["implementation"] in ("cpython", "pypy")
    assert far.hello["caps"] and "call" in far.hello["caps"]
    with open(f"/proc/{far.proc.pid}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[-2] == b"limpet:test@local:%-7d" % far.proc.pid


def test_a_call_returns_its_value(far):
    frames = far.call(os.getpid)
    assert [h["op"] for h, _ in frames] == ["result", "done"]
    assert pickle.loads(frames[0][1]) == far.proc.pid
    assert frames[1][0]["status"] == "ok"
    frames = far.call(sorted, [3, 1, 2], reverse=True)
    assert pickle.loads(frames[0][1]) == [3, 2, 1]


def test_an_exception_comes_back_with_its_far_traceback(far):
    frames = far.call(int, "x")
    h, p = frames[0]
    assert h["op"] == "exception" and h["type"] == "builtins.ValueError"
    assert "invalid literal" in h["message"]
    exc = pickle.loads(p[:h["pickle"]])
    assert isinstance(exc, ValueError)
    tb = p[h["pickle"]:].decode()
    assert tb.rstrip().endswith("ValueError: invalid literal for int() with base 10: 'x'")
    assert "run_call" not in tb                   # the agent's own frame is not shown
    assert frames[1][0]["status"] == "exception"


def test_a_value_that_does_not_pickle_stays_there_as_a_reference(far):
    import threading
    frames = far.call(threading.Lock)
    h = frames[0][0]
    assert h["op"] == "result" and isinstance(h["ref"], int) and "lock" in h["type"]
    frames = far.call(repr, Ref(h["ref"]))               # the object itself, on the far side
    assert "lock" in pickle.loads(frames[0][1])
    far.send({"op": "ref-release", "refs": [h["ref"]]})
    frames = far.call(repr, Ref(h["ref"]))
    assert frames[0][0]["op"] == "exception"             # released: no such reference


def test_far_output_and_logs_arrive_as_log_frames(far):
    far.call(os.system, "echo from-a-child-process")
    far.call(print, "from-print")
    far.call(logging.log, logging.INFO, "unpacked")
    deadline = time.monotonic() + 5
    while len(far.logs) < 3 and time.monotonic() < deadline:
        h, p = far.next()
        if h["op"] == "log":
            far.logs.append((h, p))
    got = {(h["origin"], p) for h, p in far.logs}
    assert ("stdout", b"from-a-child-process") in got
    assert ("stdout", b"from-print") in got
    assert any(h["origin"] == "logging" and h["level"] == logging.INFO and b"unpacked" in p
               for h, p in far.logs)


def test_a_deadline_is_enforced_on_the_far_side(far):
    t = time.monotonic()
    frames = far.call(exec, "while True: pass", timeout_ms=300)
    assert time.monotonic() - t < 5
    done = frames[-1][0]
    assert done["status"] == "deadline-exceeded"         # PyPy too: by a trace function
    assert frames[0][0]["type"] == "builtins.KeyboardInterrupt"
    assert pickle.loads(far.call(abs, -2)[0][1]) == 2    # the context goes on


def test_a_deadline_on_a_call_stuck_in_c_abandons_it(far):
    t = time.monotonic()
    frames = far.call(__import__("time").sleep, 30, timeout_ms=200)
    assert frames[-1][0]["status"] == "abandoned"         # nothing breaks a worker's sleep
    assert time.monotonic() - t < 5


def test_an_interrupt_stops_a_running_call(far):
    if far.hello["agent"]["implementation"] != "cpython":
        pytest.skip("PyPy cannot raise in another thread: a call with no deadline is "
                    "abandoned instead")
    far.send({"op": "call", "id": 50}, pickle.dumps((exec, ("while True: pass",), {}), 4))
    time.sleep(0.3)
    far.send({"op": "interrupt", "id": 51, "call": 50})
    done = {}
    while len(done) < 2:                          # the two dones, in either order
        h, _ = far.next()
        if h["op"] == "done":
            done[h["re"]] = h
    assert done[50]["status"] == "interrupted"
    assert done[51]["was"] == "running"


def test_many_calls_in_flight_at_once(far):
    ids = []
    for i in range(20):
        far.send({"op": "call", "id": 100 + i}, pickle.dumps((pow, (i, 2), {}), 4))
        ids.append(100 + i)
    results, done = {}, set()
    while len(done) < 20:
        h, p = far.next()
        if h["op"] == "result":
            results[h["re"]] = pickle.loads(p)
        elif h["op"] == "done":
            done.add(h["re"])
    assert results == {100 + i: i * i for i in range(20)}


def test_the_agent_leaves_when_its_link_ends(far):
    far.proc.stdin.close()                       # what the caller's exit or kill -9 does
    far.proc.wait(timeout=2)
    assert far.proc.returncode == 0
