#!/usr/bin/python3
"""bench/http_models.py [BUILD] [--seconds S]: libmicrohttpd answering a static 200
(bench/proto/mhd_static.c) in the three threading models docs/serve.md chooses among, under
wrk at 1, 8 and 64 connections: requests/s and p99, medians of 3 rounds, the models
interleaved in each round. The raw limit of limpet serve's HTTP rows (issue 12); a
measurement, never a test."""
import os
import re
import socket
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
BUILD = ARGS[0] if ARGS else os.path.join(ROOT, "build")
SECONDS = int(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 3
MODELS = ["pool", "single", "perconn"]
CONNECTIONS = [1, 8, 64]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(port, conns):
    """(requests/s, p99 in us) of one wrk run."""
    out = subprocess.run(["wrk", "-t", str(min(2, conns)), "-c", str(conns), "-d",
                          f"{SECONDS}s", "--latency", f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([0-9.]+)(us|ms|s)", out).groups()
    return rps, float(value) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]


def main():
    binary = os.path.join(BUILD, "bench", "mhd_static")
    if not os.path.exists(binary):
        sys.exit("bench/http_models.py: no %s (libmicrohttpd-dev: scripts/install-deps)" % binary)
    got = {(m, c): [] for m in MODELS for c in CONNECTIONS}
    for _ in range(3):
        for conns in CONNECTIONS:
            for model in MODELS:
                port = free_port()
                server = subprocess.Popen([binary, str(port), model], stdout=subprocess.PIPE)
                try:
                    server.stdout.readline()                  # "ready"
                    got[(model, conns)].append(wrk(port, conns))
                finally:
                    server.terminate()
                    server.wait()
    print("libmicrohttpd static 200 on loopback (median of 3 rounds of %d s; wrk)" % SECONDS)
    print("  %-10s %12s %12s %12s" % ("model", *("%d conn" % c for c in CONNECTIONS)))
    for model in MODELS:
        cells = []
        for conns in CONNECTIONS:
            rps = statistics.median(r for r, _ in got[(model, conns)])
            p99 = statistics.median(p for _, p in got[(model, conns)])
            cells.append("%6.0f/s %4.0fus" % (rps, p99))
        print("  %-10s %s" % (model, " ".join("%12s" % c for c in cells)))


if __name__ == "__main__":
    main()
