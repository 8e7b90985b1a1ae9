"""The context broker (src/context, through _limpet.ctx_*) against real child processes: a far
side written here with limpet.wire (an echo server with a few tricks), and the real agent after a
handshake done in Python. Many threads waiting at once, unsolicited frames, kill -9, garbage, a
10 MB payload, fork; and the bootstrap's two stages made in C equal to Python's."""
import functools
import importlib.util
import logging
import marshal
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import types
import zlib

import pytest

from limpet import _agent, _bootstrap, _limpet, wire

FAR = r'''
import os, sys, threading, time
from limpet import wire
lock = threading.Lock()

def send(h, p=b""):
    data = memoryview(wire.encode(h, p))
    with lock:
        while data:
            data = data[os.write(1, data):]

def serve(h, p):
    op, rid = h["op"], h.get("id")
    time.sleep(h.get("delay", 0) / 1000)
    if op == "echo":
        send({"op": "result", "re": rid}, p)
        send({"op": "done", "re": rid})
    elif op == "big":
        send({"op": "done", "re": rid}, b"x" * h["n"])
    elif op == "events":
        for i in range(h["n"]):
            send({"op": "log", "i": i}, b"line %d" % i)
    elif op == "channel":
        for i in range(h["n"]):
            send({"op": "channel-data", "channel": rid, "i": i})
    elif op == "garbage":
        with lock:
            os.write(1, b"this is not a frame, it is garbage " * 4)

dec = wire.Decoder(payload_max=64 << 20)
while True:
    chunk = os.read(0, 1 << 20)
    if not chunk:
        break
    dec.feed(chunk)
    while (f := dec.next()) is not None:
        if f[0].get("delay"):
            threading.Thread(target=serve, args=f).start()
        else:
            serve(*f)
'''


class Far:
    """A child running FAR, its stdio handed to the broker."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", FAR], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
        rfd, wfd = os.dup(self.proc.stdout.fileno()), os.dup(self.proc.stdin.fileno())
        self.proc.stdout.close()
        self.proc.stdin.close()
        self.link = _limpet.ctx_link(rfd, wfd)
        self.ids = iter(range(1, 1 << 30))

    def request(self, op, payload=b"", expect=True, **fields):
        rid = next(self.ids)
        if expect:
            _limpet.ctx_expect(self.link, rid)
        _limpet.ctx_send(self.link, wire.encode(dict(op=op, id=rid, **fields), payload))
        return rid

    def close(self):
        _limpet.ctx_close(self.link)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def far():
    f = Far()
    yield f
    f.close()


def alone(test):
    """Runs test in a fresh interpreter: the broker's event queue is the process's, and once
    limpet.connect ran in this one, its service thread takes the events."""
    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        if os.environ.get("LIMPET_BROKER_ALONE") == test.__name__:
            return test(*args, **kwargs)
        p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            f"{os.path.abspath(__file__)}::{test.__name__}"],
                           env=dict(os.environ, LIMPET_BROKER_ALONE=test.__name__,
                                    PYTHONPATH=os.path.dirname(os.path.dirname(
                                        _limpet.__file__))),
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    return wrapper


def drain_events(link, timeout=0.2):
    """The events of link queued now (others are dropped: each test has its own link)."""
    out = []
    while (ev := _limpet.ctx_next_event(timeout)) is not None:
        if ev[0] == link:
            out.append(ev)
    return out


def test_the_bootstrap_built_in_c():
    """Stage 1 as docs/contexts.md gives it, run by a real shell, and stage 2 both ways: the
    agent's source (docstrings and comments stripped) and the agent compiled at build time."""
    argv = _limpet.stage1_argv("u@h")
    assert argv[0] == "python3" and argv[1] == "-c" and argv[3] == "limpet:u@h:       "
    assert "'" not in argv[2] and len(argv[2]) < 600
    assert _limpet.stage1_argv("d@w", "/usr/bin/pypy3")[0] == "/usr/bin/pypy3"
    payload = _limpet.agent_payload()
    assert zlib.decompress(payload) == _bootstrap.agent_source()
    tag, code = _limpet.agent_code()
    assert tag == "%s %s" % (sys.implementation.cache_tag, importlib.util.MAGIC_NUMBER.hex())
    assert isinstance(marshal.loads(zlib.decompress(code)), types.CodeType)
    for kind, data in ((b"s", payload), (b"c", code)):
        p = subprocess.run(["sh", "-c", "exec python3 -c '%s' x" % argv[2]],
                           input=kind + b"%08d" % len(data) + data, capture_output=True,
                           timeout=30)
        assert p.stdout.startswith(b"limpet-stage1 " + tag.encode() + b"\n\0limpet\n")
        assert p.returncode == 2      # the agent ran, and left at once: no caller said done


def test_a_reply_comes_to_the_thread_that_waits(far):
    rid = far.request("echo", b"hello")
    frames = []
    while len(frames) < 2:
        frames += _limpet.ctx_wait(far.link, rid, 10)
    assert [(h["op"], h["re"], p) for h, p in frames] == [("result", rid, b"hello"),
                                                          ("done", rid, b"")]
    _limpet.ctx_forget(far.link, rid)
    with pytest.raises(KeyError):
        _limpet.ctx_wait(far.link, rid, 0)


def test_many_threads_wait_at_once_on_different_keys(far):
    results, errors = {}, []

    def one(i):
        try:
            rid = far.request("echo", b"%d" % i, delay=(37 * i) % 200)
            got = []
            while not any(h["op"] == "done" for h, _ in got):
                got += _limpet.ctx_wait(far.link, rid, 10)
            _limpet.ctx_forget(far.link, rid)
            results[i] = [(h["re"] == rid, p) for h, p in got]
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert results == {i: [(True, b"%d" % i), (True, b"")] for i in range(64)}


@alone
def test_unexpected_frames_are_events_in_order(far):
    far.request("events", expect=False, n=5)
    rid = far.request("echo", b"late", expect=False)      # call_async-style: no waiter
    evs = []
    deadline = time.monotonic() + 10
    while len(evs) < 7 and time.monotonic() < deadline:
        evs += drain_events(far.link)
    assert [(h["op"], h.get("i"), p) for _, h, p in evs[:5]] == [
        ("log", i, b"line %d" % i) for i in range(5)]
    assert [(h["op"], h["re"], p) for _, h, p in evs[5:]] == [("result", rid, b"late"),
                                                              ("done", rid, b"")]


def test_channel_frames_go_to_the_channel_waiter(far):
    rid = far.request("channel", n=20)
    got = []
    while len(got) < 20:
        got += _limpet.ctx_wait(far.link, rid, 10)
    assert [h["i"] for h, _ in got] == list(range(20))


def test_a_wait_times_out(far):
    _limpet.ctx_expect(far.link, 424242)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        _limpet.ctx_wait(far.link, 424242, 0.3)
    assert 0.25 < time.monotonic() - t0 < 3


@alone
def test_kill_9_wakes_every_waiter_promptly(far):
    errors, done = [], threading.Event()

    def wait(key):
        try:
            _limpet.ctx_wait(far.link, key, 30)
        except ConnectionError as e:
            errors.append((key, str(e), time.monotonic()))

    threads = []
    for key in range(1000, 1010):
        _limpet.ctx_expect(far.link, key)
        threads.append(threading.Thread(target=wait, args=(key,)))
        threads[-1].start()
    time.sleep(0.1)
    killed = time.monotonic()
    os.kill(far.proc.pid, signal.SIGKILL)
    for t in threads:
        t.join(10)
    done.set()
    assert sorted(k for k, _, _ in errors) == list(range(1000, 1010))
    assert {why for _, why, _ in errors} == {"the far side closed the link"}
    assert max(t for _, _, t in errors) - killed < 1.0
    ends = [ev for ev in drain_events(far.link) if ev[1] is None]
    assert ends == [(far.link, None, "the far side closed the link")]
    with pytest.raises(ConnectionError, match="the far side closed the link"):
        _limpet.ctx_send(far.link, wire.encode({"op": "echo", "id": 1}))


def test_garbage_from_the_far_side_is_a_protocol_error(far):
    rid = far.request("garbage")
    with pytest.raises(ConnectionError, match="^protocol error: "):
        _limpet.ctx_wait(far.link, rid, 10)


def test_a_10_mb_payload_each_way(far):
    rid = far.request("big", n=10_000_000)
    (h, p), = _limpet.ctx_wait(far.link, rid, 30)
    assert h["re"] == rid and len(p) == 10_000_000 and p == b"x" * 10_000_000
    blob = os.urandom(10_000_000)
    rid = far.request("echo", blob)
    got = []
    while len(got) < 2:
        got += _limpet.ctx_wait(far.link, rid, 30)
    assert got[0][1] == blob


def test_close_here_ends_waits_and_sends(far):
    _limpet.ctx_expect(far.link, 7)
    _limpet.ctx_close(far.link)
    _limpet.ctx_close(far.link)                            # idempotent
    with pytest.raises(ConnectionError, match="the link was closed here"):
        _limpet.ctx_wait(far.link, 7, 5)
    with pytest.raises(ConnectionError, match="the link was closed here"):
        _limpet.ctx_send(far.link, b"")
    assert far.proc.wait(5) == 0                           # its stdin was closed: it left


def test_a_forked_child_does_not_inherit_links(far):
    pid = os.fork()
    if pid == 0:                                           # the child: the parent's link is gone
        code = 1
        try:
            _limpet.ctx_send(far.link, wire.encode({"op": "echo", "id": 1}))
        except ConnectionError as e:
            code = 0 if "closed here" in str(e) else 2
        try:
            _limpet.ctx_wait(far.link, 1, 5)
            code = 3
        except ConnectionError:
            pass
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    rid = far.request("echo", b"still here")               # the parent's link carries on
    assert _limpet.ctx_wait(far.link, rid, 10)[0][1] == b"still here"


def test_the_real_agent_after_a_python_handshake():
    """The handover _context.py is to make: bootstrap and hello in Python, then the broker."""
    proc = _agent.launch(_bootstrap.stage1_argv("test@local", sys.executable),
                         _bootstrap.payloads())
    try:
        data = b""
        dec = wire.Decoder()
        while (frame := dec.next()) is None:
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk
            if len(data) < len(wire.PREAMBLE):
                data += chunk
                if len(data) < len(wire.PREAMBLE):
                    continue
                assert data.startswith(wire.PREAMBLE)
                chunk = data[len(wire.PREAMBLE):]
            dec.feed(chunk)
        assert frame[0]["op"] == "hello"
        proc.stdin.write(wire.PREAMBLE + wire.encode({"op": "done", "re": frame[0].get("id", 0),
                                                      "status": "ok", "protocol": 1,
                                                      "log_level": logging.INFO}))
        proc.stdin.flush()
        link = _limpet.ctx_link(os.dup(proc.stdout.fileno()), os.dup(proc.stdin.fileno()),
                                bytes(dec.buf[dec.pos:]))
        proc.stdout.close()
        proc.stdin.close()
        _limpet.ctx_expect(link, 1)
        _limpet.ctx_send(link, wire.encode({"op": "call", "id": 1},
                                           pickle.dumps((divmod, (17, 5), {}), 4)))
        got = []
        while not any(h["op"] == "done" for h, _ in got):
            got += _limpet.ctx_wait(link, 1, 10)
        assert [h["op"] for h, _ in got] == ["result", "done"]
        assert pickle.loads(got[0][1]) == (3, 2)
        _limpet.ctx_close(link)
        assert proc.wait(5) == 0                            # the agent leaves when its link ends
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", "") or not os.environ.get("LIMPET_BIN"),
                    reason="needs the build's bench programs, without the ASan preload")
def test_the_round_trip_bench_runs():
    """bench/broker_rtt.py runs to the end and prints its three ways (figures are not judged)."""
    build = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
        os.environ["LIMPET_BIN"]))))
    root = os.environ.get("LIMPET_SOURCE_ROOT", ".")
    p = subprocess.run([sys.executable, os.path.join(root, "bench", "broker_rtt.py"), build,
                        "200", "1"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    for way in ("raw", "broker", "thread", "thread/broker"):
        assert "  %s" % way in p.stdout
