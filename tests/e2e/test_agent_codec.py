"""The agent's header codec (_agent.encode_header, decode_header) against json itself: the
agent parses headers with _json's C scanner to avoid json's imports, and must read every
JSON text json.loads reads, refuse every one it refuses, and write what json.dumps writes."""
import json
import math
import os
import random
import shutil
import subprocess

import pytest

from limpet import _agent

CHARS = ["a", "z", " ", '"', "\\", "/", "\n", "\t", "\x00", "\x1f", "\x7f", "é", "€", "\u2028",
         "\U0001f600", "\ud800", "\udfff"]


def value(rng, depth=0):
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 1, 2 ** 31, -2 ** 63, 10 ** 30, rng.randrange(-10 ** 6, 10 ** 6)])
    if kind == 2:
        return rng.choice([0.0, -0.0, 1.5, 1e300, -2.5e-300, rng.uniform(-1e6, 1e6)])
    if kind in (3, 4, 5):
        return "".join(rng.choice(CHARS) for _ in range(rng.randrange(12)))
    if kind in (6, 7):
        return {"".join(rng.choice(CHARS) for _ in range(rng.randrange(6))): value(rng, depth + 1)
                for _ in range(rng.randrange(5))}
    return [value(rng, depth + 1) for _ in range(rng.randrange(5))]


def texts(seed, n):
    """n JSON texts of objects, written every way json.dumps writes them."""
    rng = random.Random(seed)
    for _ in range(n):
        v = {"op": "call", "id": rng.randrange(1 << 40), "x": value(rng)}
        yield json.dumps(v, ensure_ascii=rng.random() < 0.5,
                         indent=rng.choice([None, 0, 2, "\t"]),
                         separators=rng.choice([None, (",", ":"), (" , ", " : ")]))


def same(a, b):
    """Equal, with -0.0 and 0.0 told apart (json keeps the sign)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def test_it_uses_the_c_codec_here():
    assert _agent.make_scanner is not None     # CPython: the path without json's imports


def test_decodes_what_json_decodes():
    for text in texts(1, 3000):
        assert same(_agent.decode_header(text), json.loads(text)), text
        assert same(_agent.decode_header(" \r\n\t" + text + "\n "), json.loads(text))


def test_encodes_as_json_dumps_does():
    for text in texts(2, 3000):
        v = json.loads(text)
        assert _agent.encode_header(v) == json.dumps(v, separators=(",", ":")).encode()


def test_refuses_what_json_refuses():
    rng = random.Random(3)
    bad = ["", " ", "{", "}", '{"a":1}x', '{"a":1},', "{'a':1}", '{"a":01}', '{"a":.5}',
           '{"a":"\x01"}', '{"a":"\\x41"}', '{"a":"\\ud800"', "[1,]", '{"a":1,}', "nan",
           '{"a":NaN', "\ufeff{}", '{"a":tru}', '{"a" 1}', "1 2"]
    for text in texts(4, 2000):                 # cut, or a character changed or added
        i = rng.randrange(len(text) + 1)
        bad += [text[:i], text[:i] + rng.choice('{}[]",:\\x0 ') + text[i + 1:]]
    for text in bad:
        try:
            want = json.loads(text)
        except ValueError:
            with pytest.raises(ValueError):
                _agent.decode_header(text)
        else:
            got = _agent.decode_header(text)
            assert same(got, want) or (isinstance(want, float) and math.isnan(want)
                                       and math.isnan(got)), text


def test_reads_json_constants_as_json_does():
    got = _agent.decode_header('{"a":NaN,"b":Infinity,"c":-Infinity,"d":1E400}')
    assert math.isnan(got["a"]) and got["b"] == got["d"] == math.inf and got["c"] == -math.inf


def test_pypy_agent_without_the_c_codec_agrees():
    pypy = shutil.which("pypy3")
    if pypy is None:
        pytest.skip("no pypy3 (scripts/install-deps)")
    sample = list(texts(5, 300))
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import _agent\n"
            "assert _agent.make_scanner is None\n"
            "for t in json.load(sys.stdin):\n"
            "    assert _agent.decode_header(t) == json.loads(t) or 'NaN' in t, t\n"
            "    v = json.loads(t)\n"
            "    assert _agent.encode_header(v) == json.dumps(v, separators=(',', ':')).encode()\n"
            "print('ok')")
    p = subprocess.run([pypy, "-c", code, os.path.dirname(_agent.__file__)],
                       input=json.dumps(sample), capture_output=True, text=True, timeout=120)
    assert p.stdout == "ok\n", p.stderr[-2000:]
