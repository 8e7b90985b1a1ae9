#!/usr/bin/python3
"""bench/jupyter.py [BUILD] [N]: issue 13's figures, side by side in one run,
interleaved in rounds so that drift hits every row alike (docs/jupyter.md 11):

  1-2  ipykernel (Debian's), `1+1`: raw ZeroMQ client and jupyter_client;
  3    `limpet kernel` on an embedded host (tests/e2e/hosts/app.py), the same two clients;
  4    `limpet kernel` on a `limpet serve` environment, raw client;
  5    the floors: limpet's own round trip on the same host (bench/rtt, C client),
       and one libzmq hop in C (bench/zmq_rtt).

Each figure: median and p90 of N rounds, "reply" = send execute_request until
execute_reply, "idle" = until iopub status idle. A measurement, never a test."""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ARGS = [a for a in sys.argv[1:] if not a.isdigit()]
BUILD = os.path.abspath(ARGS[0] if ARGS else os.path.join(ROOT, "build"))
N = int(next((a for a in sys.argv[1:] if a.isdigit()), "1000"))
ROUNDS = 5
LIMPET = os.path.join(BUILD, "src", "cli", "limpet")
PY = "/usr/bin/python3"
sys.path.insert(0, os.path.join(BUILD, "python"))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

from jupyter_client import KernelManager  # noqa: E402
from jupyter_baseline import Raw, jc_round  # noqa: E402  (bench/jupyter_baseline.py)
from jupyter_env import jupyter_environ, write_spec  # noqa: E402  (tests/e2e/jupyter_env.py)

os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


def q(xs):
    xs = sorted(xs)
    return statistics.median(xs) * 1e6, xs[int(len(xs) * 0.9)] * 1e6


class Kernel:
    """A kernel started by jupyter_client, with both clients on it."""

    def __init__(self, name, kernel_name):
        self.name = name
        self.km = KernelManager(kernel_name=kernel_name)
        self.km.start_kernel()
        self.kc = self.km.blocking_client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=30)
        info = self.km.get_connection_info(session=False)
        self.raw = Raw(info | {"key": self.km.session.key.decode()})
        self.samples = {"raw": [], "jc": [], "c": []}
        for _ in range(50):
            self.raw.round("1+1")
            jc_round(self.kc, "1+1")

    def measure(self, n):
        self.samples["raw"] += [self.raw.round("1+1") for _ in range(n)]
        self.samples["jc"] += [jc_round(self.kc, "1+1") for _ in range(n)]
        out = subprocess.run([os.path.join(BUILD, "bench", "jupyter_rtt"),
                              self.km.connection_file, str(n)],
                             capture_output=True, text=True, check=True, timeout=120).stdout
        r = json.loads(out)
        self.samples["c"].append((r["reply_median_us"] / 1e6, r["idle_median_us"] / 1e6))

    def close(self):
        self.raw.close()
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def host(runtime):
    env = dict(os.environ, XDG_RUNTIME_DIR=runtime, PYTHONPATH=os.path.join(BUILD, "python"))
    p = subprocess.Popen([PY, os.path.join(ROOT, "tests", "e2e", "hosts", "app.py")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    address = p.stdout.readline().decode().split(None, 1)[1].strip()
    return p, address


def serve(runtime):
    env = dict(os.environ, XDG_RUNTIME_DIR=runtime)
    p = subprocess.Popen([LIMPET, "serve", "--name", "benchserve", "--http", "off"], env=env,
                         stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    line = p.stderr.readline().decode()
    return p, line.split("socket ", 1)[1].split(",", 1)[0]


def rtt(address):
    out = subprocess.run([os.path.join(BUILD, "bench", "rtt"), address, str(N)],
                         capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1]


def main():
    runtime = tempfile.mkdtemp(prefix="limpet-bench-jupyter-")
    os.chmod(runtime, 0o700)
    os.environ["XDG_RUNTIME_DIR"] = runtime
    procs, kernels = [], []
    try:
        hp, haddr = host(runtime)
        sp, saddr = serve(runtime)
        procs += [hp, sp]
        # kernelspecs in a private Jupyter path (jupyter_client 7 ignores kernel_cmd)
        os.environ.update(jupyter_environ(os.path.join(runtime, "jupyter"), runtime))
        data = os.environ["JUPYTER_PATH"]
        kernels = [
            Kernel("ipykernel", "python3"),
            Kernel("limpet kernel, embedded host",
                   write_spec(data, LIMPET, haddr, "limpet-bench-host")),
            Kernel("limpet kernel, limpet serve env",
                   write_spec(data, LIMPET, saddr, "limpet-bench-serve", env="main")),
        ]
        argv0 = [k.km.kernel_spec.argv[0] for k in kernels]   # what ran is what a row says
        assert argv0[0] != LIMPET and argv0[1:] == [LIMPET, LIMPET], argv0
        per = max(1, N // ROUNDS)
        for _ in range(ROUNDS):
            for k in kernels:
                k.measure(per)
        floor_rtt = rtt(haddr)
        zmq_rtt = os.path.join(BUILD, "bench", "zmq_rtt")
        floor_zmq = (subprocess.run([zmq_rtt, str(N), "tcp"], capture_output=True, text=True)
                     .stdout.strip().splitlines() or ["(bench/zmq_rtt not built)"])[-1]
    finally:
        for k in kernels:
            k.close()
        for p in procs:
            p.terminate()
            p.wait()
    clients = (("c", "C (jupyter_rtt)"), ("raw", "raw ZeroMQ"), ("jc", "jupyter_client"))
    base = {c: q([x[0] for x in kernels[0].samples[c]])[0] for c, _ in clients}
    print(f"execute of 1+1, {N} rounds each, {ROUNDS} interleaved rounds (microseconds)")
    print(f"{'kernel':34s} {'client':16s} {'reply p50':>10s} {'p90':>8s} {'idle p50':>10s}"
          f" {'p90':>8s} {'vs ipykernel':>13s}")
    for k in kernels:
        for c, label in clients:   # the C client's p90 is that of its rounds' medians
            r = q([x[0] for x in k.samples[c]])
            i = q([x[1] for x in k.samples[c]])
            print(f"{k.name:34s} {label:16s} {r[0]:10.0f} {r[1]:8.0f} {i[0]:10.0f} {i[1]:8.0f}"
                  f" {base[c] / r[0]:12.1f}x")
    print(f"floor: bench/rtt on the embedded host (limpet's own round trip): {floor_rtt}")
    print(f"floor: bench/zmq_rtt (one libzmq hop in C, tcp): {floor_zmq}")


if __name__ == "__main__":
    main()
