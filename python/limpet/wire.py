"""The limpet wire protocol (docs/protocol.md) in pure Python.

This is the reference peer: standard library only, small enough to be
embedded in the bootstrap agent. The C codec in src/wire/ and this module
must agree on every vector in tests/vectors/.
"""
import json
import math
import struct

VERSION = 1
PREAMBLE = b"\0limpet\n"
HELLO_HEADER_MAX = 4096
HEADER_MAX = 65536
PAYLOAD_DEFAULT = 16 << 20
PAYLOAD_MIN = 64 << 10
PAYLOAD_CEILING = 1 << 30
HEADER_DEPTH_MAX = 32
TEXT_SKIP_MAX = 4096
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1


class WireError(Exception):
    """A protocol error; .code is its code on the wire ("bad-header")."""

    def __init__(self, code, message=""):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


def _int(text):
    value = int(text)
    if not _INT_MIN <= value <= _INT_MAX:
        raise ValueError("integer out of range")
    return value


def _reject(text):
    raise ValueError(f"not an integer: {text}")


def _check(value, depth):
    """Header rules json.loads does not enforce: no NUL, no lone surrogate, depth."""
    if depth > HEADER_DEPTH_MAX:
        raise ValueError("nested too deep")
    if isinstance(value, str):
        value.encode("utf-8")  # a lone surrogate cannot be encoded
        if "\0" in value:
            raise ValueError("NUL in string")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check(k, depth)
            _check(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check(v, depth + 1)


def parse_header(data):
    """Decodes header bytes into a dict, or raises WireError("bad-header")."""
    try:
        header = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates,
                            parse_int=_int, parse_float=_reject, parse_constant=_reject)
        if not isinstance(header, dict):
            raise ValueError("not an object")
        _check(header, 0)
    except (ValueError, RecursionError) as e:
        raise WireError("bad-header", str(e)) from None
    return header


def encode(header, payload=b""):
    """One frame: compact JSON header (UTF-8, unescaped), then the payload."""
    if any(isinstance(v, float) for v in header.values()):
        raise WireError("bad-header", "floats are not allowed")
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return struct.pack(">II", len(h), len(payload)) + h + bytes(payload)


class Decoder:
    """Incremental frame decoder: feed() bytes, then next() frames until None."""

    def __init__(self, header_max=HEADER_MAX, payload_max=PAYLOAD_DEFAULT):
        self.buf = bytearray()
        self.pos = 0          # where the next frame starts: the consumed front is
                              # dropped in one go, not moved after every frame
        self.header_max, self.payload_max = header_max, payload_max

    def feed(self, data):
        if self.pos and self.pos >= len(self.buf) // 2:
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += data

    def next(self):
        """The next (header, payload), None if incomplete; raises WireError."""
        p, buf = self.pos, self.buf
        if len(buf) - p < 8:
            return None
        hlen, plen = struct.unpack_from(">II", buf, p)
        if hlen > self.header_max or plen > self.payload_max:
            raise WireError("frame-too-large", f"header {hlen}, payload {plen}")
        if hlen < 2:
            raise WireError("bad-header", "header shorter than 2 bytes")
        if len(buf) - p < 8 + hlen + plen:
            return None
        with memoryview(buf) as view:
            header = parse_header(bytes(view[p + 8:p + 8 + hlen]))
            payload = bytes(view[p + 8 + hlen:p + 8 + hlen + plen])
        self.pos = p + 8 + hlen + plen
        return header, payload

    @property
    def pending(self):
        """The bytes fed and not yet decoded."""
        return bytes(self.buf[self.pos:])


def hello(client="limpet.wire", token=None, session=False, max_payload=PAYLOAD_DEFAULT, caps=()):
    """What a client sends first: the preamble and its hello frame. caps:
    the capabilities the client uses, such as "page"."""
    h = {"op": "hello", "id": 0, "protocol": [VERSION], "client": client,
         "max_payload": max_payload}
    if token is not None:
        h["token"] = token
    if session:
        h["session"] = True
    if caps:
        h["caps"] = list(caps)
    return PREAMBLE + encode(h)


def read_welcome(buf):
    """Parses the server's answer to hello at the front of bytearray buf.

    Returns None if incomplete, else (welcome header, bytes consumed); raises
    WireError with the server's own code when it refused us.
    """
    skip = buf.find(b"\0")
    if skip < 0 or skip > TEXT_SKIP_MAX:  # text from a server that took us for a person
        if skip > TEXT_SKIP_MAX or len(buf) > TEXT_SKIP_MAX:
            raise WireError("bad-preamble", "no preamble from the server")
        return None
    if len(buf) - skip < len(PREAMBLE):
        if PREAMBLE.startswith(buf[skip:]):
            return None
        raise WireError("bad-preamble", "not a limpet server")
    if buf[skip:skip + len(PREAMBLE)] != PREAMBLE:
        raise WireError("bad-preamble", "not a limpet server")
    dec = Decoder(HEADER_MAX, 0)
    dec.feed(buf[skip + len(PREAMBLE):])
    frame = dec.next()
    if frame is None:
        return None
    header, _ = frame
    if header.get("op") == "error":
        raise WireError(header.get("code", "internal"), header.get("message", ""))
    if header.get("op") != "done" or header.get("re") != 0 or header.get("protocol") != VERSION:
        raise WireError("bad-field", "not an answer to hello")
    return header, len(buf) - len(dec.pending)


def _bad_hello(h):
    """The name of the first hello field that breaks docs/protocol.md 5, or None."""
    def is_int(v, lo, hi):
        return type(v) is int and lo <= v <= hi

    def is_str(v, lo, hi):
        return type(v) is str and lo <= len(v.encode()) <= hi

    p = h.get("protocol")
    rules = [
        ("id", is_int(h.get("id"), 0, (1 << 53) - 1)),
        ("protocol", type(p) is list and 1 <= len(p) <= 16
         and all(is_int(v, 1, 65535) for v in p)),
        ("client", is_str(h.get("client"), 1, 128)),
        ("max_payload", "max_payload" not in h
         or is_int(h["max_payload"], PAYLOAD_MIN, PAYLOAD_CEILING)),
        ("token", "token" not in h or is_str(h["token"], 1, 256)),
        ("session", "session" not in h or type(h["session"]) is bool),
    ]
    return next((name for name, ok in rules if not ok), None)


def read_hello(buf):
    """Server side: parses the preamble and hello at the front of bytearray buf.

    Returns None if incomplete, else (hello header, bytes consumed); raises
    WireError with the code to refuse the client with.
    """
    n = min(len(buf), len(PREAMBLE))
    if buf[:n] != PREAMBLE[:n]:
        raise WireError("bad-preamble", "not a limpet client")
    if n < len(PREAMBLE):
        return None
    dec = Decoder(HELLO_HEADER_MAX, 0)
    dec.feed(buf[len(PREAMBLE):])
    frame = dec.next()
    if frame is None:
        return None
    header, _ = frame
    if header.get("op") != "hello":
        raise WireError("handshake-required", "the first frame must be hello")
    bad = _bad_hello(header)
    if bad is not None:
        raise WireError("bad-field", f"hello field '{bad}' is missing or invalid")
    if VERSION not in header["protocol"]:
        raise WireError("bad-version", f"this peer speaks version {VERSION}")
    return header, len(buf) - len(dec.pending)
