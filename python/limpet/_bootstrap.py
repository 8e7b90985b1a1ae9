"""The two stages that start an agent on a far Python (docs/contexts.md, "Bootstrap").

Stage 1 is a command line of about 120 bytes that needs no quoting inside single quotes: it
reads exactly the stage-2 bytes from fd 0 and runs them, leaving the rest of fd 0 to the link.
Stage 2 is the agent (_agent.py), zlib-compressed. The C broker of issue 11 will carry both,
generated from here at build time.
"""
import os
import zlib

_STAGE1 = ('import os,sys,zlib;n=%d;b=b"";'
           'exec("while len(b)<n:b+=os.read(0,n-len(b)) or sys.exit(1)");'
           'exec(zlib.decompress(b))')


_PAYLOAD = []  # made once per process: compressing costs 1 ms, twice per connect


def agent_payload():
    """agent_payload() -> bytes: the agent's source, compressed (stage 2)."""
    if not _PAYLOAD:
        with open(os.path.join(os.path.dirname(__file__), "_agent.py"), "rb") as f:
            _PAYLOAD.append(zlib.compress(f.read(), 9))
    return _PAYLOAD[0]


def stage1_argv(payload_len, name, python="python3"):
    """stage1_argv(payload_len, name, python="python3") -> list of str

    The command that starts a far Python and makes it run the payload_len bytes of stage 2
    written to its stdin; name ("USER@HOST") is how the process shows in ps.
    """
    return [python, "-c", _STAGE1 % payload_len, "limpet:" + name]
