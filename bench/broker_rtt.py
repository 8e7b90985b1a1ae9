"""broker_rtt.py: a trivial request and its reply to a child, three ways, interleaved in one run:

  raw      bench/pipe_rtt: C to a C child over a pipe pair, 64 bytes each way (the raw limit)
  broker   Python through the context broker (_limpet.ctx_expect / ctx_send / ctx_wait) to
           bench/frame_echo (a C far side speaking frames)
  thread   Python with a reader thread of its own per link (what _context.py does before the
           broker: os.read + wire.Decoder on that thread, a Future per call), same child

Usage: PYTHONPATH=build/python /usr/bin/python3 bench/broker_rtt.py [BUILD_DIR] [N] [ROUNDS]
Prints the median (and p99) of each, per round and over all rounds, and the ratios to raw.
"""
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import threading
import time

from limpet import _limpet, wire

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
PAYLOAD = b"x" * 16


def echo_child():
    proc = subprocess.Popen([os.path.join(BUILD, "bench", "frame_echo")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    rfd, wfd = os.dup(proc.stdout.fileno()), os.dup(proc.stdin.fileno())
    proc.stdout.close()
    proc.stdin.close()
    return proc, rfd, wfd


def run_raw():
    out = subprocess.run([os.path.join(BUILD, "bench", "pipe_rtt"), str(N)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["median_us"], json.loads(out)["p99_us"]


def timed(trip):
    """Medians and p99 of N calls of trip(i), after N/10 of warm-up, in us."""
    for i in range(N // 10):
        trip(i)
    ns = []
    for i in range(N // 10, N // 10 + N):
        t0 = time.perf_counter_ns()
        trip(i)
        ns.append(time.perf_counter_ns() - t0)
    ns.sort()
    return ns[len(ns) // 2] / 1000, ns[len(ns) * 99 // 100] / 1000


def run_broker():
    proc, rfd, wfd = echo_child()
    link = _limpet.ctx_link(rfd, wfd)

    def trip(i):
        _limpet.ctx_expect(link, i + 1)
        _limpet.ctx_send(link, wire.encode({"op": "call", "id": i + 1}, PAYLOAD))
        _limpet.ctx_wait(link, i + 1, 10)
        _limpet.ctx_forget(link, i + 1)

    try:
        return timed(trip)
    finally:
        _limpet.ctx_close(link)
        proc.wait()


def run_thread():
    proc, rfd, wfd = echo_child()
    pending, lock = {}, threading.Lock()

    def reader():
        dec = wire.Decoder()
        while True:
            frame = dec.next()
            if frame is None:
                chunk = os.read(rfd, 1 << 20)
                if not chunk:
                    return
                dec.feed(chunk)
                continue
            with lock:
                future = pending.pop(frame[0]["re"], None)
            if future is not None:
                future.set_result(frame)

    threading.Thread(target=reader, daemon=True).start()

    def trip(i):
        future = concurrent.futures.Future()
        with lock:
            pending[i + 1] = future
        os.write(wfd, wire.encode({"op": "call", "id": i + 1}, PAYLOAD))
        future.result(10)

    try:
        return timed(trip)
    finally:
        os.close(wfd)
        proc.wait()
        os.close(rfd)


def main():
    ways = {"raw": run_raw, "broker": run_broker, "thread": run_thread}
    got = {k: [] for k in ways}
    for r in range(ROUNDS):
        for name, fn in ways.items():
            med, p99 = fn()
            got[name].append(med)
            print("round %d %-7s median %7.2f us  p99 %7.2f us" % (r + 1, name, med, p99))
    raw = statistics.median(got["raw"])
    print("\nmedian of rounds (N=%d each, %d rounds):" % (N, ROUNDS))
    for name in ways:
        m = statistics.median(got[name])
        print("  %-7s %7.2f us  %5.2fx raw" % (name, m, m / raw))
    print("  thread/broker: %.2fx" % (statistics.median(got["thread"]) /
                                      statistics.median(got["broker"])))


if __name__ == "__main__":
    main()
