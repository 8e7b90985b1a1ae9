"""python3 -m limpet: the demo host.

    python3 -m limpet            a demo host with the server embedded, and a
                                 client session in it that shows what it can do
    python3 -m limpet --serve [ADDRESS]
                                 the demo host alone, running until Ctrl+C
                                 (ADDRESS: a loopback HOST:PORT instead of the
                                 Unix socket)
    python3 -m limpet --tour ADDRESS
                                 the same session, in the demo host at ADDRESS
                                 (what ./scripts/demo shows before `limpet connect`)

The host has a little live state: `data`, updated by `step()` ten times a
second from its main loop; a session can read it and hot-patch `step`.
"""
import sys
import threading
import time

import limpet
from limpet.client import Client

data = {"n": 0}


def step():
    data["n"] += 1


DEMO = [
    ("look at the host's live state", ["data"]),
    ("set a global in the host", ["x = 42", "x * 2"]),
    ("hot-patch the function the host's loop is calling", [
        "def step():", "    data['n'] += 100", ""]),
    ("...and watch it take effect", ["import time; time.sleep(0.3)", "data"]),
    ("output streams back; exceptions come with their traceback", [
        "print('hello from pid', __import__('os').getpid())", "1 / 0"]),
]


def show(r):
    """Prints a Result the way a REPL would."""
    for h, p in r.frames:
        if h["op"] == "out":
            (sys.stdout if h["stream"] == "stdout" else sys.stderr).write(p.decode(errors="replace"))
        elif h["op"] in ("value", "exception"):
            print(p.decode(errors="replace").rstrip("\n"))


def tour(address):
    """The scripted session, in the demo host at address."""
    with Client(address, client="limpet-demo") as c:
        s = c.clone()
        print(f"a client is connected, session {s}; it types:\n")
        prompt = ">>> "
        for title, lines in DEMO:
            print(f"# {title}")
            for line in lines:
                print(prompt + line)
                r = c.eval(s, line, interactive=True)
                show(r)
                prompt = "... " if r.status == "more" else ">>> "
            print()


def run_demo(server):
    print(f"limpet {limpet.__version__}: a demo host (pid {__import__('os').getpid()}) "
          f"with the server embedded at {server.address}")
    tour(server.address)
    print("In a terminal, ./scripts/demo goes on with `limpet connect`: a prompt in the host.")


def main(argv):
    if argv[:1] == ["--tour"] and len(argv) == 2:
        tour(argv[1])
        return 0
    serve_only = argv[:1] == ["--serve"]
    address = argv[1] if serve_only and len(argv) > 1 else None
    server = limpet.start(globals(), address, name="limpet-demo")
    stop = threading.Event()
    if not serve_only:
        t = threading.Thread(target=lambda: (run_demo(server), stop.set()))
        t.start()
    else:
        print(f"limpet demo host (pid {__import__('os').getpid()}) at {server.address}; "
              "Ctrl+C stops it", flush=True)
    try:
        while not stop.is_set():
            step()
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
