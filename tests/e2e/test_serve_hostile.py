"""limpet serve against environments that misbehave and clients that push the edges: code
run IN an environment speaks raw frames on its agent's link (as an environment hosted for
another user can), and requests that the server must bound. The real binary over HTTP."""
import http.client
import json
import os
import subprocess
import time

import pytest


class Api:
    def __init__(self, serve):
        self.host, port = serve.http.rsplit(":", 1)
        self.port, self.token = int(port), serve.token()

    def call(self, method, path, body=None, timeout=20):
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Authorization": "Bearer " + self.token})
        r = c.getresponse()
        data = json.loads(r.read() or b"null")
        c.close()
        return r.status, data

    def run(self, env, code, timeout=20, **kw):
        return self.call("POST", "/api/envs/%s/exec" % env, dict(code=code, **kw),
                         timeout=timeout)


@pytest.fixture
def api(make_serve):
    s = make_serve(http="127.0.0.1:0")
    return s, Api(s)


# Code for the environment: its agent's link and session, found in its own memory.
GRAB = """
import gc, threading
link = next(o for o in gc.get_objects() if type(o).__name__ == 'Link' and hasattr(o, 'wfd'))
sess = next(o for o in gc.get_objects() if type(o).__name__ == 'Session')
"""


def test_a_module_get_flood_from_an_agent_that_reads_nothing_stalls_no_other_env(api):
    s, c = api
    assert c.call("POST", "/api/envs", {"name": "bad"})[0] == 201
    assert c.call("POST", "/api/envs", {"name": "good"})[0] == 201
    # the agent stops reading its link (it takes the reading lock for good) and asks for
    # modules far past what the server may queue for it: each answer waits in its queue
    flood = GRAB + """
sess.reading.acquire()
def go():
    for i in range(40000):
        link.send({'op': 'module-get', 'id': 1 << 50 | i, 'name': 'm' * 900})
threading.Thread(target=go, daemon=True).start()
"""
    st, ans = c.run("bad", flood)
    assert st == 200 and ans["status"] == "ok", ans
    time.sleep(3)
    t0 = time.monotonic()
    st, ans = c.run("good", "print(6 * 7)", timeout=15)
    assert st == 200 and ans["stdout"] == "42\n", ans
    assert time.monotonic() - t0 < 5
    assert s.alive()


def test_a_run_whose_eval_cannot_be_sent_does_not_block_the_environment(make_serve):
    from limpet.client import Client
    s = make_serve()
    # a file name longer than an eval's header to the agent holds (a client of the socket
    # may send a long one): that run fails, clearly; the ones after it run
    with Client(s.address, timeout=5, session=True) as c:
        sid = c.welcome["session"]
        ans = c.request("eval", b"print('from the file')", session=sid, filename="f" * 1000)
        assert ans.status != "ok" or ans.out == b"from the file\n"
        ans = c.request("eval", b"print('next')", session=sid)
        assert ans.status == "ok" and ans.out == b"next\n", ans.final


def children(pid):
    """Every live child of pid, whichever of its threads started it."""
    out = []
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, task)) as f:
            out += [int(p) for p in f.read().split()]
    return sorted(p for p in out if not zombie(p))


def zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_restarts_and_a_delete_at_once_leave_no_stray_process(api):
    import threading
    s, c = api
    assert c.call("POST", "/api/envs", {"name": "exp"})[0] == 201
    for _ in range(2):
        calls = [("POST", "/api/envs/exp/restart")] * 3
        threads = [threading.Thread(target=c.call, args=a) for a in calls]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        st, env = c.call("GET", "/api/envs/exp")
        assert st == 200 and env["state"] == "ready", env
        main = c.call("GET", "/api/envs/main")[1]
        assert children(s.proc.pid) == sorted([main["pid"], env["pid"]])
    calls = [("POST", "/api/envs/exp/restart"), ("DELETE", "/api/envs/exp")]
    threads = [threading.Thread(target=c.call, args=a) for a in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    deadline = time.monotonic() + 5
    while len(children(s.proc.pid)) > 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert children(s.proc.pid) == [main["pid"]]


def test_an_environments_log_cannot_forge_lines_of_the_servers_log(api):
    s, c = api
    assert c.call("POST", "/api/envs", {"name": "bad"})[0] == 201
    # log frames while no run goes: they reach the server's log, one bounded line each
    forge = GRAB + """
import time
def go():
    time.sleep(0.3)
    link.send({'op': 'log', 'origin': 'stderr', 'level': 30},
              b'hello\\nhttp 127.0.0.1 GET /api/forged 200\\x1b[2J' + b'y' * 100000)
threading.Thread(target=go, daemon=True).start()
"""
    st, ans = c.run("bad", forge)
    assert st == 200 and ans["status"] == "ok", ans
    deadline = time.monotonic() + 5
    while not any("hello" in line for line in s.log) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # the rest of what was written, if it went on past the line
    line = next(line for line in s.log if "hello" in line)
    assert line.startswith("limpet serve: env bad: hello")
    assert not any(line.startswith("http 127.0.0.1 GET /api/forged") for line in s.log)
    assert "\x1b" not in "".join(s.log)
    assert len(line) < 2000


def test_stopping_while_a_run_ignores_interrupts_ends_it_and_the_server_promptly(make_serve):
    import signal
    s = make_serve()
    code = "import time\nwhile True:\n    try: time.sleep(60)\n    except KeyboardInterrupt: pass"
    ex = subprocess.Popen([s.bin, "exec", "serve", "-c", code], env=s.env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    t0 = time.monotonic()
    assert s.stop(signal.SIGINT, timeout=10) == 0
    assert time.monotonic() - t0 < 2  # the sessions were not waited for in vain
    _, err = ex.communicate(timeout=10)
    assert ex.returncode == 1 and "died" in err, err
