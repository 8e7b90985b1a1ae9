"""limpet serve over HTTP (issue 12, docs/http.md): the real binary, http.client, every
endpoint and every error status, server-sent events, the article's form endpoints, the
token never in the log, and every JSON answer validated against docs/openapi.yaml."""
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import time
import uuid

import jsonschema
import pytest
import yaml

SPEC_PATH = os.path.join(os.environ.get("LIMPET_SOURCE_ROOT", "."), "docs", "openapi.yaml")
with open(SPEC_PATH) as _f:
    SPEC = yaml.safe_load(_f)


def _schema(node):
    """An OpenAPI 3.0 schema as JSON Schema: $refs inlined, nullable as a null type."""
    if isinstance(node, list):
        return [_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = SPEC
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return _schema(target)
    out = {k: _schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = out["enum"] + [None]
    if out.get("exclusiveMinimum") is True:  # 3.0's boolean form
        out["exclusiveMinimum"] = out.pop("minimum")
    return out


def _operation(method, path):
    for template, item in SPEC["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return item[method.lower()]
    raise AssertionError("no operation in openapi.yaml for %s %s" % (method, path))


def validate(method, path, status, ctype, body):
    """Checks a live answer against openapi.yaml: its status is listed, its body fits. A path
    that is none of the API's gets a not-found: an Error."""
    try:
        op = _operation(method, path.split("?")[0])
    except AssertionError:
        assert status == 404, (method, path, status)
        jsonschema.validate(json.loads(body), _schema(SPEC["components"]["schemas"]["Error"]))
        return
    responses = op["responses"]
    resp = responses.get(str(status), responses.get("default"))
    assert resp is not None, "%s %s: status %d not in openapi.yaml" % (method, path, status)
    if "$ref" in resp:
        resp = _schema(resp)
    media = ctype.split(";")[0].strip()
    content = resp.get("content", {})
    assert media in content, "%s %s %d: %s not in openapi.yaml" % (method, path, status, media)
    if media == "application/json":
        jsonschema.validate(json.loads(body), _schema(content[media]["schema"]))


class Client:
    def __init__(self, serve, token):
        self.host, port = serve.http.rsplit(":", 1)
        self.port, self.token, self.serve = int(port), token, serve

    def raw(self, method, path, body=None, headers=None, token=True, ctx=None):
        if ctx is not None:
            c = http.client.HTTPSConnection(self.host, self.port, timeout=20, context=ctx)
        else:
            c = http.client.HTTPConnection(self.host, self.port, timeout=20)
        h = {"Authorization": "Bearer " + self.token} if token else {}
        h.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r, data

    def call(self, method, path, body=None, headers=None, token=True, status=None):
        """A request whose answer is checked against openapi.yaml; the JSON answer."""
        r, data = self.raw(method, path, body, headers, token)
        ctype = r.getheader("Content-Type", "")
        validate(method, path, r.status, ctype, data)
        if status is not None:
            assert r.status == status, (r.status, data)
        return json.loads(data) if ctype.startswith("application/json") else data

    def events(self, method, path, body=None, headers=None):
        h = {"Accept": "text/event-stream"}
        h.update(headers or {})
        r, data = self.raw(method, path, body, h)
        assert r.status == 200, data
        assert r.getheader("Content-Type").startswith("text/event-stream")
        validate(method, path, r.status, r.getheader("Content-Type"), data)
        out = []
        for block in data.decode().split("\n\n"):
            ev = {}
            for line in block.split("\n"):
                if line.startswith(":") or not line:
                    continue
                k, _, v = line.partition(": ")
                ev[k] = v
            if ev:
                ev["data"] = json.loads(ev["data"])
                out.append(ev)
        return out


@pytest.fixture
def served(make_serve):
    s = make_serve(http="127.0.0.1:0")
    return s, Client(s, s.token())


def error_code(ans):
    return ans["error"]["code"]


def test_environments_and_exec(served):
    s, c = served
    env = c.call("POST", "/api/envs", {"name": "exp1"}, status=201)
    assert env["name"] == "exp1" and env["state"] == "ready"
    assert error_code(c.call("POST", "/api/envs", {"name": "exp1"}, status=409)) == "env-exists"
    for bad in ({"name": "no/slash"}, {"name": ""}, {"name": "x" * 65}, {}, {"name": 3},
                {"name": "ok", "limits": {"cpu_s": -1}}, {"name": "ok", "limits": {"bogus": 1}},
                {"name": "ok", "target": 5}):
        assert error_code(c.call("POST", "/api/envs", bad, status=400)) == "bad-request", bad
    assert error_code(c.call("POST", "/api/envs", "{nope", status=400)) == "bad-request"
    assert error_code(c.call("POST", "/api/envs", "[1]", status=400)) == "bad-request"
    names = [e["name"] for e in c.call("GET", "/api/envs", status=200)["envs"]]
    assert names == ["main", "exp1"]

    # The example, with curl's Content-Type: a JSON body whatever it says.
    ans = c.call("POST", "/api/envs/exp1/exec", '{"code": "x = 21\\nprint(x * 2)\\nx"}',
                 headers={"Content-Type": "application/x-www-form-urlencoded"}, status=200)
    assert (ans["run"], ans["status"], ans["stdout"], ans["stderr"], ans["value"],
            ans["error"]) == (1, "ok", "42\n", "", "21", None)
    ans = c.call("POST", "/api/envs/exp1/exec", {"code": "import sys\nsys.stderr.write('w\\n')\n"
                                                         "def f():\n    1/0\nf()"}, status=200)
    assert ans["status"] == "error" and ans["stderr"] == "w\n"
    assert ans["error"]["type"] == "ZeroDivisionError"
    assert ans["error"]["traceback"].startswith("Traceback (most recent call last):")
    assert ans["error"]["traceback"].endswith("ZeroDivisionError: division by zero\n")
    for bad in ({}, {"code": 1}, {"code": "1", "wait": "no"}, {"code": "1", "timeout": 0},
                {"code": "1", "timeout": "5"}):
        assert error_code(c.call("POST", "/api/envs/exp1/exec", bad, status=400)) == "bad-request"

    described = c.call("GET", "/api/envs/exp1", status=200)
    assert {"name": "x", "type": "int", "repr": "21"} in described["names"]
    assert error_code(c.call("GET", "/api/envs/nope", status=404)) == "no-such-env"
    assert error_code(c.call("POST", "/api/envs/nope/exec", {"code": "1"}, status=404)) == \
        "no-such-env"
    assert error_code(c.call("GET", "/api/envs/" + "n" * 65, status=400)) == "bad-request"
    assert error_code(c.call("GET", "/api/nothing", status=404)) == "not-found"
    r, data = c.raw("PUT", "/api/envs")
    assert r.status == 405 and r.getheader("Allow") == "GET, POST"
    validate("GET", "/api/envs", 405, r.getheader("Content-Type"), data)

    assert c.call("DELETE", "/api/envs/exp1", status=200) == {"deleted": "exp1"}
    assert error_code(c.call("DELETE", "/api/envs/exp1", status=404)) == "no-such-env"
    assert [e["name"] for e in c.call("GET", "/api/envs")["envs"]] == ["main"]


def test_runs_outlive_their_request(served):
    s, c = served
    code = "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.1)\n'end'"
    started = c.call("POST", "/api/envs/main/exec", {"code": code, "wait": False}, status=202)
    run = started["run"]
    assert started["status"] in ("queued", "running")
    # Queued after it, in arrival order.
    second = c.call("POST", "/api/envs/main/exec", {"code": "'second'", "wait": False},
                    status=202)["run"]
    assert second == run + 1
    deadline = time.time() + 10
    while True:
        ans = c.call("GET", "/api/envs/main/runs/%d" % run, status=200)
        if ans["status"] == "ok" or time.time() > deadline:
            break
        time.sleep(0.05)
    assert (ans["stdout"], ans["value"], ans["since"], ans["next"]) == ("0\n1\n2\n", "'end'", 0, 6)
    assert c.call("GET", "/api/envs/main/runs/%d?since=4" % run)["stdout"] == "2\n"
    assert c.call("GET", "/api/envs/main/runs/%d?since=99" % run)["stdout"] == ""
    assert error_code(c.call("GET", "/api/envs/main/runs/%d?since=x" % run, status=400)) == \
        "bad-request"
    assert error_code(c.call("GET", "/api/envs/main/runs/999", status=404)) == "no-such-run"
    assert error_code(c.call("GET", "/api/envs/main/runs/abc", status=404)) == "no-such-run"
    assert error_code(c.call("GET", "/api/envs/nope/runs/1", status=404)) == "no-such-env"
    listed = c.call("GET", "/api/envs/main/runs", status=200)["runs"]
    assert [r["run"] for r in listed][:2] == [run, second]
    assert listed[0]["code_bytes"] == len(code)
    assert error_code(c.call("GET", "/api/envs/nope/runs", status=404)) == "no-such-env"

    # Interrupt: the run going gets KeyboardInterrupt, even in time.sleep.
    going = c.call("POST", "/api/envs/main/exec", {"code": "import time\ntime.sleep(30)",
                                                   "wait": False}, status=202)["run"]
    time.sleep(0.3)
    assert c.call("POST", "/api/envs/main/interrupt", status=200) == {"interrupted": going}
    ans = c.call("GET", "/api/envs/main/runs/%d" % going)
    deadline = time.time() + 10
    while ans["status"] == "running" and time.time() < deadline:
        time.sleep(0.05)
        ans = c.call("GET", "/api/envs/main/runs/%d" % going)
    assert ans["status"] == "interrupted"
    assert c.call("POST", "/api/envs/main/interrupt", status=200) == {"interrupted": None}
    assert error_code(c.call("POST", "/api/envs/nope/interrupt", status=404)) == "no-such-env"


def test_timeout_is_504(served):
    s, c = served
    t = time.time()
    ans = c.call("POST", "/api/envs/main/exec", {"code": "print('a')\nimport time\n"
                                                         "time.sleep(20)", "timeout": 0.5},
                 status=504)
    assert time.time() - t < 5
    assert ans["status"] == "deadline-exceeded" and ans["stdout"] == "a\n"
    assert ans["error"]["code"] == "deadline-exceeded"
    assert ans["error"]["type"] == "KeyboardInterrupt"
    # The environment lives on.
    assert c.call("POST", "/api/envs/main/exec", {"code": "1 + 1"})["value"] == "2"


def test_streamed_exec_and_resume(served):
    s, c = served
    code = ("import sys, time\nfor i in range(3):\n    print('out', i, flush=True)\n"
            "    time.sleep(0.05)\nsys.stderr.write('bad\\n')\n7")
    events = c.events("POST", "/api/envs/main/exec", {"code": code})
    assert events[0]["event"] == "run" and events[0]["data"] == {"run": 1, "env": "main"}
    assert events[-1]["event"] == "done"
    done = events[-1]["data"]
    jsonschema.validate(done, _schema(SPEC["components"]["schemas"]["Run"]))
    assert done["status"] == "ok" and done["value"] == "7"
    text = {"stdout": "", "stderr": ""}
    offset = 0
    for ev in events[1:-1]:
        assert ev["event"] in ("stdout", "stderr")
        text[ev["event"]] += ev["data"]
        assert int(ev["id"]) == offset + len(ev["data"].encode())  # the offset after it
        offset = int(ev["id"])
    assert text == {"stdout": "out 0\nout 1\nout 2\n", "stderr": "bad\n"}
    assert done["stdout"] == text["stdout"] and done["next"] == offset

    # A client that comes back with Last-Event-ID gets what followed.
    resumed = c.events("GET", "/api/envs/main/runs/1", headers={"Last-Event-ID": "6"})
    assert "".join(e["data"] for e in resumed if e["event"] == "stdout") == \
        "out 1\nout 2\n"
    assert resumed[-1]["event"] == "done" and resumed[-1]["data"]["since"] == 6
    # ?since= does the same, for a client without Last-Event-ID.
    resumed = c.events("GET", "/api/envs/main/runs/1?since=12")
    assert "".join(e["data"] for e in resumed if e["event"] == "stdout") == "out 2\n"

    # A stream of a run going: it follows the run to its end.
    run = c.call("POST", "/api/envs/main/exec", {"code": "import time\ntime.sleep(0.3)\n"
                                                         "print('late')", "wait": False})["run"]
    live = c.events("GET", "/api/envs/main/runs/%d" % run)
    assert [e["data"] for e in live if e["event"] == "stdout"] == ["late\n"]
    assert live[-1]["data"]["status"] == "ok"

    # Output that is not UTF-8 reaches the client as U+FFFD, and the stream as JSON.
    events = c.events("POST", "/api/envs/main/exec",
                      {"code": "import sys\nsys.stdout.buffer.write(b'a\\xffb\\n')"})
    assert "".join(e["data"] for e in events if e["event"] == "stdout") == "a\ufffdb\n"


def test_dead_environment_is_410_until_restarted(served):
    s, c = served
    c.call("POST", "/api/envs", {"name": "frail"}, status=201)
    ans = c.call("POST", "/api/envs/frail/exec", {"code": "import os\nos._exit(3)"})
    assert ans["status"] == "killed"
    listed = {e["name"]: e for e in c.call("GET", "/api/envs")["envs"]}
    assert listed["frail"]["state"] == "dead" and listed["frail"]["why"]
    assert listed["main"]["state"] == "ready"
    err = c.call("POST", "/api/envs/frail/exec", {"code": "1"}, status=410)
    assert error_code(err) == "env-dead" and "restart" in err["error"]["message"]
    assert error_code(c.call("GET", "/api/envs/frail", status=410)) == "env-dead"
    env = c.call("POST", "/api/envs/frail/restart", status=200)
    assert env["state"] == "ready"
    assert c.call("POST", "/api/envs/frail/exec", {"code": "2 * 3"})["value"] == "6"
    assert error_code(c.call("POST", "/api/envs/nope/restart", status=404)) == "no-such-env"


def test_token_host_origin(served):
    s, c = served
    none = c.call("GET", "/api/envs", token=False, status=401)
    wrong = c.call("GET", "/api/envs", headers={"Authorization": "Bearer " + "0" * 64},
                   token=False, status=401)
    prefix = c.call("GET", "/api/envs", headers={"Authorization": "Bearer " + c.token[:-1]},
                    token=False, status=401)
    assert none == wrong == prefix and error_code(none) == "unauthorized"
    assert c.call("GET", "/api/ping", status=200) == {"ok": True}
    assert c.call("GET", "/api/ping", token=False, status=401) == none
    assert c.call("GET", "/api/envs?token=wrong", token=False, status=401) == none
    # ?token= for a quick curl and the browser.
    c.call("GET", "/api/envs?since=1&token=" + c.token, token=False, status=200)
    c.call("POST", "/api/envs/main/exec?token=" + c.token, {"code": "'via query'"},
           token=False, status=200)

    # DNS rebinding: a Host that is not this server is refused, token or not.
    for host in ("evil.example.com:%d" % c.port, "localhost:%d" % (c.port + 1), "localhost",
                 "127.0.0.1"):
        assert error_code(c.call("GET", "/api/envs", headers={"Host": host}, status=403)) == \
            "forbidden-host", host
    for host in ("localhost:%d" % c.port, "LOCALHOST:%d" % c.port, "[::1]:%d" % c.port):
        c.call("GET", "/api/envs", headers={"Host": host}, status=200)
    # Cross-site: an Origin that is not ours.
    for origin in ("http://evil.example.com", "null", "https://127.0.0.1:%d" % c.port,
                   "http://127.0.0.1:%d" % (c.port + 1)):
        ans = c.call("POST", "/api/envs/main/exec", {"code": "1"},
                     headers={"Origin": origin}, status=403)
        assert error_code(ans) == "forbidden-origin", origin
    c.call("POST", "/api/envs/main/exec", {"code": "1"},
           headers={"Origin": "http://127.0.0.1:%d" % c.port}, status=200)

    # One log line per request; the token is never in it.
    time.sleep(0.2)
    log = "".join(s.log)
    assert c.token not in log
    lines = [line for line in s.log if line.startswith("http ")]
    assert any(re.match(r"http 127\.0\.0\.1 GET /api/envs\?since=1 200 [\d.]+ms$", line.strip())
               for line in lines), lines
    assert any(re.match(r"http 127\.0\.0\.1 POST /api/envs/main/exec 200 env=main run=\d+ ok "
                        r"[\d.]+ms$", line.strip()) for line in lines), lines
    assert any(" 401 " in line for line in lines) and any(" 403 " in line for line in lines)


def test_limits_413_431_503(served):
    s, c = served
    big = json.dumps({"code": "x" * (1 << 20)})
    assert error_code(c.call("POST", "/api/envs/main/exec", big, status=413)) == "too-large"

    def chunks(n):
        for _ in range(n):
            yield b"y" * 100000
    conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=20)
    conn.request("POST", "/api/envs/main/exec", body=chunks(12), encode_chunked=True,
                 headers={"Authorization": "Bearer " + c.token})
    r = conn.getresponse()
    assert r.status == 413 and error_code(json.loads(r.read())) == "too-large"
    conn.close()
    # Just under the limit is fine (a body, not a run: a bad-request about its JSON).
    assert c.call("POST", "/api/envs/main/exec", "y" * ((1 << 20) - 10), status=400)

    for size in (17 << 10, 40 << 10):
        ans = c.call("GET", "/api/envs", headers={"X-Big": "a" * size}, status=431)
        assert error_code(ans) == "headers-too-large"
    many = {"X-H%d" % i: "v" * 100 for i in range(200)}
    assert error_code(c.call("GET", "/api/envs", headers=many, status=431)) == \
        "headers-too-large"
    # Past what libmicrohttpd holds (4 times the limit), its own 431, never a dropped
    # connection.
    r, data = c.raw("GET", "/api/envs", headers={"X-Big": "a" * (1 << 20)})
    assert r.status == 431

    # Connections: past 256 open ones, a 503 in JSON.
    socks = [socket.create_connection(("127.0.0.1", c.port)) for _ in range(256)]
    try:
        time.sleep(0.3)
        ans = c.call("GET", "/api/envs", status=503)
        assert error_code(ans) == "busy"
    finally:
        for sk in socks:
            sk.close()
    deadline = time.time() + 5
    while c.raw("GET", "/api/envs")[0].status != 200:
        assert time.time() < deadline
        time.sleep(0.05)


def _form(c, path, fields, multipart=False):
    if multipart:
        boundary = uuid.uuid4().hex
        body = "".join("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                       % (boundary, k, v) for k, v in fields.items()) + "--%s--\r\n" % boundary
        ctype = "multipart/form-data; boundary=" + boundary
    else:
        from urllib.parse import urlencode
        body, ctype = urlencode(fields), "application/x-www-form-urlencoded"
    return c.call("POST", path, body, headers={"Content-Type": ctype})


def test_article_endpoints(served):
    """The article's client, with the token added: form posts to /env/create, /env/get,
    / and /env/delete, answered in its shapes."""
    s, c = served
    assert _form(c, "/env/create", {"id": "1"}) == {"envs": ["main", "1"]}
    assert _form(c, "/env/create", {"id": "1"}) == {"envs": ["main", "1"]}  # kept
    assert _form(c, "/", {"id": "1", "code": "j = 1\nprint('hello world')"}) == \
        {"message": "hello world\n"}
    assert _form(c, "/", {"id": "1", "code": "j + 1"}, multipart=True) == {"message": "2\n"}
    err = _form(c, "/", {"id": "1", "code": "prnt('hi')"})
    assert err["error"].startswith("Traceback (most recent call last):")
    assert "NameError" in err["error"]
    assert "j" in _form(c, "/env/get", {"id": "1"})["env"]
    assert _form(c, "/", {"id": "2", "code": "1"}) == {"error": "Kernel does not exist!"}
    assert _form(c, "/env/get", {"id": "2"}) == {"error": "Environment does not exist!"}
    assert _form(c, "/env/delete", {"id": "1"}) == {"envs": ["main"]}
    assert _form(c, "/env/delete", {"id": "1"}) == {"envs": ["main"]}
    assert "error" in _form(c, "/env/get", {"code": "no id"})
    assert "error" in c.call("POST", "/env/create", "id=x", headers={"Content-Type": "text/plain"},
                             status=400)
    assert "error" in _form(c, "/env/create", {"id": "bad/name"})


def test_console_page(served):
    s, c = served
    r, data = c.raw("GET", "/?token=" + c.token, token=False)
    assert r.status == 200 and r.getheader("Content-Type") == "text/html; charset=utf-8"
    assert data.startswith(b"<!doctype html>")
    assert r.getheader("Referrer-Policy") == "no-referrer"
    csp = r.getheader("Content-Security-Policy")
    assert "frame-ancestors 'none'" in csp and "script-src 'sha256-" in csp
    assert "unsafe-inline" not in csp
    # Without the token the page is a 401, but still the page (it holds nothing; every call
    # it makes needs the token): it loads again once it took ?token= out of the address bar
    # (the token is in its sessionStorage), and can say that a token is wrong.
    for path in ("/", "/?token=wrong"):
        r, page = c.raw("GET", path, token=False)
        assert r.status == 401 and page == data, path
    assert c.raw("GET", "/", token=True)[0].status == 200
    assert c.raw("GET", "/api/envs", token=False)[0].status == 401
    assert c.raw("POST", "/", token=False)[0].status == 401


def _start(make_serve, *args, http, name="serve"):
    with pytest.raises(RuntimeError) as e:
        make_serve(*args, http=http, name=name)
    return str(e.value)


def test_remote_binds_need_consent(make_serve):
    msg = _start(make_serve, http="0.0.0.0:0")
    assert "--allow-remote" in msg and "not a loopback address" in msg
    msg = _start(make_serve, "--allow-remote", http="0.0.0.0:0")
    assert "TLS" in msg and "--insecure-http" in msg
    assert "bad HTTP address" in _start(make_serve, http="nowhere")
    s = make_serve("--allow-remote", "--insecure-http", http="0.0.0.0:0")
    c = Client(s, s.token())
    c.host = "127.0.0.1"
    c.call("GET", "/api/envs", status=200)


def test_tls(make_serve, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    s = make_serve("--tls-cert", str(cert), "--tls-key", str(key), http="127.0.0.1:0")
    c = Client(s, s.token())
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = False
    r, data = c.raw("POST", "/api/envs/main/exec", {"code": "'over tls'"}, ctx=ctx)
    assert r.status == 200 and json.loads(data)["value"] == "'over tls'"
    # Under TLS the Origin to match is https://.
    r, _ = c.raw("GET", "/api/envs", headers={"Origin": "https://127.0.0.1:%d" % c.port}, ctx=ctx)
    assert r.status == 200
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        c.raw("GET", "/api/envs")  # plain HTTP to a TLS port gets no answer
    assert "cannot read" in _start(make_serve, "--tls-cert", str(tmp_path / "none.pem"),
                                   "--tls-key", str(key), http="127.0.0.1:0", name="other")
