"""Interrupt (issue 4, item 7) and input() (item 6): while a session's code
runs, its connection is still heard. A real host process, real sockets."""
import os
import socket
import time

import pytest

from limpet import wire
from limpet.client import Client, ProtocolError

from conftest import until


def start(c, s, rid, code):
    c.send({"op": "eval", "id": rid, "session": s}, code.encode())


def test_interrupt_a_busy_loop(host):
    with Client(host.address) as c:
        s = c.clone()
        start(c, s, 10, "print('before')\nwhile True:\n    pass\n")
        time.sleep(0.3)
        t0 = time.monotonic()
        c.send({"op": "interrupt", "id": 11, "session": s})
        frames = until(c, 11)
        assert time.monotonic() - t0 < 1.0
        ops = [(h["op"], h.get("re")) for h, _ in frames]
        # output printed before the interrupt, then the traceback, then done,
        # then the interrupt's own done
        assert ops == [("out", 10), ("exception", 10), ("done", 10), ("done", 11)]
        assert frames[0][1] == b"before\n"
        assert frames[1][0]["type"] == "KeyboardInterrupt"
        assert frames[1][1].endswith(b"KeyboardInterrupt\n")
        assert frames[2][0]["status"] == "interrupted"
        assert frames[3][0]["was"] == "running"
        # the session is still usable
        assert c.eval(s, "1 + 1", interactive=True).value == "2"


def test_next_output_is_never_a_prompt_late(host):
    """The seed's bug: after Ctrl+C of a long loop, the next command's output
    came with the command after it."""
    with Client(host.address) as c:
        s = c.clone()
        start(c, s, 20, "for _ in range(int(1e9)): pass")
        time.sleep(0.3)
        c.send({"op": "interrupt", "id": 21, "session": s})
        until(c, 21)
        for word in ("one", "two", "three"):
            r = c.eval(s, f"print({word!r})", interactive=True)
            assert r.out == f"{word}\n".encode()
            assert [h["op"] for h, _ in r.frames] == ["out", "done"]
        assert c.notices == []


def test_interrupt_sent_with_the_eval(host):
    with Client(host.address) as c:
        s = c.clone()
        c.sock.sendall(wire.encode({"op": "eval", "id": 30, "session": s}, b"while True: pass")
                       + wire.encode({"op": "interrupt", "id": 31, "session": s}))
        frames = until(c, 31)
        assert [h.get("status") for h, _ in frames if h["op"] == "done"] == ["interrupted", "ok"]


def test_interrupt_touches_only_that_session(host):
    with Client(host.address) as a, Client(host.address) as b:
        sa, sb = a.clone(), b.clone()
        n0 = int(b.eval(sb, "data['n']", interactive=True).value)
        start(b, sb, 40, "import time\nt = time.time()\nwhile time.time() - t < 1.0:\n    pass\n"
                         "print('b finished')")
        start(a, sa, 41, "while True: pass")
        time.sleep(0.3)
        a.send({"op": "interrupt", "id": 42, "session": sa})
        assert [h["status"] for h, _ in until(a, 42) if h["op"] == "done"] == ["interrupted", "ok"]
        rb = until(b, 40)
        assert rb[-1][0]["status"] == "ok" and b"b finished\n" in b"".join(p for _, p in rb)
        # the host's own loop went on all along
        assert int(b.eval(sb, "data['n']", interactive=True).value) > n0


def test_interrupt_when_idle_clears_pending_input(host):
    with Client(host.address) as c:
        s = c.clone()
        assert c.eval(s, "for i in range(3):", interactive=True).status == "more"
        assert c.request("interrupt", session=s).final["was"] == "idle"
        assert c.eval(s, "7", interactive=True).value == "7"


def test_ping_while_code_runs(host):
    with Client(host.address) as c:
        s = c.clone()
        start(c, s, 50, "import time\ntime.sleep(1.0)")
        time.sleep(0.1)
        t0 = time.monotonic()
        c.send({"op": "ping", "id": 51}, b"here")
        h, p = c.read_frame()
        assert (h["re"], p) == (51, b"here") and time.monotonic() - t0 < 0.5
        assert until(c, 50)[-1][0]["status"] == "ok"


def test_eval_on_a_busy_session(host):
    with Client(host.address) as c:
        s = c.clone()
        start(c, s, 60, "import time\ntime.sleep(0.5)")
        time.sleep(0.1)
        c.send({"op": "eval", "id": 61, "session": s}, b"1")
        h, _ = c.read_frame()
        assert h["op"] == "error" and h["code"] == "busy" and h["re"] == 61
        assert until(c, 60)[-1][0]["status"] == "ok"


def test_other_requests_wait_for_the_eval(host):
    with Client(host.address) as c:
        s = c.clone()
        start(c, s, 70, "import time\ntime.sleep(0.3)")
        c.send({"op": "clone", "id": 71})
        frames = until(c, 71)
        assert [(h["op"], h["re"]) for h, _ in frames] == [("done", 70), ("done", 71)]


def test_input_asks_the_client(host):
    with Client(host.address) as c:
        s = c.clone()
        start(c, s, 80, "name = input('name? ')\nprint('hi', name)")
        frames = []
        while True:
            h, p = c.read_frame()
            frames.append((h, p))
            if h["op"] == "input":
                assert h["re"] == 80 and h["echo"] is True
                c.send({"op": "stdin", "id": 81, "session": s}, "b\u00f6b\n".encode())
            if h.get("re") == 80 and h["op"] == "done":
                break
        out = b"".join(p for h, p in frames if h["op"] == "out")
        assert out == "name? hi b\u00f6b\n".encode()
        # the prompt came before the input request
        ops = [h["op"] for h, _ in frames]
        assert ops.index("input") > ops.index("out")


def test_input_end_of_file(host):
    with Client(host.address) as c:
        s = c.clone()
        start(c, s, 90, "input()")
        while c.read_frame()[0]["op"] != "input":
            pass
        c.send({"op": "stdin", "id": 91, "session": s, "eof": True})
        frames = until(c, 90)
        assert any(h["op"] == "exception" and h["type"] == "EOFError" for h, _ in frames)


def test_interrupt_input(host):
    with Client(host.address) as c:
        s = c.clone()
        start(c, s, 100, "input()")
        while c.read_frame()[0]["op"] != "input":
            pass
        c.send({"op": "interrupt", "id": 101, "session": s})
        frames = until(c, 101)
        assert [h.get("status") for h, _ in frames if h["op"] == "done"] == ["interrupted", "ok"]
        assert c.eval(s, "2", interactive=True).value == "2"


def test_stdin_with_no_input_waiting(host):
    with Client(host.address) as c:
        s = c.clone()
        with pytest.raises(ProtocolError) as e:
            c.request("stdin", b"x\n", session=s)
        assert e.value.code == "bad-field"


def test_sys_stdin_readline_in_a_session(host):
    with Client(host.address) as c:
        s = c.clone()
        start(c, s, 110, "import sys\nline = sys.stdin.readline()\nprint(repr(line))")
        while c.read_frame()[0]["op"] != "input":
            pass
        c.send({"op": "stdin", "id": 111, "session": s}, b"raw line")
        out = b"".join(p for h, p in until(c, 110) if h["op"] == "out")
        assert out == b"'raw line\\n'\n"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_client_gone_mid_loop_stops_the_loop(host):
    pid = os.fork()
    if pid == 0:
        c = Client(host.address)
        start(c, c.clone(), 1, "while True: pass")
        time.sleep(0.3)
        os._exit(0)
    os.waitpid(pid, 0)
    time.sleep(0.5)
    before = cpu_seconds(host.proc.pid)
    time.sleep(1.0)
    # the loop was interrupted: the host is back to its light own work
    assert cpu_seconds(host.proc.pid) - before < 0.5
    with Client(host.address) as c:
        assert c.request("describe").final["stats"]["sessions"] == 0


def test_half_closed_client_still_gets_its_answer(host):
    """A client that shuts down its sending side (nc -N, a script piping in)
    has not left: its eval runs to the end and the reply reaches it."""
    with Client(host.address) as c:
        s = c.clone()
        start(c, s, 120, "import time\ntime.sleep(0.3)\nprint('still here')")
        c.sock.shutdown(socket.SHUT_WR)
        out = b"".join(p for h, p in until(c, 120) if h["op"] == "out")
        assert out == b"still here\n"


def test_interrupt_before_the_block_runs_drops_the_block(host):
    """Ctrl+C typed right after the blank line that ends a block reaches
    the server before that eval starts: the block is dropped, as at
    python3's prompt, and the next line does not join it (a flaky
    SyntaxError at line 2 in the demo test)."""
    with Client(host.address) as c:
        s = c.clone()
        assert c.eval(s, "while True: pass", interactive=True).status == "more"
        c.sock.sendall(wire.encode({"op": "eval", "id": 50, "session": s, "interactive": True}, b"")
                       + wire.encode({"op": "interrupt", "id": 51, "session": s}))
        frames = until(c, 51)
        assert [h.get("status") for h, _ in frames if h["op"] == "done"] == ["interrupted", "ok"]
        assert c.eval(s, "data['n'] > 0", interactive=True).value == "True"


def test_an_eval_is_heard_at_once_while_another_waits_out_its_grace(host):
    """The watcher slept until a stuck eval's grace ran out (up to 1 s)
    and only then began to hear evals that started meanwhile: another
    session's interrupt waited that long."""
    with Client(host.address) as a, Client(host.address) as b:
        sa, sb = a.clone(), b.clone()
        start(a, sa, 60, "import time\ntime.sleep(100)\n")   # no interrupt reaches it
        time.sleep(0.4)                    # evals stopped coming: the watcher stops ticking
        a.send({"op": "interrupt", "id": 61, "session": sa})  # its grace begins
        time.sleep(0.3)
        start(b, sb, 70, "while True:\n    pass\n")
        time.sleep(0.1)
        t0 = time.monotonic()
        b.send({"op": "interrupt", "id": 71, "session": sb})
        frames = until(b, 71)
        assert time.monotonic() - t0 < 0.5
        assert [h.get("status") for h, _ in frames if h["op"] == "done"] == ["interrupted", "ok"]
        frames = until(a, 61)              # a's sleep went on as a job
        assert [h.get("status") for h, _ in frames if h["op"] == "done"] == ["detached", "ok"]
