#!/usr/bin/python3
"""bench/agent.py [BUILD]: execution contexts as a user starts them, limpet.connect("local"):
from nothing to the first result (stage 1 + stage 2 + handshake + one call) against
`python3 -c pass` (and -S) and pypy3's, interleaved in one run, and the call round trip on
a connected context. Medians of 31 starts and 300 calls; a measurement, never a test.
BUILD defaults to build/."""
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
sys.path[:0] = [os.path.join(BUILD, "python")]

import limpet  # noqa: E402 - the build's

ROUNDS = 31


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def start_and_call(python):
    """Seconds from nothing to the first result; the shutdown after it is not counted."""
    t = time.perf_counter()
    ctx = limpet.connect("local", python=python)
    ctx.call(os.getpid)
    t = time.perf_counter() - t
    ctx.shutdown()
    return t


def main():
    rows = {"python3 -c pass": lambda: subprocess.run([sys.executable, "-c", "pass"]),
            "python3 -S -c pass": lambda: subprocess.run([sys.executable, "-S", "-c", "pass"]),
            "agent on python3: start to first result": lambda: start_and_call(sys.executable)}
    starts = {k for k in rows if k.startswith("agent")}
    pypy = shutil.which("pypy3")
    if pypy:
        rows["pypy3 -c pass"] = lambda: subprocess.run([pypy, "-c", "pass"])
        rows["agent on pypy3: start to first result"] = lambda: start_and_call(pypy)
        starts.add("agent on pypy3: start to first result")
    times = {k: [] for k in rows}
    for _ in range(ROUNDS):              # interleaved: drift hits every row alike
        for k, fn in rows.items():
            times[k].append(fn() if k in starts else timed(fn))
    base = statistics.median(times["python3 -c pass"])
    for k, v in times.items():
        m = statistics.median(v)
        print(f"  {k:45s} {m * 1000:8.1f} ms  {m / base:5.2f}x python3 -c pass")
    with limpet.connect("local") as ctx:
        calls = [timed(lambda: ctx.call(abs, -1)) for _ in range(300)]
    label = 'call round trip, limpet.connect("local")'
    print(f"  {label:45s} "
          f"{statistics.median(calls) * 1e6:8.0f} us")


if __name__ == "__main__":
    main()
