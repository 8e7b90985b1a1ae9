"""Output of session code (issue 4, item 5): to that session only, in order,
streamed while the code runs, byte-exact; host threads keep their stdout."""
import threading
import time

from limpet.client import Client


def timed_frames(c, rid):
    """(arrival time, header, payload) of each frame until rid's done."""
    got = []
    while True:
        h, p = c.read_frame()
        got.append((time.monotonic(), h, p))
        if h.get("re") == rid and h["op"] in ("done", "error"):
            return got


def test_output_streams_while_the_code_runs(host):
    with Client(host.address) as c:
        s = c.clone()
        c.send({"op": "eval", "id": 99, "session": s},
               b"import time\nfor i in range(3):\n    print('tick', i)\n    time.sleep(0.4)\n")
        t0 = time.monotonic()
        frames = timed_frames(c, 99)
        ticks = [(t - t0, p) for t, h, p in frames if h["op"] == "out"]
        assert b"".join(p for _, p in ticks) == b"tick 0\ntick 1\ntick 2\n"
        # each line arrives on its own, about 0.4 s after the one before
        starts = [t for t, p in ticks if p.startswith(b"tick")]
        assert len(starts) == 3
        assert 0.3 < starts[1] - starts[0] < 0.7 and 0.3 < starts[2] - starts[1] < 0.7


def test_stdout_and_stderr_in_order(host):
    with Client(host.address) as c:
        s = c.clone()
        r = c.eval(s, "import sys\nprint('a')\nprint('b', file=sys.stderr)\nprint('c')\n"
                      "sys.stderr.write('d\\n')")
        seq = []
        for h, p in r.frames:   # frame boundaries are free; the order is not
            if h["op"] == "out":
                if seq and seq[-1][0] == h["stream"]:
                    seq[-1] = (h["stream"], seq[-1][1] + p)
                else:
                    seq.append((h["stream"], p))
        assert seq == [("stdout", b"a\n"), ("stderr", b"b\n"), ("stdout", b"c\n"),
                       ("stderr", b"d\n")]


def test_byte_exact(host):
    with Client(host.address) as c:
        s = c.clone()
        text = "\x1b[31mred\x1b[0m caf\u00e9 \u2603 \U0001f600 \u00e9\u0301 \t\r\n"
        assert c.eval(s, f"print({text!r}, end='')").out == text.encode()
        r = c.eval(s, "import sys; sys.stdout.buffer.write(bytes(range(256))); sys.stdout.flush()")
        assert r.out == bytes(range(256))
        r = c.eval(s, "print('x' * 1000000)")
        assert r.out == b"x" * 1000000 + b"\n"
        # bytes that are not UTF-8, through surrogateescape, come back as they were
        r = c.eval(s, "print(b'\\xff\\xfe'.decode('utf-8', 'surrogateescape'), end='')")
        assert r.out == b"\xff\xfe"


def test_ten_megabytes(host):
    with Client(host.address) as c:
        s = c.clone()
        r = c.eval(s, "print('y' * 10_000_000)")
        assert r.out == b"y" * 10_000_000 + b"\n"
        assert max(len(p) for h, p in r.frames if h["op"] == "out") <= 65536


def test_threads_started_by_the_session_write_to_it(host):
    with Client(host.address) as c:
        s = c.clone()
        r = c.eval(s, "import threading, time\n"
                      "def later():\n    time.sleep(0.3)\n    print('late')\n"
                      "t = threading.Thread(target=later); t.start()\n"
                      "print('now')")
        assert r.out == b"now\n" and r.status == "ok"
        # 'late' comes while the session waits at its prompt: a notice
        late = b""
        while late != b"late\n":
            h, p = c.read_frame()
            assert h == {"op": "out", "session": s, "stream": "stdout"}
            late += p


def test_host_threads_keep_their_stdout(host):
    with Client(host.address) as c:
        s = c.clone()
        r = c.eval(s, "import time\nfor i in range(5):\n    print('session line')\n"
                      "    time.sleep(0.1)")
        assert b"host tick" not in r.out
        assert r.out == b"session line\n" * 5
    time.sleep(0.3)
    out = b"".join(host.output)
    assert b"host tick" in out
    assert b"session line" not in out


def test_sessions_never_mix_their_output(host):
    results = {}

    def run(k):
        with Client(host.address) as c:
            s = c.clone()
            r = c.eval(s, f"import time\nfor i in range(20):\n    print('{k}' * 100)\n"
                          "    time.sleep(0.005)")
            results[k] = r.out

    threads = [threading.Thread(target=run, args=(k,)) for k in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for k in "abcd":
        assert results[k] == (k * 100 + "\n").encode() * 20
