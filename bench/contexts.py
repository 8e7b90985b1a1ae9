"""Section 7 of bench/run (`bench/run --only 7 [--quick]`): execution contexts (issue 11),
limpet.connect beside execnet and mitogen and the raw limit, measured in one run, rounds
interleaved so that drift hits every row alike; medians, ratios to the raw limit of the same
run. Only the public API of each tool: limpet.connect, call, group, connect_many.

Every far side is /usr/bin/python3 with nothing of the tool installed for it to import
(execnet with python= and mitogen send their own code, as limpet does). The ssh rows need
root and openssh-server: a private sshd on loopback (tests/e2e/sshd.py), stopped on the way
out; without them they are left out with a note.
"""
import concurrent.futures
import getpass
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import limpet
from limpet import _bootstrap, _limpet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"
TEN_MB = 10_000_000
SENT = {}  # tool -> bytes its bootstrap sent, as its own code counted them (bootstrap_bytes)

# execnet's far side: a loop that answers each request as the other tools' calls do
EXECNET_LOOP = """
import os
for op, arg in channel:
    channel.send(os.getpid() if op == "pid" else abs(arg) if op == "abs" else bytes(arg))
"""


class Limpet:
    name = "limpet.connect"

    def __init__(self, sshd=None):
        self.sshd = sshd

    def start(self):
        if self.sshd is None:
            return limpet.connect("local", python=PY)
        return limpet.connect(self.sshd.url(), python=PY, ssh_options=["-F", self.sshd.config])

    def call(self, ctx, op, arg=None):
        return ctx.call(*{"pid": (os.getpid,), "abs": (abs, arg), "bytes": (bytes, arg)}[op])

    def close(self, ctx):
        ctx.shutdown()


class Execnet:
    name = "execnet.makegateway, a channel"

    def __init__(self, sshd=None):
        import execnet
        self.execnet, self.sshd = execnet, sshd

    def start(self):
        spec = f"popen//python={PY}"
        if self.sshd is not None:
            spec = (f"ssh_config={self.sshd.config}//ssh=-p {self.sshd.port} "
                    f"{getpass.getuser()}@127.0.0.1//python={PY}")
        gw = self.execnet.makegateway(spec)
        return gw, gw.remote_exec(EXECNET_LOOP)

    def call(self, h, op, arg=None):
        h[1].send((op, arg))
        return h[1].receive(timeout=60)

    def close(self, h):
        h[0].exit()


class Mitogen:
    name = "mitogen router.local / .ssh, context.call"
    _router = None

    def __init__(self, sshd=None):
        self.sshd = sshd
        if Mitogen._router is None:   # one broker thread per process, started once, untimed
            import mitogen.master
            Mitogen._router = mitogen.master.Router(mitogen.master.Broker())

    def start(self):
        if self.sshd is None:
            return self._router.local(python_path=[PY])
        return self._router.ssh(hostname="127.0.0.1", port=self.sshd.port, python_path=[PY],
                                username=getpass.getuser(), ssh_args=["-F", self.sshd.config])

    def call(self, ctx, op, arg=None):
        return ctx.call(*{"pid": (os.getpid,), "abs": (abs, arg), "bytes": (bytes, arg)}[op])

    def close(self, ctx):
        ctx.shutdown(wait=True)

    @classmethod
    def stop(cls):
        if cls._router is not None:
            cls._router.broker.shutdown()
            cls._router.broker.join()
            cls._router = None


TOOLS = (Limpet, Execnet, Mitogen)


def cold(tool):
    """Seconds from nothing to the first result; the shutdown after it is not counted."""
    t = time.perf_counter()
    h = tool.start()
    tool.call(h, "pid")
    t = time.perf_counter() - t
    tool.close(h)
    return t


def command(argv):
    def run():
        t = time.perf_counter()
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
        return time.perf_counter() - t
    return run


def interleaved(rows, rounds):
    """{name: median seconds} of rounds of every row's function, one of each per round."""
    times = {name: [] for name in rows}
    for _ in range(rounds):
        for name, fn in rows.items():
            times[name].append(fn())
    return {name: statistics.median(v) for name, v in times.items()}


def ratio_rows(t, title, medians, per=None):
    """A section of rows of median seconds, each with its ratio to the first (the raw limit);
    per: how many things a row did, for a time each."""
    t.section(title)
    base = next(iter(medians.values()))
    for name, s in medians.items():
        t.add(name, f"{s * 1000:,.1f} ms", f"{s / per * 1000:.1f} ms each" if per else "",
              f"{s / base:.2f}x")


def cold_rows(t, rounds, sshd):
    """Cold start to the first result: locally, then over loopback ssh."""
    local = {"raw: python3 -c pass": command([PY, "-c", "pass"]),
             "raw: python3 -S -c pass": command([PY, "-S", "-c", "pass"])}
    local.update({c.name: (lambda tool: lambda: cold(tool))(c()) for c in TOOLS})
    ratio_rows(t, "7. execution contexts: cold start to the first result of a trivial call, a "
               "local child (median, vs python3 -c pass)", interleaved(local, rounds))
    if sshd is None:
        t.note("the ssh rows need root and openssh-server (scripts/install-deps)")
        return
    ssh = {"raw: ssh host python3 -c pass": command(
        ["ssh", "-F", sshd.config, "-p", str(sshd.port), "127.0.0.1", PY, "-c", "pass"])}
    ssh.update({c.name: (lambda tool: lambda: cold(tool))(c(sshd)) for c in TOOLS})
    ratio_rows(t, "7. cold start over ssh to loopback (a private sshd; median, vs ssh running "
               "python3 -c pass)", interleaved(ssh, rounds))


def pingpong_pipe_us(build, rounds, n):
    out = subprocess.run([os.path.join(build, "bench", "pingpong"), str(rounds), str(n),
                          "raw-pipe"], capture_output=True, text=True, check=True).stdout
    return next(float(line.split()[1]) for line in out.splitlines() if line.startswith("raw-pipe"))


PY_ECHO = ("import os\nwhile True:\n    d = os.read(0, 65536)\n    if not d:\n        break\n"
           "    os.write(1, d)\n")


def python_echo_us(n):
    """The round trip of 64 bytes to a Python child that echoes them over two pipes: the
    floor for any tool whose far side is Python (two processes woken, no work)."""
    p = subprocess.Popen([PY, "-c", PY_ECHO], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    r, w, lat = p.stdout.fileno(), p.stdin.fileno(), []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            os.write(w, b"x" * 64)
            os.read(r, 65536)
            lat.append(time.perf_counter() - t0)
    finally:
        p.stdin.close()
        p.wait()
    return statistics.median(lat) * 1e6


def connected_rows(t, quick, build):
    """Round trip of a trivial call and a 10 MB bytes result, on a connected local context."""
    n, big = (300, 3) if quick else (3000, 9)
    raw_us = pingpong_pipe_us(build, 3 if quick else 5, 20 * n)
    py_us = python_echo_us(n)
    raw_mbs = json.loads(subprocess.run([os.path.join(build, "bench", "rawbulk"), "--pipe",
                                         str(big * 2)], capture_output=True, text=True,
                                        check=True).stdout)["mb_per_s"]
    rtt, bulk = {}, {}
    for cls in TOOLS:
        tool = cls()
        h = tool.start()
        try:
            for _ in range(n // 10):
                tool.call(h, "abs", -1)
            lat = []
            for _ in range(n):
                t0 = time.perf_counter()
                tool.call(h, "abs", -1)
                lat.append(time.perf_counter() - t0)
            rtt[cls.name] = statistics.median(lat) * 1e6
            tool.call(h, "bytes", TEN_MB)
            secs = []
            for _ in range(big):
                t0 = time.perf_counter()
                if len(tool.call(h, "bytes", TEN_MB)) != TEN_MB:
                    raise RuntimeError(f"{cls.name}: not 10 MB back")
                secs.append(time.perf_counter() - t0)
            bulk[cls.name] = TEN_MB / statistics.median(secs) / 1e6
        finally:
            tool.close(h)
    t.section("7. round trip of a trivial call (abs(-1)) on a connected local context (median, "
              "vs a C ping-pong over two pipes)")
    t.add("raw: C ping-pong over pipes (bench/pingpong raw-pipe)", f"{raw_us:.1f} us", "", "1.00x")
    t.add("raw: a Python child echoing over pipes", f"{py_us:.1f} us", "", f"{py_us / raw_us:.1f}x")
    for name, us in rtt.items():
        t.add(name, f"{us:,.1f} us", "", f"{us / raw_us:.1f}x")
    t.section("7. a 10 MB bytes result from a connected local context (median MB/s, vs the raw "
              "pipe; the far side makes bytes(10**7) in each call)")
    t.add("raw: 10 MB through a pipe, 64 KiB at a time (bench/rawbulk --pipe)",
          f"{raw_mbs:,.0f} MB/s", "", "1.00x")
    for name, mbs in bulk.items():
        t.add(name, f"{mbs:,.0f} MB/s", f"{TEN_MB / mbs / 1000:.1f} ms", f"{mbs / raw_mbs:.2f}x")


def many_limpet(k):
    ctxs = limpet.connect_many(["local"] * k, python=PY)
    try:
        return limpet.group(ctxs).call(os.getpid)
    finally:
        limpet.group([c for c in ctxs if isinstance(c, limpet.Context)]).shutdown()


def many_pooled(cls, k):
    """k contexts of a peer started 32 at a time (as connect_many does), then one call on each
    at once."""
    tool = cls()
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        hs = list(pool.map(lambda _: tool.start(), range(k)))
        try:
            return list(pool.map(lambda h: tool.call(h, "pid"), hs))
        finally:
            list(pool.map(tool.close, hs))


def many_raw(k):
    procs = [subprocess.Popen([PY, "-c", "pass"]) for _ in range(k)]
    return [p.wait() for p in procs]


def many_rows(t, quick):
    """k local contexts started and one call on each."""
    k = 10 if quick else 100
    rows = {f"raw: {k} python3 -c pass at once": lambda: many_raw(k),
            "limpet.connect_many, group(...).call": lambda: many_limpet(k),
            f"execnet: {k} popen gateways, 32 at a time": lambda: many_pooled(Execnet, k),
            f"mitogen: {k} router.local(), 32 at a time": lambda: many_pooled(Mitogen, k)}
    timed = {}
    for name, fn in rows.items():
        def run(fn=fn, name=name):
            t0 = time.perf_counter()
            out = fn()
            t0 = time.perf_counter() - t0
            if "raw" not in name and not (all(isinstance(x, int) for x in out)
                                          and len(set(out)) == k):
                raise RuntimeError(f"{name}: not one answer from each context: {out[:3]}")
            return t0
        timed[name] = run
    ratio_rows(t, f"7. {k} local contexts started, then one call on each (median, vs {k} "
               "python3 -c pass started at once)", interleaved(timed, 1 if quick else 3), k)


def bootstrap_bytes(t):
    """What each tool sends a far Python that has nothing installed before it can serve a call:
    the command line and the code on its stdin, as the tool's own code makes them."""
    argv = _bootstrap.stage1_argv("user@host", PY)
    line = len(" ".join(argv[1:]))
    source = 9 + len(_bootstrap.agent_payload())
    code = 9 + len(_limpet.agent_code()[1])
    t.section("7. bootstrap bytes: the command line and the code written to the far stdin")
    t.add("limpet: stage 1 + the agent's source (zlib; any Python, ssh)", f"{line + source:,} B",
          f"{line:,} + {source:,}", "")
    t.add("limpet: stage 1 + the agent compiled (zlib; the same Python, local)",
          f"{line + code:,} B", f"{line:,} + {code:,}", "")
    import execnet.gateway_io
    from execnet import gateway_base
    line = len(execnet.gateway_io.popen_bootstrapline) + len(' -c ""')
    code = len(repr("\n".join([inspect.getsource(gateway_base), "execmodel = get_execmodel('x')",
                               "io = init_popen_io(execmodel)", "io.write('1'.encode('ascii'))",
                               "serve(io, id='gw0-worker')"])) + "\n")
    t.add("execnet: bootstrap line + gateway_base source (repr)", f"{line + code:,} B",
          f"{line:,} + {code:,}", "")
    if "mitogen" in SENT:
        line, code = SENT["mitogen"]
        t.add("mitogen: first stage (base64) + core (zlib)", f"{line + code:,} B",
              f"{line:,} + {code:,}", "")


def count_mitogen():
    """Records the size of mitogen's boot command and preamble as it makes them."""
    import mitogen.parent
    conn = mitogen.parent.Connection
    boot = conn.get_boot_command

    def counted(self):
        argv = boot(self)
        SENT["mitogen"] = (len(" ".join(argv[1:])), len(self.get_preamble()))
        return argv
    conn.get_boot_command = counted


def start_sshd(d):
    if os.geteuid() != 0 or not os.path.exists("/usr/sbin/sshd"):
        return None
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    from sshd import Sshd
    return Sshd(d)


def rows(t, quick, build):
    """Adds section 7 to bench/run's table t; build: the build directory (its bench/ tools)."""
    count_mitogen()
    with tempfile.TemporaryDirectory() as d:
        sshd = start_sshd(d)
        try:
            cold_rows(t, 5 if quick else 21, sshd)
        finally:
            if sshd is not None:
                sshd.stop()
    connected_rows(t, quick, build)
    many_rows(t, quick)
    bootstrap_bytes(t)
    Mitogen.stop()
