"""The tools a user would pick instead of limpet, driven the same way for
bench/run: each peer is started (loopback only), warmed up, timed, and
stopped, even when the run is interrupted.

Every peer is a context manager yielding an object with:
    call(code)        run a trivial expression, return when its result is back
    bulk()            bring 10 MB back (printed output, or a bytes result)
    pid               the serving process (for RSS), or None
"""
import http.client
import os
import socket
import subprocess
import sys
import time

PY = "/usr/bin/python3"
TEN_MB = 10_000_000
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")   # ipykernel's debugger chatter
QUIET = dict(os.environ)


def serve(code, *args):
    """A server process running code; its first stdout line (its port)."""
    proc = subprocess.Popen([PY, "-c", code, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=QUIET)
    line = proc.stdout.readline().strip()
    if not line:
        proc.kill()
        raise RuntimeError("the peer's server did not start")
    return proc, line


def stop(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Peer:
    pid = None
    shared = False       # True: other clients may join this one's server (self.server)
    transport = "unix"   # or "tcp", "pipe": which raw limit it compares with
    slow_us = 0          # about how long a call takes: slow peers get fewer rounds

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


RPYC_SERVER = """
from rpyc.utils.server import ThreadedServer
from rpyc.core.service import ClassicService
s = ThreadedServer(ClassicService, hostname="127.0.0.1", port=0)
print(s.port, flush=True)
s.start()
"""


class Rpyc(Peer):
    """rpyc classic mode: conn.eval(code) on a ThreadedServer, TCP loopback."""
    name = "rpyc classic eval (TCP)"
    transport = "tcp"

    shared = True        # one server, many clients: throughput applies

    def __init__(self, server=None):
        import rpyc
        self.proc, port = server or serve(RPYC_SERVER)
        self.owner = server is None
        self.pid = self.proc.pid
        self.server = (self.proc, port)
        self.conn = rpyc.classic.connect("127.0.0.1", int(port))

    def call(self, code):
        return self.conn.eval(code)

    def bulk(self):
        return len(self.conn.eval("b'y' * %d" % TEN_MB))   # bytes come back by value

    def close(self):
        self.conn.close()
        if self.owner:
            stop(self.proc)


class Execnet(Peer):
    """execnet: a popen gateway and a channel loop evaluating what it receives."""
    name = "execnet channel loop (pipes)"
    transport = "pipe"

    def __init__(self):
        import execnet
        self.gw = execnet.makegateway(f"popen//python={PY}")
        self.ch = self.gw.remote_exec(
            "import os\nchannel.send(os.getpid())\n"
            "while 1:\n    x = channel.receive()\n    channel.send(eval(x))")
        self.pid = self.ch.receive(timeout=60)

    def call(self, code):
        self.ch.send(code)
        return self.ch.receive(timeout=60)

    def bulk(self):
        return len(self.call("b'y' * %d" % TEN_MB))

    def close(self):
        self.gw.exit()


class Mitogen(Peer):
    """mitogen: a local child context, context.call(eval, code)."""
    name = "mitogen call (local child, pipes)"
    transport = "pipe"

    def __init__(self):
        import mitogen.master
        self.broker = mitogen.master.Broker()
        self.router = mitogen.master.Router(self.broker)
        self.ctx = self.router.local(python_path=[PY])
        self.pid = self.ctx.call(os.getpid)

    def call(self, code):
        return self.ctx.call(eval, code)

    def bulk(self):
        return len(self.ctx.call(eval, "b'y' * %d" % TEN_MB))

    def close(self):
        self.ctx.shutdown(wait=True)
        self.broker.shutdown()
        self.broker.join()


class Jupyter(Peer):
    """Jupyter: ipykernel started by jupyter_client, execute and wait for idle."""
    name = "Jupyter execute (ipykernel, zmq TCP)"
    transport = "tcp"
    slow_us = 5000

    def __init__(self):
        from jupyter_client.manager import start_new_kernel
        self.km, self.kc = start_new_kernel(kernel_name="python3", env=QUIET)
        self.pid = self.km.provisioner.process.pid if self.km.provisioner else None

    def call(self, code):
        msg_id = self.kc.execute(code, store_history=False)
        out = []
        while True:   # the result and output come on iopub; idle ends them
            msg = self.kc.get_iopub_msg(timeout=30)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        self.kc.get_shell_msg(timeout=30)
        return "".join(out)

    def bulk(self):
        return len(self.call("print('y' * %d)" % TEN_MB))

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


FLASK_SERVER = """
import contextlib, io, logging
from flask import Flask, request
from werkzeug.serving import WSGIRequestHandler, make_server
WSGIRequestHandler.protocol_version = "HTTP/1.1"   # keep-alive: the baseline at its best
logging.getLogger("werkzeug").setLevel(logging.ERROR)
app = Flask(__name__)
namespace = {}

@app.post("/exec")
def run():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(request.get_data(as_text=True), namespace)
    return out.getvalue()

s = make_server("127.0.0.1", 0, app, threaded=True)
print(s.server_port, flush=True)
s.serve_forever()
"""


class FlaskBaseline(Peer):
    """The blog post's "IPython over HTTP": Flask, POST code, exec it, return
    stdout; a keep-alive HTTP/1.1 client."""
    name = "Flask exec-over-HTTP baseline (TCP)"
    transport = "tcp"
    slow_us = 2000

    shared = True

    def __init__(self, server=None):
        self.proc, port = server or serve(FLASK_SERVER)
        self.owner = server is None
        self.pid = self.proc.pid
        self.server = (self.proc, port)
        self.http = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)

    def call(self, code):
        self.http.request("POST", "/exec", body=f"print({code})")
        r = self.http.getresponse()
        return r.read()

    def bulk(self):
        self.http.request("POST", "/exec", body="print('y' * %d)" % TEN_MB)
        return len(self.http.getresponse().read())

    def close(self):
        self.http.close()
        if self.owner:
            stop(self.proc)


class LimpetPython(Peer):
    """limpet through its Python client (limpet.client), Unix socket."""
    name = "limpet, Python client (limpet.client), Unix socket"

    def __init__(self, address, pid):
        from limpet.client import Client
        self.c = Client(address, session=True)
        self.s = self.c.welcome["session"]
        self.pid = pid

    def call(self, code):
        return self.c.eval(self.s, code, interactive=True).value

    def bulk(self):
        return len(self.c.eval(self.s, "print('y' * %d)" % TEN_MB).out)

    def close(self):
        self.c.close()


class LimpetText(Peer):
    """limpet's plain-text mode (what nc sees): a line in, the value and
    the next prompt out."""
    name = "limpet, plain-text mode (what nc sees), Unix socket"

    def __init__(self, address, pid):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(address)
        self.sock.settimeout(60)          # every wait bounded
        self.rview = memoryview(bytearray(1 << 20))
        self.pid = pid
        self._until(b">>> ")

    def _until(self, end):
        buf = bytearray()
        while not buf.endswith(end):
            n = self.sock.recv_into(self.rview)   # never recv(1 MB): a fresh mapping per call
            if not n:
                raise ConnectionError("closed")
            buf += self.rview[:n]
        return buf

    def call(self, code):
        self.sock.sendall(code.encode() + b"\n")
        return self._until(b">>> ")

    def bulk(self):
        self.sock.sendall(b"print('y' * %d)\n" % TEN_MB)
        return len(self._until(b">>> "))

    def close(self):
        self.sock.close()


PEERS = [Rpyc, Execnet, Mitogen, Jupyter, FlaskBaseline]


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))


def idle_clients_kb(cls, count):
    """RSS of a shared peer's server per idle client, with count clients
    connected (each has made one call)."""
    with cls() as first:
        first.call("1+1")
        time.sleep(0.3)
        base = rss_kb(first.pid)
        more = []
        try:
            for _ in range(count):
                c = cls(first.server)
                c.call("1+1")
                more.append(c)
            time.sleep(0.5)
            return (rss_kb(first.pid) - base) / count
        finally:
            for c in more:
                c.close()


def cold_start_ms(cls, rounds):
    """From nothing to the first result, for peers that start an
    interpreter: the median of rounds, in ms."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        with cls() as peer:
            peer.call("1+1")
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return times[len(times) // 2]


def _worker(cls, args, n, start, out):
    """One client of a throughput run: waits for start, then n calls."""
    with cls(*args) as peer:
        for _ in range(max(5, n // 10)):
            peer.call("1+1")
        start.wait()
        lat = []
        for _ in range(n):
            t0 = time.perf_counter()
            peer.call("1+1")
            lat.append((time.perf_counter() - t0) * 1e6)
    out.put(lat)


def throughput(cls, args, clients, n):
    """Calls per second with `clients` processes, each its own client of
    one server, doing n calls each; and the p99 latency over all of them."""
    import multiprocessing as mp
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(cls, args, n, start, out)) for _ in range(clients)]
    for p in procs:
        p.start()
    time.sleep(0.5 + clients * 0.02)   # every client connected and warm
    t0 = time.perf_counter()
    start.set()
    lat = [x for _ in procs for x in out.get(timeout=300)]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join(10)
        if p.is_alive():
            p.kill()
    lat.sort()
    return len(lat) / elapsed, lat[int(len(lat) * 0.99)]


def timed(peer, n, code="1+1"):
    """n round trips after a warm-up of n/10; the latencies in us."""
    for _ in range(max(10, n // 10)):
        peer.call(code)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        peer.call(code)
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def bulk_mbs(peer, rounds):
    """MB/s bringing 10 MB back, the median of rounds (after one warm-up)."""
    peer.bulk()
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        peer.bulk()
        rates.append(TEN_MB / (time.perf_counter() - t0) / 1e6)
    rates.sort()
    return rates[len(rates) // 2]


if __name__ == "__main__":   # a smoke run of every peer
    for cls in PEERS:
        with cls() as p:
            lat = sorted(timed(p, 50))
            print(f"{cls.name}: {lat[len(lat) // 2]:.0f} us, bulk {bulk_mbs(p, 1):.0f} MB/s",
                  file=sys.stderr)
