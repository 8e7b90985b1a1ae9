"""The tools a user would pick instead of limpet, driven the same way for
bench/run: each peer is started (loopback only), warmed up, timed, and
stopped, even when the run is interrupted.

Every peer is a context manager yielding an object with:
    call(code)        run a trivial expression, return when its result is back
    setup_bulk()      make BLOB, a 10 MB str, in the session (untimed, once)
    bulk()            bring BLOB back whole (printed, or as the value) and
                      return its length: the caller holds all 10 MB as one
                      object, then lets it go
    pid               the serving process (for RSS), or None
Peers that throughput() drives many of from one loop also have
    fileno(), begin(code) (send a call, do not wait), ready() (read what
    arrived: True once the call's reply is complete).
"""
import http.client
import os
import resource
import selectors
import socket
import subprocess
import sys
import time

PY = "/usr/bin/python3"
TEN_MB = 10_000_000
BLOB = "blob = 'y' * %d" % TEN_MB   # the same 10 MB str in every peer's session
BLOB_EVAL = "globals().__setitem__('blob', 'y' * %d)" % TEN_MB   # for peers that only eval
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
s._listen()   # start() would listen only after we print the port: a client could be refused
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

    def setup_bulk(self):
        self.conn.execute(BLOB)

    def bulk(self):
        return len(self.conn.eval("blob"))   # a str comes back by value

    def fileno(self):
        return self.conn.fileno()

    def begin(self, code):
        import rpyc
        self.res = rpyc.async_(self.conn.eval)(code)

    def ready(self):
        self.conn.poll_all(0)   # every message that has arrived, the reply among them
        return self.res.ready

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

    def setup_bulk(self):
        self.call(BLOB_EVAL)

    def bulk(self):
        return len(self.call("blob"))

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

    def setup_bulk(self):
        self.ctx.call(eval, BLOB_EVAL)   # into the globals eval runs with there

    def bulk(self):
        return len(self.ctx.call(eval, "blob"))

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

    def setup_bulk(self):
        self.call(BLOB)

    def bulk(self):
        return len(self.call("print(blob, end='')"))

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


FLASK_SERVER = """
import contextlib, io, logging
from flask import Flask, request
from werkzeug.serving import WSGIRequestHandler, make_server
WSGIRequestHandler.protocol_version = "HTTP/1.1"   # asked for; but Werkzeug 2.2 still answers
                                                   # every request with Connection: close
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
    stdout. Werkzeug closes the connection after every reply, so each call
    opens a new one (http.client does it by itself)."""
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

    def setup_bulk(self):
        self.http.request("POST", "/exec", body=BLOB)
        self.http.getresponse().read()

    def bulk(self):
        self.http.request("POST", "/exec", body="print(blob, end='')")
        return len(self.http.getresponse().read())

    def close(self):
        self.http.close()
        if self.owner:
            stop(self.proc)


def _is_tcp(address):
    return address.startswith("[") or (":" in address and not address.startswith(("/", ".")))


class LimpetPython(Peer):
    """limpet through its Python client (limpet.client), Unix socket or TCP.
    keep=True: bulk() keeps each result until the next call has come back,
    as a loop of `r = c.eval(...)` does (see bulk_mbs)."""
    name = "limpet, Python client (limpet.client), Unix socket"

    def __init__(self, address, pid, keep=False):
        from limpet.client import Client
        self.c = Client(address, session=True)
        self.s = self.c.welcome["session"]
        self.pid = pid
        self.keep, self.kept = keep, None
        self.transport = "tcp" if _is_tcp(address) else "unix"

    def call(self, code):
        return self.c.eval(self.s, code, interactive=True).value

    def setup_bulk(self):
        self.c.eval(self.s, BLOB)

    def bulk(self):
        r = self.c.eval(self.s, "print(blob, end='')")
        if self.keep:
            self.kept = r
        return len(r.out)

    def fileno(self):
        return self.c.sock.fileno()

    def begin(self, code):
        self.id = self.c.next_id
        self.c.next_id += 1
        self.c.send({"op": "eval", "id": self.id, "session": self.s, "interactive": True},
                    code.encode())

    def ready(self):
        while True:   # the reply comes in one write: its frames are all there
            h, _ = self.c.read_frame()
            if h.get("re") == self.id and h["op"] in ("done", "error"):
                return True

    def close(self):
        self.c.close()


class LimpetText(Peer):
    """limpet's plain-text mode (what nc sees): a line in, the value and
    the next prompt out."""
    name = "limpet, plain-text mode (what nc sees), Unix socket"

    def __init__(self, address, pid):
        if _is_tcp(address):   # as nc does: no socket options
            host, port = address.rsplit(":", 1)
            self.sock = socket.create_connection((host.strip("[]"), int(port)))
            self.transport = "tcp"
        else:
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

    def setup_bulk(self):
        self.call(BLOB)

    def bulk(self):
        self.sock.sendall(b"print(blob, end='')\n")
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


def _cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _worker(cls, args, conns, window, ready, out):
    """One load process of a throughput run: conns clients of one server,
    driven from one select loop, each with one call in flight; counts the
    calls completed inside window (t0, t1), their latencies, and its CPU."""
    peers = [cls(*args) for _ in range(conns)]
    sel = selectors.DefaultSelector()
    for p in peers:
        p.call("1+1")
        sel.register(p.fileno(), selectors.EVENT_READ, p)
    ready.put(True)
    t0, t1 = window.get()
    lat, cpu0, in_window = [], None, False
    for p in peers:
        p.sent = time.perf_counter()
        p.begin("1+1")
    while (now := time.perf_counter()) < t1:
        if not in_window and now >= t0:
            in_window, cpu0 = True, _cpu_s()
        for key, _ in sel.select(t1 - now):
            p = key.data
            if p.ready():
                done = time.perf_counter()
                if t0 <= done < t1:
                    lat.append((done - p.sent) * 1e6)
                p.sent = done
                p.begin("1+1")
    out.put((lat, _cpu_s() - (cpu0 if cpu0 is not None else _cpu_s())))
    for p in peers:
        try:
            p.close()
        except Exception:   # a call still in flight: the server may complain
            pass


def throughput(cls, args, clients, seconds, warm=0.5, pid=None):
    """Calls per second with `clients` clients of one server, driven by at
    most one process per CPU (each multiplexes its clients), over a window
    of `seconds` after `warm`: (calls/s, p99 us, CPUs used by the load
    processes, CPUs used by the server pid)."""
    import multiprocessing as mp
    ctx = mp.get_context("fork")
    nproc = min(clients, os.cpu_count() or 1)
    ready, window, out = ctx.Queue(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(cls, args, clients // nproc + (i < clients % nproc),
                                               (window), ready, out))
             for i in range(nproc)]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            ready.get(timeout=120)   # every client connected
        t0 = time.perf_counter() + warm   # perf_counter is CLOCK_MONOTONIC: one clock for all
        for _ in procs:
            window.put((t0, t0 + seconds))
        time.sleep(max(0.0, t0 - time.perf_counter()))
        s0 = _proc_cpu_s(pid) if pid else 0
        time.sleep(max(0.0, t0 + seconds - time.perf_counter()))
        s1 = _proc_cpu_s(pid) if pid else 0
        results = [out.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
    lat = sorted(x for r in results for x in r[0])
    return (len(lat) / seconds, lat[int(len(lat) * 0.99)], sum(r[1] for r in results) / seconds,
            (s1 - s0) / seconds)


def timed(peer, n, code="1+1", max_s=None):
    """n round trips after a warm-up of n/10; the latencies in us. With
    max_s, the warm-up and the timed calls each stop after max_s seconds."""
    end = time.perf_counter() + (max_s or 1e9)
    for _ in range(max(10, n // 10)):
        peer.call(code)
        if time.perf_counter() > end:
            break
    out = []
    end = time.perf_counter() + (max_s or 1e9)
    for _ in range(n):
        t0 = time.perf_counter()
        peer.call(code)
        out.append((time.perf_counter() - t0) * 1e6)
        if t0 > end:
            break
    return out


def bulk_mbs(peer, rounds):
    """Bringing BLOB (10 MB, made once beforehand) back, after one warm-up:
    the median MB/s and ms of rounds, and the page faults the caller took
    per call. The caller lets each result go, as a program that uses it and
    moves on does; glibc then gives the freed heap back to the kernel, and
    the next call's 10 MB are fresh pages again (about 2,400 faults per
    copy). Keeping the previous result alive (LimpetPython(keep=True))
    stops glibc from giving that memory back, and the faults disappear."""
    peer.setup_bulk()
    if peer.bulk() < TEN_MB:
        raise RuntimeError(f"{peer.name}: bulk did not bring back {TEN_MB} bytes")
    times, faults = [], resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        t0 = time.perf_counter()
        peer.bulk()
        times.append(time.perf_counter() - t0)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    times.sort()
    med = times[len(times) // 2]
    return TEN_MB / med / 1e6, med * 1000, faults / rounds


if __name__ == "__main__":   # a smoke run of every peer
    for cls in PEERS:
        with cls() as p:
            lat = sorted(timed(p, 50))
            print(f"{cls.name}: {lat[len(lat) // 2]:.0f} us, bulk {bulk_mbs(p, 1):.0f} MB/s",
                  file=sys.stderr)
