"""Code no interrupt reaches (issue 4, item 7): after the grace period the
session gets its prompt back and the code lives on as a job; bg/fg/jobs."""
import socket
import time

from limpet.client import Client

from conftest import until


def test_stuck_call_becomes_a_job(make_host):
    h = make_host(LIMPET_TEST_GRACE=0.5)
    with Client(h.address) as c:
        s = c.clone()
        c.send({"op": "eval", "id": 10, "session": s},
               b"import time\nprint('sleeping')\ntime.sleep(2)\nprint('woke')")
        time.sleep(0.3)
        t0 = time.monotonic()
        c.send({"op": "interrupt", "id": 11, "session": s})
        frames = until(c, 11)
        took = time.monotonic() - t0
        assert 0.4 < took < 2.0   # the grace period, not the sleep
        done = [f for f, _ in frames if f["op"] == "done"]
        assert done[0]["re"] == 10 and done[0]["status"] == "detached"
        job = done[0]["job"]
        assert done[1] == {"op": "done", "re": 11, "status": "ok", "was": "running"}
        # the session is free at once
        assert c.eval(s, "6 * 7", interactive=True).value == "42"
        r = c.eval(s, "jobs()", interactive=True)
        assert f"[{job}] running import time ...".encode() in r.out
        assert b"time.sleep(2)" in r.out or b'line 3' in r.out   # where it is blocked
        # any session, even on another connection, can collect it
        with Client(h.address) as other:
            r = other.eval(other.clone(), f"fg({job})", interactive=True)
            assert r.status == "exception" and "KeyboardInterrupt" in r.exception


def test_a_job_unblocked_later_meets_the_pending_interrupt(make_host):
    """A job made of code stuck in a blocking call keeps the interrupt that
    could not reach it: once unblocked it stops, and jobs() says how."""
    h = make_host(LIMPET_TEST_GRACE=0.3)
    with Client(h.address) as c:
        s = c.clone()
        c.send({"op": "eval", "id": 20, "session": s},
               b"import socket\na, b = socket.socketpair()\nb.recv(10)")
        time.sleep(0.2)
        c.send({"op": "interrupt", "id": 21, "session": s})
        frames = until(c, 21)
        assert [f.get("status") for f, _ in frames if f["op"] == "done"] == ["detached", "ok"]
        # unblock it from the session: the job then meets its KeyboardInterrupt
        c.eval(s, "a.send(b'x')")
        time.sleep(0.3)
        r = c.eval(s, "jobs()", interactive=True)
        assert b"failed" in r.out and b"KeyboardInterrupt" in r.out


def test_bg_and_fg(host):
    with Client(host.address) as c:
        s = c.clone()
        r = c.eval(s, "import time\nj = bg(lambda: (time.sleep(0.2), 'done')[1])\nprint(fg(j))",
                   interactive=False)
        assert (r.status, r.out) == ("ok", b"done\n")
        assert c.eval(s, "fg(bg(lambda: 6 * 7))", interactive=True).value == "42"
        r = c.eval(s, "fg(bg(lambda: 1 / 0))", interactive=True)
        assert r.status == "exception" and "ZeroDivisionError" in r.exception
        r = c.eval(s, "fg(bg(time.sleep, 5), timeout=0.1)", interactive=True)
        assert "TimeoutError" in r.exception


def recv_some(s):
    d = s.recv(4096)
    assert d, "the server closed the connection"
    return d


def test_text_mode_gets_its_prompt_back(make_host):
    h = make_host(LIMPET_TEST_GRACE=0.3)
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(h.address)
    s.sendall(b"import time; time.sleep(3)\n")
    time.sleep(0.3)
    s.sendall(b"\x03\n")
    data = b""
    while b"(see jobs())\n>>> " not in data:
        data += recv_some(s)
    s.sendall(b"1 + 1\n")
    data = b""
    while not data.endswith(b">>> "):
        data += recv_some(s)
    assert data == b"2\n>>> "
