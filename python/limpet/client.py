"""A small blocking client of the limpet protocol, on the reference peer.

For scripts and tests; the terminal client is the `limpet` command.

    with Client(path) as c:
        s = c.clone()
        r = c.eval(s, "print(1 + 1)")
        r.out  # b"2\\n"
"""
import socket

from . import wire


class ProtocolError(Exception):
    """The server answered a request with an error frame; .code, .header."""

    def __init__(self, header):
        super().__init__(f"{header.get('code')}: {header.get('message')}")
        self.code = header.get("code")
        self.header = header


class Result:
    """What one request brought back: the frames, and views of them."""

    def __init__(self, frames):
        self.frames = frames                       # [(header, payload)], final one last
        self.final = frames[-1][0]

    def _joined(self, op, stream=None):
        return b"".join(p for h, p in self.frames
                        if h["op"] == op and (stream is None or h.get("stream") == stream))

    @property
    def out(self):
        return self._joined("out", "stdout")

    @property
    def err(self):
        return self._joined("out", "stderr")

    @property
    def value(self):
        v = [p.decode() for h, p in self.frames if h["op"] == "value"]
        return v[-1] if v else None

    @property
    def exception(self):
        e = [p.decode() for h, p in self.frames if h["op"] == "exception"]
        return e[-1] if e else None

    @property
    def status(self):
        return self.final.get("status")


def _connect(address, timeout):
    """A socket to a Unix path, "HOST:PORT" or "[V6]:PORT"."""
    if address.startswith("["):
        host, port = address[1:].rsplit("]:", 1)
    elif ":" in address and not address.startswith(("/", ".")):
        host, port = address.rsplit(":", 1)
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(address)
        return sock
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    # output, then done: without this each reply written in two parts waits
    # ~40 ms for the server's delayed ACK (Nagle's algorithm)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class Client:
    def __init__(self, address, timeout=10.0, client="limpet.client", token=None, session=False,
                 caps=()):
        """session=True opens a first session with the handshake (its id is
        welcome["session"]); caps: capabilities this client uses ("page")."""
        self.sock = _connect(address, timeout)
        self.sock.settimeout(timeout)
        self.sock.sendall(wire.hello(client=client, token=token, session=session, caps=caps))
        buf = bytearray()
        while (w := wire.read_welcome(buf)) is None:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("limpet: the server closed the connection during the handshake")
            buf += chunk
        self.welcome, used = w
        self.dec = wire.Decoder()
        self.dec.feed(bytes(buf[used:]))
        self._rbuf = bytearray(1 << 20)
        self._rview = memoryview(self._rbuf)
        self.next_id = 1
        self.notices = []                          # frames that answer no request

    def send(self, header, payload=b""):
        self.sock.sendall(wire.encode(header, payload))

    def read_frame(self):
        while (f := self.dec.next()) is None:
            # into one buffer: recv(1 MB) would map and unmap a fresh megabyte
            # every call, which cost more than the whole round trip
            n = self.sock.recv_into(self._rbuf)
            if not n:
                raise ConnectionError("limpet: the server closed the connection")
            self.dec.feed(self._rview[:n])
        return f

    def request(self, op, payload=b"", **fields):
        """Sends a request and returns its Result; raises ProtocolError on an error reply."""
        rid = self.next_id
        self.next_id += 1
        self.send({"op": op, "id": rid, **fields}, payload)
        frames = []
        while True:
            h, p = self.read_frame()
            if h.get("re") != rid:
                self.notices.append((h, p))
                continue
            frames.append((h, p))
            if h["op"] == "error":
                raise ProtocolError(h)
            if h["op"] == "done":
                return Result(frames)

    def clone(self):
        return self.request("clone").final["session"]

    def eval(self, session, code, interactive=False):
        if isinstance(code, str):
            code = code.encode()
        return self.request("eval", code, session=session, interactive=interactive)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
