"""limpet serve's HTTP threads (docs/serve.md, "Threads"): libmicrohttpd's epoll thread pool,
where a request waiting for its run and a stream waiting for output hold no thread (their
connection is suspended until the run has something). What that model risks, checked on the
real binary: waiting requests starving the rest, clients that go away while suspended, a
stream that must still deliver output as it is produced, a stop with suspended connections."""
import http.client
import json
import re
import signal
import socket
import threading
import time

import pytest


class Http:
    def __init__(self, serve):
        self.serve = serve
        self.port = int(serve.http.rsplit(":", 1)[1])
        self.token = serve.token()

    def request(self, method, path, body=None, headers=None, timeout=20):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = {"Authorization": "Bearer " + self.token}
        h.update(headers or {})
        c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def raw_exec(self, code, stream=False):
        """A socket that sent an exec of code and reads nothing yet."""
        body = json.dumps({"code": code}).encode()
        sk = socket.create_connection(("127.0.0.1", self.port))
        sk.sendall(b"POST /api/envs/main/exec HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                   b"Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                   b"%sContent-Length: %d\r\n\r\n%s"
                   % (self.port, self.token.encode(),
                      b"Accept: text/event-stream\r\n" if stream else b"", len(body), body))
        return sk

    def ping_ms(self):
        t0 = time.monotonic()
        status, _ = self.request("GET", "/api/ping")
        assert status == 200
        return (time.monotonic() - t0) * 1000

    def logged(self, needle, timeout=5):
        """Waits for a log line with needle in it (a request's line is written when its
        connection is done with it: what it held is freed then)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.serve.log):
                if needle in line:
                    return line
            time.sleep(0.02)
        raise AssertionError("no log line with %r in %r" % (needle, self.serve.log))


@pytest.fixture
def h(make_serve):
    return Http(make_serve(http="127.0.0.1:0"))


def test_waiting_execs_do_not_starve_the_server(h):
    names = ["w%d" % i for i in range(4)]
    for name in names:
        assert h.request("POST", "/api/envs", {"name": name})[0] == 201
    results = []

    def one(i):
        results.append(h.request("POST", "/api/envs/%s/exec" % names[i % 4],
                                 {"code": "import time\ntime.sleep(0.5)"}, timeout=60))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while sum(len(json.loads(h.request("GET", "/api/envs/%s/runs" % n)[1])["runs"])
              for n in names) < 100:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # 100 requests wait (4 runs going, 96 queued): the static answer still comes at once.
    worst = max(h.ping_ms() for _ in range(20))
    assert worst < 100, worst
    assert len(results) < 100
    for name in names:  # their queued runs end "killed": every request is answered
        assert h.request("DELETE", "/api/envs/" + name)[0] == 200
    for t in threads:
        t.join(20)
    assert len(results) == 100
    statuses = [json.loads(data)["status"] for status, data in results if status == 200]
    assert len(statuses) == 100 and set(statuses) <= {"ok", "killed"}, results


def test_a_client_gone_while_its_exec_waits(h):
    sk = h.raw_exec("import time\ntime.sleep(0.5)")
    time.sleep(0.1)
    sk.close()
    assert h.ping_ms() < 100
    # Once the run ends the request is answered into the void and freed.
    line = h.logged("POST /api/envs/main/exec 200 env=main run=1 ok")
    assert float(line.rsplit(" ", 1)[1].rstrip("ms\n")) >= 400
    status, data = h.request("POST", "/api/envs/main/exec", {"code": "6 * 7"})
    assert status == 200 and json.loads(data)["value"] == "42"


def test_a_client_gone_while_streaming(h):
    sk = h.raw_exec("import time\nfor i in range(20):\n    print(i, flush=True)\n"
                    "    time.sleep(0.05)", stream=True)
    got = b""
    while b"event: stdout" not in got:
        chunk = sk.recv(4096)
        assert chunk, got
        got += chunk
    sk.close()
    # The next output finds the client gone: the stream ends, its request is freed; the
    # run goes on to its end.
    h.logged("POST /api/envs/main/exec 200 env=main run=1 stream")
    deadline = time.monotonic() + 5
    while json.loads(h.request("GET", "/api/envs/main/runs/1")[1])["status"] != "ok":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status, data = h.request("POST", "/api/envs/main/exec", {"code": "6 * 7"})
    assert status == 200 and json.loads(data)["value"] == "42"


def test_stream_delivers_output_as_it_is_produced(h):
    c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=20)
    t0 = time.monotonic()
    c.request("POST", "/api/envs/main/exec",
              json.dumps({"code": "import time\nprint('first', flush=True)\ntime.sleep(1)\n"
                                  "print('second')"}),
              {"Authorization": "Bearer " + h.token, "Accept": "text/event-stream"})
    r = c.getresponse()
    assert r.status == 200
    seen = {}
    while "done" not in seen:
        line = r.readline()
        assert line, seen
        if line.startswith(b"event: "):
            seen.setdefault(line[7:].strip().decode(), time.monotonic() - t0)
    c.close()
    assert seen["stdout"] < 0.7, seen  # before the run's end, a second later
    assert seen["done"] >= 1.0, seen


def test_stop_with_suspended_connections(h):
    """A run that will not stop: at the stop its waiting request gets a 503 and its stream
    ends; libmicrohttpd is stopped only once nothing is suspended (else it aborts)."""
    stubborn = ("import time\nprint('up', flush=True)\nwhile True:\n    try:\n"
                "        time.sleep(10)\n    except KeyboardInterrupt:\n        pass")
    waiting = h.raw_exec(stubborn)
    streaming = h.raw_exec("import time\ntime.sleep(30)", stream=True)
    deadline = time.monotonic() + 5
    while h.request("GET", "/api/envs/main/runs")[1].count(b'"run"') < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.2)
    t0 = time.monotonic()
    assert h.serve.stop(signal.SIGINT) == 0
    assert time.monotonic() - t0 < 5
    waiting.settimeout(5)
    answer = b""
    while True:
        chunk = waiting.recv(65536)
        if not chunk:
            break
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 503"), answer
    # its run is 1 or 2: the two requests above reach the server in either order
    assert re.search(rb"the server is stopping; run [12] goes on", answer), answer
    streaming.settimeout(5)
    while streaming.recv(65536):
        pass
    assert not any("Fatal error" in line for line in h.serve.log), h.serve.log
