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


def agent_source(path=os.path.join(os.path.dirname(__file__), "_agent.py")):
    """agent_source() -> bytes: the agent as sent: without its docstrings and comments,
    which are for readers here, not for the far interpreter (a third of the bytes)."""
    import ast
    with open(path, "rb") as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree).encode()


_PAYLOAD = []


def agent_payload():
    """agent_payload() -> bytes: the agent, compressed (stage 2); made once a process."""
    if not _PAYLOAD:
        _PAYLOAD.append(zlib.compress(agent_source(), 9))
    return _PAYLOAD[0]


def stage1_argv(payload_len, name, python="python3", ready=False):
    """stage1_argv(payload_len, name, python="python3", ready=False) -> list of str

    The command that starts a far Python and makes it run the payload_len bytes of stage 2
    written to its stdin; name ("USER@HOST") is how the process shows in ps. With ready, it
    first says so on stderr (_agent.READY), for commands that may ask for a password first.
    """
    code = _STAGE1 % payload_len
    if ready:
        code = code.replace(";", ';os.write(2,b"limpet-ready\\n");', 1)
    return [python, "-c", code, "limpet:%s:%s" % (name, " " * 7)]  # the agent writes its PID
