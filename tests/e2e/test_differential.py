"""Differential fuzzing of the two decoders: the pure-Python reference peer
and the C codec must decode every input the same way, frame for frame, and
stop with the same verdict. Inputs are the shared vectors, mutated with a
fixed seed (bit flips, byte changes, truncation, splices, JSON tokens)."""
import random
import struct

import pytest

from limpet import wire

from conftest import decode_c, decode_py, load_vectors

SEEDS = [v["data"] for v in load_vectors()]
TOKENS = [b"{", b"}", b"[", b"]", b'"', b"\\", b"\\u0000", b"\\ud800", b"1.5", b"1e9", b"-0",
          b"9223372036854775808", b"null", b"true", b",", b":", b"\x00", b"\xff", b"\xc3",
          b"\xed\xa0\x80", b"\xef\xbb\xbf", b" ", b"\t", b"\x7f", b'"op"', b'"id"']
CASES_PER_SEED = 200


def mutate_bytes(rng, data):
    data = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(6)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[pos % len(data)] ^= 1 << rng.randrange(8)
        elif op == 1 and data:
            data[pos % len(data)] = rng.randrange(256)
        elif op == 2:
            del data[pos:]
        elif op == 3:
            data[pos:pos] = rng.choice(TOKENS)
        elif op == 4:
            other = rng.choice(SEEDS)
            data[pos:] = other[rng.randrange(len(other) + 1):]
        elif op == 5 and len(data) > pos + 1:
            del data[pos:pos + rng.randrange(1, 8)]
    return bytes(data)


def mutate(rng, data):
    """Half the time the whole input; otherwise only the first frame's header,
    re-framed with correct lengths, so that the JSON rules get exercised."""
    if rng.random() < 0.5 or len(data) < 8:
        return mutate_bytes(rng, data)
    hlen, plen = struct.unpack_from(">II", data)
    header = mutate_bytes(rng, data[8:8 + hlen])
    rest = data[8 + hlen:]
    return struct.pack(">II", len(header), plen) + header + rest


def strip_preamble(data):
    return data[8:] if data.startswith(wire.PREAMBLE) else data


@pytest.mark.parametrize("before", [False, True], ids=["after-handshake", "before-handshake"])
def test_decoders_agree_on_mutated_vectors(before):
    rng = random.Random(20261122 + before)
    disagreements = []
    cases = 0
    for seed in SEEDS:
        for _ in range(CASES_PER_SEED):
            data = mutate(rng, strip_preamble(seed))
            cases += 1
            py, c = decode_py(data, before), decode_c(data, before)
            if py != c:
                disagreements.append((data, py, c))
    assert cases > 15000
    assert disagreements == [], f"{len(disagreements)} of {cases} differ, first: {disagreements[0]}"
