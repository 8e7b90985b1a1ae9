#!/usr/bin/python3
"""Writes tests/vectors/jupyter_sign.json: messages serialized and signed by
jupyter_client's own Session (the reference for test_jupyter_codec.c).

Run once with Debian's python3 (python3-jupyter-client) and commit the
output; each vector is the list of wire parts in hex, its key in hex, and
what the decoder must find."""
import json
import os
import sys

from jupyter_client.session import Session


def vector(name, key, msg_type, content, idents, parent=None):
    s = Session(key=key, signature_scheme="hmac-sha256", username="alice")
    msg = s.msg(msg_type, content=content, parent=parent or {})
    parts = s.serialize(msg, ident=idents)
    return {
        "name": name,
        "key": key.hex(),
        "parts": [p.hex() for p in parts],
        "n_ids": len(idents),
        "msg_type": msg_type,
        "msg_id": msg["header"]["msg_id"],
        "session": s.session,
        "username": "alice",
    }


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jupyter_sign.json")
    key = b"0b1e2f3c-4d5e-4f60-8172-8394a5b6c7d8"  # what connect.py writes: a uuid4
    first = vector("execute", key, "execute_request",
                   {"code": "print('h\u00e9llo \u4e16\u754c \U0001F600')", "silent": False,
                    "store_history": True, "user_expressions": {}, "allow_stdin": True,
                    "stop_on_error": True},
                   [b"\x00k\x00\xff" + bytes(range(1, 5))])
    vectors = [
        first,
        vector("kernel_info", key, "kernel_info_request", {}, []),
        vector("long-key", bytes(range(256)) * 2, "complete_request",
               {"code": "import o", "cursor_pos": 8}, [b"a", b"b" * 255]),
        vector("reply-with-parent", key, "input_reply", {"value": "secret \u00e9"}, [b"x"],
               parent=json.loads(bytes.fromhex(first["parts"][3]))),
        vector("empty-key", b"", "is_complete_request", {"code": "for x in y:"}, [b"id"]),
    ]
    with open(out, "w") as f:
        json.dump(vectors, f, indent=1)
        f.write("\n")
    print(out, file=sys.stderr)
    write_seeds(vectors)


def write_seeds(vectors):
    """Seeds for tests/fuzz/fuzz_jupyter.c: a flags byte, then each part as a
    2-byte big-endian length and its bytes. Flag 1: the harness signs with
    its own key; 3: signing off; 0: the signature as jupyter_client wrote it."""
    seeds = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "seeds-jupyter")
    os.makedirs(seeds, exist_ok=True)
    for v in vectors:
        parts = [bytes.fromhex(p) for p in v["parts"]]
        for flags in (0, 1, 3):
            body = b"".join(len(p).to_bytes(2, "big") + p for p in parts)
            with open(os.path.join(seeds, "%s-%d.bin" % (v["name"], flags)), "wb") as f:
                f.write(bytes([flags]) + body)


if __name__ == "__main__":
    main()
