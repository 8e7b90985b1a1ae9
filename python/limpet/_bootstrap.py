"""The two stages that start an agent on a far Python (docs/contexts.md, "Bootstrap").

Stage 1 is a command line of about 120 bytes that needs no quoting inside single quotes: it
reads exactly the stage-2 bytes from fd 0 and runs them, leaving the rest of fd 0 to the link.
Stage 2 is the agent (_agent.py), zlib-compressed. Both are made in C (src/context/bootstrap.c;
the agent compressed at build time); without the extension, the agent is compressed here.
"""
import os
import zlib



def _agent_payload():
    """agent_payload() -> bytes: the agent's source, compressed (stage 2)."""
    with open(os.path.join(os.path.dirname(__file__), "_agent.py"), "rb") as f:
        return zlib.compress(f.read(), 9)


def _stage1_argv(payload_len, name, python="python3"):
    """stage1_argv(payload_len, name, python="python3") -> list of str: the command that
    starts a far Python and makes it run the payload_len bytes of stage 2 written to its
    stdin; name ("USER@HOST") is how the process shows in ps."""
    return [python, "-c", 'import os,sys,zlib;n=%d;b=b"";exec("while len(b)<n:b+=os.read('
            '0,n-len(b)) or sys.exit(1)");exec(zlib.decompress(b))' % payload_len,
            "limpet:" + name]


try:  # the C ones (tests/e2e/test_broker.py checks that both give the same)
    from ._limpet import agent_payload, stage1_argv
except ImportError:
    agent_payload, stage1_argv = _agent_payload, _stage1_argv
