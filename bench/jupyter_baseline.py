#!/usr/bin/python3
"""Baseline for issue 13: ipykernel's execute round trip of `1+1`.

A measurement, never a test. Starts one ipykernel (python3 -m ipykernel_launcher,
Debian's) through jupyter_client's KernelManager and times N executes of `1+1`:

  raw   a minimal ZeroMQ client (pyzmq): DEALER on shell, SUB on iopub, messages
        signed here with hmac-sha256; one round = send execute_request, receive
        execute_reply on shell ("reply"), then read iopub until status idle for
        that request ("idle").
  jc    jupyter_client's BlockingKernelClient: kc.execute('1+1') then
        kc.get_shell_msg() ("reply"), then kc.get_iopub_msg() until idle ("idle").

  zmq   the floor of one ZeroMQ hop as pyzmq sees it: a DEALER sends 1+1's execute_request
        bytes to a ROUTER in a child process, which sends them straight back (no
        JSON, no hmac): what any kernel, ipykernel or limpet's, pays before its own work.

Prints medians and p90 in microseconds. Usage: bench/jupyter_baseline.py [N]
"""
import hashlib
import os
import hmac
import json
import statistics
import sys
import time
import uuid

import zmq
from jupyter_client import KernelManager

DELIM = b"<IDS|MSG>"
# ipykernel 6.17 warns about frozen modules on start; the warning is noise here
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


def stats(xs):
    xs = sorted(xs)
    return statistics.median(xs) * 1e6, xs[int(len(xs) * 0.9)] * 1e6


class Raw:
    def __init__(self, info):
        self.key = info["key"].encode()
        self.session = uuid.uuid4().hex
        ip = info["ip"]
        tr = info["transport"]
        self.ctx = zmq.Context()
        self.shell = self.ctx.socket(zmq.DEALER)
        self.shell.connect(f"{tr}://{ip}:{info['shell_port']}")
        self.iopub = self.ctx.socket(zmq.SUB)
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self.iopub.connect(f"{tr}://{ip}:{info['iopub_port']}")
        time.sleep(0.5)  # the subscription must reach the kernel before we time anything

    def sign(self, parts):
        h = hmac.new(self.key, digestmod=hashlib.sha256)
        for p in parts:
            h.update(p)
        return h.hexdigest().encode()

    def send_execute(self, code):
        msg_id = uuid.uuid4().hex
        header = json.dumps({"msg_id": msg_id, "session": self.session, "username": "bench",
                             "date": "2026-01-01T00:00:00.000000Z", "msg_type": "execute_request",
                             "version": "5.3"}).encode()
        content = json.dumps({"code": code, "silent": False, "store_history": True,
                              "user_expressions": {}, "allow_stdin": False,
                              "stop_on_error": True}).encode()
        parts = [header, b"{}", b"{}", content]
        self.shell.send_multipart([DELIM, self.sign(parts)] + parts)
        return msg_id

    @staticmethod
    def parse(frames):
        i = frames.index(DELIM)
        return json.loads(frames[i + 2]), json.loads(frames[i + 3]), json.loads(frames[i + 5])

    def round(self, code):
        t0 = time.perf_counter()
        msg_id = self.send_execute(code)
        while True:
            header, parent, content = self.parse(self.shell.recv_multipart())
            if parent.get("msg_id") == msg_id and header["msg_type"] == "execute_reply":
                break
        t1 = time.perf_counter()
        while True:
            header, parent, content = self.parse(self.iopub.recv_multipart())
            if (parent.get("msg_id") == msg_id and header["msg_type"] == "status"
                    and content["execution_state"] == "idle"):
                break
        t2 = time.perf_counter()
        assert content is not None
        return t1 - t0, t2 - t0

    def close(self):
        self.ctx.destroy(linger=0)


ECHO = """
import sys, zmq
s = zmq.Context().socket(zmq.ROUTER)
port = s.bind_to_random_port("tcp://127.0.0.1")
print(port, flush=True)
while True:
    s.send_multipart(s.recv_multipart())
"""


def zmq_floor(n):
    import subprocess
    child = subprocess.Popen([sys.executable, "-c", ECHO], stdout=subprocess.PIPE)
    try:
        port = int(child.stdout.readline())
        ctx = zmq.Context()
        d = ctx.socket(zmq.DEALER)
        d.connect(f"tcp://127.0.0.1:{port}")
        parts = [DELIM, b"0" * 64, b"{" + b"h" * 200 + b"}", b"{}", b"{}", b"{" + b"c" * 120 + b"}"]
        xs = []
        for i in range(n + 100):
            t0 = time.perf_counter()
            d.send_multipart(parts)
            d.recv_multipart()
            if i >= 100:
                xs.append(time.perf_counter() - t0)
        ctx.destroy(linger=0)
        return xs
    finally:
        child.kill()
        child.wait()


def jc_round(kc, code):
    t0 = time.perf_counter()
    msg_id = kc.execute(code)
    while kc.get_shell_msg(timeout=10)["parent_header"].get("msg_id") != msg_id:
        pass
    t1 = time.perf_counter()
    while True:
        m = kc.get_iopub_msg(timeout=10)
        if (m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "status"
                and m["content"]["execution_state"] == "idle"):
            break
    t2 = time.perf_counter()
    return t1 - t0, t2 - t0


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    # Debian's python3 kernelspec is ipykernel (jupyter_client 7 ignores kernel_cmd)
    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    try:
        kc = km.blocking_client()
        kc.start_channels()
        kc.wait_for_ready(timeout=30)
        for _ in range(20):
            jc_round(kc, "1+1")
        jc = [jc_round(kc, "1+1") for _ in range(n)]
        kc.stop_channels()

        raw = Raw(km.get_connection_info(session=False) | {"key": km.session.key.decode()})
        for _ in range(20):
            raw.round("1+1")
        rw = [raw.round("1+1") for _ in range(n)]
        raw.close()
    finally:
        km.shutdown_kernel(now=True)

    fl = stats(zmq_floor(n))
    print(f"pyzmq DEALER->ROUTER echo (one hop, no kernel) n={n}  median {fl[0]:7.0f} us (p90 {fl[1]:7.0f})")
    for name, xs in (("raw ZeroMQ", rw), ("jupyter_client", jc)):
        r = stats([x[0] for x in xs])
        i = stats([x[1] for x in xs])
        print(f"ipykernel {name:15s} n={n}  execute_reply median {r[0]:7.0f} us (p90 {r[1]:7.0f})"
              f"  idle median {i[0]:7.0f} us (p90 {i[1]:7.0f})")


if __name__ == "__main__":
    main()
