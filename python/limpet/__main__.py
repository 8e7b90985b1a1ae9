"""python3 -m limpet: the demo host.

Until the embedded server lands, this shows the part that exists: a client
(the pure-Python reference peer) and the C server-side handshake talking
over a real socket pair, and says plainly what is not there yet.
"""
import json
import os
import socket
import sys
import threading

from . import _limpet, wire, __version__


def _serve_handshake(sock):
    """Reads a hello from sock and answers with the C handshake."""
    server = {"name": "demo", "pid": os.getpid(), "python": sys.version.split()[0],
              "limpet": __version__, "argv": sys.argv[:32], "started": 0}
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return
        data += chunk
        reply, verdict = _limpet.server_handshake(data, json.dumps(server))
        if verdict != "need-more":
            sock.sendall(reply)
            return


def main():
    print(f"limpet {__version__}, protocol version {_limpet.PROTOCOL_VERSION}")
    client, server = socket.socketpair()
    t = threading.Thread(target=_serve_handshake, args=(server,))
    t.start()
    client.sendall(wire.hello(client="limpet-demo", session=True))
    buf = bytearray()
    welcome = None
    while welcome is None:
        chunk = client.recv(65536)
        if not chunk:
            break
        buf += chunk
        welcome = wire.read_welcome(buf)
    t.join()
    client.close()
    server.close()
    if welcome is None:
        print("limpet: handshake failed: the server closed the connection", file=sys.stderr)
        return 1
    header, _ = welcome
    print("handshake over a socket pair: Python reference client -> C server codec")
    print("  server answered:", json.dumps(header))
    print()
    print("not there yet: the embedded server (limpet.start) and the terminal")
    print("client (limpet connect); they are the next issues. See README.md.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
