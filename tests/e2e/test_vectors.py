"""The shared wire vectors against the pure-Python reference peer and against
the C codec (through limpet._limpet): both must reach the vector's outcome."""
import filecmp
import json
import os
import subprocess
import sys

import pytest

from limpet import _limpet, wire

from conftest import VECTOR_DIR, decode_c, decode_py, load_vectors

VECTORS = load_vectors()


def expected(v):
    return [(f["header"], bytes.fromhex(f["payload_hex"])) for f in v["frames"]]


FRAME_VECTORS = [v for v in VECTORS if v["kind"] in ("frames", "hello-frames")]
HANDSHAKE_VECTORS = [v for v in VECTORS if v["kind"] == "server-handshake"]


@pytest.mark.parametrize("v", FRAME_VECTORS, ids=[v["name"] for v in FRAME_VECTORS])
@pytest.mark.parametrize("peer", ["py", "c"])
def test_frames(v, peer):
    before = v["kind"] == "hello-frames"
    frames, end = (decode_py if peer == "py" else decode_c)(v["data"], before)
    assert frames == expected(v)
    assert end == v["end"]
    if v["canonical"]:
        if peer == "py":
            again = b"".join(wire.encode(h, p) for h, p in frames)
        else:
            again = b"".join(_limpet.encode_frame(json.dumps(h), p) for h, p in frames)
        assert again == v["data"]


def handshake_py(data):
    try:
        r = wire.read_hello(bytearray(data))
    except wire.WireError as e:
        return e.code
    return "need-more" if r is None else "ok"


@pytest.mark.parametrize("v", HANDSHAKE_VECTORS, ids=[v["name"] for v in HANDSHAKE_VECTORS])
def test_server_handshake_py(v):
    assert handshake_py(v["data"]) == v["end"]


@pytest.mark.parametrize("v", HANDSHAKE_VECTORS, ids=[v["name"] for v in HANDSHAKE_VECTORS])
def test_server_handshake_c(v):
    """The C server's verdict, and its reply as the Python client reads it."""
    reply, verdict = _limpet.server_handshake(v["data"], json.dumps({"name": "t", "pid": 1}))
    assert verdict == v["end"]
    if verdict == "need-more":
        assert reply == b""
        return
    buf = bytearray(reply)
    if verdict == "ok":
        header, used = wire.read_welcome(buf)
        assert used == len(reply)
        assert header["op"] == v["reply"]
        assert ("session" in header) == v["session"]
    else:
        with pytest.raises(wire.WireError) as e:
            wire.read_welcome(buf)
        assert e.value.code == v["end"]


def test_every_malformed_kind_has_a_vector():
    """The malformed inputs that docs/protocol.md promises an answer for."""
    names = {v["name"] for v in VECTORS}
    for name in ["truncated-payload", "header-length-over-limit", "negative-header-length",
                 "bad-magic", "bad-version", "header-not-json", "header-not-object-array",
                 "unknown-op", "missing-session", "session-mistyped", "eval-invalid-utf8",
                 "header-nul-raw", "eval-nul-in-code", "frame-before-handshake"]:
        assert name in names


def test_generator_reproduces_committed_vectors(tmp_path):
    gen = os.path.join(VECTOR_DIR, "gen.py")
    subprocess.run([sys.executable, gen, str(tmp_path)], check=True, capture_output=True)
    made = sorted(os.listdir(tmp_path))
    # gen_jupyter_vectors.py and its output are the Jupyter codec's, not this generator's
    committed = sorted(f for f in os.listdir(VECTOR_DIR)
                       if f not in ("gen.py", "gen_jupyter_vectors.py", "jupyter_sign.json"))
    assert made == committed
    match, mismatch, errors = filecmp.cmpfiles(tmp_path, VECTOR_DIR, made, shallow=False)
    assert mismatch == [] and errors == []
