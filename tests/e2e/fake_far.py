"""The start of a fake far side for tests of a hostile agent: it plays stage 1 and says
hello as an agent does, then the test's own code (given `send(header, payload)`)
misbehaves."""
import textwrap

HELLO = textwrap.dedent('''
    import json, os, struct, sys
    def send(h, p=b""):
        b = json.dumps(h).encode()
        os.write(1, struct.pack(">II", len(b), len(p)) + b + p)
    def read(n):
        b = b""
        while len(b) < n:
            b += os.read(0, n - len(b))
        return b
    os.write(1, b"limpet-stage1 fake -\\n")    # stage 1's line; then stage 2, ignored
    read(int(read(9)[1:]))
    os.write(1, b"\\0limpet\\n")
    send({"op": "hello", "id": 0, "protocol": [1], "client": "fake", "caps": ["call"]})
''')


def fake_far(body):
    """The source of a fake far side: HELLO, then body (dedented)."""
    return HELLO + textwrap.dedent(body)
