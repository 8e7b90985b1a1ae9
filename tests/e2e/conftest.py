"""Shared fixtures: the build tree's limpet binary and the wire vectors."""
import json
import os
import shutil

import pytest

SOURCE_ROOT = os.environ.get(
    "LIMPET_SOURCE_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
VECTOR_DIR = os.path.join(SOURCE_ROOT, "tests", "vectors")


def load_vectors():
    with open(os.path.join(VECTOR_DIR, "vectors.json")) as f:
        vectors = json.load(f)["vectors"]
    for v in vectors:
        with open(os.path.join(VECTOR_DIR, v["file"]), "rb") as f:
            v["data"] = f.read()
    return vectors


def decode_py(data, before_handshake=False):
    """Decodes with the Python peer: (frames, end) like _limpet.decode_frames."""
    from limpet import wire
    if before_handshake:
        dec = wire.Decoder(wire.HELLO_HEADER_MAX, 0)
    else:
        dec = wire.Decoder()
    dec.feed(data)
    frames = []
    try:
        while (f := dec.next()) is not None:
            frames.append(f)
    except wire.WireError as e:
        return frames, e.code
    return frames, "need-more" if dec.buf else "clean"


def decode_c(data, before_handshake=False):
    """Decodes with the C codec; headers parsed back into dicts."""
    from limpet import _limpet
    frames, end = _limpet.decode_frames(data, before_handshake=before_handshake)
    return [(json.loads(h), p) for h, p in frames], end


@pytest.fixture(scope="session")
def limpet_bin():
    """Path of the limpet binary under test (LIMPET_BIN, set by meson test)."""
    path = os.environ.get("LIMPET_BIN") or shutil.which("limpet")
    if not path:
        pytest.fail("LIMPET_BIN is not set and no limpet is on PATH: run through 'meson test'")
    return path
