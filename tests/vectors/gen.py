#!/usr/bin/python3
"""Writes the shared test vectors of the wire protocol into this folder.

Every byte sequence is composed here by hand with struct, not with either
codec, and each comes with the outcome docs/protocol.md prescribes. The C
unit tests (tests/unit/test_vectors.c), the Python reference peer and the C
codec through limpet._limpet (tests/e2e/test_vectors.py) all read
vectors.json and must reach the same outcome; the fuzzers use the .bin
files as their seed corpus. tests/e2e/test_vectors.py checks that running
this script again reproduces the committed files.

Kinds:
  frames            bytes after the preamble, decoded with the post-handshake
                    limits; "frames" lists what comes out, "end" how it stops
                    ("clean", "need-more" or an error code); "checks" (C only)
                    what a server's op check says of each frame
  hello-frames      the same with the limits in force before the handshake
  server-handshake  what a client sends from connect; "end" is the server's
                    verdict ("ok", "need-more" or the code it refuses with),
                    "reply" the op it answers with
"""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PRE = b"\0limpet\n"


def hdr(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def frame(header_bytes, payload=b"", hlen=None, plen=None):
    """A frame from raw header bytes; hlen/plen override the true lengths."""
    h = len(header_bytes) if hlen is None else hlen
    p = len(payload) if plen is None else plen
    return struct.pack(">II", h, p) + header_bytes + payload


def fr(obj, payload=b""):
    return frame(hdr(obj), payload)


def out(obj, payload=b""):
    return {"header": obj, "payload_hex": payload.hex()}


HELLO = {"op": "hello", "id": 0, "protocol": [1], "client": "vectors/1",
         "max_payload": 16777216}
PING = {"op": "ping", "id": 1}
EVAL = {"op": "eval", "id": 2, "session": "1", "interactive": True}

V = []


def vec(name, kind, data, end, frames=(), checks=None, canonical=False, peers=("c", "py"),
        **extra):
    v = {"name": name, "file": name + ".bin", "kind": kind, "end": end,
         "frames": list(frames), "canonical": canonical, "peers": list(peers)}
    if checks is not None:
        v["checks"] = checks
    v.update(extra)
    V.append((v, data))


# --- well-formed ---------------------------------------------------------
vec("ping-no-payload", "frames", fr(PING), "clean", [out(PING)], ["ok"], canonical=True)
vec("ping-with-payload", "frames", fr(PING, b"\x00\xff\x01binary"), "clean",
    [out(PING, b"\x00\xff\x01binary")], ["ok"], canonical=True)
vec("eval-utf8-code", "frames", fr(EVAL, "print('h\u00e9llo \u2603 \U0001f600')".encode()),
    "clean", [out(EVAL, "print('h\u00e9llo \u2603 \U0001f600')".encode())], ["ok"],
    canonical=True)
two = [out(PING), out(EVAL, b"1+1")]
vec("two-frames", "frames", fr(PING) + fr(EVAL, b"1+1"), "clean", two, ["ok", "ok"],
    canonical=True)
vec("unicode-in-header", "frames", fr({"op": "clone", "id": 3, "env": "a"} | {"x-note": "caf\u00e9 \u2603"}),
    "clean", [out({"op": "clone", "id": 3, "env": "a", "x-note": "caf\u00e9 \u2603"})], ["ok"],
    canonical=True)
vec("whitespace-around-header", "frames", frame(b' \t\n{"op":"ping","id":4}\r\n '), "clean",
    [out({"op": "ping", "id": 4})], ["ok"])
vec("escaped-strings", "frames", frame(b'{"op":"ping","id":5,"x":"\\u00e9\\n\\"\\\\\\/"}'),
    "clean", [out({"op": "ping", "id": 5, "x": "\u00e9\n\"\\/"})], ["ok"])
vec("surrogate-pair-escape", "frames", frame(b'{"op":"ping","id":6,"x":"\\ud83d\\ude00"}'),
    "clean", [out({"op": "ping", "id": 6, "x": "\U0001f600"})], ["ok"])
vec("int64-extremes", "frames",
    frame(b'{"op":"ping","id":7,"a":-9223372036854775808,"b":9223372036854775807}'), "clean",
    [out({"op": "ping", "id": 7, "a": -9223372036854775808, "b": 9223372036854775807})], ["ok"])
vec("unknown-fields-ignored", "frames", fr({"op": "ping", "id": 8, "later": [1, {"a": None}]}),
    "clean", [out({"op": "ping", "id": 8, "later": [1, {"a": None}]})], ["ok"], canonical=True)
vec("depth-32-ok", "frames",
    frame(b'{"op":"ping","id":9,"d":' + b"[" * 32 + b"]" * 32 + b"}"), "clean",
    [out({"op": "ping", "id": 9, "d": json.loads("[" * 32 + "]" * 32)})], ["ok"])
vec("empty-object-header", "frames", frame(b"{}"), "clean", [out({})], ["unknown-op"])

# --- incomplete ----------------------------------------------------------
vec("truncated-prefix", "frames", fr(PING)[:5], "need-more")
vec("truncated-header", "frames", fr(PING)[:15], "need-more")
vec("truncated-payload", "frames", fr(PING, b"abcdef")[:-1], "need-more")
vec("frame-then-truncated", "frames", fr(PING) + fr(EVAL, b"1+1")[:-2], "need-more",
    [out(PING)], ["ok"])

# --- framing errors ------------------------------------------------------
vec("header-length-over-limit", "frames", frame(b"{}", hlen=65537), "frame-too-large")
vec("payload-length-over-limit", "frames", frame(hdr(PING), plen=(16 << 20) + 1),
    "frame-too-large")
vec("negative-header-length", "frames", frame(b"{}", hlen=0xFFFFFFFF), "frame-too-large")
vec("negative-payload-length", "frames", frame(hdr(PING), plen=0x80000000), "frame-too-large")
vec("over-limit-decided-from-prefix", "frames", struct.pack(">II", 0x7FFFFFFF, 0),
    "frame-too-large")
vec("header-length-zero", "frames", frame(b"", hlen=0), "bad-header")
vec("header-length-one", "frames", frame(b"{"), "bad-header")
vec("error-after-good-frame", "frames", fr(PING) + frame(b"{}", hlen=0xFFFFFFF0),
    "frame-too-large", [out(PING)], ["ok"])

# --- header errors -------------------------------------------------------
vec("header-not-json", "frames", frame(b"op=ping id=1"), "bad-header")
vec("header-not-object-array", "frames", frame(b'["op","ping"]'), "bad-header")
vec("header-not-object-string", "frames", frame(b'"ping"'), "bad-header")
vec("header-not-object-number", "frames", frame(b"42"), "bad-header")
vec("header-trailing-garbage", "frames", frame(b'{"op":"ping","id":1}x'), "bad-header")
vec("header-two-objects", "frames", frame(b'{"op":"ping"}{"id":1}'), "bad-header")
vec("header-invalid-utf8", "frames", frame(b'{"op":"ping","id":1,"x":"\xff"}'), "bad-header")
vec("header-overlong-utf8", "frames", frame(b'{"op":"ping","id":1,"x":"\xc0\xaf"}'),
    "bad-header")
vec("header-surrogate-utf8", "frames", frame(b'{"op":"ping","id":1,"x":"\xed\xa0\x80"}'),
    "bad-header")
vec("header-lone-surrogate-escape", "frames", frame(b'{"op":"ping","id":1,"x":"\\ud800"}'),
    "bad-header")
vec("header-nul-raw", "frames", frame(b'{"op":"ping","id":1,"x":"a\x00b"}'), "bad-header")
vec("header-nul-escaped", "frames", frame(b'{"op":"ping","id":1,"x":"a\\u0000b"}'),
    "bad-header")
vec("header-nul-in-key", "frames", frame(b'{"op":"ping","id":1,"\\u0000":1}'), "bad-header")
vec("header-nul-inside-object", "frames", frame(b'{"op":"ping","id":1\x00}'), "bad-header")
vec("header-nul-after-keyword", "frames", frame(b'{"op":"ping","id":1,"x":true\x00}'),
    "bad-header")
vec("header-nul-after-object", "frames", frame(b'{"op":"ping","id":1}\x00'), "bad-header")
vec("header-bom", "frames", frame(b'\xef\xbb\xbf{"op":"ping","id":1}'), "bad-header")
vec("header-duplicate-key", "frames", frame(b'{"op":"ping","id":1,"id":2}'), "bad-header")
vec("header-float", "frames", frame(b'{"op":"ping","id":1.0}'), "bad-header")
vec("header-exponent", "frames", frame(b'{"op":"ping","id":1e3}'), "bad-header")
vec("header-nan", "frames", frame(b'{"op":"ping","id":NaN}'), "bad-header")
vec("header-infinity", "frames", frame(b'{"op":"ping","id":-Infinity}'), "bad-header")
vec("header-int-too-big", "frames", frame(b'{"op":"ping","id":9223372036854775808}'),
    "bad-header")
vec("header-depth-33", "frames",
    frame(b'{"op":"ping","id":9,"d":' + b"[" * 33 + b"]" * 33 + b"}"), "bad-header")
vec("header-deep-nesting", "frames",
    frame(b'{"d":' + b"[" * 3000 + b"]" * 3000 + b"}"), "bad-header")
vec("header-raw-control-char", "frames", frame(b'{"op":"ping","id":1,"x":"a\tb"}'),
    "bad-header")

# --- op checks (frame fine, request refused; the connection stays) -------
vec("unknown-op", "frames", fr({"op": "frobnicate", "id": 1}), "clean",
    [out({"op": "frobnicate", "id": 1})], ["unknown-op"])
vec("op-not-string", "frames", fr({"op": 7, "id": 1}), "clean", [out({"op": 7, "id": 1})],
    ["unknown-op"])
vec("op-missing", "frames", fr({"id": 1}), "clean", [out({"id": 1})], ["unknown-op"])
vec("op-wrong-direction", "frames", fr({"op": "out", "session": "1", "stream": "stdout"}),
    "clean", [out({"op": "out", "session": "1", "stream": "stdout"})], ["unknown-op"])
vec("reserved-op", "frames", fr({"op": "env-create", "id": 1, "env": "x"}), "clean",
    [out({"op": "env-create", "id": 1, "env": "x"})], ["not-supported"])
vec("check-not-offered", "frames", fr({"op": "check", "id": 1, "session": "1"}, b"if x:"),
    "clean", [out({"op": "check", "id": 1, "session": "1"}, b"if x:")], ["not-supported"])
vec("inspect-not-offered", "frames",
    fr({"op": "inspect", "id": 1, "session": "1", "text": "len"}), "clean",
    [out({"op": "inspect", "id": 1, "session": "1", "text": "len"})], ["not-supported"])
vec("missing-id", "frames", fr({"op": "ping"}), "clean", [out({"op": "ping"})], ["bad-field"])
vec("negative-id", "frames", fr({"op": "ping", "id": -1}), "clean",
    [out({"op": "ping", "id": -1})], ["bad-field"])
vec("id-over-2-53", "frames", fr({"op": "ping", "id": 1 << 53}), "clean",
    [out({"op": "ping", "id": 1 << 53})], ["bad-field"])
vec("id-mistyped", "frames", fr({"op": "ping", "id": "1"}), "clean",
    [out({"op": "ping", "id": "1"})], ["bad-field"])
vec("missing-session", "frames", fr({"op": "eval", "id": 1}, b"1"), "clean",
    [out({"op": "eval", "id": 1}, b"1")], ["bad-field"])
vec("session-mistyped", "frames", fr({"op": "eval", "id": 1, "session": 1}, b"1"), "clean",
    [out({"op": "eval", "id": 1, "session": 1}, b"1")], ["bad-field"])
vec("session-too-long", "frames", fr({"op": "close", "id": 1, "session": "s" * 65}), "clean",
    [out({"op": "close", "id": 1, "session": "s" * 65})], ["bad-field"])
vec("session-with-space", "frames", fr({"op": "close", "id": 1, "session": "a b"}), "clean",
    [out({"op": "close", "id": 1, "session": "a b"})], ["bad-field"])
vec("bool-mistyped", "frames",
    fr({"op": "eval", "id": 1, "session": "1", "interactive": 1}, b"1"), "clean",
    [out({"op": "eval", "id": 1, "session": "1", "interactive": 1}, b"1")], ["bad-field"])
vec("payload-where-none", "frames", fr({"op": "close", "id": 1, "session": "1"}, b"x"),
    "clean", [out({"op": "close", "id": 1, "session": "1"}, b"x")], ["bad-field"])
vec("eval-invalid-utf8", "frames", fr(EVAL, b"print('\xff')"), "clean",
    [out(EVAL, b"print('\xff')")], ["bad-text"])
vec("eval-truncated-utf8", "frames", fr(EVAL, b"'\xe2\x98"), "clean",
    [out(EVAL, b"'\xe2\x98")], ["bad-text"])
vec("eval-nul-in-code", "frames", fr(EVAL, b"1\x00+1"), "clean", [out(EVAL, b"1\x00+1")],
    ["bad-text"])
vec("eval-empty-code", "frames", fr(EVAL), "clean", [out(EVAL)], ["ok"])

# --- before the handshake --------------------------------------------------
vec("hello-limits-ok", "hello-frames", fr(HELLO), "clean", [out(HELLO)], canonical=True)
vec("hello-limits-header-too-large", "hello-frames", frame(b"{}", hlen=4097),
    "frame-too-large")
vec("hello-limits-payload", "hello-frames", fr(HELLO, b"x"), "frame-too-large")

vec("handshake-ok", "server-handshake", PRE + fr(HELLO), "ok", reply="done", session=False)
vec("handshake-ok-with-session", "server-handshake", PRE + fr(HELLO | {"session": True}), "ok",
    reply="done", session=True)
vec("handshake-versions-list", "server-handshake", PRE + fr(HELLO | {"protocol": [7, 1, 3]}),
    "ok", reply="done", session=False)
vec("handshake-only-preamble", "server-handshake", PRE, "need-more")
vec("handshake-partial-preamble", "server-handshake", PRE[:3], "need-more")
vec("handshake-truncated-hello", "server-handshake", PRE + fr(HELLO)[:-3], "need-more")
vec("bad-magic", "server-handshake", b"\0LIMPET\n" + fr(HELLO), "bad-preamble", reply="error")
vec("bad-magic-early", "server-handshake", b"\0x", "bad-preamble", reply="error")
vec("bad-version", "server-handshake", PRE + fr(HELLO | {"protocol": [2, 3]}), "bad-version",
    reply="error")
vec("version-mistyped", "server-handshake", PRE + fr(HELLO | {"protocol": 1}), "bad-field",
    reply="error")
vec("version-empty-list", "server-handshake", PRE + fr(HELLO | {"protocol": []}), "bad-field",
    reply="error")
vec("hello-missing-client", "server-handshake",
    PRE + fr({k: v for k, v in HELLO.items() if k != "client"}), "bad-field", reply="error")
vec("hello-max-payload-too-small", "server-handshake", PRE + fr(HELLO | {"max_payload": 1}),
    "bad-field", reply="error")
vec("hello-id-missing", "server-handshake",
    PRE + fr({k: v for k, v in HELLO.items() if k != "id"}), "bad-field", reply="error")
vec("hello-session-mistyped", "server-handshake", PRE + fr(HELLO | {"session": "yes"}),
    "bad-field", reply="error")
vec("hello-token-empty", "server-handshake", PRE + fr(HELLO | {"token": ""}), "bad-field",
    reply="error")
vec("hello-with-token", "server-handshake", PRE + fr(HELLO | {"token": "t" * 64}), "ok",
    reply="done", session=False)
vec("frame-before-handshake", "server-handshake", PRE + fr(PING), "handshake-required",
    reply="error")
vec("unknown-op-before-handshake", "server-handshake", PRE + fr({"op": "zap", "id": 0}),
    "handshake-required", reply="error")
vec("garbage-before-handshake", "server-handshake", PRE + frame(b"not json"), "bad-header",
    reply="error")
vec("oversized-before-handshake", "server-handshake", PRE + frame(b"{}", hlen=1 << 20),
    "frame-too-large", reply="error")


def main():
    """gen.py [DIR]: writes into DIR, this script's folder by default."""
    where = sys.argv[1] if len(sys.argv) > 1 else HERE
    manifest = {"version": 1, "vectors": []}
    for v, data in V:
        with open(os.path.join(where, v["file"]), "wb") as f:
            f.write(data)
        manifest["vectors"].append(v)
    with open(os.path.join(where, "vectors.json"), "w") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=True)
        f.write("\n")
    print(f"{len(V)} vectors written to {where}", file=sys.stderr)


if __name__ == "__main__":
    main()
