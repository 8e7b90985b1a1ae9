"""A client that stops reading costs only itself (issue 10, item 4). One
client asks for endless output and reads none, and sends requests that the
watcher must answer while its socket is full; meanwhile another client
interrupts a busy loop, answers input(), sees its output and evaluates,
each within a second. Before, the watcher and the flusher blocked in sends
to the stuck client (for up to 30 s), holding the lock every eval takes."""
import socket
import time

from limpet import wire
from limpet.client import Client

from conftest import rss_kb, until

FLOOD = "import sys\nchunk = 'x' * 1_000_000\nwhile True:\n    sys.stdout.write(chunk)\n"


def within(seconds, fn):
    t = time.monotonic()
    out = fn()
    assert time.monotonic() - t < seconds, f"took {time.monotonic() - t:.2f} s"
    return out


def test_a_client_that_reads_nothing_holds_up_nobody(host):
    rss0 = rss_kb(host.proc.pid)
    stuck = Client(host.address)
    stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s0 = stuck.clone()
    stuck.send({"op": "eval", "id": 1, "session": s0}, FLOOD.encode())
    time.sleep(1.0)               # its socket and queues fill; the loop blocks in write
    for i in range(50):           # the watcher answers these into a full socket
        stuck.send({"op": "ping", "id": 100 + i}, b"p" * 100)
    stuck.send({"op": "interrupt", "id": 99, "session": s0})
    time.sleep(0.2)

    with Client(host.address) as c:
        s = c.clone()
        # a busy loop, interrupted
        c.send({"op": "eval", "id": 10, "session": s}, b"while True:\n    pass\n")
        time.sleep(0.3)

        def interrupt():
            c.send({"op": "interrupt", "id": 11, "session": s})
            return until(c, 11)
        frames = within(1.0, interrupt)
        assert [h.get("status") for h, _ in frames if h["op"] == "done"] == ["interrupted", "ok"]

        # input(), answered
        def ask():
            c.send({"op": "eval", "id": 20, "session": s}, b"print('got', input('name? '))")
            while True:
                h, _ = c.read_frame()
                if h["op"] == "input":
                    break
            c.send({"op": "stdin", "id": 21, "session": s}, b"ann\n")
            return until(c, 20)
        frames = within(1.0, ask)
        assert b"".join(p for h, p in frames if h["op"] == "out") == b"got ann\n"

        # output and a value
        r = within(1.0, lambda: c.eval(s, "print('hi'); 6 * 7", interactive=True))
        assert r.out == b"hi\n" and r.value == "42"

        # a new connection is served too
        with Client(host.address) as d:
            assert within(1.0, lambda: d.eval(d.clone(), "1 + 1", interactive=True)).value == "2"

    # the stuck client's output is bounded in the host, not hundreds of MB
    assert rss_kb(host.proc.pid) - rss0 < 64 * 1024
    stuck.close()
    # once it has gone, its loop is interrupted and the host goes on serving
    time.sleep(0.5)
    with Client(host.address) as c:
        assert within(1.0, lambda: c.eval(c.clone(), "data['n'] > 0", interactive=True)).value == "True"
    assert host.alive()
