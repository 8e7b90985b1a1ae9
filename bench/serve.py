#!/usr/bin/python3
"""bench/serve.py [BUILD] [--seconds S] [--quick]: limpet serve's figures (issue 12), side by
side in one run with the raw limit and the baselines, as one table of medians:

- exec round trip of `x = 1`: over the framed protocol (bench/rtt, the C client) against the
  embedded server's; over HTTP keep-alive (wrk at 1 connection, its median latency); and
  jupyter_client's execute against ipykernel;
- wrk at 1, 8 and 64 connections (requests/s, p99): `GET /api/ping` (the HTTP library's
  static answer in the same process: the raw limit), exec on one environment, exec on two,
  and the Flask baseline (bench/proto/flask_kernel.py).

A measurement, never a test: nothing is asserted."""
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGS = [a for a in sys.argv[1:] if not a.startswith("--") and not a.isdigit()]
BUILD = os.path.abspath(ARGS[0] if ARGS else os.path.join(ROOT, "build"))
QUICK = "--quick" in sys.argv
SECONDS = int(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else (
    1 if QUICK else 3)
CONNECTIONS = [1, 8, 64]
PY = "/usr/bin/python3"
LIMPET = os.path.join(BUILD, "src", "cli", "limpet")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(url, conns, script=None):
    """(requests/s, p50 us, p99 us) of one wrk run."""
    out = subprocess.run(["wrk", "-t", str(min(2, conns)), "-c", str(conns), "-d",
                          "%ds" % SECONDS, "--latency"] + (["-s", script] if script else [])
                         + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))

    def pct(p):
        value, unit = re.search(r"\s%s%%\s+([0-9.]+)(us|ms|s)" % p, out).groups()
        return float(value) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors or "rror" in out:  # a figure of failures is no figure
        sys.exit("bench/serve.py: wrk on %s: %s" % (url, out))
    return rps, pct(50), pct(99)


def lua(tmp, name, method, body, headers, paths):
    """A wrk script: method and body to paths, in turn."""
    path = os.path.join(tmp, name + ".lua")
    with open(path, "w") as f:
        f.write('wrk.method = "%s"\n' % method)
        for k, v in headers.items():
            f.write('wrk.headers["%s"] = "%s"\n' % (k, v))
        if body is not None:
            f.write("wrk.body = %s\n" % json.dumps(body))
        f.write("paths = {%s}\ncounter = 0\n" % ", ".join(json.dumps(p) for p in paths))
        f.write("request = function()\n  counter = counter + 1\n"
                "  return wrk.format(nil, paths[counter % #paths + 1])\nend\n")
    return path


class Serve:
    def __init__(self, tmp):
        self.port = free_port()
        self.env = dict(os.environ, XDG_RUNTIME_DIR=tmp)
        self.proc = subprocess.Popen([LIMPET, "serve", "--name", "bench", "--http",
                                      "127.0.0.1:%d" % self.port], env=self.env,
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        line = self.proc.stderr.readline().decode()
        self.socket = line.split("socket ", 1)[1].split(",", 1)[0]
        self.token = subprocess.run([LIMPET, "serve", "--name", "bench", "--print-token"],
                                    env=self.env, capture_output=True, text=True,
                                    check=True).stdout.strip()
        subprocess.Popen(["cat"], stdin=self.proc.stderr, stdout=subprocess.DEVNULL)

    def post(self, path, body):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("POST", path, json.dumps(body), {"Authorization": "Bearer " + self.token})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


def framed_rtt(address, n):
    out = subprocess.run([os.path.join(BUILD, "bench", "rtt"), address, str(n), "x = 1"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["median_us"]


def embedded_rtt(tmp, n):
    env = dict(os.environ, XDG_RUNTIME_DIR=tmp, PYTHONPATH=os.path.join(BUILD, "python"))
    host = subprocess.Popen([PY, "-m", "limpet", "--serve"], env=env, stdout=subprocess.PIPE,
                            text=True)
    try:
        address = host.stdout.readline().split(" at ")[1].split(";")[0]
        return framed_rtt(address, n)
    finally:
        host.terminate()
        host.wait(10)


def jupyter_rtt(n):
    """Median round trip of execute("x = 1") to its reply, jupyter_client to ipykernel."""
    try:
        from jupyter_client.manager import start_new_kernel
    except ImportError:
        return None
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            kc.execute_interactive("x = 1", timeout=30, output_hook=lambda m: None)
            times.append((time.perf_counter() - t0) * 1e6)
        return statistics.median(times)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def flask_rows(tmp):
    port = free_port()
    proc = subprocess.Popen([PY, os.path.join(ROOT, "bench", "proto", "flask_kernel.py"),
                             str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        proc.stdout.readline()
        for _ in range(100):  # "ready" comes before app.run() binds
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.05)
        c = http.client.HTTPConnection("127.0.0.1", port)
        c.request("POST", "/env/create", "")
        c.getresponse().read()
        script = lua(tmp, "flask", "POST", "id=0&code=x+%3D+1",
                     {"Content-Type": "application/x-www-form-urlencoded"}, ["/"])
        return {n: wrk("http://127.0.0.1:%d/" % port, n, script) for n in CONNECTIONS}
    finally:
        proc.terminate()
        proc.wait(10)


def main():
    if not os.path.exists(LIMPET):
        sys.exit("bench/serve.py: build first (no %s)" % LIMPET)
    n = 1000 if QUICK else 5000
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o700)
        sv = Serve(tmp)
        try:
            for name in ("exp1", "exp2"):
                status, data = sv.post("/api/envs", {"name": name})
                assert status == 201, data
            auth = {"Authorization": "Bearer " + sv.token}
            base = "http://127.0.0.1:%d" % sv.port
            scripts = {
                "static 200 (GET /api/ping)": lua(tmp, "ping", "GET", None, auth, ["/api/ping"]),
                "exec x = 1, one environment": lua(tmp, "one", "POST", '{"code": "x = 1"}', auth,
                                                   ["/api/envs/exp1/exec"]),
                "exec x = 1, two environments": lua(tmp, "two", "POST", '{"code": "x = 1"}',
                                                    auth, ["/api/envs/exp1/exec",
                                                           "/api/envs/exp2/exec"]),
            }
            for label, script in scripts.items():
                rows[label] = {c: wrk(base + "/", c, script) for c in CONNECTIONS}
            rtt_framed = framed_rtt(sv.socket, n)
        finally:
            sv.stop()
        rtt_embedded = embedded_rtt(tmp, n)
        rows["Flask baseline (exec x = 1)"] = flask_rows(tmp)
    rtt_jupyter = jupyter_rtt(200 if QUICK else 1000)
    static_p50 = rows["static 200 (GET /api/ping)"][1][1]
    http_p50 = rows["exec x = 1, one environment"][1][1]
    print("limpet serve (issue 12): medians; wrk %d s a cell" % SECONDS)
    print("\nexec round trip of x = 1")
    print("  %-44s %9.0f us" % ("framed protocol, limpet serve (bench/rtt)", rtt_framed))
    print("  %-44s %9.0f us" % ("framed protocol, embedded server (bench/rtt)", rtt_embedded))
    print("  %-44s %9.0f us  (%.1fx the static 200's %.0f us)" % (
        "HTTP keep-alive, limpet serve (wrk p50, 1 conn)", http_p50, http_p50 / static_p50,
        static_p50))
    if rtt_jupyter is not None:
        print("  %-44s %9.0f us" % ("jupyter_client execute against ipykernel", rtt_jupyter))
    print("\nwrk: requests/s and p99 at %s connections" % ", ".join(map(str, CONNECTIONS)))
    for label, cells in rows.items():
        print("  %-30s %s" % (label, "  ".join("%7.0f/s %6.0fus" % (cells[c][0], cells[c][2])
                                               for c in CONNECTIONS)))
    one, two = rows["exec x = 1, one environment"][64][0], rows[
        "exec x = 1, two environments"][64][0]
    print("\n  two environments / one at 64 connections: %.2fx" % (two / one))


if __name__ == "__main__":
    main()
